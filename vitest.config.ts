import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Most test files spend their time waiting on real schedules, timers and child processes, not
    // on the CPU: vitest's default (one worker per core, less one) ran them one after another on a
    // two-core machine, 16 minutes. One file per core keeps the waits overlapping on a machine with
    // several, and runs one at a time on one core (`taskset -c 0 npm test`). More files than cores
    // (three on two) was faster still, but overloaded the cores enough that tests whose limits are
    // seconds failed about once a run.
    maxWorkers: Math.max(1, availableParallelism()),
  },
});
