// Missed instants are a record, not a notification: when recording them fails, the schedule's
// cursor must not move past them (an instant that left no trace is lost).
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { Scheduler, type Missed } from '../../../src/schedule/scheduler.js';
import { Store } from '../../../src/store/store.js';
import { cleanup, job, tempDir } from '../../support/helpers.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach(cleanup));

function setup(recordMissed: (m: Missed) => void): { store: Store; s: Scheduler; now: number } {
  const dir = tempDir('ns-missed-');
  dirs.push(dir);
  const store = Store.open(join(dir, 'nightshift.db'));
  const now = Date.UTC(2026, 5, 10, 2, 0, 30);
  const j = job('m', { every: '1m', command: ['true'] });
  // Down for ten minutes: ten instants passed.
  store.jobStates.ensure('m', now - 10 * 60_000);
  const s = new Scheduler({
    store,
    clock: { now: () => now },
    onDue: () => true,
    log: silentLogger,
    jobs: () => new Map([['m', j]]),
    recordMissed,
  });
  return { store, s, now };
}

describe('missed instants', () => {
  it('are recorded at start and the cursor moves past them', () => {
    const seen: Missed[] = [];
    const { store, s, now } = setup((m) => seen.push(m));
    s.start();
    s.stop();
    expect(seen.map((m) => [m.job.name, m.count, m.cause])).toEqual([['m', 10, 'down']]);
    expect(store.jobStates.get('m')!.cursor).toBe(now);
    store.close();
  });

  it('when recording them fails, start fails and the cursor stays before them (found by review)', () => {
    const { store, s, now } = setup(() => {
      throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    });
    expect(() => s.start()).toThrow(/database is locked/);
    s.stop();
    expect(store.jobStates.get('m')!.cursor).toBe(now - 10 * 60_000);
    store.close();
  });
});
