// The write-behind of a full state folder: what must not be lost (runs, their ends, pings, pages,
// events) waits here in memory, in order, while SQLite cannot write, and is written in one
// transaction when there is room again. Runs decided meanwhile get temporary negative ids; once
// written, the real id each got is remembered so callers holding the temporary one still reach it.
//
// The SQL of the rows is the repositories'; this module only keeps the order and the episode.
import { statfsSync } from 'node:fs';
import { elapsedMs, wallNow } from '../clock.js';
import { errorMessage } from '../errors.js';
import { Emitter } from '../events.js';
import type { RunRow } from './rows.js';
import { StoreError, type Sql } from './sql.js';

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

/** One statement to run later; `runId`/`patch` mark an update of a run, so reads of that run see it. */
export interface HeldWrite {
  sql: string;
  params: unknown[] | Record<string, unknown>;
  runId?: number;
  patch?: Partial<RunRow>;
}

export interface HeldDeps {
  /** Writes a held run's row (and moves the cursor it claims); null when its instant was taken meanwhile. */
  writeRun: (row: Omit<RunRow, 'id'>, cursorTo: number | null) => number | null;
  /** A run as it is now (for the listeners, once an episode ends). */
  readRun: (id: number) => RunRow | undefined;
  /** Hears of a disk-full listener that threw (the daemon logs it). */
  reportListenerError?: (err: unknown, event: string) => void;
}

export class Held {
  /** The episode under way (null: none). */
  private full: { since: number; error: string } | null = null;
  /** Runs decided while no row could be written, by a temporary negative id, in the order they were decided. */
  private readonly runs = new Map<number, { row: RunRow; cursorTo: number | null }>();
  /** Temporary ids that have since been written, and the real id each got. */
  private readonly writtenIds = new Map<number, number>();
  private nextId = -1;
  /** Other writes (updates of written runs, events, heartbeats, pages), in order. */
  private writes: HeldWrite[] = [];
  /** Runs that finished while held: handed back to the listeners once they are on disk. */
  private readonly finishedWhileFull = new Set<number>();
  private count = 0;
  private lastFlushTry = -Infinity;
  private retryTimer: NodeJS.Timeout | null = null;
  /** The start and the end of disk-full episodes of the state folder. */
  readonly events: Emitter<{ 'disk-full': DiskFullEvent }>;
  private closed = false;
  /** Retry interval while full (tests lengthen it to say themselves when to try again). */
  retryMs = DISK_FULL_RETRY_MS;

  constructor(
    private readonly sql: Sql,
    private readonly stateDir: string,
    private readonly deps: HeldDeps,
  ) {
    this.events = new Emitter(deps.reportListenerError);
  }

  /** The episode under way, with how much waits in memory to be written. */
  diskFull(): { since: number; error: string; held: number } | null {
    return this.full ? { ...this.full, held: this.runs.size + this.writes.length } : null;
  }

  /** Whether the run's row is only in memory so far (the state folder is full). */
  isHeld(id: number): boolean {
    const real = this.realId(id);
    return real < 0 ? this.runs.has(real) : this.writes.some((w) => w.runId === real);
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

  /** Tries to write what waits and, if there is room again, ends the episode. Returns true when it ended. */
  retryNow(): boolean {
    if (this.closed || !this.full) return false;
    if (!this.flush()) {
      this.armRetry();
      return false;
    }
    const space = freeBytes(this.stateDir);
    if (space && space.free < resumeFreeBytes(space.size)) {
      this.armRetry();
      return false;
    }
    const since = this.full.since;
    const runs = [...this.finishedWhileFull].map((id) => this.deps.readRun(id)).filter((r): r is RunRow => r !== undefined);
    this.finishedWhileFull.clear();
    const writes = this.count;
    this.count = 0;
    this.full = null;
    this.emit({ kind: 'resolved', since, at: wallNow(), dir: this.stateDir, free: space?.free ?? null, runs, writes });
    return true;
  }

  /** Writes what is held (a last try) and stops retrying; the daemon has reported what was held before. */
  close(): void {
    if (this.closed) return;
    try {
      if (this.hasHeld()) this.flush();
    } catch {
      // closing must still happen
    }
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.closed = true;
  }

  hasHeld(): boolean {
    return this.runs.size > 0 || this.writes.length > 0;
  }

  /** The id a run has now: a temporary one is replaced by its real id once written. */
  realId(id: number): number {
    return id < 0 ? (this.writtenIds.get(id) ?? id) : id;
  }

  /**
   * On the write path, at most one try a second: each try writes everything held, and a busy
   * daemon on a full disk must not pay for that on every write.
   */
  flushSoon(): boolean {
    const now = elapsedMs();
    if (now - this.lastFlushTry < 1000) return false;
    this.lastFlushTry = now;
    return this.flush();
  }

  /**
   * A write that must not be lost to a full disk: done at once if it can be, else held in memory
   * (after whatever is held already, so the order is kept) and written when space returns.
   * Returns true when it was held.
   */
  durable(w: HeldWrite): boolean {
    if (this.hasHeld() && !this.flushSoon()) {
      this.hold(w);
      return true;
    }
    try {
      this.sql.stmt(w.sql).run(w.params);
      return false;
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      this.noteDiskFull(err, 'the database');
      this.hold(w);
      return true;
    }
  }

  /** A run whose row cannot be written now: kept under a new temporary id. */
  holdRun(row: Omit<RunRow, 'id'>, cursorTo: number | null): number {
    const id = this.nextId--;
    this.runs.set(id, { row: { ...row, id }, cursorTo });
    if (row.ended_at !== null) this.finishedWhileFull.add(id);
    this.count++;
    this.armRetry();
    return id;
  }

  /** The held runs, in the order they were decided. */
  *heldRuns(): Iterable<RunRow> {
    for (const h of this.runs.values()) yield h.row;
  }

  /** A held run as it is now (a copy); undefined for a run that is written (see pendingPatches). */
  heldRun(id: number): RunRow | undefined {
    const h = this.runs.get(this.realId(id));
    return h ? { ...h.row } : undefined;
  }

  pendingPatches(id: number): Array<Partial<RunRow>> {
    return this.writes.filter((w) => w.runId === id && w.patch).map((w) => w.patch!);
  }

  /** Changes a run only in memory (its row is not written yet). */
  patchHeldRun(id: number, patch: Partial<RunRow>): void {
    const h = this.runs.get(id);
    if (!h) throw new StoreError(`run ${id} is neither in the database nor held in memory`);
    Object.assign(h.row, patch);
    if (patch.ended_at != null) this.finishedWhileFull.add(id);
  }

  /** A written run finished while its update waits in memory: the listeners hear of it when it is written. */
  finishedLater(id: number): void {
    this.finishedWhileFull.add(id);
  }

  /** Writes everything held, in order, in one transaction: all of it or none. */
  private flush(): boolean {
    if (!this.hasHeld()) return true;
    // Not inside a caller's transaction: held records are let go of once written, and an outer
    // rollback would take them with it. They are written after it, in order.
    if (this.sql.db.inTransaction) return false;
    const ids = new Map<number, number>();
    try {
      this.sql.tx(() => {
        for (const [tmp, { row, cursorTo }] of this.runs) {
          const parent =
            row.parent_id !== null && row.parent_id < 0
              ? (ids.get(row.parent_id) ?? this.writtenIds.get(row.parent_id) ?? null)
              : row.parent_id;
          const { id: _id, ...rest } = row;
          const r = { ...rest, parent_id: parent };
          // The instant got a row meanwhile; this run happened all the same: kept, without the instant.
          const id = this.deps.writeRun(r, cursorTo) ?? this.deps.writeRun({ ...r, scheduled_for: null }, null);
          ids.set(tmp, id!);
        }
        for (const w of this.writes) this.sql.stmt(w.sql).run(w.params);
      });
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      return false;
    }
    for (const [tmp, id] of ids) this.writtenIds.set(tmp, id);
    // Renamed in place: the listeners hear of the runs in the order they finished.
    const finished = [...this.finishedWhileFull].map((id) => ids.get(id) ?? id);
    this.finishedWhileFull.clear();
    for (const id of finished) this.finishedWhileFull.add(id);
    this.runs.clear();
    this.writes = [];
    return true;
  }

  private hold(w: HeldWrite): void {
    this.writes.push(w);
    this.count++;
    this.armRetry();
  }

  private armRetry(): void {
    if (this.retryTimer || this.closed) return;
    // Only while an episode lasts, and unref'd: an idle daemon with room does no work.
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.retryNow();
    }, this.retryMs);
    this.retryTimer.unref();
  }

  private emit(ev: DiskFullEvent): void {
    // A listener that throws is reported and contained by the emitter: a full disk must not become a lost write.
    this.events.emit('disk-full', ev);
  }
}
