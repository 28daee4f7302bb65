// A hot reload that cannot be recorded (the state folder is full, the database is locked) changes
// nothing: the previous version of the job stays in force, as the log says. Found by a review:
// with the scheduler reading the daemon's one map of jobs, the map must change only once the
// writes that can fail have been made.
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { homePaths } from '../../src/config/paths.js';
import { Daemon } from '../../src/daemon.js';
import { createLogger } from '../../src/log.js';
import { cleanup, makeHome, waitFor } from '../support/helpers.js';

const full = (): never => {
  throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
};

const teardown: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const t of teardown.splice(0)) await t();
});

async function daemonWithTick(): Promise<{ d: Daemon; file: string; out: string; runs: () => string[]; logged: (msg: string) => number }> {
  const home = makeHome();
  const out = join(home, 'out.txt');
  const file = join(home, 'jobs', 'tick.yaml');
  writeFileSync(file, `every: 1s\nshell: "echo v1 >> ${out}"\n`);
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const d = new Daemon({ paths: homePaths(home), log: createLogger({ level: 'info', destination: sink }), env: {} });
  teardown.push(async () => {
    await d.stop();
    cleanup(home);
  });
  await d.start();
  const runs = (): string[] => {
    try {
      return readFileSync(out, 'utf8').trim().split('\n');
    } catch {
      return [];
    }
  };
  await waitFor(() => runs().length >= 1, 20_000, 'a first run of v1');
  return { d, file, out, runs, logged: (msg) => lines.filter((l) => String(l.msg).includes(msg)).length };
}

describe('a reload that cannot be recorded', () => {
  it('of a changed job: the previous version keeps running, as the log says', async () => {
    const { d, file, out, runs, logged } = await daemonWithTick();
    d.internals.store.specs.save = full;
    writeFileSync(file, `every: 1s\nshell: "echo v2 >> ${out}"\n`);
    d.reloadFile(file, false);
    expect(logged('the previous version stays in force')).toBe(1);
    const n = runs().length;
    await waitFor(() => runs().length >= n + 3, 30_000, 'three more runs');
    expect(runs().slice(n)).toEqual(
      runs()
        .slice(n)
        .map(() => 'v1'),
    );
    expect(d.internals.jobs.get('tick')?.spec.shell).toContain('v1');
  }, 60_000);

  it('of a removed job: the job keeps running, as the log says', async () => {
    const { d, file, runs, logged } = await daemonWithTick();
    d.internals.store.specs.forget = full;
    unlinkSync(file);
    d.reloadFile(file, true);
    expect(logged('the previous version stays in force')).toBe(1);
    const n = runs().length;
    await waitFor(() => runs().length >= n + 2, 30_000, 'two more runs');
    expect(d.internals.jobs.has('tick')).toBe(true);
  }, 60_000);
});
