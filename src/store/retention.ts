// Retention: records older than the policy keeps are removed, in small batches off the hot path,
// so that the state folder does not grow for ever (a full disk is the one fault that stops a
// supervisor). Each batch is one short transaction; between batches the event loop runs, so a
// run about to start waits for at most one batch (bench/retention.mjs measures it).
//
// Never removed: a run not yet finished or waiting for its retry, each job's newest run and newest
// success (the watchdog's "last sign of life"), each job's newest heartbeat of each kind, the newest
// event of each kind, open alerts and their heal attempts, heals in flight, and today's digest.
import { errorMessage } from '../errors.js';
import type { Store } from './store.js';

export interface RetentionLimits {
  /** Finished runs older than this (ms) are removed... */
  runsMs: number;
  /** ...and those beyond the newest this many of their job. */
  runsPerJob: number;
  heartbeatsMs: number;
  /** Resolved alerts, with their heal attempts and steps. */
  alertsMs: number;
  /** The daemon's event journal and the pages sent. */
  eventsMs: number;
  /** Digest rows (the files in state/digests/ are removed by the caller). */
  digestsMs: number;
}

export interface Pruned {
  runs: number;
  heartbeats: number;
  alerts: number;
  heals: number;
  events: number;
  pages: number;
  /** Dates (YYYY-MM-DD) of the digests removed. */
  digests: string[];
  /** Run log files whose rows were removed: the caller deletes them. */
  logs: string[];
}

const empty = (): Pruned => ({ runs: 0, heartbeats: 0, alerts: 0, heals: 0, events: 0, pages: 0, digests: [], logs: [] });

/** The date (UTC, YYYY-MM-DD) a digest must be older than to go. */
const dateOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** Runs a job has to lose: ids up to `upTo`, except `keep` (its newest finished run and newest success). */
export interface RunPlan {
  job: string;
  upTo: number;
}

/**
 * Which jobs have runs to lose, and up to which id: older than the cut-off or beyond the newest
 * runsPerJob. Computed once per pass (jobs are walked along the (job, id) index, never by a scan).
 */
export function planRuns(store: Store, limits: RetentionLimits, now: number): RunPlan[] {
  const sql = store.sql;
  const plans: RunPlan[] = [];
  const nextJob = sql.stmt('SELECT min(job) FROM runs WHERE job > ?', 'pluck');
  const beyondCount = sql.stmt('SELECT id FROM runs WHERE job = ? ORDER BY id DESC LIMIT 1 OFFSET ?', 'pluck');
  const oldest = sql.stmt('SELECT max(id) FROM runs WHERE job = ? AND created_at < ?', 'pluck');
  for (let job = nextJob.get('') as string | null; job !== null; job = nextJob.get(job) as string | null) {
    const upTo = Math.max(
      (beyondCount.get(job, limits.runsPerJob) as number | undefined) ?? 0,
      (oldest.get(job, now - limits.runsMs) as number | null) ?? 0,
    );
    if (upTo > 0) plans.push({ job, upTo });
  }
  return plans;
}

/**
 * One batch: at most `batch` rows of each table, in one transaction. `more` is true when a table
 * still had rows to remove (call again after yielding). `plan` (from planRuns) is consumed as its
 * jobs run out of runs to lose; without one, a fresh plan is made.
 */
export function pruneBatch(
  store: Store,
  limits: RetentionLimits,
  now: number,
  batch = 500,
  plan: RunPlan[] = planRuns(store, limits, now),
): { pruned: Pruned; more: boolean } {
  const sql = store.sql;
  const out = empty();
  let more = false;
  const full = (n: number): number => {
    if (n >= batch) more = true;
    return n;
  };
  sql.tx(() => {
    let budget = batch;
    // Asked at each batch: a run that finished since the plan was made may be the newest now.
    const keepOf = sql.stmt(
      `SELECT coalesce((SELECT max(id) FROM runs WHERE job = @job AND ended_at IS NOT NULL), 0),
                coalesce((SELECT max(id) FROM runs WHERE job = @job AND outcome = 'ok'), 0)`,
      'raw',
    );
    while (plan.length > 0 && budget > 0) {
      const p = plan[0]!;
      const keep = keepOf.get({ job: p.job }) as [number, number];
      const rows = sql
        .stmt(
          `SELECT id, log_path FROM runs WHERE job = @job AND id <= @upTo AND ended_at IS NOT NULL AND retry_at IS NULL
             AND id NOT IN (@k1, @k2) ORDER BY id LIMIT @budget`,
        )
        .all({ job: p.job, upTo: p.upTo, k1: keep[0], k2: keep[1], budget }) as Array<{ id: number; log_path: string | null }>;
      if (rows.length < budget) plan.shift();
      if (rows.length === 0) continue;
      const ids = JSON.stringify(rows.map((r) => r.id));
      // A retry kept longer than the run it retried no longer points at it.
      sql.stmt('UPDATE runs SET parent_id = NULL WHERE parent_id IN (SELECT value FROM json_each(?))').run(ids);
      out.runs += sql.stmt('DELETE FROM runs WHERE id IN (SELECT value FROM json_each(?))').run(ids).changes;
      for (const r of rows) if (r.log_path) out.logs.push(r.log_path);
      budget -= rows.length;
    }
    if (plan.length > 0) more = true;

    out.heartbeats = full(
      sql
        .stmt(
          `DELETE FROM heartbeats WHERE id IN (
             SELECT id FROM heartbeats h WHERE at < @cut AND id != (SELECT max(id) FROM heartbeats WHERE job = h.job AND kind = h.kind) LIMIT @batch)`,
        )
        .run({ cut: now - limits.heartbeatsMs, batch }).changes,
    );

    // Incidents: a resolved alert with its heal attempts and their steps, together.
    const alerts = sql
      .stmt(
        `SELECT id FROM alerts WHERE resolved_at IS NOT NULL AND resolved_at < ?
           AND NOT EXISTS (SELECT 1 FROM heal_attempts h WHERE h.alert_id = alerts.id AND h.outcome IS NULL) LIMIT ?`,
        'pluck',
      )
      .all(now - limits.alertsMs, batch) as number[];
    if (alerts.length) {
      const ids = JSON.stringify(alerts);
      sql
        .stmt(
          'DELETE FROM heal_steps WHERE attempt_id IN (SELECT id FROM heal_attempts WHERE alert_id IN (SELECT value FROM json_each(?)))',
        )
        .run(ids);
      out.heals = sql.stmt('DELETE FROM heal_attempts WHERE alert_id IN (SELECT value FROM json_each(?))').run(ids).changes;
      out.alerts = full(sql.stmt('DELETE FROM alerts WHERE id IN (SELECT value FROM json_each(?))').run(ids).changes);
    }

    const eventCut = now - limits.eventsMs;
    // The newest event of each kind stays: some say what is still true (the kill switch's last
    // flip, the install's last record).
    out.events = full(
      sql
        .stmt(
          'DELETE FROM events WHERE id IN (SELECT id FROM events e WHERE at < ? AND id != (SELECT max(id) FROM events WHERE kind = e.kind) LIMIT ?)',
        )
        .run(eventCut, batch).changes,
    );
    out.pages = full(sql.stmt('DELETE FROM pages WHERE id IN (SELECT id FROM pages WHERE at < ? LIMIT ?)').run(eventCut, batch).changes);

    out.digests = sql
      .stmt('DELETE FROM digests WHERE date IN (SELECT date FROM digests WHERE date < ? AND date < ? LIMIT ?) RETURNING date', 'pluck')
      .all(dateOf(now - limits.digestsMs), dateOf(now - 86_400_000), batch) as string[];
    full(out.digests.length);
  });
  return { pruned: out, more };
}

/** Adds b into a. */
function add(a: Pruned, b: Pruned): void {
  a.runs += b.runs;
  a.heartbeats += b.heartbeats;
  a.alerts += b.alerts;
  a.heals += b.heals;
  a.events += b.events;
  a.pages += b.pages;
  a.digests.push(...b.digests);
  a.logs.push(...b.logs);
}

export interface RetentionDeps {
  store: Store;
  limits: () => RetentionLimits;
  now: () => number;
  /** Removes what lives beside the rows (run logs, digest files); errors are the caller's to log. */
  removeFiles: (p: Pruned) => void;
  log: { info: (o: object, msg: string) => void; error: (o: object, msg: string) => void };
  /** How long between two passes (ms). */
  everyMs?: number;
  /** How long after start the first pass runs (ms): never in the busy first moments. */
  firstMs?: number;
}

/** Runs a pass a minute after start and every six hours; a pass is batches with the event loop free between them. */
export class Retention {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<Pruned> | null = null;
  private stopped = false;

  constructor(private readonly deps: RetentionDeps) {}

  start(): void {
    this.schedule(this.deps.firstMs ?? 60_000);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.pass().finally(() => this.schedule(this.deps.everyMs ?? 6 * 3_600_000));
    }, ms);
    this.timer.unref();
  }

  /** One whole pass; concurrent callers share it. */
  pass(): Promise<Pruned> {
    this.running ??= this.passNow().finally(() => (this.running = null));
    return this.running;
  }

  private async passNow(): Promise<Pruned> {
    const total = empty();
    try {
      const limits = this.deps.limits();
      const now = this.deps.now();
      const plan = planRuns(this.deps.store, limits, now);
      for (;;) {
        if (this.stopped) break;
        const { pruned, more } = pruneBatch(this.deps.store, limits, now, 500, plan);
        add(total, pruned);
        this.deps.removeFiles(pruned);
        if (!more) break;
        // Let the scheduler and the runs go first.
        await new Promise((r) => setImmediate(r));
      }
      const n = total.runs + total.heartbeats + total.alerts + total.events + total.pages + total.digests.length;
      if (n > 0)
        this.deps.log.info(
          { pruned: { ...total, digests: total.digests.length, logs: total.logs.length } },
          `retention removed ${n} old record(s)`,
        );
    } catch (err) {
      this.deps.log.error({ err: errorMessage(err) }, 'retention pass failed; the next pass tries again');
    }
    return total;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
