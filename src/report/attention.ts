// Which jobs need a person: one rule, read by `status`'s verdict and exit code and by the digest's
// headline, "Needs you" section and table, so two surfaces never disagree on the same state.
//
// A configured job needs a person when
//  - it has an open alert of its own (paused or turned off, the alert is still open), unless the
//    alert is held up by a dependency that has an open alert itself (that one is healed first, and
//    is the one that needs you); or
//  - nightshift runs it, it is enabled and not paused, no run of it is under way, and its last
//    finished run failed with no alert open for it: a retry is pending, the run was interrupted by
//    a stop of nightshift, or a heal's probe closed the alert ("the problem is gone") — the run
//    itself did fail, and until one succeeds that is what is shown. A run under way (a retry, the
//    restart of a long-running job by its heal) will tell, so it is not counted meanwhile.
// Alerts of jobs no longer configured are not counted: nothing can run or close them any more.
import { FAILED_OUTCOMES, type RunOutcome } from '../model.js';
import type { AlertRow } from '../store/store.js';

export interface JobFacts {
  name: string;
  /** Run by nightshift, enabled in its file and not paused: a failed last run of a job a person stopped is no news. */
  watched: boolean;
  /** A run of it is under way now (started after its last finished one). */
  running: boolean;
  /** The outcome of its last finished run (none yet: null). */
  lastOutcome: string | null;
}

export interface Attention {
  /** Open alerts that wait for a person. */
  alerts: AlertRow[];
  /** Open alerts held up by a dependency with an open alert of its own. */
  heldUp: AlertRow[];
  /** Jobs whose last run failed with no alert open for them. */
  failedRuns: string[];
  /** Every job that needs a person (from either of the above), in the order given. */
  jobs: string[];
}

/** The job an alert is folded under ("db-backup:failed" → "db-backup"). */
export function dependencyOf(a: AlertRow): string {
  return a.folded_under!.split(':')[0]!;
}

export function attention(jobs: JobFacts[], openAlerts: AlertRow[]): Attention {
  const configured = new Set(jobs.map((j) => j.name));
  const open = openAlerts.filter((a) => configured.has(a.job));
  const withOwn = new Set(open.filter((a) => a.folded_under === null).map((a) => a.job));
  const alerts = open.filter((a) => a.folded_under === null || !withOwn.has(dependencyOf(a)));
  const needed = new Set(alerts);
  const heldUp = open.filter((a) => !needed.has(a));
  const alerted = new Set(open.map((a) => a.job));
  const failedRuns = jobs
    .filter(
      (j) => j.watched && !j.running && !alerted.has(j.name) && j.lastOutcome !== null && FAILED_OUTCOMES.has(j.lastOutcome as RunOutcome),
    )
    .map((j) => j.name);
  const needing = new Set([...alerts.map((a) => a.job), ...failedRuns]);
  return { alerts, heldUp, failedRuns, jobs: jobs.map((j) => j.name).filter((n) => needing.has(n)) };
}
