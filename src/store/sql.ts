// The one connection and its statements: every repository of the store goes through here.
import type Database from 'better-sqlite3';

export class StoreError extends Error {}

/** What changed, for whoever shows it live (the dashboard's open pages): a kind of row and its job. */
export type ChangeKind = 'run' | 'alert' | 'heal' | 'job' | 'ping';
export interface Change {
  what: ChangeKind;
  /** null: not known without a read, or not one job's. */
  job: string | null;
}

export class Sql {
  private readonly statements = new Map<string, Database.Statement>();
  private listener: ((c: Change) => void) | null = null;

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

  /** One listener hears of every change a repository reports (the daemon's, for the dashboard). */
  onChange(fn: (c: Change) => void): () => void {
    this.listener = fn;
    return () => {
      if (this.listener === fn) this.listener = null;
    };
  }

  /**
   * Told by a repository after it wrote. `job` may be a read that finds it: made only when someone
   * listens. Neither that read nor the listener can make a write that happened look failed.
   */
  changed(what: ChangeKind, job: string | null | (() => string | null)): void {
    const l = this.listener;
    if (!l) return;
    try {
      l({ what, job: typeof job === 'function' ? job() : job });
    } catch {
      // nothing to undo: the open pages miss one refresh, the next change brings them up to date
    }
  }

  /** Runs fn in one transaction (nested: a savepoint of the caller's). */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }
}
