// rule_ladder: a rule's autonomy after a demotion, until a person edits the rule (another hash).
import type { LadderRow } from './rows.js';
import type { Sql } from './sql.js';

export class Ladder {
  constructor(private readonly sql: Sql) {}

  get(rule: string): LadderRow | undefined {
    return this.sql.stmt('SELECT * FROM rule_ladder WHERE rule = ?').get(rule) as LadderRow | undefined;
  }

  all(): LadderRow[] {
    return this.sql.stmt('SELECT * FROM rule_ladder ORDER BY rule').all() as LadderRow[];
  }

  set(rule: string, level: string, ruleHash: string, at: number, reason: string): void {
    this.sql
      .stmt(
        `INSERT INTO rule_ladder (rule, level, rule_hash, at, reason) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(rule) DO UPDATE SET level = excluded.level, rule_hash = excluded.rule_hash, at = excluded.at, reason = excluded.reason`,
      )
      .run(rule, level, ruleHash, at, reason);
  }

  clear(rule: string): void {
    this.sql.stmt('DELETE FROM rule_ladder WHERE rule = ?').run(rule);
  }
}
