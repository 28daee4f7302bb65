// Retention against a real SQLite file: what goes, what always stays, and that it goes in batches
// the event loop can run between.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planRuns, pruneBatch, Retention, type Pruned, type RetentionLimits } from '../../../src/store/retention.js';
import { Store } from '../../../src/store/store.js';
import { cleanup, tempDir } from '../../support/helpers.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 11, 5, 12, 0, 0);
const LIMITS: RetentionLimits = {
  runsMs: 90 * DAY,
  runsPerJob: 100,
  heartbeatsMs: 30 * DAY,
  alertsMs: 365 * DAY,
  eventsMs: 365 * DAY,
  digestsMs: 365 * DAY,
};
const dirs: string[] = [];
afterAll(() => dirs.forEach(cleanup));

function fresh(): Store {
  const dir = tempDir('ns-retention-');
  dirs.push(dir);
  return Store.open(join(dir, 'nightshift.db'));
}

function run(
  s: Store,
  job: string,
  at: number,
  outcome: 'ok' | 'failed' | null,
  extra: { parentId?: number; logPath?: string } = {},
): number {
  const id = s.runs.insert({ job, trigger: 'manual', now: at, parentId: extra.parentId ?? null })!;
  if (extra.logPath) s.runs.markStarted(id, job, null, extra.logPath, at);
  if (outcome)
    s.runs.finish(id, job, {
      outcome,
      endedAt: at + 1000,
      exitCode: outcome === 'ok' ? 0 : 1,
      signal: null,
      durationMs: 1000,
      reason: outcome,
    });
  return id;
}

function pruneAll(s: Store, limits = LIMITS, batch = 500): Pruned {
  const total: Pruned = { runs: 0, heartbeats: 0, alerts: 0, heals: 0, events: 0, pages: 0, digests: [], logs: [] };
  for (let i = 0; i < 1000; i++) {
    const { pruned, more } = pruneBatch(s, limits, NOW, batch);
    for (const k of ['runs', 'heartbeats', 'alerts', 'heals', 'events', 'pages'] as const) total[k] += pruned[k];
    total.digests.push(...pruned.digests);
    total.logs.push(...pruned.logs);
    if (!more) return total;
  }
  throw new Error('retention never finished');
}

const ids = (s: Store, job: string): number[] => s.db.prepare('SELECT id FROM runs WHERE job = ? ORDER BY id').pluck().all(job) as number[];

describe('retention', () => {
  it('removes runs past the age or the per-job count, never the newest run, the newest success or an unfinished one', () => {
    const s = fresh();
    // "old": its only success 200 days ago, failures since, the newest 120 days ago: all past 90 days.
    const oldOk = run(s, 'old', NOW - 200 * DAY, 'ok');
    for (let d = 190; d >= 121; d--) run(s, 'old', NOW - d * DAY, 'failed');
    const oldNewest = run(s, 'old', NOW - 120 * DAY, 'failed');
    const unfinished = run(s, 'old', NOW - 150 * DAY, null);
    // "busy": 250 runs in the last 10 days: within the age, beyond the count of 100.
    const busy: number[] = [];
    for (let i = 0; i < 250; i++) busy.push(run(s, 'busy', NOW - 10 * DAY + i * 60_000, 'ok', { logPath: `/state/logs/busy/${i}.log` }));
    // "retried": a retry kept after the run it retried goes.
    const parent = run(s, 'retried', NOW - 100 * DAY, 'failed');
    const child = run(s, 'retried', NOW - 80 * DAY, 'ok', { parentId: parent });

    const p = pruneAll(s);
    expect(ids(s, 'old')).toEqual([oldOk, oldNewest, unfinished].sort((a, b) => a - b));
    expect(ids(s, 'busy')).toEqual(busy.slice(150));
    expect(ids(s, 'retried')).toEqual([child]);
    expect(s.runs.get(child)!.parent_id).toBeNull();
    expect(p.runs).toBe(70 + 150 + 1);
    expect(p.logs).toEqual(busy.slice(0, 150).map((_, i) => `/state/logs/busy/${i}.log`));
    s.close();
  });

  it('removes old heartbeats but the newest of each job, resolved incidents with their heals, old events, pages and digests', () => {
    const s = fresh();
    s.heartbeats.record('gone-quiet', 'success', NOW - 400 * DAY, 'ping');
    s.heartbeats.record('gone-quiet', 'success', NOW - 300 * DAY, 'ping');
    s.heartbeats.record('alive', 'success', NOW - 40 * DAY, 'ping');
    s.heartbeats.record('alive', 'success', NOW - 1 * DAY, 'ping');
    // An incident resolved 400 days ago, with a finished heal: goes, with its steps.
    const oldAlert = s.alerts.raise({ job: 'a', kind: 'failed', at: NOW - 401 * DAY, message: 'x' }).alert;
    const heal = s.heals.insert({ alertId: oldAlert.id, fingerprint: oldAlert.fingerprint, job: 'a', now: NOW - 401 * DAY });
    s.heals.step(heal, 'rule', NOW - 401 * DAY);
    s.heals.finish(heal, 'fixed-verified', 'ok', NOW - 400 * DAY);
    s.alerts.resolve('a', NOW - 400 * DAY, 'fixed-verified');
    // Open for 500 days: stays. Resolved yesterday: stays.
    s.alerts.raise({ job: 'b', kind: 'failed', at: NOW - 500 * DAY, message: 'still open' });
    s.alerts.raise({ job: 'c', kind: 'failed', at: NOW - 2 * DAY, message: 'y' });
    s.alerts.resolve('c', NOW - DAY, 'self-recovered');
    s.journal.record(NOW - 366 * DAY, 'daemon-start', null, 'old');
    s.journal.record(NOW - 10 * DAY, 'daemon-start', null, 'recent');
    s.pages.recordFinished('a:failed', 'alert', NOW - 366 * DAY, 'paged', null);
    s.digests.save({ date: '2025-01-01', createdAt: NOW - 700 * DAY, verdict: 'ok', text: 't', html: 'h' });
    s.digests.save({ date: '2026-12-05', createdAt: NOW, verdict: 'ok', text: 't', html: 'h' });

    const p = pruneAll(s);
    expect(s.heartbeats.last('gone-quiet')!.at).toBe(NOW - 300 * DAY);
    expect(s.db.prepare('SELECT count(*) FROM heartbeats').pluck().get()).toBe(2);
    expect(s.alerts.get(oldAlert.id)).toBeUndefined();
    expect(s.heals.get(heal)).toBeUndefined();
    expect(s.db.prepare('SELECT count(*) FROM heal_steps WHERE attempt_id = ?').pluck().get(heal)).toBe(0);
    expect(s.alerts.open('b')).toHaveLength(1);
    expect(s.db.prepare("SELECT count(*) FROM alerts WHERE job = 'c'").pluck().get()).toBe(1);
    expect(s.db.prepare('SELECT message FROM events').pluck().all()).toEqual(['recent']);
    expect(p).toMatchObject({ heartbeats: 2, alerts: 1, heals: 1, events: 1, pages: 1, digests: ['2025-01-01'] });
    expect(s.digests.get('2026-12-05')).toBeDefined();
    s.close();
  });

  it('keeps a resolved incident whose heal is still in flight', () => {
    const s = fresh();
    const a = s.alerts.raise({ job: 'a', kind: 'failed', at: NOW - 500 * DAY, message: 'x' }).alert;
    s.heals.insert({ alertId: a.id, fingerprint: a.fingerprint, job: 'a', now: NOW - 500 * DAY });
    s.alerts.resolve('a', NOW - 400 * DAY, 'self-recovered');
    expect(pruneAll(s).alerts).toBe(0);
    expect(s.alerts.get(a.id)).toBeDefined();
    s.close();
  });

  it('keeps the newest ping of each kind, and the newest event of each kind (found by the review)', () => {
    const s = fresh();
    // A job's last success 40 days ago and a failure since: the success is still its last success.
    s.heartbeats.record('ext', 'success', NOW - 40 * DAY, 'file');
    s.heartbeats.record('ext', 'fail', NOW - DAY, 'ping');
    // The kill switch went on 400 days ago and is on still: that event says so.
    s.journal.record(NOW - 400 * DAY, 'kill-switch', null, 'on');
    s.journal.record(NOW - 390 * DAY, 'daemon-start', null, 'old start');
    s.journal.record(NOW - 380 * DAY, 'daemon-start', null, 'newest start, still old');
    pruneAll(s);
    expect(s.heartbeats.last('ext', 'success')!.at).toBe(NOW - 40 * DAY);
    expect(s.db.prepare('SELECT message FROM events ORDER BY id').pluck().all()).toEqual(['on', 'newest start, still old']);
    s.close();
  });

  it('a run that finishes during a pass and is now the newest success is kept (found by the review)', () => {
    const s = fresh();
    const long = run(s, 'w', NOW - 120 * DAY, null);
    for (let i = 0; i < 1200; i++) run(s, 'w', NOW - 100 * DAY + i * 60_000, 'failed');
    const plan = planRuns(s, LIMITS, NOW);
    pruneBatch(s, LIMITS, NOW, 500, plan);
    s.runs.finish(long, 'w', { outcome: 'ok', endedAt: NOW, exitCode: 0, signal: null, durationMs: 1, reason: 'ok' });
    while (pruneBatch(s, LIMITS, NOW, 500, plan).more);
    expect(s.runs.get(long)).toBeDefined();
    s.close();
  });

  it('removing runs uses the index on parent_id (the foreign key would otherwise scan every run for each)', () => {
    const s = fresh();
    const plan = s.db.prepare('EXPLAIN QUERY PLAN SELECT 1 FROM runs WHERE parent_id = ?').all(1) as Array<{ detail: string }>;
    expect(plan.map((p) => p.detail).join(' ')).toMatch(/USING (COVERING )?INDEX runs_parent/);
    s.close();
  });

  it('works in batches, and a pass lets the event loop run between them', async () => {
    const s = fresh();
    for (let i = 0; i < 2000; i++) run(s, 'busy', NOW - 200 * DAY + i * 60_000, 'ok');
    expect(pruneBatch(s, LIMITS, NOW, 300)).toMatchObject({ more: true, pruned: { runs: 300 } });
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 0);
    const removed: Pruned[] = [];
    const r = new Retention({
      store: s,
      limits: () => LIMITS,
      now: () => NOW,
      removeFiles: (p) => removed.push(p),
      log: { info: () => {}, error: () => {} },
    });
    const total = await r.pass();
    clearInterval(ticker);
    // 2000 runs, the newest kept: 1999 go, 300 by the call above and 1699 by the pass (4 batches of 500).
    expect(total.runs).toBe(1699);
    expect(removed.length).toBe(4);
    expect(ticks).toBeGreaterThan(0);
    expect(ids(s, 'busy')).toHaveLength(1);
    await r.stop();
    s.close();
  });

  it('a policy below a day is refused (the digest reads a whole day)', async () => {
    const { PolicySchema } = await import('../../../src/config/schema.js');
    expect(PolicySchema.safeParse({ retention: { runs: '12h' } }).success).toBe(false);
    const p = PolicySchema.parse({});
    expect(p.retention).toEqual({
      runs: 90 * DAY,
      runsPerJob: 10_000,
      heartbeats: 30 * DAY,
      alerts: 365 * DAY,
      events: 365 * DAY,
      digests: 365 * DAY,
    });
  });
});
