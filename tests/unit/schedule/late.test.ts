// A scheduler whose timers fire late (a busy machine blocks the event loop), with and without a
// step of the wall clock meanwhile: every instant is either run or recorded as missed, once.
import { silentLogger } from '../../../src/log.js';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Scheduler, type MissedCause } from '../../../src/schedule/scheduler.js';
import { Store } from '../../../src/store/store.js';
import { cleanup, job, tempDir } from '../../support/helpers.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach(cleanup));

function blockFor(ms: number): void {
  const t = performance.now();
  while (performance.now() - t < ms);
}

async function scenario(
  stepMs: number,
  claim = true,
): Promise<{ due: number[]; missed: Array<{ first: number; count: number; cause: MissedCause }> }> {
  const dir = tempDir('ns-late-');
  dirs.push(dir);
  const store = Store.open(join(dir, 'nightshift.db'));
  const start = Date.UTC(2026, 5, 10, 2, 0, 0, 500);
  const p0 = performance.now();
  let offset = 0;
  const clock = { now: () => Math.round(start + (performance.now() - p0) + offset) };
  const due: number[] = [];
  const missed: Array<{ first: number; count: number; cause: MissedCause }> = [];
  const jobs = new Map([['sec', job('sec', { every: '1s', command: ['true'] })]]);
  const s = new Scheduler({
    store,
    clock,
    onDue: (j, at, trigger, _repeat, cursorTo) => {
      due.push(at);
      if (!claim) return false;
      return store.runs.insert({ job: j.name, trigger, scheduledFor: at, cursorTo, now: clock.now() }) !== null;
    },
    log: silentLogger,
    jobs: () => jobs,
    recordMissed: ({ first, count, cause }) => missed.push({ first, count, cause }),
  });
  s.start();
  blockFor(4700);
  offset += stepMs;
  await new Promise((r) => setTimeout(r, 1500));
  s.stop();
  store.close();
  return { due, missed };
}

/** Each whole second from the first instant after the start up to `upTo`, and how often it is accounted for. */
function accounting(r: Awaited<ReturnType<typeof scenario>>, upTo: number): Map<number, number> {
  const seen = new Map<number, number>();
  const first = Date.UTC(2026, 5, 10, 2, 0, 1);
  for (let t = first; t <= upTo; t += 1000) seen.set(t, 0);
  for (const t of r.due) if (seen.has(t)) seen.set(t, seen.get(t)! + 1);
  for (const m of r.missed)
    for (let k = 0; k < m.count; k++) if (seen.has(m.first + k * 1000)) seen.set(m.first + k * 1000, seen.get(m.first + k * 1000)! + 1);
  return seen;
}

describe('a late timer', () => {
  it('records the instants it passed over (no step)', async () => {
    const r = await scenario(0);
    expect(r.missed.some((m) => m.cause === 'late')).toBe(true);
    const acc = accounting(r, Math.max(...r.due));
    expect([...acc.entries()].filter(([, n]) => n !== 1)).toEqual([]);
  });

  it('records nothing as late when the dispatch did not claim the instant (a long-running job still running, a duplicate)', async () => {
    const r = await scenario(0, false);
    expect(r.due.length).toBeGreaterThan(0);
    expect(r.missed.filter((m) => m.cause === 'late')).toEqual([]);
  });

  it('and a forward step of an hour meanwhile: nothing before the step is lost unrecorded (found by the review)', async () => {
    const r = await scenario(3_600_000);
    expect(r.missed.some((m) => m.cause === 'clock-jump')).toBe(true);
    // Up to the last instant before the step: each run or recorded once.
    const beforeStep = Math.max(...r.due.filter((t) => t < Date.UTC(2026, 5, 10, 2, 30)));
    const acc = accounting(r, beforeStep);
    expect(acc.size).toBeGreaterThan(3);
    expect([...acc.entries()].filter(([, n]) => n !== 1)).toEqual([]);
  });
});
