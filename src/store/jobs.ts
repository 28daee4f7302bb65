// job_state: each job's schedule cursor (the instant its schedule has been dispatched up to) and
// whether it is paused. The scheduler decides where the cursor goes; this only records it.
import type { JobStateRow } from './rows.js';
import type { Sql } from './sql.js';

export class JobStates {
  constructor(private readonly sql: Sql) {}

  get(job: string): JobStateRow | undefined {
    return this.sql.stmt('SELECT * FROM job_state WHERE job = ?').get(job) as JobStateRow | undefined;
  }

  all(): Map<string, JobStateRow> {
    const rows = this.sql.stmt('SELECT * FROM job_state').all() as JobStateRow[];
    return new Map(rows.map((r) => [r.job, r]));
  }

  /** First sight of a job: its schedule starts counting now (no catch-up for the time before it existed). */
  ensure(job: string, now: number): JobStateRow {
    this.sql.stmt('INSERT INTO job_state (job, cursor, first_seen) VALUES (?, ?, ?) ON CONFLICT DO NOTHING').run(job, now, now);
    return this.get(job)!;
  }

  /** Moves the cursor forward only (never back), creating the job's row if needed. */
  advance(job: string, to: number, now: number): void {
    this.sql
      .stmt(
        `INSERT INTO job_state (job, cursor, first_seen) VALUES (@job, @to, @now)
         ON CONFLICT(job) DO UPDATE SET cursor = max(cursor, @to)`,
      )
      .run({ job, to, now });
  }

  setCursor(job: string, to: number): void {
    this.sql.stmt('UPDATE job_state SET cursor = max(cursor, ?) WHERE job = ?').run(to, job);
  }

  setPaused(job: string, paused: boolean, now: number): void {
    this.ensure(job, now);
    if (paused) {
      this.sql.stmt('UPDATE job_state SET paused = 1, paused_at = ? WHERE job = ?').run(now, job);
    } else {
      // Resuming starts the clock afresh: the time spent paused is not "missed".
      this.sql.stmt('UPDATE job_state SET paused = 0, paused_at = NULL, cursor = max(cursor, ?) WHERE job = ?').run(now, job);
    }
    this.sql.changed('job', job);
  }
}
