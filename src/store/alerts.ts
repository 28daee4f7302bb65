// alerts: one open alert per job and kind (its fingerprint), counting its occurrences, folded
// under a failing dependency's, resolved with what ended it.
import type { AlertKind } from '../model.js';
import type { AlertRow } from './rows.js';
import type { Sql } from './sql.js';

export interface NewAlert {
  job: string;
  kind: AlertKind;
  at: number;
  message: string;
  runId?: number | null;
  exitCode?: number | null;
  outputTail?: string | null;
  foldedUnder?: string | null;
}

export class Alerts {
  constructor(private readonly sql: Sql) {}

  /**
   * Raises an alert or counts another occurrence on the open one with the same fingerprint.
   * Returns the row and whether it is new (a new alert is what may page; an occurrence is not).
   */
  raise(a: NewAlert): { alert: AlertRow; isNew: boolean } {
    const fingerprint = `${a.job}:${a.kind}`;
    const row = {
      fingerprint,
      job: a.job,
      kind: a.kind,
      at: a.at,
      message: a.message,
      runId: a.runId ?? null,
      exitCode: a.exitCode ?? null,
      outputTail: a.outputTail ?? null,
      foldedUnder: a.foldedUnder ?? null,
    };
    return this.sql.tx(() => {
      const open = this.openFor(fingerprint);
      if (open) {
        this.sql
          .stmt(
            `UPDATE alerts SET count = count + 1, last_seen_at = @at, message = @message, run_id = coalesce(@runId, run_id),
               exit_code = coalesce(@exitCode, exit_code), output_tail = coalesce(@outputTail, output_tail), folded_under = @foldedUnder
             WHERE id = @id`,
          )
          .run({ ...row, id: open.id });
        this.sql.changed('alert', a.job ?? null);
        return { alert: this.get(open.id)!, isNew: false };
      }
      const info = this.sql
        .stmt(
          `INSERT INTO alerts (fingerprint, job, kind, opened_at, last_seen_at, message, run_id, exit_code, output_tail, folded_under)
           VALUES (@fingerprint, @job, @kind, @at, @at, @message, @runId, @exitCode, @outputTail, @foldedUnder)`,
        )
        .run(row);
      this.sql.changed('alert', a.job ?? null);
      return { alert: this.get(Number(info.lastInsertRowid))!, isNew: true };
    });
  }

  /** The open alert with this fingerprint (job:kind), if any. */
  openFor(fingerprint: string): AlertRow | undefined {
    return this.sql.stmt('SELECT * FROM alerts WHERE fingerprint = ? AND resolved_at IS NULL').get(fingerprint) as AlertRow | undefined;
  }

  get(id: number): AlertRow | undefined {
    return this.sql.stmt('SELECT * FROM alerts WHERE id = ?').get(id) as AlertRow | undefined;
  }

  open(job?: string): AlertRow[] {
    if (job) return this.sql.stmt('SELECT * FROM alerts WHERE resolved_at IS NULL AND job = ? ORDER BY id').all(job) as AlertRow[];
    return this.sql.stmt('SELECT * FROM alerts WHERE resolved_at IS NULL ORDER BY id').all() as AlertRow[];
  }

  recent(limit: number): AlertRow[] {
    return this.sql.stmt('SELECT * FROM alerts ORDER BY id DESC LIMIT ?').all(limit) as AlertRow[];
  }

  /** Alerts opened or resolved in [from, to). */
  between(from: number, to: number): AlertRow[] {
    return this.sql
      .stmt('SELECT * FROM alerts WHERE (opened_at >= ? AND opened_at < ?) OR (resolved_at >= ? AND resolved_at < ?) ORDER BY id')
      .all(from, to, from, to) as AlertRow[];
  }

  /** Whether any alert (open or resolved) was raised or counted for this run. */
  forRun(job: string, runId: number): boolean {
    return this.sql.stmt('SELECT 1 FROM alerts WHERE job = ? AND run_id = ? LIMIT 1').get(job, runId) !== undefined;
  }

  /** Resolves open alerts of a job (all kinds, or the given ones); returns the resolved rows. */
  resolve(job: string, at: number, resolution: string, kinds?: AlertKind[]): AlertRow[] {
    const open = this.open(job).filter((a) => !kinds || kinds.includes(a.kind));
    const stmt = this.sql.stmt('UPDATE alerts SET resolved_at = ?, resolution = ? WHERE id = ?');
    this.sql.tx(() => {
      for (const a of open) stmt.run(at, resolution, a.id);
    });
    if (open.length) this.sql.changed('alert', job);
    return open.map((a) => this.get(a.id)!);
  }

  /** A resolved alert's resolution, credited to what actually ended it (a heal that was verified). */
  credit(id: number, resolution: string): void {
    this.sql.stmt('UPDATE alerts SET resolution = ? WHERE id = ? AND resolved_at IS NOT NULL').run(resolution, id);
    this.sql.changed('alert', () => this.get(id)?.job ?? null);
  }

  /** Open alerts folded under any alert of `dependency`: unfolded and returned. */
  unfoldUnder(dependency: string): AlertRow[] {
    const rows = this.sql
      .stmt("SELECT * FROM alerts WHERE resolved_at IS NULL AND folded_under LIKE ? ESCAPE '\\'")
      .all(`${dependency.replace(/[\\%_]/g, (c) => `\\${c}`)}:%`) as AlertRow[];
    for (const a of rows) this.sql.stmt('UPDATE alerts SET folded_under = NULL WHERE id = ?').run(a.id);
    if (rows.length) this.sql.changed('alert', null);
    return rows.map((a) => ({ ...a, folded_under: null }));
  }

  fold(id: number, under: string): void {
    this.sql.stmt('UPDATE alerts SET folded_under = ? WHERE id = ?').run(under, id);
    this.sql.changed('alert', null);
  }
}
