// The one connection and its statements: every repository of the store goes through here.
import type Database from 'better-sqlite3';

export class StoreError extends Error {}

export class Sql {
  private readonly statements = new Map<string, Database.Statement>();

  constructor(readonly db: Database.Database) {}

  /**
   * Each SQL text is prepared once: better-sqlite3 keeps a statement's native memory until its
   * JS wrapper is collected, so preparing per call makes RSS balloon at 10,000 jobs.
   */
  stmt(sql: string, mode: 'rows' | 'pluck' | 'raw' = 'rows'): Database.Statement {
    // The mode sticks to a statement: one cached per mode, so a plucked one never answers a caller wanting rows.
    const key = `${mode}\0${sql}`;
    let s = this.statements.get(key);
    if (!s) {
      s = this.db.prepare(sql);
      if (mode === 'pluck') s.pluck();
      else if (mode === 'raw') s.raw();
      this.statements.set(key, s);
    }
    return s;
  }

  /** Runs fn in one transaction (nested: a savepoint of the caller's). */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }
}
