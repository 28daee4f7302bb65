// SQLite is the single source of truth. Every write that matters (a run about to start, a run
// finished, a schedule cursor) is one transaction, so a kill -9 at any moment leaves either the
// state before or the state after — never half of both.
import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export const RUN_OUTCOMES = [
  'ok',
  'failed',
  'timeout',
  'killed',
  'wrong',
  'skipped-precheck',
  'skipped-overlap',
  'skipped-paused',
  'skipped-halted',
  'interrupted',
] as const;
export type RunOutcome = (typeof RUN_OUTCOMES)[number];
export const RUN_TRIGGERS = ['schedule', 'catch-up', 'manual', 'retry', 'heal', 'probe'] as const;
export type RunTrigger = (typeof RUN_TRIGGERS)[number];

export interface RunRow {
  id: number;
  job: string;
  trigger: RunTrigger;
  scheduled_for: number | null;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  outcome: RunOutcome | null;
  exit_code: number | null;
  signal: string | null;
  duration_ms: number | null;
  pgid: number | null;
  log_path: string | null;
  output_tail: string | null;
  output_bytes: number | null;
  reason: string | null;
  attempt: number;
  parent_id: number | null;
  retry_at: number | null;
  spec_hash: string | null;
}

export interface JobStateRow {
  job: string;
  cursor: number;
  paused: number;
  paused_at: number | null;
  first_seen: number;
}

export const ALERT_KINDS = ['missed', 'failed', 'hung', 'wrong'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export interface AlertRow {
  id: number;
  fingerprint: string;
  job: string;
  kind: AlertKind;
  opened_at: number;
  last_seen_at: number;
  count: number;
  message: string;
  run_id: number | null;
  exit_code: number | null;
  output_tail: string | null;
  folded_under: string | null;
  resolved_at: number | null;
  resolution: string | null;
}

export interface HeartbeatRow {
  id: number;
  job: string;
  kind: 'start' | 'success' | 'fail';
  at: number;
  source: string;
  duration_ms: number | null;
}

export interface DigestRow {
  date: string;
  created_at: number;
  verdict: string;
  body_text: string;
  body_html: string;
  sent_at: number | null;
  attempts: number;
  next_attempt_at: number | null;
  last_error: string | null;
}

export interface PageRow {
  id: number;
  fingerprint: string;
  event: string;
  at: number;
  outcome: string | null;
  detail: string | null;
}

export const HEAL_STEPS = ['kill-switch', 'pre-check', 'rule', 'cap', 'autonomy', 'guard', 'snapshot', 'fix', 'probe', 'verdict', 'rollback'] as const;
export type HealStep = (typeof HEAL_STEPS)[number];

export interface HealAttemptRow {
  id: number;
  alert_id: number;
  fingerprint: string;
  job: string;
  rule: string | null;
  rule_hash: string | null;
  /** The n-th executed attempt of this incident; null until a fix is about to be run. */
  attempt: number | null;
  autonomy: string | null;
  /** command | rerun | brain */
  action_kind: string | null;
  /** What the fix does, in plain words (e.g. "command: rm -f /srv/x.lock"). */
  action: string | null;
  step: HealStep;
  /** null while in flight. */
  outcome: string | null;
  detail: string | null;
  proposal: string | null;
  snapshot_dir: string | null;
  /** JSON {touches, zone}: the sha256 of both snapshot manifests, so a rewritten one is noticed. */
  snapshot_digest: string | null;
  fix_pgid: number | null;
  created_at: number;
  ended_at: number | null;
  expires_at: number | null;
  answered_at: number | null;
  answer: string | null;
}

type HealField = 'rule' | 'rule_hash' | 'attempt' | 'autonomy' | 'action_kind' | 'action' | 'proposal' | 'snapshot_dir' | 'snapshot_digest' | 'fix_pgid' | 'expires_at' | 'answered_at' | 'answer' | 'outcome' | 'detail' | 'ended_at';
const HEAL_FIELDS = new Set<string>(['rule', 'rule_hash', 'attempt', 'autonomy', 'action_kind', 'action', 'proposal', 'snapshot_dir', 'snapshot_digest', 'fix_pgid', 'expires_at', 'answered_at', 'answer', 'outcome', 'detail', 'ended_at', 'step']);

export interface HealStepRow {
  id: number;
  attempt_id: number;
  step: HealStep;
  started_at: number;
  ended_at: number | null;
  result: string | null;
  detail: string | null;
}

export interface LadderRow {
  rule: string;
  level: string;
  /** The rule file's hash when it was demoted: a human's edit (another hash) ends the demotion. */
  rule_hash: string;
  at: number;
  reason: string;
}

export interface EventRow {
  id: number;
  at: number;
  kind: string;
  job: string | null;
  message: string;
  data: string | null;
}

const MIGRATIONS: string[] = [
  // v1: runs, per-job schedule state, and a journal of daemon events.
  `
  CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    job TEXT NOT NULL,
    trigger TEXT NOT NULL,
    scheduled_for INTEGER,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    ended_at INTEGER,
    outcome TEXT,
    exit_code INTEGER,
    signal TEXT,
    duration_ms INTEGER,
    pgid INTEGER,
    log_path TEXT,
    output_tail TEXT,
    output_bytes INTEGER,
    reason TEXT,
    attempt INTEGER NOT NULL DEFAULT 1,
    parent_id INTEGER REFERENCES runs(id),
    retry_at INTEGER,
    spec_hash TEXT
  );
  -- One row per scheduled instant, whatever became of it: the guarantee that an instant never runs twice.
  CREATE UNIQUE INDEX runs_instant ON runs(job, scheduled_for) WHERE trigger IN ('schedule', 'catch-up');
  CREATE INDEX runs_job ON runs(job, id);
  CREATE INDEX runs_open ON runs(id) WHERE ended_at IS NULL;
  CREATE INDEX runs_retry ON runs(retry_at) WHERE retry_at IS NOT NULL;
  CREATE TABLE job_state (
    job TEXT PRIMARY KEY,
    cursor INTEGER NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    paused_at INTEGER,
    first_seen INTEGER NOT NULL
  );
  CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    job TEXT,
    message TEXT NOT NULL,
    data TEXT
  );
  CREATE INDEX events_at ON events(at);
  `,
  // v2: alerts, heartbeats of external jobs, digests, pages.
  `
  CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    job TEXT NOT NULL,
    kind TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    count INTEGER NOT NULL DEFAULT 1,
    message TEXT NOT NULL,
    run_id INTEGER,
    exit_code INTEGER,
    output_tail TEXT,
    folded_under TEXT,
    resolved_at INTEGER,
    resolution TEXT
  );
  -- At most one open alert per fingerprint (JOB:KIND): occurrences are counted on it.
  CREATE UNIQUE INDEX alerts_open ON alerts(fingerprint) WHERE resolved_at IS NULL;
  CREATE INDEX alerts_job ON alerts(job, id);
  CREATE TABLE heartbeats (
    id INTEGER PRIMARY KEY,
    job TEXT NOT NULL,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    source TEXT NOT NULL,
    duration_ms INTEGER
  );
  CREATE INDEX heartbeats_job ON heartbeats(job, id);
  CREATE TABLE digests (
    date TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    sent_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_error TEXT
  );
  CREATE TABLE pages (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    event TEXT NOT NULL,
    at INTEGER NOT NULL,
    outcome TEXT,
    detail TEXT
  );
  CREATE INDEX pages_fp ON pages(fingerprint, at);
  -- The last version of each job file that was valid: after a restart, a file that has since
  -- become invalid keeps running as it was, instead of vanishing from the schedule.
  CREATE TABLE spec_cache (
    file TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    text TEXT NOT NULL,
    hash TEXT NOT NULL,
    saved_at INTEGER NOT NULL
  );
  -- "last success" and "last sign of life" are asked on every finished run.
  CREATE INDEX runs_job_outcome ON runs(job, outcome, ended_at);
  CREATE INDEX runs_created ON runs(created_at);
  `,
  // v3: the heal loop. One row per attempt, one row per step journaled before the step starts
  // (a crash mid-fix is rolled back from what these say), and the rules' demotions.
  `
  CREATE TABLE heal_attempts (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    job TEXT NOT NULL,
    rule TEXT,
    rule_hash TEXT,
    attempt INTEGER,
    autonomy TEXT,
    action_kind TEXT,
    action TEXT,
    step TEXT NOT NULL,
    outcome TEXT,
    detail TEXT,
    proposal TEXT,
    snapshot_dir TEXT,
    snapshot_digest TEXT,
    fix_pgid INTEGER,
    created_at INTEGER NOT NULL,
    ended_at INTEGER,
    expires_at INTEGER,
    answered_at INTEGER,
    answer TEXT
  );
  -- At most one attempt per fingerprint in flight.
  CREATE UNIQUE INDEX heal_inflight ON heal_attempts(fingerprint) WHERE outcome IS NULL;
  CREATE INDEX heal_alert ON heal_attempts(alert_id, id);
  CREATE INDEX heal_ended ON heal_attempts(ended_at);
  CREATE TABLE heal_steps (
    id INTEGER PRIMARY KEY,
    attempt_id INTEGER NOT NULL REFERENCES heal_attempts(id),
    step TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    result TEXT,
    detail TEXT
  );
  CREATE INDEX heal_steps_attempt ON heal_steps(attempt_id, id);
  CREATE TABLE rule_ladder (
    rule TEXT PRIMARY KEY,
    level TEXT NOT NULL,
    rule_hash TEXT NOT NULL,
    at INTEGER NOT NULL,
    reason TEXT NOT NULL
  );
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export class StoreError extends Error {}

export interface NewRun {
  job: string;
  trigger: RunTrigger;
  scheduledFor?: number | null;
  now: number;
  attempt?: number;
  parentId?: number | null;
  specHash?: string | null;
  /** For runs that are decided without a process (skipped-*): recorded complete at once. */
  outcome?: RunOutcome;
  reason?: string;
}

export class Store {
  readonly db: Database.Database;
  private closed = false;

  private readonly statements = new Map<string, Database.Statement>();

  private constructor(db: Database.Database) {
    this.db = db;
  }

  /**
   * Each SQL text is prepared once: better-sqlite3 keeps a statement's native memory until its
   * JS wrapper is collected, so preparing per call makes RSS balloon at 10,000 jobs.
   */
  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /** Opens (creating if needed) the daemon's database and brings its schema up to date. */
  static open(path: string): Store {
    mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path, { timeout: 5000 });
    db.pragma('journal_mode = WAL');
    // FULL: a committed run row survives a power cut too, not only a kill of the process.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    const store = new Store(db);
    store.migrate();
    return store;
  }

  /** Opens an existing database for the reading commands; never creates or migrates it. */
  static openForReading(path: string): Store | null {
    if (!existsSync(path)) return null;
    const db = new Database(path, { timeout: 5000, fileMustExist: true });
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      db.close();
      throw new StoreError(`${path} was written by a newer nightshift (schema ${version}, this one knows ${SCHEMA_VERSION}); upgrade nightshift`);
    }
    if (version < 1) {
      db.close();
      return null;
    }
    return new Store(db);
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new StoreError(
        `the database was written by a newer nightshift (schema ${version}, this one knows ${SCHEMA_VERSION}); upgrade nightshift or use another --state folder`,
      );
    }
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  /** Runs fn in one transaction: one commit (one fsync) for many writes, e.g. 10,000 jobs at start. */
  batch<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  // ---- runs ----

  /**
   * Records a run before anything happens. For a scheduled instant, returns null when that
   * instant was already dispatched (the unique index makes "never twice" a database fact), and
   * advances the job's schedule cursor in the same transaction.
   */
  insertRun(r: NewRun): number | null {
    const tx = this.db.transaction((): number | null => {
      const info = this.db
        .prepare(
          `INSERT INTO runs (job, trigger, scheduled_for, created_at, attempt, parent_id, spec_hash, outcome, reason, ended_at, started_at, duration_ms)
           VALUES (@job, @trigger, @scheduledFor, @now, @attempt, @parentId, @specHash, @outcome, @reason, @endedAt, @endedAt, @duration)
           ON CONFLICT DO NOTHING`,
        )
        .run({
          job: r.job,
          trigger: r.trigger,
          scheduledFor: r.scheduledFor ?? null,
          now: r.now,
          attempt: r.attempt ?? 1,
          parentId: r.parentId ?? null,
          specHash: r.specHash ?? null,
          outcome: r.outcome ?? null,
          reason: r.reason ?? null,
          endedAt: r.outcome ? r.now : null,
          duration: r.outcome ? 0 : null,
        });
      if (info.changes === 0) return null;
      if ((r.trigger === 'schedule' || r.trigger === 'catch-up') && r.scheduledFor != null) {
        this.advanceCursor(r.job, Math.max(r.scheduledFor, r.trigger === 'catch-up' ? r.now : r.scheduledFor), r.now);
      }
      return Number(info.lastInsertRowid);
    });
    return tx();
  }

  markStarted(id: number, pgid: number | null, logPath: string, startedAt: number): void {
    this.stmt('UPDATE runs SET started_at = ?, pgid = ?, log_path = ? WHERE id = ?').run(startedAt, pgid, logPath, id);
  }

  /** Runs of a job whose log files are older than the newest `keep`. */
  logsBeyond(job: string, keep: number): Array<{ id: number; log_path: string }> {
    return this.stmt('SELECT id, log_path FROM runs WHERE job = ? AND log_path IS NOT NULL ORDER BY id DESC LIMIT -1 OFFSET ?').all(job, keep) as Array<{
      id: number;
      log_path: string;
    }>;
  }

  clearLogPath(id: number): void {
    this.stmt('UPDATE runs SET log_path = NULL WHERE id = ?').run(id);
  }

  setPgid(id: number, pgid: number): void {
    this.stmt('UPDATE runs SET pgid = ? WHERE id = ?').run(pgid, id);
  }

  finishRun(
    id: number,
    f: {
      outcome: RunOutcome;
      endedAt: number;
      exitCode?: number | null;
      signal?: string | null;
      durationMs?: number | null;
      outputTail?: string | null;
      outputBytes?: number | null;
      reason?: string | null;
      retryAt?: number | null;
    },
  ): void {
    this.db
      .prepare(
        `UPDATE runs SET outcome = @outcome, ended_at = @endedAt, exit_code = @exitCode, signal = @signal,
           duration_ms = @durationMs, output_tail = @outputTail, output_bytes = @outputBytes, reason = @reason, retry_at = @retryAt
         WHERE id = @id`,
      )
      .run({
        id,
        outcome: f.outcome,
        endedAt: f.endedAt,
        exitCode: f.exitCode ?? null,
        signal: f.signal ?? null,
        durationMs: f.durationMs ?? null,
        outputTail: f.outputTail ?? null,
        outputBytes: f.outputBytes ?? null,
        reason: f.reason ?? null,
        retryAt: f.retryAt ?? null,
      });
  }

  /** Hands a planned retry over to the retry run, atomically, so a crash cannot run it twice. */
  takeRetry(parentId: number, child: NewRun): number | null {
    return this.db.transaction((): number | null => {
      const cleared = this.stmt('UPDATE runs SET retry_at = NULL WHERE id = ? AND retry_at IS NOT NULL').run(parentId);
      if (cleared.changes === 0) return null;
      return this.insertRun(child);
    })();
  }

  cancelRetries(job: string): void {
    this.stmt('UPDATE runs SET retry_at = NULL WHERE job = ? AND retry_at IS NOT NULL').run(job);
  }

  pendingRetries(): RunRow[] {
    return this.stmt('SELECT * FROM runs WHERE retry_at IS NOT NULL ORDER BY retry_at').all() as RunRow[];
  }

  /** The newest finished run of a job that was not a heal's own (its rerun fix or probe). */
  lastFinishedRun(job: string): RunRow | undefined {
    return this.stmt(
      "SELECT * FROM runs WHERE job = ? AND ended_at IS NOT NULL AND trigger NOT IN ('heal', 'probe') ORDER BY id DESC LIMIT 1",
    ).get(job) as RunRow | undefined;
  }

  /** Whether any alert (open or resolved) was raised or counted for this run. */
  runAlerted(job: string, runId: number): boolean {
    return this.stmt('SELECT 1 FROM alerts WHERE job = ? AND run_id = ? LIMIT 1').get(job, runId) !== undefined;
  }

  openRuns(): RunRow[] {
    return this.stmt('SELECT * FROM runs WHERE ended_at IS NULL ORDER BY id').all() as RunRow[];
  }

  getRun(id: number): RunRow | undefined {
    return this.stmt('SELECT * FROM runs WHERE id = ?').get(id) as RunRow | undefined;
  }

  history(job: string | null, limit: number): RunRow[] {
    if (job) return this.stmt('SELECT * FROM runs WHERE job = ? ORDER BY id DESC LIMIT ?').all(job, limit) as RunRow[];
    return this.stmt('SELECT * FROM runs ORDER BY id DESC LIMIT ?').all(limit) as RunRow[];
  }

  /** The newest finished run of every job. */
  lastFinishedRuns(): Map<string, RunRow> {
    const rows = this.db
      .prepare('SELECT r.* FROM runs r JOIN (SELECT job, max(id) AS id FROM runs WHERE ended_at IS NOT NULL GROUP BY job) m ON r.id = m.id')
      .all() as RunRow[];
    return new Map(rows.map((r) => [r.job, r]));
  }

  lastSuccesses(): Map<string, number> {
    const rows = this.stmt(
      "SELECT job, max(at) AS at FROM (SELECT job, max(ended_at) AS at FROM runs WHERE outcome = 'ok' GROUP BY job UNION ALL SELECT job, max(at) AS at FROM heartbeats WHERE kind = 'success' GROUP BY job) GROUP BY job",
    ).all() as {
      job: string;
      at: number;
    }[];
    return new Map(rows.map((r) => [r.job, r.at]));
  }

  countRuns(job?: string): number {
    const row = (job
      ? this.stmt('SELECT count(*) AS n FROM runs WHERE job = ?').get(job)
      : this.stmt('SELECT count(*) AS n FROM runs').get()) as { n: number };
    return row.n;
  }

  // ---- per-job schedule state ----

  jobState(job: string): JobStateRow | undefined {
    return this.stmt('SELECT * FROM job_state WHERE job = ?').get(job) as JobStateRow | undefined;
  }

  allJobStates(): Map<string, JobStateRow> {
    const rows = this.stmt('SELECT * FROM job_state').all() as JobStateRow[];
    return new Map(rows.map((r) => [r.job, r]));
  }

  /** First sight of a job: its schedule starts counting now (no catch-up for the time before it existed). */
  ensureJobState(job: string, now: number): JobStateRow {
    this.stmt('INSERT INTO job_state (job, cursor, first_seen) VALUES (?, ?, ?) ON CONFLICT DO NOTHING').run(job, now, now);
    return this.jobState(job)!;
  }

  private advanceCursor(job: string, to: number, now: number): void {
    this.db
      .prepare(
        `INSERT INTO job_state (job, cursor, first_seen) VALUES (@job, @to, @now)
         ON CONFLICT(job) DO UPDATE SET cursor = max(cursor, @to)`,
      )
      .run({ job, to, now });
  }

  setCursor(job: string, to: number): void {
    this.stmt('UPDATE job_state SET cursor = max(cursor, ?) WHERE job = ?').run(to, job);
  }

  setPaused(job: string, paused: boolean, now: number): void {
    this.ensureJobState(job, now);
    if (paused) {
      this.stmt('UPDATE job_state SET paused = 1, paused_at = ? WHERE job = ?').run(now, job);
    } else {
      // Resuming starts the clock afresh: the time spent paused is not "missed".
      this.stmt('UPDATE job_state SET paused = 0, paused_at = NULL, cursor = max(cursor, ?) WHERE job = ?').run(now, job);
    }
  }

  // ---- alerts ----

  /**
   * Raises an alert or counts another occurrence on the open one with the same fingerprint.
   * Returns the row and whether it is new (a new alert is what may page; an occurrence is not).
   */
  raiseAlert(a: {
    job: string;
    kind: AlertKind;
    at: number;
    message: string;
    runId?: number | null;
    exitCode?: number | null;
    outputTail?: string | null;
    foldedUnder?: string | null;
  }): { alert: AlertRow; isNew: boolean } {
    const fingerprint = `${a.job}:${a.kind}`;
    return this.db.transaction(() => {
      const open = this.openAlert(fingerprint);
      if (open) {
        this.db
          .prepare(
            `UPDATE alerts SET count = count + 1, last_seen_at = @at, message = @message, run_id = coalesce(@runId, run_id),
               exit_code = coalesce(@exitCode, exit_code), output_tail = coalesce(@outputTail, output_tail), folded_under = @foldedUnder
             WHERE id = @id`,
          )
          .run({ id: open.id, at: a.at, message: a.message, runId: a.runId ?? null, exitCode: a.exitCode ?? null, outputTail: a.outputTail ?? null, foldedUnder: a.foldedUnder ?? null });
        return { alert: this.getAlert(open.id)!, isNew: false };
      }
      const info = this.db
        .prepare(
          `INSERT INTO alerts (fingerprint, job, kind, opened_at, last_seen_at, message, run_id, exit_code, output_tail, folded_under)
           VALUES (@fingerprint, @job, @kind, @at, @at, @message, @runId, @exitCode, @outputTail, @foldedUnder)`,
        )
        .run({ fingerprint, job: a.job, kind: a.kind, at: a.at, message: a.message, runId: a.runId ?? null, exitCode: a.exitCode ?? null, outputTail: a.outputTail ?? null, foldedUnder: a.foldedUnder ?? null });
      return { alert: this.getAlert(Number(info.lastInsertRowid))!, isNew: true };
    })();
  }

  openAlert(fingerprint: string): AlertRow | undefined {
    return this.stmt('SELECT * FROM alerts WHERE fingerprint = ? AND resolved_at IS NULL').get(fingerprint) as AlertRow | undefined;
  }

  getAlert(id: number): AlertRow | undefined {
    return this.stmt('SELECT * FROM alerts WHERE id = ?').get(id) as AlertRow | undefined;
  }

  openAlerts(job?: string): AlertRow[] {
    if (job) return this.stmt('SELECT * FROM alerts WHERE resolved_at IS NULL AND job = ? ORDER BY id').all(job) as AlertRow[];
    return this.stmt('SELECT * FROM alerts WHERE resolved_at IS NULL ORDER BY id').all() as AlertRow[];
  }

  alerts(limit: number): AlertRow[] {
    return this.stmt('SELECT * FROM alerts ORDER BY id DESC LIMIT ?').all(limit) as AlertRow[];
  }

  alertsBetween(from: number, to: number): AlertRow[] {
    return this.db
      .prepare('SELECT * FROM alerts WHERE (opened_at >= ? AND opened_at < ?) OR (resolved_at >= ? AND resolved_at < ?) ORDER BY id')
      .all(from, to, from, to) as AlertRow[];
  }

  /** Resolves open alerts of a job (all kinds, or the given ones); returns the resolved rows. */
  resolveAlerts(job: string, at: number, resolution: string, kinds?: AlertKind[]): AlertRow[] {
    const open = this.openAlerts(job).filter((a) => !kinds || kinds.includes(a.kind));
    const stmt = this.stmt('UPDATE alerts SET resolved_at = ?, resolution = ? WHERE id = ?');
    this.db.transaction(() => {
      for (const a of open) stmt.run(at, resolution, a.id);
    })();
    return open.map((a) => this.getAlert(a.id)!);
  }

  /** Open alerts folded under any alert of `dependency`: unfolded and returned. */
  unfoldAlertsUnder(dependency: string): AlertRow[] {
    const rows = this.stmt("SELECT * FROM alerts WHERE resolved_at IS NULL AND folded_under LIKE ? ESCAPE '\\'").all(
      `${dependency.replace(/[\\%_]/g, (c) => `\\${c}`)}:%`,
    ) as AlertRow[];
    for (const a of rows) this.stmt('UPDATE alerts SET folded_under = NULL WHERE id = ?').run(a.id);
    return rows.map((a) => ({ ...a, folded_under: null }));
  }

  foldAlert(id: number, under: string): void {
    this.stmt('UPDATE alerts SET folded_under = ? WHERE id = ?').run(under, id);
  }

  /** The last moment anything was recorded: when the previous daemon was last known to be up. */
  lastActivityAt(): number | null {
    const r = this.stmt(
      `SELECT max(at) AS at FROM (SELECT max(at) AS at FROM events UNION ALL SELECT max(coalesce(ended_at, started_at, created_at)) FROM runs
         UNION ALL SELECT max(at) FROM heartbeats)`,
    ).get() as { at: number | null };
    return r.at;
  }

  // ---- heartbeats ----

  recordHeartbeat(job: string, kind: HeartbeatRow['kind'], at: number, source: string, durationMs: number | null = null): number {
    return Number(
      this.stmt('INSERT INTO heartbeats (job, kind, at, source, duration_ms) VALUES (?, ?, ?, ?, ?)').run(job, kind, at, source, durationMs)
        .lastInsertRowid,
    );
  }

  lastHeartbeat(job: string, kind?: HeartbeatRow['kind']): HeartbeatRow | undefined {
    if (kind) return this.stmt('SELECT * FROM heartbeats WHERE job = ? AND kind = ? ORDER BY id DESC LIMIT 1').get(job, kind) as HeartbeatRow | undefined;
    return this.stmt('SELECT * FROM heartbeats WHERE job = ? ORDER BY id DESC LIMIT 1').get(job) as HeartbeatRow | undefined;
  }

  /** The last verified success of a job: an ok run or a success ping, whichever is later. */
  lastSuccessAt(job: string): number | null {
    const r = this.db
      .prepare(
        `SELECT max(at) AS at FROM (
           SELECT max(ended_at) AS at FROM runs WHERE job = @job AND outcome = 'ok'
           UNION ALL SELECT max(at) AS at FROM heartbeats WHERE job = @job AND kind = 'success')`,
      )
      .get({ job }) as { at: number | null };
    return r.at;
  }

  /** The last sign that a job is fine: an ok run, a pre-check that found nothing to do, a halt, or a success ping. */
  lastLifeAt(job: string): number | null {
    const r = this.db
      .prepare(
        `SELECT max(at) AS at FROM (
           SELECT max(ended_at) AS at FROM runs WHERE job = @job AND outcome IN ('ok', 'skipped-precheck', 'skipped-halted')
           UNION ALL SELECT max(at) AS at FROM heartbeats WHERE job = @job AND kind = 'success')`,
      )
      .get({ job }) as { at: number | null };
    return r.at;
  }

  // ---- digests ----

  getDigest(date: string): DigestRow | undefined {
    return this.stmt('SELECT * FROM digests WHERE date = ?').get(date) as DigestRow | undefined;
  }

  saveDigest(d: { date: string; createdAt: number; verdict: string; text: string; html: string }): void {
    this.db
      .prepare(
        `INSERT INTO digests (date, created_at, verdict, body_text, body_html) VALUES (@date, @createdAt, @verdict, @text, @html)
         ON CONFLICT(date) DO UPDATE SET created_at = @createdAt, verdict = @verdict, body_text = @text, body_html = @html`,
      )
      .run(d);
  }

  newestDigestDate(): string | null {
    const r = this.stmt('SELECT max(date) AS date FROM digests').get() as { date: string | null };
    return r.date;
  }

  markDigestSent(date: string, at: number): void {
    this.stmt('UPDATE digests SET sent_at = ?, attempts = attempts + 1, next_attempt_at = NULL, last_error = NULL WHERE date = ?').run(at, date);
  }

  markDigestFailed(date: string, error: string, nextAttemptAt: number | null): void {
    this.stmt('UPDATE digests SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE date = ?').run(error, nextAttemptAt, date);
  }

  unsentDigests(): DigestRow[] {
    return this.stmt('SELECT * FROM digests WHERE sent_at IS NULL ORDER BY date').all() as DigestRow[];
  }

  // ---- pages ----

  recordPage(fingerprint: string, event: string, at: number): number {
    return Number(this.stmt('INSERT INTO pages (fingerprint, event, at) VALUES (?, ?, ?)').run(fingerprint, event, at).lastInsertRowid);
  }

  finishPage(id: number, outcome: string, detail: string | null): void {
    this.stmt('UPDATE pages SET outcome = ?, detail = ? WHERE id = ?').run(outcome, detail, id);
  }

  lastPage(fingerprint: string): PageRow | undefined {
    return this.stmt('SELECT * FROM pages WHERE fingerprint = ? ORDER BY id DESC LIMIT 1').get(fingerprint) as PageRow | undefined;
  }

  pagesBetween(from: number, to: number): PageRow[] {
    return this.stmt('SELECT * FROM pages WHERE at >= ? AND at < ? ORDER BY id').all(from, to) as PageRow[];
  }

  // ---- last good specs ----

  saveSpecs(specs: Array<{ file: string; name: string; text: string; hash: string }>, at: number): void {
    const stmt = this.stmt(
      `INSERT INTO spec_cache (file, name, text, hash, saved_at) VALUES (@file, @name, @text, @hash, @at)
       ON CONFLICT(file) DO UPDATE SET name = @name, text = @text, hash = @hash, saved_at = @at WHERE hash <> @hash`,
    );
    this.db.transaction(() => {
      for (const s of specs) stmt.run({ ...s, at });
    })();
  }

  cachedSpec(file: string): { file: string; name: string; text: string; hash: string; saved_at: number } | undefined {
    return this.stmt('SELECT * FROM spec_cache WHERE file = ?').get(file) as
      | { file: string; name: string; text: string; hash: string; saved_at: number }
      | undefined;
  }

  forgetSpec(file: string): void {
    this.stmt('DELETE FROM spec_cache WHERE file = ?').run(file);
  }

  // ---- heal attempts ----

  insertHealAttempt(a: { alertId: number; fingerprint: string; job: string; now: number }): number {
    return this.batch(() => {
      const id = Number(
        this.stmt("INSERT INTO heal_attempts (alert_id, fingerprint, job, step, created_at) VALUES (?, ?, ?, 'kill-switch', ?)").run(
          a.alertId,
          a.fingerprint,
          a.job,
          a.now,
        ).lastInsertRowid,
      );
      this.stmt('INSERT INTO heal_steps (attempt_id, step, started_at) VALUES (?, ?, ?)').run(id, 'kill-switch', a.now);
      return id;
    });
  }

  getHealAttempt(id: number): HealAttemptRow | undefined {
    return this.stmt('SELECT * FROM heal_attempts WHERE id = ?').get(id) as HealAttemptRow | undefined;
  }

  /** Journals a step before it starts: the previous step ends, the attempt says where it is. */
  healStep(id: number, step: HealStep, now: number, fields: Partial<Pick<HealAttemptRow, HealField>> = {}): void {
    this.batch(() => {
      this.stmt("UPDATE heal_steps SET ended_at = ?, result = coalesce(result, 'ok') WHERE attempt_id = ? AND ended_at IS NULL").run(now, id);
      this.stmt('INSERT INTO heal_steps (attempt_id, step, started_at) VALUES (?, ?, ?)').run(id, step, now);
      this.updateHeal(id, { ...fields, step });
    });
  }

  /** Notes on the step under way (what it found), without ending it. */
  healNote(id: number, detail: string, fields: Partial<Pick<HealAttemptRow, HealField>> = {}, result?: string): void {
    this.batch(() => {
      this.stmt('UPDATE heal_steps SET detail = ?, result = coalesce(?, result) WHERE id = (SELECT max(id) FROM heal_steps WHERE attempt_id = ?)').run(
        detail,
        result ?? null,
        id,
      );
      if (Object.keys(fields).length) this.updateHeal(id, fields);
    });
  }

  /** Ends the attempt with its outcome (and ends the step it stopped at). */
  finishHeal(id: number, outcome: string, detail: string, now: number, fields: Partial<Pick<HealAttemptRow, HealField>> = {}): void {
    this.batch(() => {
      this.stmt('UPDATE heal_steps SET ended_at = ?, result = ?, detail = coalesce(detail, ?) WHERE attempt_id = ? AND ended_at IS NULL').run(
        now,
        outcome,
        detail,
        id,
      );
      this.updateHeal(id, { ...fields, outcome, detail, ended_at: now });
    });
  }

  private updateHeal(id: number, fields: Partial<HealAttemptRow>): void {
    const keys = Object.keys(fields).filter((k) => HEAL_FIELDS.has(k));
    if (keys.length === 0) return;
    const sql = `UPDATE heal_attempts SET ${keys.map((k) => `${k} = @${k}`).join(', ')} WHERE id = @id`;
    this.stmt(sql).run({ ...Object.fromEntries(keys.map((k) => [k, (fields as Record<string, unknown>)[k] ?? null])), id });
  }

  healAttemptsForAlert(alertId: number): HealAttemptRow[] {
    return this.stmt('SELECT * FROM heal_attempts WHERE alert_id = ? ORDER BY id').all(alertId) as HealAttemptRow[];
  }

  /** Attempts that executed a fix for this incident (the cap counts these). */
  executedAttempts(alertId: number): number {
    return (this.stmt('SELECT count(*) AS n FROM heal_attempts WHERE alert_id = ? AND attempt IS NOT NULL').get(alertId) as { n: number }).n;
  }

  openHealAttempts(): HealAttemptRow[] {
    return this.stmt('SELECT * FROM heal_attempts WHERE outcome IS NULL ORDER BY id').all() as HealAttemptRow[];
  }

  pendingApprovals(): HealAttemptRow[] {
    return this.stmt("SELECT * FROM heal_attempts WHERE outcome = 'awaiting-approval' ORDER BY id").all() as HealAttemptRow[];
  }

  healAttempts(limit: number, job?: string): HealAttemptRow[] {
    if (job) return this.stmt('SELECT * FROM heal_attempts WHERE job = ? ORDER BY id DESC LIMIT ?').all(job, limit) as HealAttemptRow[];
    return this.stmt('SELECT * FROM heal_attempts ORDER BY id DESC LIMIT ?').all(limit) as HealAttemptRow[];
  }

  healAttemptsEndedBetween(from: number, to: number): HealAttemptRow[] {
    return this.stmt('SELECT * FROM heal_attempts WHERE ended_at >= ? AND ended_at < ? ORDER BY id').all(from, to) as HealAttemptRow[];
  }

  healSteps(attemptId: number): HealStepRow[] {
    return this.stmt('SELECT * FROM heal_steps WHERE attempt_id = ? ORDER BY id').all(attemptId) as HealStepRow[];
  }

  /** Brain runs since `since` (the daily budget). */
  brainRunsSince(since: number): number {
    // Counted from the snapshot step (journaled synchronously right after the budget check), so
    // two heals in parallel cannot both pass the check for the last run of the day.
    return (
      this.stmt("SELECT count(*) AS n FROM heal_attempts WHERE action_kind = 'brain' AND attempt IS NOT NULL AND created_at >= ?").get(since) as {
        n: number;
      }
    ).n;
  }

  /** Per rule: the evidence a promotion review needs. */
  ruleEvidence(): Array<{ rule: string; cases: number; outcome: string; n: number }> {
    return this.stmt(
      `SELECT rule, (SELECT count(DISTINCT alert_id) FROM heal_attempts b WHERE b.rule = a.rule) AS cases, coalesce(outcome, 'in-progress') AS outcome, count(*) AS n
         FROM heal_attempts a WHERE rule IS NOT NULL GROUP BY rule, coalesce(outcome, 'in-progress') ORDER BY rule`,
    ).all() as Array<{ rule: string; cases: number; outcome: string; n: number }>;
  }

  /** A verified success of the job after `since` that was not the fix itself (the maker is not the checker). */
  successSince(job: string, since: number): number | null {
    const r = this.stmt(
      `SELECT max(at) AS at FROM (
         SELECT max(ended_at) AS at FROM runs WHERE job = @job AND outcome = 'ok' AND trigger NOT IN ('heal', 'probe') AND ended_at > @since
         UNION ALL SELECT max(at) AS at FROM heartbeats WHERE job = @job AND kind = 'success' AND at > @since)`,
    ).get({ job, since }) as { at: number | null };
    return r.at;
  }

  // ---- the autonomy ladder ----

  ladder(rule: string): LadderRow | undefined {
    return this.stmt('SELECT * FROM rule_ladder WHERE rule = ?').get(rule) as LadderRow | undefined;
  }

  ladderAll(): LadderRow[] {
    return this.stmt('SELECT * FROM rule_ladder ORDER BY rule').all() as LadderRow[];
  }

  setLadder(rule: string, level: string, ruleHash: string, at: number, reason: string): void {
    this.stmt(
      `INSERT INTO rule_ladder (rule, level, rule_hash, at, reason) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(rule) DO UPDATE SET level = excluded.level, rule_hash = excluded.rule_hash, at = excluded.at, reason = excluded.reason`,
    ).run(rule, level, ruleHash, at, reason);
  }

  clearLadder(rule: string): void {
    this.stmt('DELETE FROM rule_ladder WHERE rule = ?').run(rule);
  }

  // ---- events ----

  recordEvent(at: number, kind: string, job: string | null, message: string, data?: unknown): void {
    this.db
      .prepare('INSERT INTO events (at, kind, job, message, data) VALUES (?, ?, ?, ?, ?)')
      .run(at, kind, job, message, data === undefined ? null : JSON.stringify(data));
  }

  /** What the journal last said about the kill switch (false when it never said anything). */
  killSwitchRecordedOn(): boolean {
    const last = this.events(1, 'kill-switch')[0];
    return last ? (JSON.parse(last.data ?? '{}') as { on?: boolean }).on === true : false;
  }

  eventsBetween(from: number, to: number, kind?: string): EventRow[] {
    if (kind) return this.stmt('SELECT * FROM events WHERE at >= ? AND at < ? AND kind = ? ORDER BY id').all(from, to, kind) as EventRow[];
    return this.stmt('SELECT * FROM events WHERE at >= ? AND at < ? ORDER BY id').all(from, to) as EventRow[];
  }

  runsBetween(from: number, to: number): RunRow[] {
    return this.stmt('SELECT * FROM runs WHERE created_at >= ? AND created_at < ? ORDER BY id').all(from, to) as RunRow[];
  }

  events(limit: number, kind?: string): EventRow[] {
    if (kind) return this.stmt('SELECT * FROM events WHERE kind = ? ORDER BY id DESC LIMIT ?').all(kind, limit) as EventRow[];
    return this.stmt('SELECT * FROM events ORDER BY id DESC LIMIT ?').all(limit) as EventRow[];
  }
}
