// What a rule says, without acting on it: which rule matches an alert (the first in name order),
// which autonomy level is in force (the lowest of rule, ladder, job and policy), and the plain
// words of a proposal. Pure functions, so the heal loop's decisions are tested without processes.
import type { Job, LoadedRule } from '../config/home.js';
import { globMatch } from '../glob.js';
import type { Policy, Rule } from '../config/schema.js';
import type { AlertRow, LadderRow } from '../store/store.js';

export const LEVELS = ['shadow', 'gated', 'auto'] as const;
export type Level = (typeof LEVELS)[number];

/** What of an alert a rule can match on. */
export interface AlertFacts {
  job: string;
  kind: AlertRow['kind'];
  exitCode: number | null;
  outputTail: string | null;
}

export function factsOf(alert: AlertRow): AlertFacts {
  return { job: alert.job, kind: alert.kind, exitCode: alert.exit_code, outputTail: alert.output_tail };
}

/** Why a rule does not match, or null when it does. */
export function mismatch(rule: Rule, a: AlertFacts): string | null {
  const m = rule.match;
  if (!globMatch(m.job, a.job)) return `job ${a.job} is not ${m.job}`;
  if (m.kind && !m.kind.includes(a.kind)) return `kind ${a.kind} is not ${m.kind.join('|')}`;
  if (m.exitCode && (a.exitCode === null || !m.exitCode.includes(a.exitCode)))
    return `exit code ${a.exitCode ?? 'none'} is not ${m.exitCode.join('|')}`;
  if (m.output !== undefined) {
    let re: RegExp;
    try {
      re = new RegExp(m.output);
    } catch {
      return 'its output regex is invalid';
    }
    // The tail is at most a few KiB, and rules are validated regexes written by the operator.
    if (!re.test(a.outputTail ?? '')) return `output does not match /${m.output}/`;
  }
  return null;
}

/** The first rule, in name order, that matches (documented in the README: name your rules 10-…, 20-…). */
export function matchRule(rules: Iterable<LoadedRule>, a: AlertFacts): LoadedRule | null {
  const sorted = [...rules].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  for (const r of sorted) if (mismatch(r.rule, a) === null) return r;
  return null;
}

const rank = (l: Level): number => LEVELS.indexOf(l);

export function lowest(...levels: Level[]): Level {
  return levels.reduce((a, b) => (rank(b) < rank(a) ? b : a));
}

/** One rung down the ladder: auto → gated → shadow. */
export function demoted(level: Level): Level {
  return LEVELS[Math.max(0, rank(level) - 1)]!;
}

/**
 * The rule's own level: `pilot` is auto for the jobs its `jobs` glob names and gated for the
 * rest; a demotion on the ladder holds while the rule file is the one that was demoted.
 */
export function ruleLevel(loaded: LoadedRule, job: string, ladder: LadderRow | undefined): Level {
  const r = loaded.rule;
  let level: Level = r.autonomy === 'pilot' ? (r.jobs !== undefined && globMatch(r.jobs, job) ? 'auto' : 'gated') : r.autonomy;
  if (ladder && ladder.rule_hash === loaded.hash) level = lowest(level, ladder.level as Level);
  return level;
}

/** The level in force: the lowest of the rule (after the ladder), the job's ceiling and the policy's. */
export function effectiveLevel(loaded: LoadedRule, job: Job, policy: Policy, ladder: LadderRow | undefined): Level {
  return lowest(ruleLevel(loaded, job.name, ladder), job.spec.autonomy ?? 'auto', policy.autonomy);
}

/** What the fix does, in plain words, for proposals, approvals, `heals` and the digest. */
export function describeAction(rule: Rule): string {
  const a = rule.action;
  const what = a.command
    ? `run \`${a.command.join(' ')}\``
    : a.brain
      ? `ask the agent \`${a.brain.join(' ')}\``
      : a.restart
        ? `restart the unit ${a.restart} (systemctl restart, by nightshift itself)`
        : 'run the job again';
  return a.touches.length ? `${what} (touches ${a.touches.join(', ')})` : what;
}

export function describeProbe(rule: Rule): string {
  return rule.probe.command
    ? `probe \`${rule.probe.command.join(' ')}\` must exit 0`
    : 'the job runs again and must succeed with its expectations met';
}

export function proposalText(loaded: LoadedRule, alert: AlertRow, level: Level): string {
  const r = loaded.rule;
  return [
    `Alert ${alert.fingerprint} (${alert.kind}): ${alert.message}`,
    `Rule ${loaded.name}${r.description ? ` (${r.description.trim().replace(/\.$/, '')})` : ''} would ${describeAction(r)}, then check it: ${describeProbe(r)}.`,
    level === 'shadow'
      ? 'The rule is in shadow: nothing was run. If this is the right fix, raise the rule to "gated" or "auto" in its file.'
      : 'The rule is gated: nothing runs until someone answers.',
  ].join('\n');
}

export function needsHumanText(alert: AlertRow): string {
  const tail = (alert.output_tail ?? '').trim().split('\n').slice(-5).join('\n');
  return [
    `No rule matches ${alert.fingerprint} (${alert.kind}${alert.exit_code !== null ? `, exit code ${alert.exit_code}` : ''}): ${alert.message}`,
    tail ? `Last output:\n${tail}` : 'No output was captured.',
    `If a fix is safe to repeat, write it down as a rule (rules/NAME.yaml), starting in shadow:`,
    `  match: { job: ${alert.job}, kind: [${alert.kind}] }`,
    `  autonomy: shadow`,
    `  action: { command: [...], touches: [...] }`,
  ].join('\n');
}
