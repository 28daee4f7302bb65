// spec_cache: the last good text of each spec file, which the daemon keeps running when a file is
// later broken (an invalid spec never replaces the last good one), across restarts too.
import type { Sql } from './sql.js';

export interface CachedSpec {
  file: string;
  name: string;
  text: string;
  hash: string;
  saved_at: number;
}

export class Specs {
  constructor(private readonly sql: Sql) {}

  save(specs: Array<{ file: string; name: string; text: string; hash: string }>, at: number): void {
    const stmt = this.sql.stmt(
      `INSERT INTO spec_cache (file, name, text, hash, saved_at) VALUES (@file, @name, @text, @hash, @at)
       ON CONFLICT(file) DO UPDATE SET name = @name, text = @text, hash = @hash, saved_at = @at WHERE hash <> @hash`,
    );
    this.sql.tx(() => {
      for (const s of specs) stmt.run({ ...s, at });
    });
  }

  get(file: string): CachedSpec | undefined {
    return this.sql.stmt('SELECT * FROM spec_cache WHERE file = ?').get(file) as CachedSpec | undefined;
  }

  forget(file: string): void {
    this.sql.stmt('DELETE FROM spec_cache WHERE file = ?').run(file);
  }
}
