// events: the daemon's journal (starts, reloads, kill-switch flips, installs, missed instants...).
// An entry must not be lost: while the state folder is full it waits in Held.
import type { Held } from './held.js';
import type { EventRow } from './rows.js';
import type { Sql } from './sql.js';

export class Journal {
  constructor(
    private readonly sql: Sql,
    private readonly held: Held,
  ) {}

  record(at: number, kind: string, job: string | null, message: string, data?: unknown): void {
    this.held.durable({
      sql: 'INSERT INTO events (at, kind, job, message, data) VALUES (?, ?, ?, ?, ?)',
      params: [at, kind, job, message, data === undefined ? null : JSON.stringify(data)],
    });
  }

  /** What the journal last said about the kill switch (false when it never said anything). */
  killSwitchRecordedOn(): boolean {
    const last = this.recent(1, 'kill-switch')[0];
    return last ? (JSON.parse(last.data ?? '{}') as { on?: boolean }).on === true : false;
  }

  between(from: number, to: number, kind?: string): EventRow[] {
    if (kind)
      return this.sql.stmt('SELECT * FROM events WHERE at >= ? AND at < ? AND kind = ? ORDER BY id').all(from, to, kind) as EventRow[];
    return this.sql.stmt('SELECT * FROM events WHERE at >= ? AND at < ? ORDER BY id').all(from, to) as EventRow[];
  }

  recent(limit: number, kind?: string): EventRow[] {
    if (kind) return this.sql.stmt('SELECT * FROM events WHERE kind = ? ORDER BY id DESC LIMIT ?').all(kind, limit) as EventRow[];
    return this.sql.stmt('SELECT * FROM events ORDER BY id DESC LIMIT ?').all(limit) as EventRow[];
  }
}
