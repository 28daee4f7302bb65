// web_links and web_sessions: the dashboard's one-time login links and the sessions they open.
// Tokens arrive here already hashed (web/auth.ts); nothing here can tell a token from its hash.
import type { Sql } from './sql.js';

export interface WebLinkRow {
  hash: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

export interface WebSessionRow {
  id: number;
  hash: string;
  csrf: string;
  label: string;
  created_at: number;
  last_used_at: number;
  expires_at: number;
  revoked_at: number | null;
}

export class WebAuth {
  constructor(private readonly sql: Sql) {}

  /** A new link; links and sessions over for a month go with it (a few rows: no retention pass needed). */
  addLink(hash: string, now: number, expiresAt: number): void {
    const old = now - 30 * 24 * 3600_000;
    this.sql.tx(() => {
      this.sql.stmt('DELETE FROM web_links WHERE expires_at < ?').run(old);
      this.sql.stmt('DELETE FROM web_sessions WHERE expires_at < ? OR revoked_at < ?').run(old, old);
      this.sql.stmt('INSERT INTO web_links (hash, created_at, expires_at) VALUES (?, ?, ?)').run(hash, now, expiresAt);
    });
  }

  link(hash: string): WebLinkRow | undefined {
    return this.sql.stmt('SELECT * FROM web_links WHERE hash = ?').get(hash) as WebLinkRow | undefined;
  }

  /**
   * Spends the link and opens its session in one transaction: of two submissions racing with the
   * same link, exactly one gets a session. Null when the link is unknown, used or expired.
   */
  redeem(linkHash: string, s: { hash: string; csrf: string; label: string; now: number; expiresAt: number }): WebSessionRow | null {
    return this.sql.db.transaction(() => {
      const spent = this.sql
        .stmt('UPDATE web_links SET used_at = ? WHERE hash = ? AND used_at IS NULL AND expires_at > ?')
        .run(s.now, linkHash, s.now);
      if (spent.changes !== 1) return null;
      const r = this.sql
        .stmt('INSERT INTO web_sessions (hash, csrf, label, created_at, last_used_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(s.hash, s.csrf, s.label, s.now, s.now, s.expiresAt);
      return this.sql.stmt('SELECT * FROM web_sessions WHERE id = ?').get(r.lastInsertRowid) as WebSessionRow;
    })();
  }

  /** The live session with this token hash: not revoked, not expired. */
  session(hash: string, now: number): WebSessionRow | undefined {
    return this.sql.stmt('SELECT * FROM web_sessions WHERE hash = ? AND revoked_at IS NULL AND expires_at > ?').get(hash, now) as
      WebSessionRow | undefined;
  }

  touch(id: number, now: number, expiresAt: number): void {
    this.sql.stmt('UPDATE web_sessions SET last_used_at = ?, expires_at = ? WHERE id = ?').run(now, expiresAt, id);
  }

  /** Ends every session and spends every link not yet used; returns how many sessions were live. */
  revokeAll(now: number): { sessions: number; links: number } {
    return this.sql.db.transaction(() => {
      const sessions = this.sql
        .stmt('UPDATE web_sessions SET revoked_at = ? WHERE revoked_at IS NULL AND expires_at > ?')
        .run(now, now).changes;
      const links = this.sql.stmt('UPDATE web_links SET used_at = ? WHERE used_at IS NULL AND expires_at > ?').run(now, now).changes;
      return { sessions, links };
    })();
  }

  /** Every live session (not revoked, not expired), the most recently used first. */
  live(now: number): WebSessionRow[] {
    return this.sql
      .stmt('SELECT * FROM web_sessions WHERE revoked_at IS NULL AND expires_at > ? ORDER BY last_used_at DESC, id DESC')
      .all(now) as WebSessionRow[];
  }

  /** A session by its id, live or ended. */
  byId(id: number): WebSessionRow | undefined {
    return this.sql.stmt('SELECT * FROM web_sessions WHERE id = ?').get(id) as WebSessionRow | undefined;
  }

  /** Ends one session at once; false when it had ended already (revoked or expired) or never was. */
  revoke(id: number, now: number): boolean {
    return (
      this.sql.stmt('UPDATE web_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL AND expires_at > ?').run(now, id, now)
        .changes === 1
    );
  }
}
