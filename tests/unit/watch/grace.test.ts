// The default graces of the watchdog, as README promises them when a spec gives none: an external
// job 5m; a managed job enough for its run and every retry (timeout + killGrace each, and the
// retry delays) + 1m. The real Watchdog on a real SQLite store; only time is faked, because the
// deadlines are pure arithmetic (an instant + a grace) and a 5-minute grace cannot be waited for.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { Store } from '../../../src/store/store.js';
import { Watchdog, graceOf } from '../../../src/watch/watchdog.js';
import type { Job } from '../../../src/config/home.js';
import { cleanup, job, tempDir } from '../../support/helpers.js';

const M = 60_000;
// 2026-06-10 02:00:00.400 UTC: the first instant of an every-10s job is 02:00:10.
const START = Date.UTC(2026, 5, 10, 2, 0, 0, 400);
const FIRST = Date.UTC(2026, 5, 10, 2, 0, 10);

let dir: string;
let store: Store;
let dog: Watchdog | null = null;
beforeEach(() => {
  vi.useFakeTimers({ now: START });
  dir = tempDir('ns-grace-');
  store = Store.open(join(dir, 'nightshift.db'));
});
afterEach(() => {
  dog?.stop();
  dog = null;
  store.close();
  vi.useRealTimers();
  cleanup(dir);
});

/** A watchdog on one job, started at START; returns the job's open alerts at any moment. */
function watch(j: Job): () => Array<{ kind: string; opened_at: number; message: string }> {
  // Wall and elapsed time move together: no clock step for the timer to see.
  const clock = { now: () => Date.now(), monotonic: () => Date.now() };
  dog = new Watchdog({ store, clock, log: silentLogger, getJob: (n) => (n === j.name ? j : undefined) });
  dog.start([j]);
  return () => store.alerts.open(j.name);
}

/** Advances to 1 ms before `deadline` (nothing yet), then to it (the missed alert). */
function expectMissedAt(alerts: ReturnType<typeof watch>, deadline: number, grace: string, first = '2026-06-10 02:00:10 UTC'): void {
  vi.advanceTimersByTime(deadline - 1 - Date.now());
  expect(alerts()).toEqual([]);
  vi.advanceTimersByTime(1);
  const [a, ...rest] = alerts();
  expect(rest).toEqual([]);
  expect(a).toMatchObject({ kind: 'missed', opened_at: deadline });
  // The instant in the job's zone, to the second, as every surface shows times.
  expect(a!.message).toContain(`no success by ${first} + grace ${grace}`);
}

describe('the default grace of a missed deadline', () => {
  it('an external job (no command) is missed 5m after its instant', () => {
    // An every-job's times are shown in the policy's or the system's zone; pinned here so the test reads the same on any machine.
    const j = { ...job('ext', { every: '10s' }), timezone: 'Europe/Berlin' };
    expect(graceOf(j)).toBe(5 * M);
    expectMissedAt(watch(j), FIRST + 5 * M, '5m', '2026-06-10 04:00:10 +02:00');
  });

  it('a managed job with the defaults (timeout 1h, killGrace 10s) is missed 1h 1m 10s after its instant', () => {
    const j = { ...job('managed', { every: '10s', command: ['true'] }), timezone: 'UTC' };
    expect(graceOf(j)).toBe(60 * M + 10_000 + M);
    expectMissedAt(watch(j), FIRST + 60 * M + 10_000 + M, '1h1m');
  });

  it('a managed job with retries gets time for every attempt and delay: 2 × (timeout + killGrace) + delay + 1m', () => {
    const j = {
      ...job('retried', { every: '10s', command: ['true'], timeout: '5m', killGrace: '30s', retries: { count: 1, delay: '2m' } }),
      timezone: 'UTC',
    };
    // the run (5m30s), the delay (2m), the retry (5m30s), then 1m
    const grace = 5.5 * M + 2 * M + 5.5 * M + M;
    expect(graceOf(j)).toBe(grace);
    expectMissedAt(watch(j), FIRST + grace, '14m');
  });

  it('an explicit heartbeat.grace replaces the default', () => {
    const j = { ...job('explicit', { every: '10s', command: ['true'], heartbeat: { grace: '45s' } }), timezone: 'UTC' };
    expectMissedAt(watch(j), FIRST + 45_000, '45s');
  });
});
