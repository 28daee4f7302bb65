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
    // two-core machine, 16 minutes. One file more than there are cores keeps the waits overlapping
    // (three on two cores; two when pinned to one). Every wait in the suite is a limit, not a claim,
    // so a busier core makes a test slower, not red.
    maxWorkers: Math.min(3, availableParallelism() + 1),
  },
});
