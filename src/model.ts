// The words of nightshift's domain, defined once: what a run can end as and what started it, the
// kinds of alert, the steps of a heal, and the rules about them that several parts must agree on
// (which outcomes are failures, which runs belong to the heal loop). Imports nothing of ours.

export const RUN_OUTCOMES = [
  'ok',
  'failed',
  'timeout',
  'killed',
  'wrong',
  'skipped-precheck',
  'skipped-overlap',
  'skipped-paused',
  'skipped-halted',
  'interrupted',
] as const;
export type RunOutcome = (typeof RUN_OUTCOMES)[number];
export const RUN_TRIGGERS = ['schedule', 'catch-up', 'manual', 'retry', 'heal', 'probe'] as const;
export type RunTrigger = (typeof RUN_TRIGGERS)[number];

/** Outcomes of a run that did not do its work: counted as failures by status and the digest. */
export const FAILED_OUTCOMES: ReadonlySet<RunOutcome> = new Set(['failed', 'timeout', 'wrong', 'interrupted']);

/**
 * Failures that open an alert once the retries are spent. `interrupted` is left out: nightshift
 * itself stopped, not the job, and the run is recovered at the next start.
 */
export const ALERTING_OUTCOMES: ReadonlySet<RunOutcome> = new Set(['failed', 'timeout', 'wrong']);

/** Failures a job's `retries` may try again; a wrong result or a kill is not retried. */
export const RETRYABLE_OUTCOMES: ReadonlySet<RunOutcome> = new Set(['failed', 'timeout']);

/** Runs of a schedule instant (on time, or the one catch-up after downtime): an instant is claimed once. */
export const SCHEDULED_TRIGGERS = ['schedule', 'catch-up'] as const;
export function isScheduledTrigger(trigger: string): boolean {
  return (SCHEDULED_TRIGGERS as readonly string[]).includes(trigger);
}

/**
 * Runs the heal loop started (a rerun fix, a rerun probe). They are the heal's evidence, not the
 * job's own record: they do not count as the job's last run or success, are not paused, retried or
 * alerted on their own, and are never held in memory on a full disk.
 */
export const HEAL_TRIGGERS = ['heal', 'probe'] as const;
export function isHealTrigger(trigger: string): trigger is (typeof HEAL_TRIGGERS)[number] {
  return (HEAL_TRIGGERS as readonly string[]).includes(trigger);
}

export const ALERT_KINDS = ['missed', 'failed', 'hung', 'wrong'] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export const HEAL_STEPS = [
  'kill-switch',
  'containment',
  'pre-check',
  'rule',
  'cap',
  'autonomy',
  'guard',
  'snapshot',
  'fix',
  'probe',
  'verdict',
  'rollback',
] as const;
export type HealStep = (typeof HEAL_STEPS)[number];

/** A list of fixed words as an SQL list, e.g. ('heal', 'probe'); only for the constants above. */
export function sqlList(words: readonly string[]): string {
  return `(${words.map((w) => `'${w.replace(/'/g, "''")}'`).join(', ')})`;
}
