// Signs of life, read across runs and heartbeats (and the journal): what the watchdog, status and
// the heal's independent probe ask — when was a job last fine, and when was anything last recorded.
import { HEAL_TRIGGERS, sqlList } from '../model.js';
import { DISTINCT_JOBS } from './runs.js';
import type { Sql } from './sql.js';

/** The jobs that ever pinged, one index seek each (heartbeats_job), as DISTINCT_JOBS does for runs. */
const PINGED_JOBS = `pinged(job) AS (
  SELECT min(job) FROM heartbeats UNION ALL SELECT (SELECT min(job) FROM heartbeats WHERE job > pinged.job) FROM pinged WHERE pinged.job IS NOT NULL)`;

export class Life {
  constructor(private readonly sql: Sql) {}

  /** The last verified success of a job: an ok run or a success ping, whichever is later. */
  lastSuccessAt(job: string): number | null {
    const r = this.sql
      .stmt(
        `SELECT max(at) AS at FROM (
           SELECT max(ended_at) AS at FROM runs WHERE job = @job AND outcome = 'ok'
           UNION ALL SELECT max(at) AS at FROM heartbeats WHERE job = @job AND kind = 'success')`,
      )
      .get({ job }) as { at: number | null };
    return r.at;
  }

  /**
   * lastSuccessAt of every job. Runs are read per job (DISTINCT_JOBS, then one seek in
   * runs_job_outcome each): a GROUP BY over every ok run took 0.1-0.5 s with a year of runs.
   * Pings likewise (the newest success row of each job: a streak's row moves its time forward,
   * rows are written in order): a GROUP BY over a million pings took 0.2 s, on every overview.
   */
  lastSuccesses(): Map<string, number> {
    const rows = this.sql
      .stmt(
        `${DISTINCT_JOBS}, ${PINGED_JOBS} SELECT job, max(at) AS at FROM (
           SELECT job, (SELECT max(ended_at) FROM runs WHERE runs.job = jobs.job AND outcome = 'ok') AS at FROM jobs WHERE job IS NOT NULL
           UNION ALL SELECT job, (SELECT at FROM heartbeats h WHERE h.job = pinged.job AND kind = 'success' ORDER BY id DESC LIMIT 1)
             FROM pinged WHERE job IS NOT NULL)
         WHERE at IS NOT NULL GROUP BY job`,
      )
      .all() as Array<{ job: string; at: number }>;
    return new Map(rows.map((r) => [r.job, r.at]));
  }

  /** The last sign that a job is fine: an ok run, a pre-check that found nothing to do, a halt, or a success ping. */
  lastLifeAt(job: string): number | null {
    const r = this.sql
      .stmt(
        `SELECT max(at) AS at FROM (
           SELECT max(ended_at) AS at FROM runs WHERE job = @job AND outcome IN ('ok', 'skipped-precheck', 'skipped-halted')
           UNION ALL SELECT max(at) AS at FROM heartbeats WHERE job = @job AND kind = 'success')`,
      )
      .get({ job }) as { at: number | null };
    return r.at;
  }

  /** A verified success of the job after `since` that was not the fix itself (the maker is not the checker). */
  successSince(job: string, since: number): number | null {
    const r = this.sql
      .stmt(
        `SELECT max(at) AS at FROM (
         SELECT max(ended_at) AS at FROM runs WHERE job = @job AND outcome = 'ok' AND trigger NOT IN ${sqlList(HEAL_TRIGGERS)} AND ended_at > @since
         UNION ALL SELECT max(at) AS at FROM heartbeats WHERE job = @job AND kind = 'success' AND at > @since)`,
      )
      .get({ job, since }) as { at: number | null };
    return r.at;
  }

  /** The last moment anything was recorded: when the previous daemon was last known to be up. */
  lastActivityAt(): number | null {
    const r = this.sql
      .stmt(
        `SELECT max(at) AS at FROM (SELECT max(at) AS at FROM events UNION ALL SELECT max(coalesce(ended_at, started_at, created_at)) FROM runs
         UNION ALL SELECT max(at) FROM heartbeats)`,
      )
      .get() as { at: number | null };
    return r.at;
  }
}
