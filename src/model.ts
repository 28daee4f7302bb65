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
export const RUN_TRIGGERS = ['schedule', 'catch-up', 'boot', 'manual', 'retry', 'heal', 'probe'] as const;
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

/** At most this many paths of each kind (changed, created, removed) are named with a heal attempt; all are counted. */
export const HEAL_FILES_NAMED = 200;
/** …and at most this many characters of paths in each list: long names cannot bloat the database either. */
export const HEAL_FILES_CHARS = 16_384;

/**
 * What a fix did to the files it may touch: the snapshot's manifest against the tree right after
 * the fix. changed: the same path with other content, type, mode, owner or link target; created:
 * there after the fix, not in the manifest; removed: in the manifest, gone. Absolute paths, sorted
 * (a folder before its contents), the first HEAL_FILES_NAMED (and HEAL_FILES_CHARS) of each;
 * `counts` counts them all. Paths are data from a fix: shown as text, never interpreted (law 8).
 */
export interface FileChanges {
  changed: string[];
  created: string[];
  removed: string[];
  counts: { changed: number; created: number; removed: number };
}

/**
 * The record a heal attempt keeps of its fix's files (heal_attempts.files): the lists, or why they
 * could not be made. It stays the record when the attempt is rolled back afterwards.
 */
export type HealFiles = FileChanges | { error: string };

/** A list of fixed words as an SQL list, e.g. ('heal', 'probe'); only for the constants above. */
export function sqlList(words: readonly string[]): string {
  return `(${words.map((w) => `'${w.replace(/'/g, "''")}'`).join(', ')})`;
}

// Alerts and heal attempts are numbered in two series of their own; a bare "#4" could be either,
// and `approve` takes a heal. Every surface names them with a letter that says which they are:
// alert A-12, heal H-4 (runs keep "run #37"). Parsing accepts the letter in either case, with or
// without the dash, and a bare number as the series the command expects.
export type Numbered = 'alert' | 'heal';
const LETTER: Record<Numbered, string> = { alert: 'A', heal: 'H' };

/** The name a person reads and types for an alert or a heal attempt: "A-12", "H-4". */
export function refOf(kind: Numbered, id: number): string {
  return `${LETTER[kind]}-${id}`;
}

/**
 * Reads what a person typed for a `kind` ("H-4", "h4", "4"). A reference to the other series is
 * an error that says what it is, so `approve A-12` does not approve heal 12.
 */
export function parseRef(kind: Numbered, text: string): { id: number } | { error: string } {
  const m = /^\s*#?([A-Za-z])?-?(\d+)\s*$/.exec(text);
  const id = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(id) || id <= 0) {
    return { error: `"${text}" is not ${kind === 'heal' ? 'a heal ID such as H-4' : 'an alert ID such as A-12'}` };
  }
  const letter = m[1]?.toUpperCase();
  if (letter !== undefined && letter !== LETTER[kind]) {
    const other = (Object.keys(LETTER) as Numbered[]).find((k) => LETTER[k] === letter);
    return {
      error: other
        ? `${refOf(other, id)} is ${other === 'alert' ? 'an alert' : 'a heal attempt'}, not ${kind === 'heal' ? 'a heal attempt' : 'an alert'}: this command takes ${kind === 'heal' ? 'a heal ID (H-…)' : 'an alert ID (A-…)'}`
        : `"${text}": IDs start with A- (alerts) or H- (heal attempts)`,
    };
  }
  return { id };
}
