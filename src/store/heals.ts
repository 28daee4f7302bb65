// heal_attempts and heal_steps: every heal, each step journaled before it starts, so a kill -9
// mid-fix is found at the next start and rolled back.
import type { HealFiles, HealStep } from '../model.js';
import { HEAL_FIELDS, type HealAttemptRow, type HealField, type HealStepRow } from './rows.js';
import type { Sql } from './sql.js';

type Fields = Partial<Pick<HealAttemptRow, HealField>>;

export class Heals {
  constructor(private readonly sql: Sql) {}

  /** A new attempt, at its first step (the kill switch). */
  insert(a: { alertId: number; fingerprint: string; job: string; now: number }): number {
    return this.sql.tx(() => {
      const id = Number(
        this.sql
          .stmt("INSERT INTO heal_attempts (alert_id, fingerprint, job, step, created_at) VALUES (?, ?, ?, 'kill-switch', ?)")
          .run(a.alertId, a.fingerprint, a.job, a.now).lastInsertRowid,
      );
      this.sql.stmt('INSERT INTO heal_steps (attempt_id, step, started_at) VALUES (?, ?, ?)').run(id, 'kill-switch', a.now);
      this.sql.changed('heal', a.job);
      return id;
    });
  }

  get(id: number): HealAttemptRow | undefined {
    return this.sql.stmt('SELECT * FROM heal_attempts WHERE id = ?').get(id) as HealAttemptRow | undefined;
  }

  /** Journals a step before it starts: the previous step ends, the attempt says where it is. */
  step(id: number, step: HealStep, now: number, fields: Fields = {}): void {
    this.sql.tx(() => {
      this.sql
        .stmt("UPDATE heal_steps SET ended_at = ?, result = coalesce(result, 'ok') WHERE attempt_id = ? AND ended_at IS NULL")
        .run(now, id);
      this.sql.stmt('INSERT INTO heal_steps (attempt_id, step, started_at) VALUES (?, ?, ?)').run(id, step, now);
      this.update(id, { ...fields, step });
    });
  }

  /** Notes on the step under way (what it found), without ending it. */
  note(id: number, detail: string, fields: Fields = {}, result?: string): void {
    this.sql.tx(() => {
      this.sql
        .stmt(
          'UPDATE heal_steps SET detail = ?, result = coalesce(?, result) WHERE id = (SELECT max(id) FROM heal_steps WHERE attempt_id = ?)',
        )
        .run(detail, result ?? null, id);
      if (Object.keys(fields).length) this.update(id, fields);
      else this.tell(id);
    });
  }

  /** Ends the attempt with its outcome (and ends the step it stopped at). */
  finish(id: number, outcome: string, detail: string, now: number, fields: Fields = {}): void {
    this.sql.tx(() => {
      this.sql
        .stmt('UPDATE heal_steps SET ended_at = ?, result = ?, detail = coalesce(detail, ?) WHERE attempt_id = ? AND ended_at IS NULL')
        .run(now, outcome, detail, id);
      this.update(id, { ...fields, outcome, detail, ended_at: now });
    });
  }

  /**
   * Records what the attempt's fix changed, created or removed (lists already capped by the code
   * that made them; a reason is cut at 1000 characters). Kept whatever the attempt ends as.
   */
  recordFiles(id: number, files: HealFiles): void {
    const value = 'error' in files ? { error: files.error.slice(0, 1000) } : files;
    this.sql.stmt('UPDATE heal_attempts SET files = ? WHERE id = ?').run(JSON.stringify(value), id);
    this.tell(id);
  }

  /**
   * An attempt's files record, typed: null when none was recorded (no fix ran, it was stopped
   * before the listing, a database older than schema 5) or the text cannot be read.
   */
  files(row: Pick<HealAttemptRow, 'files'>): HealFiles | null {
    if (row.files == null) return null;
    try {
      return JSON.parse(row.files) as HealFiles;
    } catch {
      return null;
    }
  }

  private update(id: number, fields: Partial<HealAttemptRow>): void {
    const keys = Object.keys(fields).filter((k) => HEAL_FIELDS.has(k));
    if (keys.length === 0) return;
    const sql = `UPDATE heal_attempts SET ${keys.map((k) => `${k} = @${k}`).join(', ')} WHERE id = @id`;
    this.sql.stmt(sql).run({ ...Object.fromEntries(keys.map((k) => [k, (fields as Record<string, unknown>)[k] ?? null])), id });
    this.tell(id);
  }

  private tell(id: number): void {
    this.sql.changed(
      'heal',
      () => (this.sql.stmt('SELECT job FROM heal_attempts WHERE id = ?', 'pluck').get(id) as string | undefined) ?? null,
    );
  }

  forAlert(alertId: number): HealAttemptRow[] {
    return this.sql.stmt('SELECT * FROM heal_attempts WHERE alert_id = ? ORDER BY id').all(alertId) as HealAttemptRow[];
  }

  /** Attempts that executed a fix for this incident (the cap counts these). */
  executed(alertId: number): number {
    return (
      this.sql.stmt('SELECT count(*) AS n FROM heal_attempts WHERE alert_id = ? AND attempt IS NOT NULL').get(alertId) as { n: number }
    ).n;
  }

  inFlight(): HealAttemptRow[] {
    return this.sql.stmt('SELECT * FROM heal_attempts WHERE outcome IS NULL ORDER BY id').all() as HealAttemptRow[];
  }

  pendingApprovals(): HealAttemptRow[] {
    return this.sql.stmt("SELECT * FROM heal_attempts WHERE outcome = 'awaiting-approval' ORDER BY id").all() as HealAttemptRow[];
  }

  recent(limit: number, job?: string): HealAttemptRow[] {
    if (job) return this.sql.stmt('SELECT * FROM heal_attempts WHERE job = ? ORDER BY id DESC LIMIT ?').all(job, limit) as HealAttemptRow[];
    return this.sql.stmt('SELECT * FROM heal_attempts ORDER BY id DESC LIMIT ?').all(limit) as HealAttemptRow[];
  }

  endedBetween(from: number, to: number): HealAttemptRow[] {
    return this.sql.stmt('SELECT * FROM heal_attempts WHERE ended_at >= ? AND ended_at < ? ORDER BY id').all(from, to) as HealAttemptRow[];
  }

  steps(attemptId: number): HealStepRow[] {
    return this.sql.stmt('SELECT * FROM heal_steps WHERE attempt_id = ? ORDER BY id').all(attemptId) as HealStepRow[];
  }

  /** Brain runs since `since` (the daily budget). */
  brainRunsSince(since: number): number {
    // Counted from the snapshot step (journaled synchronously right after the budget check), so
    // two heals in parallel cannot both pass the check for the last run of the day.
    return (
      this.sql
        .stmt("SELECT count(*) AS n FROM heal_attempts WHERE action_kind = 'brain' AND attempt IS NOT NULL AND created_at >= ?")
        .get(since) as { n: number }
    ).n;
  }

  /** Per rule: the evidence a promotion review needs. */
  ruleEvidence(): Array<{ rule: string; cases: number; outcome: string; n: number }> {
    return this.sql
      .stmt(
        `SELECT rule, (SELECT count(DISTINCT alert_id) FROM heal_attempts b WHERE b.rule = a.rule) AS cases, coalesce(outcome, 'in-progress') AS outcome, count(*) AS n
         FROM heal_attempts a WHERE rule IS NOT NULL GROUP BY rule, coalesce(outcome, 'in-progress') ORDER BY rule`,
      )
      .all() as Array<{ rule: string; cases: number; outcome: string; n: number }>;
  }
}
