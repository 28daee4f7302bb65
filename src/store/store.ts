// SQLite is the single source of truth. Every write that matters (a run about to start, a run
// finished, a schedule cursor) is one transaction, so a kill -9 at any moment leaves either the
// state before or the state after — never half of both.
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { errorMessage } from '../errors.js';
import {
  HEAL_TRIGGERS,
  isScheduledTrigger,
  SCHEDULED_TRIGGERS,
  sqlList,
  type AlertKind,
  type HealStep,
  type RunOutcome,
  type RunTrigger,
} from '../model.js';
import { elapsedMs, wallNow } from '../clock.js';

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

type HealField =
  | 'rule'
  | 'rule_hash'
  | 'attempt'
  | 'autonomy'
  | 'action_kind'
  | 'action'
  | 'proposal'
  | 'snapshot_dir'
  | 'snapshot_digest'
  | 'fix_pgid'
  | 'expires_at'
  | 'answered_at'
  | 'answer'
  | 'outcome'
  | 'detail'
  | 'ended_at';
const HEAL_FIELDS = new Set<string>([
  'rule',
  'rule_hash',
  'attempt',
  'autonomy',
  'action_kind',
  'action',
  'proposal',
  'snapshot_dir',
  'snapshot_digest',
  'fix_pgid',
  'expires_at',
  'answered_at',
  'answer',
  'outcome',
  'detail',
  'ended_at',
  'step',
]);

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
  // v4: retention (store/retention.ts) removes by age: indexes for the tables it walks by time.
  `
  CREATE INDEX heartbeats_at ON heartbeats(at);
  CREATE INDEX heartbeats_kind ON heartbeats(job, kind, id);
  CREATE INDEX events_kind ON events(kind, id);
  CREATE INDEX alerts_resolved ON alerts(resolved_at) WHERE resolved_at IS NOT NULL;
  CREATE INDEX pages_at ON pages(at);
  -- Deleting a run makes SQLite look for retries pointing at it (the foreign key): without this
  -- index, a scan of every run for each one removed.
  CREATE INDEX runs_parent ON runs(parent_id) WHERE parent_id IS NOT NULL;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export class StoreError extends Error {}

/** A write failed because the state folder's filesystem is full (SQLite's SQLITE_FULL, or ENOSPC/EDQUOT from a file). */
export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT';
}

/** Free bytes for an unprivileged writer on the filesystem holding `dir`; null when it cannot be asked. */
export function freeBytes(dir: string): { free: number; size: number } | null {
  try {
    const s = statfsSync(dir);
    return { free: s.bavail * s.bsize, size: s.blocks * s.bsize };
  } catch {
    return null;
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(1)} GiB`;
}

/**
 * A disk-full episode of the state folder. `full` once, when the first write fails; `resolved`
 * once, when everything held in memory meanwhile is on disk and there is room again. `runs` are
 * the runs that finished during the episode and were recorded late, as they are now in SQLite.
 */
export type DiskFullEvent =
  | { kind: 'full'; since: number; error: string; where: string; dir: string; free: number | null }
  | { kind: 'resolved'; since: number; at: number; dir: string; free: number | null; runs: RunRow[]; writes: number };

/** How often the writes held in memory are tried again while the state folder is full. */
export const DISK_FULL_RETRY_MS = 5000;
/** Room that ends an episode: 1 MiB, or 1% of the filesystem up to 64 MiB, so a few freed bytes do not flap it. */
export function resumeFreeBytes(size: number): number {
  return Math.max(1024 * 1024, Math.min(64 * 1024 * 1024, Math.floor(size / 100)));
}

function withoutId(r: RunRow): Omit<RunRow, 'id' | 'parent_id'> {
  const { id: _id, parent_id: _parent, ...rest } = r;
  return rest;
}

type HeldWrite = { sql: string; params: unknown[] | Record<string, unknown>; runId?: number; patch?: Partial<RunRow> };

export interface NewRun {
  job: string;
  trigger: RunTrigger;
  scheduledFor?: number | null;
  /**
   * Where the job's schedule cursor moves, in the same transaction as the row (the scheduler
   * decides: the instant, or for a catch-up the moment the missed instants were counted up to).
   * Only when the instant is claimed; null or absent: the cursor stays.
   */
  cursorTo?: number | null;
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

  // ---- the state folder is full: what could not be written waits here, in order ----
  /** The episode under way (null: none). */
  private full: { since: number; error: string } | null = null;
  /** Runs decided while no row could be written, by a temporary negative id, in the order they were decided. */
  private readonly heldRuns = new Map<number, RunRow>();
  /** The cursor each held run moves once written (NewRun.cursorTo). */
  private readonly heldCursor = new Map<number, number>();
  /** Temporary ids that have since been written, and the real id each got. */
  private readonly writtenIds = new Map<number, number>();
  private nextHeldId = -1;
  /** Other writes (updates of written runs, events, heartbeats, pages), in order. */
  private held: HeldWrite[] = [];
  /** Runs that finished while held: handed back to the listeners once they are on disk. */
  private readonly finishedWhileFull = new Set<number>();
  private heldCount = 0;
  private lastFlushTry = -Infinity;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly diskListeners: Array<(ev: DiskFullEvent) => void> = [];
  private readonly stateDir: string;
  /** Retry interval while full (tests shorten it). */
  diskFullRetryMs = DISK_FULL_RETRY_MS;

  private constructor(db: Database.Database, stateDir = '.') {
    this.db = db;
    this.stateDir = stateDir;
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
    let db: Database.Database | null = null;
    try {
      db = new Database(path, { timeout: 5000 });
      db.pragma('journal_mode = WAL');
      // FULL: a committed run row survives a power cut too, not only a kill of the process.
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      const store = new Store(db, dirname(path));
      store.migrate();
      return store;
    } catch (err) {
      db?.close();
      // WAL needs room for its shared-memory file before anything is read: on a full disk SQLite
      // says only "disk I/O error" (SQLITE_IOERR_SHMSIZE), which does not tell anyone what to do.
      const raw = (err as { code?: unknown }).code;
      const code = typeof raw === 'string' ? raw : '';
      const space = freeBytes(dirname(path));
      if ((isDiskFull(err) || code.startsWith('SQLITE_IOERR')) && space && space.free < resumeFreeBytes(space.size)) {
        throw new StoreError(
          `cannot open ${path}: the state folder ${dirname(path)} is full (${formatBytes(space.free)} free; ${errorMessage(err)}); free space on that filesystem and start nightshift again`,
        );
      }
      throw err;
    }
  }

  /** The schema this database was written with (its migrations applied): older ones lack tables. */
  schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  /** Opens an existing database for the reading commands; never creates or migrates it. */
  static openForReading(path: string): Store | null {
    if (!existsSync(path)) return null;
    const db = new Database(path, { timeout: 5000, fileMustExist: true });
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      db.close();
      throw new StoreError(
        `${path} was written by a newer nightshift (schema ${version}, this one knows ${SCHEMA_VERSION}); upgrade nightshift`,
      );
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
    try {
      if (this.hasHeld()) this.flushHeld();
    } catch {
      // the daemon reports what was held before it closes; closing must still happen
    }
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.closed = true;
    this.db.close();
  }

  // ---- disk full ----

  /** Listens for the start and the end of disk-full episodes of the state folder. */
  onDiskFull(fn: (ev: DiskFullEvent) => void): void {
    this.diskListeners.push(fn);
  }

  /** The episode under way, with how much waits in memory to be written. */
  diskFull(): { since: number; error: string; held: number } | null {
    return this.full ? { ...this.full, held: this.heldRuns.size + this.held.length } : null;
  }

  /** Whether the run's row is only in memory so far (the state folder is full). */
  isHeld(id: number): boolean {
    const real = this.realId(id);
    return real < 0 ? this.heldRuns.has(real) : this.held.some((w) => w.runId === real);
  }

  /**
   * A write to the state folder failed for want of space (here, or in a run's log): starts an
   * episode if none is under way. Reported once per episode, whatever the number of failed writes.
   */
  noteDiskFull(err: unknown, where: string): void {
    if (this.closed) return;
    this.armRetry();
    if (this.full) return;
    const error = errorMessage(err);
    this.full = { since: wallNow(), error };
    this.emit({ kind: 'full', since: this.full.since, error, where, dir: this.stateDir, free: freeBytes(this.stateDir)?.free ?? null });
  }

  private emit(ev: DiskFullEvent): void {
    for (const fn of this.diskListeners) {
      try {
        fn(ev);
      } catch {
        // a listener's failure must not turn a full disk into a lost write
      }
    }
  }

  private hasHeld(): boolean {
    return this.heldRuns.size > 0 || this.held.length > 0;
  }

  private realId(id: number): number {
    return id < 0 ? (this.writtenIds.get(id) ?? id) : id;
  }

  private armRetry(): void {
    if (this.retryTimer || this.closed) return;
    // Only while an episode lasts, and unref'd: an idle daemon with room does no work.
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.retryNow();
    }, this.diskFullRetryMs);
    this.retryTimer.unref();
  }

  /** Tries to write what waits and, if there is room again, ends the episode. Returns true when it ended. */
  retryNow(): boolean {
    if (this.closed || !this.full) return false;
    if (!this.flushHeld()) {
      this.armRetry();
      return false;
    }
    const space = freeBytes(this.stateDir);
    if (space && space.free < resumeFreeBytes(space.size)) {
      this.armRetry();
      return false;
    }
    const since = this.full.since;
    const runs = [...this.finishedWhileFull].map((id) => this.getRun(id)).filter((r): r is RunRow => r !== undefined);
    this.finishedWhileFull.clear();
    const writes = this.heldCount;
    this.heldCount = 0;
    this.full = null;
    this.emit({ kind: 'resolved', since, at: wallNow(), dir: this.stateDir, free: space?.free ?? null, runs, writes });
    return true;
  }

  /**
   * On the write path, at most one try a second: each try writes everything held, and a busy
   * daemon on a full disk must not pay for that on every write.
   */
  private flushSoon(): boolean {
    const now = elapsedMs();
    if (now - this.lastFlushTry < 1000) return false;
    this.lastFlushTry = now;
    return this.flushHeld();
  }

  /** Writes everything held, in order, in one transaction: all of it or none. */
  private flushHeld(): boolean {
    if (!this.hasHeld()) return true;
    // Not inside a caller's transaction: held records are let go of once written, and an outer
    // rollback would take them with it. They are written after it, in order.
    if (this.db.inTransaction) return false;
    const ids = new Map<number, number>();
    try {
      this.db.transaction(() => {
        const insert = this.stmt(
          `INSERT INTO runs (job, trigger, scheduled_for, created_at, started_at, ended_at, outcome, exit_code, signal, duration_ms, pgid, log_path,
             output_tail, output_bytes, reason, attempt, parent_id, retry_at, spec_hash)
           VALUES (@job, @trigger, @scheduled_for, @created_at, @started_at, @ended_at, @outcome, @exit_code, @signal, @duration_ms, @pgid, @log_path,
             @output_tail, @output_bytes, @reason, @attempt, @parent, @retry_at, @spec_hash)
           ON CONFLICT DO NOTHING`,
        );
        for (const [tmp, r] of this.heldRuns) {
          const parent =
            r.parent_id === null
              ? null
              : r.parent_id < 0
                ? (ids.get(r.parent_id) ?? this.writtenIds.get(r.parent_id) ?? null)
                : r.parent_id;
          const row = { ...withoutId(r), parent };
          let info = insert.run(row);
          // The instant got a row meanwhile; this run happened all the same: kept, without the instant.
          const claimed = info.changes > 0;
          if (!claimed) info = insert.run({ ...row, scheduled_for: null });
          ids.set(tmp, Number(info.lastInsertRowid));
          if (!claimed) continue;
          const cursorTo = this.heldCursor.get(tmp);
          if (cursorTo !== undefined && r.scheduled_for != null) this.advanceCursor(r.job, cursorTo, r.created_at);
        }
        for (const w of this.held) this.stmt(w.sql).run(w.params);
      })();
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      return false;
    }
    for (const [tmp, id] of ids) this.writtenIds.set(tmp, id);
    // Renamed in place: the listeners hear of the runs in the order they finished.
    const finished = [...this.finishedWhileFull].map((id) => ids.get(id) ?? id);
    this.finishedWhileFull.clear();
    for (const id of finished) this.finishedWhileFull.add(id);
    this.heldRuns.clear();
    this.heldCursor.clear();
    this.held = [];
    return true;
  }

  /**
   * A write that must not be lost to a full disk: done at once if it can be, else held in memory
   * (after whatever is held already, so the order is kept) and written when space returns.
   */
  private durable(w: HeldWrite): void {
    if (this.hasHeld() && !this.flushSoon()) {
      this.hold(w);
      return;
    }
    try {
      this.stmt(w.sql).run(w.params);
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      this.noteDiskFull(err, 'the database');
      this.hold(w);
    }
  }

  private hold(w: HeldWrite): void {
    this.held.push(w);
    this.heldCount++;
    this.armRetry();
  }

  /** Changes columns of a run; held in memory while the disk is full. */
  private patchRun(id: number, patch: Partial<RunRow>): void {
    const real = this.realId(id);
    const finished = patch.ended_at !== undefined && patch.ended_at !== null;
    if (real < 0) {
      const row = this.heldRuns.get(real);
      if (!row) throw new StoreError(`run ${id} is neither in the database nor held in memory`);
      Object.assign(row, patch);
      if (finished) this.finishedWhileFull.add(real);
      return;
    }
    const keys = Object.keys(patch);
    const sql = `UPDATE runs SET ${keys.map((k) => `${k} = @${k}`).join(', ')} WHERE id = @id`;
    const before = this.held.length;
    this.durable({ sql, params: { ...patch, id: real }, runId: real, patch });
    if (finished && this.held.length > before) this.finishedWhileFull.add(real);
  }

  // ---- runs ----

  /**
   * Records a run before anything happens. For a scheduled instant, returns null when that
   * instant was already dispatched (the unique index makes "never twice" a database fact), and
   * advances the job's schedule cursor in the same transaction.
   */
  insertRun(run: NewRun, o: { holdIfFull?: boolean } = {}): number | null {
    if (o.holdIfFull && this.hasHeld() && !this.flushSoon()) return this.holdRun(run);
    // A parent that was held may have been written just now, under its real id.
    const r = run.parentId != null && run.parentId < 0 ? { ...run, parentId: this.realId(run.parentId) } : run;
    if (r.parentId != null && r.parentId < 0) return this.holdRun(r);
    try {
      return this.insertRunNow(r);
    } catch (err) {
      if (!o.holdIfFull || !isDiskFull(err)) throw err;
      this.noteDiskFull(err, 'the database');
      return this.holdRun(r);
    }
  }

  /**
   * The run's row cannot be written: it is kept in memory under a negative id and written, in
   * order, once there is room. A scheduled instant is still claimed only once.
   */
  private holdRun(r: NewRun): number | null {
    if (isScheduledTrigger(r.trigger) && r.scheduledFor != null) {
      for (const h of this.heldRuns.values()) {
        if (h.job === r.job && h.scheduled_for === r.scheduledFor && isScheduledTrigger(h.trigger)) return null;
      }
      // An instant already on disk was dispatched: never a second time (reads work on a full disk).
      const onDisk = this.stmt(`SELECT 1 FROM runs WHERE job = ? AND scheduled_for = ? AND trigger IN ${sqlList(SCHEDULED_TRIGGERS)}`).get(
        r.job,
        r.scheduledFor,
      );
      if (onDisk) return null;
    }
    const id = this.nextHeldId--;
    if (r.cursorTo != null) this.heldCursor.set(id, r.cursorTo);
    this.heldRuns.set(id, {
      id,
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
    });
    if (r.outcome) this.finishedWhileFull.add(id);
    this.heldCount++;
    this.armRetry();
    return id;
  }

  private insertRunNow(r: NewRun): number | null {
    const tx = this.db.transaction((): number | null => {
      const info = this.stmt(
        `INSERT INTO runs (job, trigger, scheduled_for, created_at, attempt, parent_id, spec_hash, outcome, reason, ended_at, started_at, duration_ms)
           VALUES (@job, @trigger, @scheduledFor, @now, @attempt, @parentId, @specHash, @outcome, @reason, @endedAt, @endedAt, @duration)
           ON CONFLICT DO NOTHING`,
      ).run({
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
      if (r.cursorTo != null && r.scheduledFor != null) this.advanceCursor(r.job, r.cursorTo, r.now);
      return Number(info.lastInsertRowid);
    });
    return tx();
  }

  markStarted(id: number, pgid: number | null, logPath: string, startedAt: number): void {
    this.patchRun(id, { started_at: startedAt, pgid, log_path: logPath });
  }

  /** Runs of a job whose log files are older than the newest `keep`. */
  logsBeyond(job: string, keep: number): Array<{ id: number; log_path: string }> {
    return this.stmt('SELECT id, log_path FROM runs WHERE job = ? AND log_path IS NOT NULL ORDER BY id DESC LIMIT -1 OFFSET ?').all(
      job,
      keep,
    ) as Array<{
      id: number;
      log_path: string;
    }>;
  }

  clearLogPath(id: number): void {
    this.stmt('UPDATE runs SET log_path = NULL WHERE id = ?').run(id);
  }

  setPgid(id: number, pgid: number): void {
    this.patchRun(id, { pgid });
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
    this.patchRun(id, {
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
    const real = this.realId(parentId);
    if (o.holdIfFull && (real < 0 || this.hasHeld())) {
      // The parent (or writes before it) is only in memory: the hand-over is held in the same order.
      if (this.getRun(real)?.retry_at == null) return null;
      this.patchRun(real, { retry_at: null });
      return this.insertRun({ ...child, parentId: real }, o);
    }
    try {
      return this.db.transaction((): number | null => {
        const cleared = this.stmt('UPDATE runs SET retry_at = NULL WHERE id = ? AND retry_at IS NOT NULL').run(real);
        if (cleared.changes === 0) return null;
        return this.insertRunNow({ ...child, parentId: real });
      })();
    } catch (err) {
      if (!o.holdIfFull || !isDiskFull(err)) throw err;
      this.noteDiskFull(err, 'the database');
      if (this.getRun(real)?.retry_at == null) return null;
      this.patchRun(real, { retry_at: null });
      return this.insertRun({ ...child, parentId: real }, o);
    }
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
      `SELECT * FROM runs WHERE job = ? AND ended_at IS NOT NULL AND trigger NOT IN ${sqlList(HEAL_TRIGGERS)} ORDER BY id DESC LIMIT 1`,
    ).get(job) as RunRow | undefined;
  }

  /** Whether any alert (open or resolved) was raised or counted for this run. */
  runAlerted(job: string, runId: number): boolean {
    return this.stmt('SELECT 1 FROM alerts WHERE job = ? AND run_id = ? LIMIT 1').get(job, runId) !== undefined;
  }

  openRuns(): RunRow[] {
    return this.stmt('SELECT * FROM runs WHERE ended_at IS NULL ORDER BY id').all() as RunRow[];
  }

  /** A run as it is, including what is held in memory while the state folder is full. */
  getRun(id: number): RunRow | undefined {
    const real = this.realId(id);
    if (real < 0) {
      const row = this.heldRuns.get(real);
      return row ? { ...row } : undefined;
    }
    const row = this.stmt('SELECT * FROM runs WHERE id = ?').get(real) as RunRow | undefined;
    if (!row) return undefined;
    for (const w of this.held) if (w.runId === real) Object.assign(row, w.patch);
    return row;
  }

  history(job: string | null, limit: number): RunRow[] {
    if (job) return this.stmt('SELECT * FROM runs WHERE job = ? ORDER BY id DESC LIMIT ?').all(job, limit) as RunRow[];
    return this.stmt('SELECT * FROM runs ORDER BY id DESC LIMIT ?').all(limit) as RunRow[];
  }

  /** The newest finished run of every job. */
  lastFinishedRuns(): Map<string, RunRow> {
    const rows = this.stmt(
      'SELECT r.* FROM runs r JOIN (SELECT job, max(id) AS id FROM runs WHERE ended_at IS NOT NULL GROUP BY job) m ON r.id = m.id',
    ).all() as RunRow[];
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
    const row = (
      job ? this.stmt('SELECT count(*) AS n FROM runs WHERE job = ?').get(job) : this.stmt('SELECT count(*) AS n FROM runs').get()
    ) as { n: number };
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
    this.stmt(
      `INSERT INTO job_state (job, cursor, first_seen) VALUES (@job, @to, @now)
         ON CONFLICT(job) DO UPDATE SET cursor = max(cursor, @to)`,
    ).run({ job, to, now });
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
    const row = {
      fingerprint,
      job: a.job,
      kind: a.kind,
      at: a.at,
      message: a.message,
      runId: a.runId ?? null,
      exitCode: a.exitCode ?? null,
      outputTail: a.outputTail ?? null,
      foldedUnder: a.foldedUnder ?? null,
    };
    return this.db.transaction(() => {
      const open = this.openAlert(fingerprint);
      if (open) {
        this.stmt(
          `UPDATE alerts SET count = count + 1, last_seen_at = @at, message = @message, run_id = coalesce(@runId, run_id),
               exit_code = coalesce(@exitCode, exit_code), output_tail = coalesce(@outputTail, output_tail), folded_under = @foldedUnder
             WHERE id = @id`,
        ).run({ ...row, id: open.id });
        return { alert: this.getAlert(open.id)!, isNew: false };
      }
      const info = this.stmt(
        `INSERT INTO alerts (fingerprint, job, kind, opened_at, last_seen_at, message, run_id, exit_code, output_tail, folded_under)
           VALUES (@fingerprint, @job, @kind, @at, @at, @message, @runId, @exitCode, @outputTail, @foldedUnder)`,
      ).run(row);
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
    return this.stmt(
      'SELECT * FROM alerts WHERE (opened_at >= ? AND opened_at < ?) OR (resolved_at >= ? AND resolved_at < ?) ORDER BY id',
    ).all(from, to, from, to) as AlertRow[];
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

  /** A resolved alert's resolution, credited to what actually ended it (a heal that was verified). */
  creditAlert(id: number, resolution: string): void {
    this.stmt('UPDATE alerts SET resolution = ? WHERE id = ? AND resolved_at IS NOT NULL').run(resolution, id);
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

  /**
   * A ping is proof of life that must not be lost: held in memory while the state folder is full.
   * Touches of a heartbeat file (a worker may touch it every 200 ms) move the time of the job's
   * last row when that row is one too: one row per unbroken streak, not 400,000 a day.
   */
  recordHeartbeat(job: string, kind: HeartbeatRow['kind'], at: number, source: string, durationMs: number | null = null): void {
    if (kind === 'success' && source === 'file') {
      const last = 'SELECT max(id) FROM heartbeats WHERE job = @job';
      this.durable({
        sql: `UPDATE heartbeats SET at = max(at, @at) WHERE id = (${last}) AND kind = 'success' AND source = 'file'`,
        params: { job, at },
      });
      this.durable({
        sql: `INSERT INTO heartbeats (job, kind, at, source, duration_ms) SELECT @job, 'success', @at, 'file', NULL
              WHERE NOT EXISTS (SELECT 1 FROM heartbeats WHERE id = (${last}) AND kind = 'success' AND source = 'file')`,
        params: { job, at },
      });
      return;
    }
    this.durable({
      sql: 'INSERT INTO heartbeats (job, kind, at, source, duration_ms) VALUES (?, ?, ?, ?, ?)',
      params: [job, kind, at, source, durationMs],
    });
  }

  lastHeartbeat(job: string, kind?: HeartbeatRow['kind']): HeartbeatRow | undefined {
    if (kind)
      return this.stmt('SELECT * FROM heartbeats WHERE job = ? AND kind = ? ORDER BY id DESC LIMIT 1').get(job, kind) as
        HeartbeatRow | undefined;
    return this.stmt('SELECT * FROM heartbeats WHERE job = ? ORDER BY id DESC LIMIT 1').get(job) as HeartbeatRow | undefined;
  }

  /** The last verified success of a job: an ok run or a success ping, whichever is later. */
  lastSuccessAt(job: string): number | null {
    const r = this.stmt(
      `SELECT max(at) AS at FROM (
           SELECT max(ended_at) AS at FROM runs WHERE job = @job AND outcome = 'ok'
           UNION ALL SELECT max(at) AS at FROM heartbeats WHERE job = @job AND kind = 'success')`,
    ).get({ job }) as { at: number | null };
    return r.at;
  }

  /** The last sign that a job is fine: an ok run, a pre-check that found nothing to do, a halt, or a success ping. */
  lastLifeAt(job: string): number | null {
    const r = this.stmt(
      `SELECT max(at) AS at FROM (
           SELECT max(ended_at) AS at FROM runs WHERE job = @job AND outcome IN ('ok', 'skipped-precheck', 'skipped-halted')
           UNION ALL SELECT max(at) AS at FROM heartbeats WHERE job = @job AND kind = 'success')`,
    ).get({ job }) as { at: number | null };
    return r.at;
  }

  // ---- digests ----

  getDigest(date: string): DigestRow | undefined {
    return this.stmt('SELECT * FROM digests WHERE date = ?').get(date) as DigestRow | undefined;
  }

  saveDigest(d: { date: string; createdAt: number; verdict: string; text: string; html: string }): void {
    this.stmt(
      `INSERT INTO digests (date, created_at, verdict, body_text, body_html) VALUES (@date, @createdAt, @verdict, @text, @html)
         ON CONFLICT(date) DO UPDATE SET created_at = @createdAt, verdict = @verdict, body_text = @text, body_html = @html`,
    ).run(d);
  }

  newestDigestDate(): string | null {
    const r = this.stmt('SELECT max(date) AS date FROM digests').get() as { date: string | null };
    return r.date;
  }

  markDigestSent(date: string, at: number): void {
    this.stmt('UPDATE digests SET sent_at = ?, attempts = attempts + 1, next_attempt_at = NULL, last_error = NULL WHERE date = ?').run(
      at,
      date,
    );
  }

  markDigestFailed(date: string, error: string, nextAttemptAt: number | null): void {
    this.stmt('UPDATE digests SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE date = ?').run(
      error,
      nextAttemptAt,
      date,
    );
  }

  unsentDigests(): DigestRow[] {
    return this.stmt('SELECT * FROM digests WHERE sent_at IS NULL ORDER BY date').all() as DigestRow[];
  }

  // ---- pages ----

  recordPage(fingerprint: string, event: string, at: number): number {
    return Number(this.stmt('INSERT INTO pages (fingerprint, event, at) VALUES (?, ?, ?)').run(fingerprint, event, at).lastInsertRowid);
  }

  finishPage(id: number, outcome: string, detail: string | null): void {
    this.durable({ sql: 'UPDATE pages SET outcome = ?, detail = ? WHERE id = ?', params: [outcome, detail, id] });
  }

  /** A page that went out while its row could not be written: recorded whole, now or when space returns. */
  recordFinishedPage(fingerprint: string, event: string, at: number, outcome: string, detail: string | null): void {
    this.durable({
      sql: 'INSERT INTO pages (fingerprint, event, at, outcome, detail) VALUES (?, ?, ?, ?, ?)',
      params: [fingerprint, event, at, outcome, detail],
    });
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
      { file: string; name: string; text: string; hash: string; saved_at: number } | undefined;
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
      this.stmt("UPDATE heal_steps SET ended_at = ?, result = coalesce(result, 'ok') WHERE attempt_id = ? AND ended_at IS NULL").run(
        now,
        id,
      );
      this.stmt('INSERT INTO heal_steps (attempt_id, step, started_at) VALUES (?, ?, ?)').run(id, step, now);
      this.updateHeal(id, { ...fields, step });
    });
  }

  /** Notes on the step under way (what it found), without ending it. */
  healNote(id: number, detail: string, fields: Partial<Pick<HealAttemptRow, HealField>> = {}, result?: string): void {
    this.batch(() => {
      this.stmt(
        'UPDATE heal_steps SET detail = ?, result = coalesce(?, result) WHERE id = (SELECT max(id) FROM heal_steps WHERE attempt_id = ?)',
      ).run(detail, result ?? null, id);
      if (Object.keys(fields).length) this.updateHeal(id, fields);
    });
  }

  /** Ends the attempt with its outcome (and ends the step it stopped at). */
  finishHeal(id: number, outcome: string, detail: string, now: number, fields: Partial<Pick<HealAttemptRow, HealField>> = {}): void {
    this.batch(() => {
      this.stmt(
        'UPDATE heal_steps SET ended_at = ?, result = ?, detail = coalesce(detail, ?) WHERE attempt_id = ? AND ended_at IS NULL',
      ).run(now, outcome, detail, id);
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
    return (this.stmt('SELECT count(*) AS n FROM heal_attempts WHERE alert_id = ? AND attempt IS NOT NULL').get(alertId) as { n: number })
      .n;
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
      this.stmt("SELECT count(*) AS n FROM heal_attempts WHERE action_kind = 'brain' AND attempt IS NOT NULL AND created_at >= ?").get(
        since,
      ) as {
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
         SELECT max(ended_at) AS at FROM runs WHERE job = @job AND outcome = 'ok' AND trigger NOT IN ${sqlList(HEAL_TRIGGERS)} AND ended_at > @since
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

  /** Journaled at once, or held in memory while the state folder is full and written when space returns. */
  recordEvent(at: number, kind: string, job: string | null, message: string, data?: unknown): void {
    this.durable({
      sql: 'INSERT INTO events (at, kind, job, message, data) VALUES (?, ?, ?, ?, ?)',
      params: [at, kind, job, message, data === undefined ? null : JSON.stringify(data)],
    });
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
