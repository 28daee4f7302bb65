// runs: one row per run, written before anything happens and finished when it ends. A scheduled
// instant has at most one row (a unique index): "never twice" is a database fact. While the state
// folder is full, rows and their updates wait in Held and are written, in order, later.
import { HEAL_TRIGGERS, isScheduledTrigger, SCHEDULED_TRIGGERS, sqlList, type RunOutcome } from '../model.js';
import { isDiskFull, type Held } from './held.js';
import type { JobStates } from './jobs.js';
import type { NewRun, RunRow } from './rows.js';
import type { Sql } from './sql.js';

/** The columns of a RunBrief. */
const BRIEF = 'id, job, trigger, outcome, created_at, started_at, ended_at, duration_ms';

/** A run as pictures of runs need it (strips, the chart): no output, no reason. */
export type RunBrief = Pick<RunRow, 'id' | 'job' | 'trigger' | 'outcome' | 'created_at' | 'started_at' | 'ended_at' | 'duration_ms'>;

/** A run as a strip shows it: which run, and how it ended. */
export type RunDot = Pick<RunRow, 'id' | 'outcome'>;

/**
 * Every job that has runs, one row each, found by skipping along the runs_job index (a loose
 * index scan: one seek per job) instead of reading every run: prefix of a query that reads `jobs`.
 */
export const DISTINCT_JOBS = `WITH RECURSIVE jobs(job) AS (
  SELECT min(job) FROM runs UNION ALL SELECT (SELECT min(job) FROM runs WHERE job > jobs.job) FROM jobs WHERE jobs.job IS NOT NULL)`;

/** The row a new run starts as (complete at once when it was decided without a process). */
function rowOf(r: NewRun): Omit<RunRow, 'id'> {
  return {
    job: r.job,
    trigger: r.trigger,
    scheduled_for: r.scheduledFor ?? null,
    created_at: r.now,
    started_at: r.outcome ? r.now : null,
    ended_at: r.outcome ? r.now : null,
    outcome: r.outcome ?? null,
    exit_code: null,
    signal: null,
    duration_ms: r.outcome ? 0 : null,
    pgid: null,
    log_path: null,
    output_tail: null,
    output_bytes: null,
    reason: r.reason ?? null,
    attempt: r.attempt ?? 1,
    parent_id: r.parentId ?? null,
    retry_at: null,
    spec_hash: r.specHash ?? null,
  };
}

/**
 * Writes a run's row and, when it claims its instant, moves the job's cursor to `cursorTo` in the
 * same transaction. Null when the instant already has a row. The one INSERT of a run, for a run
 * written at once and for one written late from memory.
 */
export function writeRun(sql: Sql, jobs: JobStates, row: Omit<RunRow, 'id'>, cursorTo: number | null): number | null {
  return sql.tx(() => {
    const info = sql
      .stmt(
        `INSERT INTO runs (job, trigger, scheduled_for, created_at, started_at, ended_at, outcome, exit_code, signal, duration_ms, pgid, log_path,
           output_tail, output_bytes, reason, attempt, parent_id, retry_at, spec_hash)
         VALUES (@job, @trigger, @scheduled_for, @created_at, @started_at, @ended_at, @outcome, @exit_code, @signal, @duration_ms, @pgid, @log_path,
           @output_tail, @output_bytes, @reason, @attempt, @parent_id, @retry_at, @spec_hash)
         ON CONFLICT DO NOTHING`,
      )
      .run(row);
    if (info.changes === 0) return null;
    if (cursorTo != null && row.scheduled_for != null) jobs.advance(row.job, cursorTo, row.created_at);
    sql.changed('run', row.job);
    return Number(info.lastInsertRowid);
  });
}

export interface RunEnd {
  outcome: RunOutcome;
  endedAt: number;
  exitCode?: number | null;
  signal?: string | null;
  durationMs?: number | null;
  outputTail?: string | null;
  outputBytes?: number | null;
  reason?: string | null;
  retryAt?: number | null;
}

export class Runs {
  constructor(
    private readonly sql: Sql,
    private readonly held: Held,
    private readonly jobs: JobStates,
  ) {}

  /**
   * Records a run before anything happens. For a scheduled instant, returns null when that
   * instant was already dispatched, and advances the job's schedule cursor to `cursorTo` in the
   * same transaction. With holdIfFull, a full disk keeps the row in memory instead of failing.
   */
  insert(run: NewRun, o: { holdIfFull?: boolean } = {}): number | null {
    if (o.holdIfFull && this.held.hasHeld() && !this.held.flushSoon()) return this.hold(run);
    // A parent that was held may have been written just now, under its real id.
    const r = run.parentId != null && run.parentId < 0 ? { ...run, parentId: this.held.realId(run.parentId) } : run;
    if (r.parentId != null && r.parentId < 0) return this.hold(r);
    try {
      return writeRun(this.sql, this.jobs, rowOf(r), r.cursorTo ?? null);
    } catch (err) {
      if (!o.holdIfFull || !isDiskFull(err)) throw err;
      this.held.noteDiskFull(err, 'the database');
      return this.hold(r);
    }
  }

  /**
   * The run's row cannot be written: it is kept in memory under a negative id and written, in
   * order, once there is room. A scheduled instant is still claimed only once.
   */
  private hold(r: NewRun): number | null {
    if (isScheduledTrigger(r.trigger) && r.scheduledFor != null) {
      for (const h of this.held.heldRuns()) {
        if (h.job === r.job && h.scheduled_for === r.scheduledFor && isScheduledTrigger(h.trigger)) return null;
      }
      // An instant already on disk was dispatched: never a second time (reads work on a full disk).
      const onDisk = this.sql
        .stmt(`SELECT 1 FROM runs WHERE job = ? AND scheduled_for = ? AND trigger IN ${sqlList(SCHEDULED_TRIGGERS)}`)
        .get(r.job, r.scheduledFor);
      if (onDisk) return null;
    }
    return this.held.holdRun(rowOf(r), r.cursorTo ?? null);
  }

  /**
   * Changes columns of a run; held in memory while the disk is full. `job` is the run's job, as
   * the caller knows it: the change listener is told it without a read.
   */
  private patch(id: number, job: string, patch: Partial<RunRow>): void {
    const real = this.held.realId(id);
    if (real < 0) {
      this.held.patchHeldRun(real, patch);
      return;
    }
    const keys = Object.keys(patch);
    const sql = `UPDATE runs SET ${keys.map((k) => `${k} = @${k}`).join(', ')} WHERE id = @id`;
    const wasHeld = this.held.durable({ sql, params: { ...patch, id: real }, runId: real, patch });
    if (wasHeld && patch.ended_at != null) this.held.finishedLater(real);
    this.sql.changed('run', job);
  }

  markStarted(id: number, job: string, pgid: number | null, logPath: string, startedAt: number): void {
    this.patch(id, job, { started_at: startedAt, pgid, log_path: logPath });
  }

  setPgid(id: number, job: string, pgid: number): void {
    this.patch(id, job, { pgid });
  }

  finish(id: number, job: string, f: RunEnd): void {
    this.patch(id, job, {
      outcome: f.outcome,
      ended_at: f.endedAt,
      exit_code: f.exitCode ?? null,
      signal: f.signal ?? null,
      duration_ms: f.durationMs ?? null,
      output_tail: f.outputTail ?? null,
      output_bytes: f.outputBytes ?? null,
      reason: f.reason ?? null,
      retry_at: f.retryAt ?? null,
    });
  }

  /** Hands a planned retry over to the retry run, atomically, so a crash cannot run it twice. */
  takeRetry(parentId: number, child: NewRun, o: { holdIfFull?: boolean } = {}): number | null {
    const real = this.held.realId(parentId);
    const inMemory = (): number | null => {
      // The parent (or writes before it) is only in memory: the hand-over is held in the same order.
      if (this.get(real)?.retry_at == null) return null;
      this.patch(real, child.job, { retry_at: null });
      return this.insert({ ...child, parentId: real }, o);
    };
    if (o.holdIfFull && (real < 0 || this.held.hasHeld())) return inMemory();
    try {
      return this.sql.tx((): number | null => {
        const cleared = this.sql.stmt('UPDATE runs SET retry_at = NULL WHERE id = ? AND retry_at IS NOT NULL').run(real);
        if (cleared.changes === 0) return null;
        return writeRun(this.sql, this.jobs, rowOf({ ...child, parentId: real }), child.cursorTo ?? null);
      });
    } catch (err) {
      if (!o.holdIfFull || !isDiskFull(err)) throw err;
      this.held.noteDiskFull(err, 'the database');
      return inMemory();
    }
  }

  cancelRetries(job: string): void {
    this.sql.stmt('UPDATE runs SET retry_at = NULL WHERE job = ? AND retry_at IS NOT NULL').run(job);
  }

  pendingRetries(): RunRow[] {
    return this.sql.stmt('SELECT * FROM runs WHERE retry_at IS NOT NULL ORDER BY retry_at').all() as RunRow[];
  }

  /** Runs of a job whose log files are older than the newest `keep`. */
  logsBeyond(job: string, keep: number): Array<{ id: number; log_path: string }> {
    return this.sql
      .stmt('SELECT id, log_path FROM runs WHERE job = ? AND log_path IS NOT NULL ORDER BY id DESC LIMIT -1 OFFSET ?')
      .all(job, keep) as Array<{ id: number; log_path: string }>;
  }

  clearLogPath(id: number): void {
    this.sql.stmt('UPDATE runs SET log_path = NULL WHERE id = ?').run(id);
  }

  /** A run as it is, including what is held in memory while the state folder is full. */
  get(id: number): RunRow | undefined {
    const real = this.held.realId(id);
    if (real < 0) return this.held.heldRun(real);
    const row = this.sql.stmt('SELECT * FROM runs WHERE id = ?').get(real) as RunRow | undefined;
    if (!row) return undefined;
    for (const p of this.held.pendingPatches(real)) Object.assign(row, p);
    return row;
  }

  /** Whether the run's row (or an update of it) is only in memory so far. */
  isHeld(id: number): boolean {
    return this.held.isHeld(id);
  }

  open(): RunRow[] {
    return this.sql.stmt('SELECT * FROM runs WHERE ended_at IS NULL ORDER BY id').all() as RunRow[];
  }

  /** The newest finished run of a job that was not a heal's own (its rerun fix or probe). */
  lastFinished(job: string): RunRow | undefined {
    return this.sql
      .stmt(
        `SELECT * FROM runs WHERE job = ? AND ended_at IS NOT NULL AND trigger NOT IN ${sqlList(HEAL_TRIGGERS)} ORDER BY id DESC LIMIT 1`,
      )
      .get(job) as RunRow | undefined;
  }

  /** The newest finished run of a job, whatever started it (a heal's rerun too): the first finished row of its history. */
  newestEnded(job: string): RunRow | undefined {
    return this.sql.stmt('SELECT * FROM runs WHERE job = ? AND ended_at IS NOT NULL ORDER BY id DESC LIMIT 1').get(job) as
      RunRow | undefined;
  }

  /**
   * The newest finished run of every job: for each job (DISTINCT_JOBS) a walk back along runs_job
   * from its newest run, so the cost follows the number of jobs, not of runs (a GROUP BY over a
   * year of runs read every row: 0.1-0.5 s at a million).
   */
  lastFinishedOfEach(): Map<string, RunRow> {
    const rows = this.sql
      .stmt(
        `${DISTINCT_JOBS} SELECT r.* FROM jobs JOIN runs r ON r.id = (SELECT id FROM runs WHERE job = jobs.job AND ended_at IS NOT NULL ORDER BY id DESC LIMIT 1)`,
      )
      .all() as RunRow[];
    return new Map(rows.map((r) => [r.job, r]));
  }

  /** A job's newest runs, newest first, with only what a picture of them needs (no output); `before`: created before then. */
  recent(job: string, limit: number, before?: number): RunBrief[] {
    if (before === undefined)
      return this.sql.stmt(`SELECT ${BRIEF} FROM runs WHERE job = ? ORDER BY id DESC LIMIT ?`).all(job, limit) as RunBrief[];
    return this.sql
      .stmt(`SELECT ${BRIEF} FROM runs WHERE job = ? AND created_at < ? ORDER BY id DESC LIMIT ?`)
      .all(job, before, limit) as RunBrief[];
  }

  /**
   * The newest `limit` runs of each of `jobs` as id and outcome, newest first (a strip of runs): one
   * walk back along runs_job per job that stops after `limit` rows. Two columns only: most of the
   * cost is reading each row, and a strip needs no more.
   */
  outcomesOfEach(jobs: Iterable<string>, limit: number, before?: number): Map<string, RunDot[]> {
    const q =
      before === undefined
        ? this.sql.stmt('SELECT id, outcome FROM runs WHERE job = ? ORDER BY id DESC LIMIT ?')
        : this.sql.stmt('SELECT id, outcome FROM runs WHERE job = ? AND created_at < ? ORDER BY id DESC LIMIT ?');
    const out = new Map<string, RunDot[]>();
    for (const job of jobs) out.set(job, (before === undefined ? q.all(job, limit) : q.all(job, before, limit)) as RunDot[]);
    return out;
  }

  history(job: string | null, limit: number): RunRow[] {
    if (job) return this.sql.stmt('SELECT * FROM runs WHERE job = ? ORDER BY id DESC LIMIT ?').all(job, limit) as RunRow[];
    return this.sql.stmt('SELECT * FROM runs ORDER BY id DESC LIMIT ?').all(limit) as RunRow[];
  }

  between(from: number, to: number): RunRow[] {
    return this.sql.stmt('SELECT * FROM runs WHERE created_at >= ? AND created_at < ? ORDER BY id').all(from, to) as RunRow[];
  }

  count(job?: string): number {
    const row = (
      job ? this.sql.stmt('SELECT count(*) AS n FROM runs WHERE job = ?').get(job) : this.sql.stmt('SELECT count(*) AS n FROM runs').get()
    ) as { n: number };
    return row.n;
  }
}
