// The store: SQLite is the single source of truth. Every write that matters (a run about to start,
// a run finished, a schedule cursor) is one transaction, so a kill -9 at any moment leaves either
// the state before or the state after — never half of both.
//
// This file opens the database and hands out one repository per table (runs, jobStates, alerts,
// ...; `life` reads across runs and heartbeats); the SQL lives in those files and nowhere outside
// store/. Other folders import this file (and the daemon the lock and retention), never a
// repository itself: dependency-cruiser checks it. May import the shared modules (model, clock,
// errors, events, log); never a feature folder.
import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { Alerts } from './alerts.js';
import { Digests } from './digests.js';
import { formatBytes, freeBytes, Held, isDiskFull, resumeFreeBytes } from './held.js';
import { Heals } from './heals.js';
import { Heartbeats } from './heartbeats.js';
import { JobStates } from './jobs.js';
import { Journal } from './journal.js';
import { Ladder } from './ladder.js';
import { Life } from './life.js';
import { migrate, SCHEMA_VERSION } from './migrations.js';
import { Pages } from './pages.js';
import { PingKeys } from './ping-keys.js';
import { BootRuns } from './boots.js';
import { Runs, writeRun } from './runs.js';
import { Specs } from './specs.js';
import { Sql, StoreError } from './sql.js';
import { WebAuth } from './web.js';

export { formatBytes, freeBytes, isDiskFull, type DiskFullEvent } from './held.js';
export type {
  AlertRow,
  DigestRow,
  EventRow,
  HealAttemptRow,
  HealStepRow,
  HeartbeatRow,
  JobStateRow,
  LadderRow,
  NewRun,
  PageRow,
  RunRow,
} from './rows.js';
export type { WebLinkRow, WebSessionRow } from './web.js';
export type { PingKeyRow } from './ping-keys.js';
export { SCHEMA_VERSION } from './migrations.js';
export type { RunBrief, RunDot } from './runs.js';
export type { DigestBrief } from './digests.js';
export { StoreError } from './sql.js';
export type { Change, ChangeKind } from './sql.js';

export class Store {
  readonly sql: Sql;
  /** The disk-full write-behind: its episode, what waits, and its listeners. */
  readonly held: Held;
  readonly runs: Runs;
  readonly jobStates: JobStates;
  readonly alerts: Alerts;
  readonly heartbeats: Heartbeats;
  readonly life: Life;
  readonly digests: Digests;
  readonly pages: Pages;
  readonly specs: Specs;
  readonly heals: Heals;
  readonly ladder: Ladder;
  readonly journal: Journal;
  readonly web: WebAuth;
  readonly pingKeys: PingKeys;
  readonly bootRuns: BootRuns;
  private closed = false;

  private constructor(
    readonly db: Database.Database,
    stateDir = '.',
    log?: Logger,
  ) {
    const sql = (this.sql = new Sql(db));
    const jobs = (this.jobStates = new JobStates(sql));
    this.held = new Held(sql, stateDir, {
      writeRun: (row, cursorTo) => writeRun(sql, jobs, row, cursorTo),
      readRun: (id) => this.runs.get(id),
      reportListenerError: (err, event) => log?.error({ event, err: errorMessage(err) }, 'a listener of the disk-full episode failed'),
    });
    this.runs = new Runs(sql, this.held, jobs);
    this.alerts = new Alerts(sql);
    this.heartbeats = new Heartbeats(sql, this.held);
    this.life = new Life(sql);
    this.digests = new Digests(sql);
    this.pages = new Pages(sql, this.held);
    this.specs = new Specs(sql);
    this.heals = new Heals(sql);
    this.ladder = new Ladder(sql);
    this.journal = new Journal(sql, this.held);
    this.web = new WebAuth(sql);
    this.pingKeys = new PingKeys(sql);
    this.bootRuns = new BootRuns(sql);
  }

  /** Opens (creating if needed) the daemon's database and brings its schema up to date. */
  static open(path: string, o: { log?: Logger } = {}): Store {
    mkdirSync(dirname(path), { recursive: true });
    let db: Database.Database | null = null;
    try {
      db = new Database(path, { timeout: 5000 });
      db.pragma('journal_mode = WAL');
      // FULL: a committed run row survives a power cut too, not only a kill of the process.
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      migrate(db);
      return new Store(db, dirname(path), o.log);
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

  /** The schema this database was written with (its migrations applied): older ones lack tables. */
  schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  /** Runs fn in one transaction: one commit (one fsync) for many writes, e.g. 10,000 jobs at start. */
  batch<T>(fn: () => T): T {
    return this.sql.tx(fn);
  }

  close(): void {
    if (this.closed) return;
    this.held.close();
    this.closed = true;
    this.db.close();
  }
}
