// ping_keys: the secret of each external job that may ping over HTTP (/ping/KEY on the dashboard's
// port). Keys arrive here made and hashed (web/ping-http.ts); the key is kept so that
// `nightshift ping-url` prints the same address again (migrations.ts v6 says why that is
// acceptable), and it is found by its hash.
import type { Sql } from './sql.js';

export interface PingKeyRow {
  job: string;
  key: string;
  key_hash: string;
  created_at: number;
}

export class PingKeys {
  constructor(private readonly sql: Sql) {}

  of(job: string): PingKeyRow | undefined {
    return this.sql.stmt('SELECT * FROM ping_keys WHERE job = ?').get(job) as PingKeyRow | undefined;
  }

  /** Sets the job's key, replacing the one it had: the old one stops working with this commit. */
  set(job: string, key: string, keyHash: string, now: number): void {
    this.sql
      .stmt(
        'INSERT INTO ping_keys (job, key, key_hash, created_at) VALUES (?, ?, ?, ?) ON CONFLICT(job) DO UPDATE SET key = excluded.key, key_hash = excluded.key_hash, created_at = excluded.created_at',
      )
      .run(job, key, keyHash, now);
  }

  /** The job whose key has this hash. */
  jobOf(keyHash: string): string | undefined {
    return this.sql.stmt('SELECT job FROM ping_keys WHERE key_hash = ?', 'pluck').get(keyHash) as string | undefined;
  }

  /**
   * Keeps the keys of these jobs only (the external jobs there are now): a job removed or made one
   * nightshift runs while the daemon was down must not find its old key working when it returns.
   */
  keepOnly(jobs: string[]): number {
    return this.sql.stmt('DELETE FROM ping_keys WHERE job NOT IN (SELECT value FROM json_each(?))').run(JSON.stringify(jobs)).changes;
  }

  /** A removed job's key goes with it: a new job of the same name later gets a new one. */
  remove(job: string): boolean {
    return this.sql.stmt('DELETE FROM ping_keys WHERE job = ?').run(job).changes > 0;
  }
}
