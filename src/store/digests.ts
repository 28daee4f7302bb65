// digests: one row per day's digest, with its delivery (sent, or failed and when to try again).
import type { DigestRow } from './rows.js';
import type { Sql } from './sql.js';

/** A stored digest as the archive lists it (no bodies). */
export type DigestBrief = Pick<DigestRow, 'date' | 'created_at' | 'verdict' | 'sent_at' | 'attempts' | 'last_error'>;

export class Digests {
  constructor(private readonly sql: Sql) {}

  get(date: string): DigestRow | undefined {
    return this.sql.stmt('SELECT * FROM digests WHERE date = ?').get(date) as DigestRow | undefined;
  }

  save(d: { date: string; createdAt: number; verdict: string; text: string; html: string }): void {
    this.sql
      .stmt(
        `INSERT INTO digests (date, created_at, verdict, body_text, body_html) VALUES (@date, @createdAt, @verdict, @text, @html)
         ON CONFLICT(date) DO UPDATE SET created_at = @createdAt, verdict = @verdict, body_text = @text, body_html = @html`,
      )
      .run(d);
  }

  /** The newest `limit` digests, newest first, without their bodies. */
  list(limit: number): DigestBrief[] {
    return this.sql
      .stmt('SELECT date, created_at, verdict, sent_at, attempts, last_error FROM digests ORDER BY date DESC LIMIT ?')
      .all(limit) as DigestBrief[];
  }

  newestDate(): string | null {
    const r = this.sql.stmt('SELECT max(date) AS date FROM digests').get() as { date: string | null };
    return r.date;
  }

  markSent(date: string, at: number): void {
    this.sql
      .stmt('UPDATE digests SET sent_at = ?, attempts = attempts + 1, next_attempt_at = NULL, last_error = NULL WHERE date = ?')
      .run(at, date);
  }

  markFailed(date: string, error: string, nextAttemptAt: number | null): void {
    this.sql
      .stmt('UPDATE digests SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE date = ?')
      .run(error, nextAttemptAt, date);
  }

  unsent(): DigestRow[] {
    return this.sql.stmt('SELECT * FROM digests WHERE sent_at IS NULL ORDER BY date').all() as DigestRow[];
  }
}
