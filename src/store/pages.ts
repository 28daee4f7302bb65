// pages: each page sent (or tried), so the pager's rate limits survive a restart.
import type { Held } from './held.js';
import type { PageRow } from './rows.js';
import type { Sql } from './sql.js';

export class Pages {
  constructor(
    private readonly sql: Sql,
    private readonly held: Held,
  ) {}

  /** A page about to go out; finished with its outcome once it has. */
  record(fingerprint: string, event: string, at: number): number {
    return Number(this.sql.stmt('INSERT INTO pages (fingerprint, event, at) VALUES (?, ?, ?)').run(fingerprint, event, at).lastInsertRowid);
  }

  finish(id: number, outcome: string, detail: string | null): void {
    this.held.durable({ sql: 'UPDATE pages SET outcome = ?, detail = ? WHERE id = ?', params: [outcome, detail, id] });
  }

  /** A page that went out while its row could not be written: recorded whole, now or when space returns. */
  recordFinished(fingerprint: string, event: string, at: number, outcome: string, detail: string | null): void {
    this.held.durable({
      sql: 'INSERT INTO pages (fingerprint, event, at, outcome, detail) VALUES (?, ?, ?, ?, ?)',
      params: [fingerprint, event, at, outcome, detail],
    });
  }

  last(fingerprint: string): PageRow | undefined {
    return this.sql.stmt('SELECT * FROM pages WHERE fingerprint = ? ORDER BY id DESC LIMIT 1').get(fingerprint) as PageRow | undefined;
  }

  between(from: number, to: number): PageRow[] {
    return this.sql.stmt('SELECT * FROM pages WHERE at >= ? AND at < ? ORDER BY id').all(from, to) as PageRow[];
  }
}
