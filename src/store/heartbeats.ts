// heartbeats: pings and heartbeat-file touches, proof of life from outside a run. A ping must not
// be lost: while the state folder is full it waits in Held.
import type { Held } from './held.js';
import type { HeartbeatRow } from './rows.js';
import type { Sql } from './sql.js';

/**
 * Of each job, this many of its latest pings with an output keep it: a sender in a loop cannot fill
 * the state folder with bodies. The trigger heartbeats_output_cap (migration v6) enforces it.
 */
export const PING_OUTPUTS_KEPT = 100;

export class Heartbeats {
  constructor(
    private readonly sql: Sql,
    private readonly held: Held,
  ) {}

  /**
   * Touches of a heartbeat file (a worker may touch it every 200 ms) move the time of the job's
   * last row when that row is one too: one row per unbroken streak, not 400,000 a day.
   */
  record(
    job: string,
    kind: HeartbeatRow['kind'],
    at: number,
    source: string,
    durationMs: number | null = null,
    output: string | null = null,
  ): void {
    if (kind === 'success' && source === 'file') {
      const last = 'SELECT max(id) FROM heartbeats WHERE job = @job';
      this.held.durable({
        sql: `UPDATE heartbeats SET at = max(at, @at) WHERE id = (${last}) AND kind = 'success' AND source = 'file'`,
        params: { job, at },
      });
      this.held.durable({
        sql: `INSERT INTO heartbeats (job, kind, at, source, duration_ms) SELECT @job, 'success', @at, 'file', NULL
              WHERE NOT EXISTS (SELECT 1 FROM heartbeats WHERE id = (${last}) AND kind = 'success' AND source = 'file')`,
        params: { job, at },
      });
      this.sql.changed('ping', job);
      return;
    }
    // While the disk is full a ping waits in memory: its life counts, its output (up to 10 KB, from
    // anyone holding a key) does not, or memory would grow by the megabyte a minute.
    const kept = this.held.hasHeld() ? null : output;
    this.held.durable({
      sql: 'INSERT INTO heartbeats (job, kind, at, source, duration_ms, output) VALUES (?, ?, ?, ?, ?, ?)',
      params: [job, kind, at, source, durationMs, kept],
    });
    this.sql.changed('ping', job);
  }

  last(job: string, kind?: HeartbeatRow['kind']): HeartbeatRow | undefined {
    if (kind)
      return this.sql.stmt('SELECT * FROM heartbeats WHERE job = ? AND kind = ? ORDER BY id DESC LIMIT 1').get(job, kind) as
        HeartbeatRow | undefined;
    return this.sql.stmt('SELECT * FROM heartbeats WHERE job = ? ORDER BY id DESC LIMIT 1').get(job) as HeartbeatRow | undefined;
  }

  /**
   * Pings and heartbeat-file streaks, newest first: of one job, or of every job but `except` (the
   * jobs nightshift runs itself, whose heartbeat-file touches are not what `history` lists).
   */
  recent(limit: number, o: { job?: string; except?: string[] } = {}): HeartbeatRow[] {
    if (o.job !== undefined)
      return this.sql.stmt('SELECT * FROM heartbeats WHERE job = ? ORDER BY id DESC LIMIT ?').all(o.job, limit) as HeartbeatRow[];
    return this.sql
      .stmt('SELECT * FROM heartbeats WHERE job NOT IN (SELECT value FROM json_each(?)) ORDER BY id DESC LIMIT ?')
      .all(JSON.stringify(o.except ?? []), limit) as HeartbeatRow[];
  }
}
