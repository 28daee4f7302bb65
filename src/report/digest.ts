// The daily digest, composed from SQLite rows alone: every number in it is a count of rows the
// operator can find again with `nightshift history`, `alerts` or `heals`. `digestFacts` reads
// those rows; `composeDigest` is pure: no store, no clock, no files, no network — the
// DigestService decides when, where and how it goes out.
import { parseCron } from '../schedule/cron.js';
import type { Job, LastGood } from '../config/home.js';
import { formatProblem, type SpecProblem } from '../config/parse.js';
import { lastGoodSentence } from './status.js';
import type { KillState } from '../control/killswitch.js';
import type { Containment } from '../run/launch.js';
import { byName } from '../names.js';
import { formatInstant, nextAfter, readableTime, type Schedule } from '../schedule/instants.js';
import { dashboardOrigin, type Policy } from '../config/schema.js';
import type { AlertRow, DigestRow, EventRow, JobStateRow, PageRow, RunDot, RunRow, Store } from '../store/store.js';
import { FAILED_OUTCOMES, refOf, type AlertKind } from '../model.js';
import { escapeHtml, oneLine } from '../text.js';
import { attention, dependencyOf } from './attention.js';
import { runTone, TONE_COLOURS, toneCounts } from './tones.js';
import { successDeadline } from '../watch/watchdog.js';
import { systemTimeZone } from '../schedule/timezone.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** Long lists are cut here; the counts above them stay exact. */
const LIST_CAP = 50;
/** More scheduled instants than this in 24 h is "every few seconds": counting further tells nobody anything. */
const NEXT_RUNS_CAP = 2000;

/** A heal attempt's outcome, as the heal loop hands it over (healview.healLines). */
export interface HealLine {
  at: number;
  job: string;
  rule?: string | null;
  /** A heal outcome (docs/concepts.md), e.g. fixed-verified, rolled-back, blocked, awaiting-approval. */
  outcome: string;
  detail?: string | null;
  /** The attempt (named H-4); absent for lines that are not one attempt, such as a demotion. */
  id?: number;
  /**
   * The alert the attempt was for. A heal waits for a person only while that alert is open: a
   * proposal for an alert that recovered on its own asks nobody anything.
   */
  alert?: number;
}

export interface DigestWindow {
  from: number;
  to: number;
}

/** The rows a digest is made of: everything composeDigest knows about the state. */
export interface DigestFacts {
  /** Alerts open now. */
  openAlerts: AlertRow[];
  /** Alerts opened or resolved in the window. */
  windowAlerts: AlertRow[];
  /** Runs created in the window. */
  runs: RunRow[];
  jobStates: Map<string, JobStateRow>;
  /** Kill-switch flips and deadman pings journaled in the window. */
  killFlips: EventRow[];
  deadmanPings: EventRow[];
  pages: PageRow[];
  unsentDigests: DigestRow[];
  /** Each job's last finished run, whenever it was (the jobs table). */
  lastRuns: Map<string, RunRow>;
  /** Each job's last success (a run, or for an external job a ping). */
  lastSuccesses: Map<string, number>;
  /** Jobs with a run under way when the digest is composed. */
  running: Set<string>;
  /** Each job's last runs, newest first (EMAIL_STRIP_RUNS): the e-mail's status strip. */
  strips?: Map<string, RunDot[]>;
}

/** The facts the summary (verdict, "Needs you", the jobs table) is made of: what holds now, not a window's rows. */
export type SummaryFacts = Pick<DigestFacts, 'openAlerts' | 'jobStates' | 'lastRuns' | 'lastSuccesses' | 'running'>;

/**
 * Reads what summarize needs, and only that: the dashboard's overview asks it on every load, so it
 * reads no window of runs (each of these is a lookup per job or per open thing, whatever the history).
 */
export function summaryFacts(store: Store): SummaryFacts {
  return {
    openAlerts: store.alerts.open(),
    jobStates: store.jobStates.all(),
    lastRuns: store.runs.lastFinishedOfEach(),
    lastSuccesses: store.life.lastSuccesses(),
    running: new Set(store.runs.open().map((r) => r.job)),
  };
}

/** Runs in the e-mail's status strip of each job. */
export const EMAIL_STRIP_RUNS = 12;

/**
 * Reads the rows of a digest's window (and what is open now) from the store; with `jobs`, the
 * last runs of each (created before the window's end) for the e-mail's status strips.
 */
export function digestFacts(store: Store, window: DigestWindow, jobs?: Iterable<string>): DigestFacts {
  return {
    ...summaryFacts(store),
    windowAlerts: store.alerts.between(window.from, window.to),
    runs: store.runs.between(window.from, window.to),
    killFlips: store.journal.between(window.from, window.to, 'kill-switch'),
    deadmanPings: store.journal.between(window.from, window.to, 'deadman'),
    pages: store.pages.between(window.from, window.to),
    unsentDigests: store.digests.unsent(),
    strips: jobs ? store.runs.outcomesOfEach(jobs, EMAIL_STRIP_RUNS, window.to) : new Map<string, RunDot[]>(),
  };
}

export interface DigestInput {
  facts: DigestFacts;
  jobs: Map<string, Job>;
  policy: Policy;
  kill: KillState;
  /** YYYY-MM-DD in the policy zone. */
  date: string;
  window: DigestWindow;
  now: number;
  heals?: HealLine[];
  /** Whether fixes can be contained on this machine (the launcher's check); unknown when absent. */
  containment?: Containment;
  /** The spec files that are invalid now, and the jobs that run their last good version meanwhile. */
  config?: ConfigState;
}

export interface ConfigState {
  problems: SpecProblem[];
  lastGood: LastGood[];
}

export interface ComposedDigest {
  verdict: string;
  /** Plain text; also valid Markdown, so the same text is the .md file. */
  text: string;
  html: string;
  /** Things that wait for a person (the items of "Needs you"; the verdict counts the same). */
  needsYou: number;
}

// ---- dates and the window ----

export function digestZone(policy: Policy): string {
  return policy.timezone ?? systemTimeZone();
}

/** The digest time as a schedule, so that its instants follow the same DST rules as every job. */
export function digestSchedule(policy: Policy): Schedule {
  const [hh, mm] = policy.digest.at.split(':').map(Number) as [number, number];
  return { kind: 'cron', expr: parseCron(`${mm} ${hh} * * *`), tz: digestZone(policy) };
}

/** The calendar date (YYYY-MM-DD) of an instant on the wall clock of `tz`. */
export function digestDate(tz: string, instant: number): string {
  return formatInstant(instant, tz).slice(0, 10);
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

function parseDate(date: string): number {
  const m = DATE_RE.exec(date);
  const naive = m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : NaN;
  if (!m || Number.isNaN(naive) || new Date(naive).toISOString().slice(0, 10) !== date) {
    throw new RangeError(`"${date}" is not a date; write it as YYYY-MM-DD, e.g. 2026-03-29`);
  }
  return naive;
}

export function addDays(date: string, days: number): string {
  return new Date(parseDate(date) + days * DAY_MS).toISOString().slice(0, 10);
}

/**
 * The instant the digest of `date` is due: digest.at on that day in the policy zone, as the
 * schedule module places it (a time skipped by a DST change becomes the moment of the change).
 */
export function digestInstant(policy: Policy, date: string): number {
  const sched = digestSchedule(policy);
  const tz = digestZone(policy);
  // Local midnight of `date` is at most 14 h before naive midnight, in any zone.
  let t = parseDate(date) - 15 * HOUR_MS;
  for (let i = 0; i < 4; i++) {
    const next = nextAfter(sched, t);
    if (next === null) break;
    if (digestDate(tz, next) >= date) return next;
    t = next;
  }
  throw new RangeError(`no digest time ${policy.digest.at} found on ${date} in ${tz}`);
}

/** The real-time span a date's digest covers: from the previous day's digest instant to this day's. */
export function digestWindow(policy: Policy, date: string): DigestWindow {
  return { from: digestInstant(policy, addDays(date, -1)), to: digestInstant(policy, date) };
}

// ---- plain words ----

export { oneLine };

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The same reading of a time as every other surface: "2026-12-04 23:41 +01:00". */
function when(ms: number, tz: string): string {
  return readableTime(ms, tz);
}

function hours(ms: number): string {
  const h = Math.round((ms / HOUR_MS) * 100) / 100;
  return `${h} ${h === 1 ? 'hour' : 'hours'}`;
}

function quote(text: string): string {
  return `"${oneLine(text)}"`;
}

type Time = (ms: number) => string;

/** What an open alert of each kind says about its job, in the table and the list. */
const ALERT_STATE: Record<AlertKind, string> = { failed: 'failing', missed: 'late', hung: 'hung', wrong: 'wrong result' };
function alertState(kind: string): string {
  return ALERT_STATE[kind as AlertKind] ?? kind;
}

/** A run's outcome in a table cell. */
const RUN_SHORT: Record<string, string> = {
  timeout: 'timed out',
  wrong: 'wrong result',
  killed: 'stopped',
  'skipped-precheck': 'skipped, nothing to do',
  'skipped-overlap': 'skipped, still busy',
  'skipped-paused': 'skipped, paused',
  'skipped-halted': 'skipped, kill switch on',
};
function runShort(outcome: string): string {
  return RUN_SHORT[outcome] ?? outcome;
}

/** How an alert closed: [one alert, several]. */
const RESOLUTION_WORDS: Record<string, [string, string]> = {
  'self-recovered': ['recovered on its own', 'recovered on their own'],
  'fixed-verified': ['fixed by a heal', 'fixed by heals'],
  'job-removed': ['its job was removed', 'their jobs were removed'],
};
function resolutionWords(resolution: string | null, n = 1): string {
  const w = RESOLUTION_WORDS[resolution ?? ''];
  return w ? w[n === 1 ? 0 : 1] : (resolution ?? 'closed');
}

// ---- the summary: what needs you, computed once ----

/** One thing a person has to act on: a job with an open alert, or a spec file with errors. */
export interface NeedItem {
  kind: 'job' | 'file';
  /** The job or the file. */
  name: string;
  /** The first line says what it is; the rest are details under it. */
  lines: Line[];
}

export type JobHealth = 'ok' | 'failing' | 'waiting' | 'paused' | 'disabled';

export interface JobRow {
  name: string;
  health: JobHealth;
  /** The state in words, e.g. "failing", "paused", "waiting for db-backup". */
  state: string;
  lastRun: { at: number; outcome: string } | null;
  nextRun: number | null;
  /** Not run by nightshift: lastRun is its last success ping, nextRun when the next one is expected by. */
  external: boolean;
}

/**
 * Everything the verdict and the sections agree on. The verdict, "Needs you" and the jobs table
 * are all read from this one value, so the headline cannot say "healthy" over a list of things
 * that wait for a person.
 */
export interface DigestSummary {
  needs: NeedItem[];
  jobs: JobRow[];
  /** Heal lines that are not part of a "needs you" item: what the heal loop did on its own. */
  otherHeals: HealLine[];
  /** Open alerts held up by a failing dependency, by id: the job they wait for. */
  heldUp: Map<number, string>;
}

/** Heal outcomes whose next step is a person's, while the alert they are for is still open. */
const HEAL_WAITS = new Set(['awaiting-approval', 'blocked', 'needs-human', 'refused', 'rollback-failed', 'proposed']);

/** What summarize reads: a digest's input, whose facts need only be the summary's. */
export type SummaryInput = Omit<DigestInput, 'facts'> & { facts: SummaryFacts };

export function summarize(input: SummaryInput): DigestSummary {
  const { facts, jobs, now } = input;
  const tz = digestZone(input.policy);
  const t: Time = (ms) => when(ms, tz);
  const heals = input.heals ?? [];
  // Who needs a person is report/attention.ts's rule, the one status uses.
  const need = attention(
    [...jobs.values()].map((j) => ({
      name: j.name,
      watched: j.managed && j.spec.enabled && facts.jobStates.get(j.name)?.paused !== 1,
      running: facts.running.has(j.name),
      lastOutcome: facts.lastRuns.get(j.name)?.outcome ?? null,
    })),
    facts.openAlerts,
  );
  const open = [...need.alerts, ...need.heldUp];
  const openJobs = new Set(open.filter((a) => a.folded_under === null).map((a) => a.job));
  const depOf = dependencyOf;
  const needing = need.alerts;
  const needingIds = new Set(needing.map((a) => a.id));
  const needJobs = new Set(need.jobs);
  // A heal belongs to an item while its alert is open; without an alert id, to its job's item.
  const attached = (h: HealLine): boolean => (h.alert !== undefined ? needingIds.has(h.alert) : needJobs.has(h.job));

  const needs: NeedItem[] = [];
  for (const job of [...needJobs].sort(byName)) {
    const mine = needing.filter((a) => a.job === job);
    const [first, ...more] = mine;
    const lastRun = facts.lastRuns.get(job);
    const head = first ? `${job}: ${alertLine(first, t)}` : failedRunLine(job, lastRun!, t);
    const lines: Line[] = [{ text: head, depth: 0, link: linkOf(head, jobPath(job), job) }];
    for (const a of more) lines.push(alertRefLine(`also ${alertLine(a, t)}`, a, 1));
    for (const a of mine) {
      if (a.folded_under !== null) lines.push({ text: `it was held up by ${depOf(a)}, which has no open alert now`, depth: 1 });
    }
    const heldUp = open.filter((a) => a.folded_under !== null && depOf(a) === job && openJobs.has(job));
    for (const f of heldUp) lines.push(alertRefLine(`held up by ${job}: ${f.job}: ${alertLine(f, t)}`, f, 1));
    for (const h of heals.filter((x) => x.job === job && attached(x))) lines.push(healRefLine(healSentence(h, t), h, 1));
    needs.push({ kind: 'job', name: job, lines });
  }
  const config = input.config ?? { problems: [], lastGood: [] };
  const byFile = new Map<string, SpecProblem[]>();
  for (const p of config.problems) byFile.set(p.file, [...(byFile.get(p.file) ?? []), p]);
  for (const [file, problems] of byFile) {
    const lines: Line[] = [{ text: `${oneLine(file, 1000)} has errors; fix it, then check it with: nightshift validate`, depth: 0 }];
    for (const p of problems) lines.push({ text: formatProblem(p), depth: 1 });
    const g = config.lastGood.find((x) => x.file === file);
    if (g) lines.push({ text: `${lastGoodSentence(g.job, g.file, g.savedAt, jobs.get(g.job)?.timezone ?? tz)}.`, depth: 1 });
    needs.push({ kind: 'file', name: file, lines });
  }

  const rows: JobRow[] = [];
  for (const job of [...jobs.values()].sort((a, b) => byName(a.name, b.name))) {
    const st = facts.jobStates.get(job.name);
    const last = facts.lastRuns.get(job.name);
    const folded = open.find((a) => a.job === job.name && a.folded_under !== null && openJobs.has(depOf(a)));
    const alert = needing.find((a) => a.job === job.name);
    let health: JobHealth;
    let state: string;
    if (!job.spec.enabled) [health, state] = ['disabled', 'turned off in its file'];
    else if (st?.paused === 1) [health, state] = ['paused', 'paused'];
    else if (alert) [health, state] = ['failing', alertState(alert.kind)];
    else if (folded) [health, state] = ['waiting', `waiting for ${depOf(folded)}`];
    else if (need.failedRuns.includes(job.name)) [health, state] = ['failing', 'its last run failed'];
    else [health, state] = ['ok', 'ok'];
    const next = job.spec.enabled && st?.paused !== 1 && job.schedule ? nextAfter(job.schedule, now) : null;
    rows.push({
      name: job.name,
      health,
      state,
      ...(job.managed
        ? {
            lastRun: last ? { at: last.ended_at ?? last.created_at, outcome: runShort(last.outcome ?? 'running') } : null,
            nextRun: next,
          }
        : externalCells(job, facts.lastSuccesses.get(job.name), st?.paused === 1, now)),
      external: !job.managed,
    });
  }
  return {
    needs,
    jobs: rows,
    otherHeals: heals.filter((h) => !attached(h)),
    heldUp: new Map(need.heldUp.map((a) => [a.id, dependencyOf(a)])),
  };
}

/**
 * An external job's cells: its last success ping, and when the next is expected by — the
 * watchdog's rule (successDeadline), counted from that ping (from now when there is none yet).
 */
function externalCells(job: Job, lastPing: number | undefined, paused: boolean, now: number): Pick<JobRow, 'lastRun' | 'nextRun'> {
  const watched = job.spec.enabled && !paused;
  return {
    lastRun: lastPing !== undefined ? { at: lastPing, outcome: 'ok' } : null,
    nextRun: watched ? nextPingDeadline(job, lastPing ?? now, now) : null,
  };
}

/**
 * The next ping deadline still ahead: after a miss the watchdog counts from the missed instant,
 * so a deadline already past is followed by the next one (successDeadline's rule, stepped on).
 */
function nextPingDeadline(job: Job, since: number, now: number): number | null {
  let d = successDeadline(job, since);
  for (let i = 0; d !== null && d.deadline <= now && i < 100_000; i++) d = successDeadline(job, d.expected);
  return d?.deadline ?? null;
}

/** What a failed run did, as a verb phrase ("failed", "gave a wrong result"). */
const FAILED_VERBS: Record<string, string> = {
  failed: 'failed',
  timeout: 'ran past its time limit',
  wrong: 'gave a wrong result',
  interrupted: 'was cut short when nightshift stopped',
};

/** "backup: its last run (#5) failed at …: exited with code 1; a retry is due at …" — a job whose failed run has no alert. */
function failedRunLine(job: string, run: RunRow, t: Time): string {
  const reason = run.reason ? `: ${oneLine(run.reason, 300).replace(/\.$/, '')}` : '';
  const then =
    run.retry_at !== null
      ? `a retry is due at ${t(run.retry_at)}`
      : 'no alert is open for it (it was closed, or the run ended before one could be raised), and no run has succeeded since';
  return `${job}: its last run (#${run.id}) ${FAILED_VERBS[run.outcome ?? ''] ?? runShort(run.outcome ?? 'failed')} at ${t(run.ended_at ?? run.created_at)}${reason}; ${then}`;
}

/** The headline, from the summary alone: "1 job needs you", or "Nothing needs you: …". */
export function verdictOf(summary: DigestSummary, kill: KillState, contained?: Containment): string {
  const jobsN = summary.needs.filter((n) => n.kind === 'job').length;
  const filesN = summary.needs.length - jobsN;
  const total = summary.jobs.length;
  let v: string;
  if (summary.needs.length > 0) {
    const what = [jobsN ? plural(jobsN, 'job') : '', filesN ? `${plural(filesN, 'spec file')} with errors` : ''].filter(Boolean);
    v = `${what.join(' and ')} ${summary.needs.length === 1 ? 'needs' : 'need'} you`;
  } else if (total === 0) v = 'Nothing needs you: no jobs configured';
  else v = total === 1 ? 'Nothing needs you: the 1 job is healthy' : `Nothing needs you: all ${total} jobs healthy`;
  // Healthy jobs with every autonomous action stopped is not an all-clear.
  if (kill.switchOn) v += '; kill switch is ON';
  // Halted without the switch: the policy file is invalid (its sentence is in the kill-switch section).
  else if (kill.halted) v += '; autonomous actions are stopped';
  // Healthy jobs with no fix able to run is not an all-clear either.
  if (contained && !contained.ok) v += '; no fix can run (no sandbox)';
  return v;
}

// ---- the model both renderings come from ----

interface Line {
  text: string;
  depth: 0 | 1;
  /** The dashboard page the line is about, and which characters of it are the link. */
  link?: LineLink;
}

/** A path of the dashboard ("/jobs/backup", "/alerts#A-12"), and the span of the line's text that links there. */
export interface LineLink {
  path: string;
  start: number;
  end: number;
}

const jobPath = (job: string): string => `/jobs/${encodeURIComponent(job)}`;

/** A link on the first `head` in `text` at or after `from` (the whole line when it is not there). */
function linkOf(text: string, path: string, head: string, from = 0): LineLink {
  const start = head ? text.indexOf(head, from) : -1;
  return start < 0 ? { path, start: 0, end: text.length } : { path, start, end: start + head.length };
}

/** A line about an alert: its reference (A-12) links to it on the dashboard's alerts page. */
function alertRefLine(text: string, a: AlertRow, depth: 0 | 1): Line {
  const ref = refOf('alert', a.id);
  return { text, depth, link: linkOf(text, `/alerts#${ref}`, ref) };
}

/** A line about a heal attempt: its reference (H-4) links to it on the heals page; a line of no one attempt links the page. */
function healRefLine(text: string, h: HealLine, depth: 0 | 1): Line {
  const ref = h.id !== undefined ? refOf('heal', h.id) : '';
  return { text, depth, link: linkOf(text, ref ? `/heals#${ref}` : '/heals', ref) };
}

/** A line that starts with a job's name: the name links to the job's page. */
function jobLine(job: string, text: string, depth: 0 | 1 = 0): Line {
  return { text, depth, link: linkOf(text, jobPath(job), job) };
}

type Item = string | Line;

interface Section {
  title: string;
  lines: Line[];
}

class SectionBuilder {
  readonly lines: Line[] = [];
  constructor(readonly title: string) {}
  add(text: string, depth: 0 | 1 = 0, link?: LineLink): void {
    this.lines.push(link ? { text, depth, link } : { text, depth });
  }
  /** Adds up to LIST_CAP items and says how many were left out. */
  addList(items: Item[], depth: 0 | 1 = 0): void {
    for (const item of items.slice(0, LIST_CAP)) {
      if (typeof item === 'string') this.add(item, depth);
      else this.add(item.text, depth, item.link);
    }
    if (items.length > LIST_CAP) this.add(`… and ${items.length - LIST_CAP} more`, depth);
  }
  /** A section with nothing to say is left out: an empty heading every day teaches skipping them. */
  build(): Section[] {
    return this.lines.length ? [{ title: this.title, lines: this.lines }] : [];
  }
}

export function composeDigest(input: DigestInput): ComposedDigest {
  const { facts, jobs, policy, kill, date, window, now } = input;
  const tz = digestZone(policy);
  const t: Time = (ms) => when(ms, tz);
  const summary = summarize(input);
  const verdict = verdictOf(summary, kill, input.containment);

  const happened: Section[] = [
    ...healSection(summary.otherHeals, summary.heldUp, t),
    ...runsSection(facts.runs, jobs, t),
    ...alertsSection(facts.windowAlerts, window, t),
    ...pausedSection(facts.jobStates, jobs, t),
    ...killSection(facts.killFlips, kill, t, input.containment),
    ...watcherSection(facts, policy, t),
    ...unsentSection(facts.unsentDigests, date, t),
  ];
  const sections: Section[] = [
    ...needsSection(summary),
    ...(happened.length ? happened : [{ title: '', lines: [{ text: 'Nothing else happened.', depth: 0 as const }] }]),
    ...jobsSection(summary.jobs, facts.jobStates, jobs, now, t),
  ];
  // Links to the dashboard only with its public address: a listen address is this machine's own.
  // Only an address people can open from the mail (publicUrl), and only while the dashboard is on
  // (dashboardOrigin is null when it is off).
  const base = policy.dashboard.publicUrl ? dashboardOrigin(policy) : null;
  const intro = `nightshift digest for ${date}, covering ${t(window.from)} to ${t(window.to)} (${hours(window.to - window.from)}; times in ${tz}).`;
  return {
    verdict,
    needsYou: summary.needs.length,
    text: renderText(verdict, intro, sections, base),
    html: renderHtml(verdict, intro, sections, summary.jobs, t, { base, strips: facts.strips ?? new Map<string, RunDot[]>() }),
  };
}

export const NEEDS_YOU_TITLE = 'Needs you';

/** One top-level line per item: the verdict's count is the number of these lines. */
function needsSection(summary: DigestSummary): Section[] {
  const s = new SectionBuilder(NEEDS_YOU_TITLE);
  // Not capped: each item is counted in the verdict, and the verdict must be countable here.
  for (const item of summary.needs) for (const l of item.lines) s.add(l.text, l.depth, l.link);
  return s.build();
}

function alertLine(a: AlertRow, t: Time): string {
  const times = a.count === 1 ? '' : `, ${a.count} times, last ${t(a.last_seen_at)}`;
  return `${alertState(a.kind)} since ${t(a.opened_at)} (${refOf('alert', a.id)}${times}): ${quote(a.message)}`;
}

/** What a heal attempt did, as a sentence; its ID and time so that `nightshift heals` finds it. */
function healSentence(h: HealLine, t: Time): string {
  const rule = h.rule ? `rule ${h.rule}` : 'a rule';
  const ref = h.id !== undefined ? `${refOf('heal', h.id)}, ` : '';
  const detail = h.detail ? `: ${quote(h.detail)}` : '';
  const demoted = /^demoted to (\w+)$/.exec(h.outcome);
  if (demoted) return `rule ${h.rule ?? '?'} was demoted to ${demoted[1]} after a fix was undone (${t(h.at)})${detail}`;
  const approve =
    h.id !== undefined
      ? `answer with: nightshift approve ${refOf('heal', h.id)} or nightshift deny ${refOf('heal', h.id)}`
      : 'see: nightshift heals';
  const what: Record<string, string> = {
    'fixed-verified': `fixed by ${rule}, and an independent check confirmed it`,
    'rolled-back': `a fix by ${rule} did not pass its check and was undone`,
    'awaiting-approval': `${rule} waits for your approval to fix it; ${approve}`,
    blocked: `${rule} stopped after the attempts allowed; a person decides what next`,
    'needs-human': 'no rule fits; a written proposal waits for a person (nightshift heals shows it)',
    proposed: `${rule} proposed a fix and ran nothing (the rule only proposes until you let it act)`,
    refused: `a fix by ${rule} would have touched a protected path and was refused`,
    'rollback-failed': `a fix by ${rule} could not be undone completely; look at it`,
    'self-recovered': 'it recovered before a fix was needed',
    halted: 'nothing was tried: autonomous actions were stopped',
    uncontained: 'nothing was tried: fixes cannot be contained on this machine',
    denied: `a fix by ${rule} was denied`,
    expired: `nobody answered the approval request of ${rule} in time`,
    'interrupted-rolled-back': `nightshift stopped during a fix by ${rule}; it was undone at the next start`,
    'in-progress': `a fix by ${rule} is under way`,
  };
  return `${h.job}: ${what[h.outcome] ?? `${rule}: ${h.outcome}`} (${ref}${t(h.at)})${detail}`;
}

/** Heals not tied to anything open: what the heal loop did, and what it asked that is moot now. */
function healSection(heals: HealLine[], heldUp: Map<number, string>, t: Time): Section[] {
  const s = new SectionBuilder('Heals');
  s.addList(
    heals.map((h) => {
      const dep = h.alert !== undefined ? heldUp.get(h.alert) : undefined;
      const moot =
        !HEAL_WAITS.has(h.outcome) || h.alert === undefined
          ? ''
          : dep !== undefined
            ? `; its alert is held up by ${dep}, which needs you first`
            : '; the alert has closed since, so nothing waits';
      return healRefLine(`${healSentence(h, t)}${moot}`, h, 0);
    }),
  );
  return s.build();
}

function countBy(values: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}

/** How a number of runs ended, as words after "N run(s)": [one, many]. In the order shown. */
const RUN_WORDS: Array<[string, string, string]> = [
  ['failed', 'failed', 'failed'],
  ['timeout', 'ran past its time limit and was stopped', 'ran past their time limit and were stopped'],
  ['wrong', 'finished but gave a wrong result', 'finished but gave a wrong result'],
  ['interrupted', 'was cut off because nightshift stopped', 'were cut off because nightshift stopped'],
  ['killed', 'was stopped on purpose', 'were stopped on purpose'],
  ['skipped-precheck', 'was skipped: its pre-check found nothing to do', 'were skipped: their pre-check found nothing to do'],
  ['skipped-overlap', 'was skipped: the run before was still going', 'were skipped: the run before was still going'],
  ['skipped-paused', 'was skipped: its job was paused', 'were skipped: their job was paused'],
  ['skipped-halted', 'was skipped: the kill switch was on', 'were skipped: the kill switch was on'],
  ['running', 'is still running', 'are still running'],
];

/** "orders-export (2), backup (1)": the jobs a count is made of, most first. */
function jobCounts(runs: RunRow[]): string {
  const by = [...countBy(runs.map((r) => r.job))].sort((a, b) => b[1] - a[1] || byName(a[0], b[0]));
  const shown = by.slice(0, LIST_CAP).map(([job, n]) => `${job} (${n})`);
  if (by.length > LIST_CAP) shown.push(`and ${by.length - LIST_CAP} more jobs`);
  return shown.join(', ');
}

/** Changes between ok and not-ok among consecutive finished runs; skips and running runs are neither. */
export function countFlips(runs: RunRow[]): number {
  let flips = 0;
  let last: boolean | null = null;
  for (const r of runs) {
    if (r.outcome === null) continue;
    const ok = r.outcome === 'ok' ? true : FAILED_OUTCOMES.has(r.outcome) ? false : null;
    if (ok === null) continue;
    if (last !== null && ok !== last) flips++;
    last = ok;
  }
  return flips;
}

function runsSection(runs: RunRow[], jobs: Map<string, Job>, t: Time): Section[] {
  const s = new SectionBuilder('Runs');
  if (runs.length === 0) return [];
  const ok = runs.filter((r) => r.outcome === 'ok').length;
  s.add(`${plural(runs.length, 'run')} in this window; ${ok === runs.length ? 'all' : ok} went fine.`);
  for (const [outcome, one, many] of RUN_WORDS) {
    const these = runs.filter((r) => (r.outcome ?? 'running') === outcome);
    if (these.length) s.add(`${plural(these.length, 'run')} ${these.length === 1 ? one : many}: ${jobCounts(these)}`);
  }
  const byJob = new Map<string, RunRow[]>();
  for (const r of runs) byJob.set(r.job, [...(byJob.get(r.job) ?? []), r]);
  const troubled: Item[] = [];
  for (const [job, list] of [...byJob].sort((a, b) => byName(a[0], b[0]))) {
    const bad = list.filter((r) => r.outcome !== null && FAILED_OUTCOMES.has(r.outcome));
    const lastBad = bad[bad.length - 1];
    if (!lastBad) continue;
    const flips = countFlips(list);
    const flipText = flips ? `; it went from working to failing or back ${plural(flips, 'time')}` : '';
    const reason = lastBad.reason ? `: ${quote(lastBad.reason)}` : '';
    const text = `${job}: last failure ${t(lastBad.ended_at ?? lastBad.created_at)}${reason}${flipText}`;
    // A job removed since has no page to link to.
    troubled.push(jobs.has(job) ? jobLine(job, text) : text);
  }
  s.addList(troubled);
  return s.build();
}

function pausedSection(states: Map<string, JobStateRow>, jobs: Map<string, Job>, t: Time): Section[] {
  const s = new SectionBuilder('Paused and turned off');
  const items: Line[] = [];
  for (const st of [...states.values()].sort((a, b) => byName(a.job, b.job))) {
    if (st.paused !== 1 || !jobs.has(st.job)) continue;
    items.push(
      jobLine(
        st.job,
        `${st.job}: paused${st.paused_at !== null ? ` since ${t(st.paused_at)}` : ''}; resume with: nightshift resume ${st.job}`,
      ),
    );
  }
  for (const job of [...jobs.values()].sort((a, b) => byName(a.name, b.name))) {
    if (!job.spec.enabled) items.push(jobLine(job.name, `${job.name}: turned off in its file (enabled: false)`));
  }
  s.addList(items);
  return s.build();
}

function alertsSection(rows: AlertRow[], w: DigestWindow, t: Time): Section[] {
  const s = new SectionBuilder('Alerts');
  if (rows.length === 0) return [];
  const opened = rows.filter((a) => a.opened_at >= w.from && a.opened_at < w.to);
  const resolved = rows.filter((a) => a.resolved_at !== null && a.resolved_at >= w.from && a.resolved_at < w.to);
  const how = countBy(resolved.map((a) => a.resolution ?? ''));
  const howText = how.size ? ` (${[...how].map(([r, n]) => `${n} ${resolutionWords(r || null, n)}`).join(', ')})` : '';
  s.add(`${opened.length} opened, ${resolved.length} closed${howText}`);
  s.addList(
    rows.map((a) => {
      const end = a.resolved_at === null ? 'still open' : `closed ${t(a.resolved_at)}: ${resolutionWords(a.resolution)}`;
      return alertRefLine(`${a.job} ${alertState(a.kind)} (${refOf('alert', a.id)}): opened ${t(a.opened_at)}, ${end}`, a, 1);
    }),
    1,
  );
  return s.build();
}

function killSection(flips: EventRow[], kill: KillState, t: Time, contained?: Containment): Section[] {
  const s = new SectionBuilder('Kill switch');
  if (kill.switchOn) s.add(`The kill switch is ON${kill.since !== null ? ` since ${t(kill.since)}` : ''}: ${oneLine(kill.reason)}`);
  else if (kill.halted) s.add(`The kill switch is now off, but autonomous actions are stopped: ${oneLine(kill.reason)}`);
  if (contained && !contained.ok)
    s.add(
      `Nothing can be run in a sandbox on this machine: jobs run without one, and no fix or check runs — ${oneLine(contained.reason, 400)}`,
    );
  if (flips.length) {
    s.add(
      `The kill switch was turned on or off ${plural(flips.length, 'time')} in this window${kill.switchOn || kill.halted ? '' : '; it is off now'}:`,
    );
    s.addList(
      flips.map((e) => `${t(e.at)}: ${oneLine(e.message)}`),
      1,
    );
  }
  return s.build();
}

function watcherSection(facts: DigestFacts, policy: Policy, t: Time): Section[] {
  const s = new SectionBuilder('Pages and the outside watcher');
  const pages = facts.pages;
  if (pages.length) {
    const counts = countBy(pages.map((p) => p.outcome ?? 'still going'));
    s.add(`${plural(pages.length, 'page')}: ${[...counts].map(([o, n]) => `${n} ${o}`).join(', ')}`);
    s.addList(
      pages.map(
        (p) =>
          `${t(p.at)} ${oneLine(p.event, 100)} (${oneLine(p.fingerprint, 100)}): ${p.outcome ?? 'still going'}${p.detail ? `: ${quote(p.detail)}` : ''}`,
      ),
      1,
    );
  }
  // Only news is said: an hourly ping that worked every time is what "nothing happened" means.
  const pings = facts.deadmanPings;
  const failed = pings.filter((e) => !isOkEvent(e.data));
  if (policy.deadman && pings.length === 0) s.add('The outside watcher (deadman in policy.yaml) was not pinged once in this window');
  else if (failed.length) {
    s.add(
      `The outside watcher (deadman in policy.yaml) was pinged ${plural(pings.length, 'time')}: ${pings.length - failed.length} ok, ${failed.length} failed`,
    );
    const last = failed[failed.length - 1]!;
    s.add(`last failure ${t(last.at)}: ${oneLine(last.message)}`, 1);
  }
  return s.build();
}

function isOkEvent(data: string | null): boolean {
  try {
    return (JSON.parse(data ?? '{}') as { ok?: unknown }).ok === true;
  } catch {
    return false;
  }
}

function unsentSection(unsent: DigestRow[], date: string, t: Time): Section[] {
  const s = new SectionBuilder('Digests not sent');
  const rows = unsent.filter((d) => d.date !== date && d.last_error !== null).reverse();
  s.addList(
    rows.map((d) => {
      const next = d.next_attempt_at !== null ? `trying again ${t(d.next_attempt_at)}` : 'no more attempts';
      return `${d.date}: not sent after ${plural(d.attempts, 'attempt')} (${next}); the text is in digests/${d.date}.md in the state folder; last error: ${quote(d.last_error ?? '')}`;
    }),
  );
  return s.build();
}

/** The jobs table as text lines, led by what the next 24 hours hold. */
function jobsSection(rows: JobRow[], states: Map<string, JobStateRow>, jobs: Map<string, Job>, now: number, t: Time): Section[] {
  const s = new SectionBuilder('Jobs');
  if (rows.length === 0) return [];
  const until = now + DAY_MS;
  const counts = new Map<string, { count: number; capped: boolean }>();
  for (const job of jobs.values()) {
    if (!job.managed || !job.spec.enabled || !job.schedule || states.get(job.name)?.paused === 1) continue;
    const r = upcoming(job.schedule, now, until);
    if (r.count) counts.set(job.name, r);
  }
  const total = [...counts.values()].reduce((n, c) => n + c.count, 0);
  const capped = [...counts.values()].some((c) => c.capped);
  s.add(
    counts.size === 0
      ? 'Nothing is scheduled to run in the next 24 hours'
      : `${capped ? 'More than ' : ''}${plural(total, 'run')} of ${plural(counts.size, 'job')} scheduled in the next 24 hours`,
  );
  s.addList(
    rows.map((r) => {
      if (r.external) {
        const ping = r.lastRun ? `last ping ${t(r.lastRun.at)}` : 'no ping yet';
        return jobLine(
          r.name,
          `${r.name}: ${r.state}; external (nightshift does not run it); ${ping}${r.nextRun !== null ? `; next ping expected by ${t(r.nextRun)}` : ''}`,
          1,
        );
      }
      const last = r.lastRun ? `last run ${t(r.lastRun.at)} (${r.lastRun.outcome})` : 'no run yet';
      const c = counts.get(r.name);
      const next =
        r.nextRun !== null
          ? `; next ${t(r.nextRun)}${c ? ` (${c.capped ? 'more than ' : ''}${plural(c.count, 'run')} in 24 hours)` : ''}`
          : '';
      return jobLine(r.name, `${r.name}: ${r.state}; ${last}${next}`, 1);
    }),
    1,
  );
  return s.build();
}

function upcoming(sched: Schedule, now: number, until: number): { count: number; first: number; capped: boolean } {
  if (sched.kind === 'every') {
    // Epoch-aligned instants: count them, do not walk them.
    const first = Math.floor(now / sched.ms) * sched.ms + sched.ms;
    const count = first < until ? Math.floor((until - 1 - first) / sched.ms) + 1 : 0;
    return { count, first, capped: false };
  }
  // Walk only up to `until`: a yearly job must not walk NEXT_RUNS_CAP years ahead (each year of
  // each zone costs an offset table; 101 such jobs once held the event loop for 12 s).
  const list: number[] = [];
  for (let t = now; list.length <= NEXT_RUNS_CAP;) {
    const n = nextAfter(sched, t);
    if (n === null || n >= until) break;
    list.push(n);
    t = n;
  }
  return { count: Math.min(list.length, NEXT_RUNS_CAP), first: list[0] ?? 0, capped: list.length > NEXT_RUNS_CAP };
}

// ---- renderings ----

/** The dashboard's address of a line's page; null without publicUrl (links only where someone can open them). */
function urlOf(base: string | null, link: LineLink | undefined): string | null {
  return base !== null && link ? `${base}${link.path}` : null;
}

function renderText(verdict: string, intro: string, sections: Section[], base: string | null): string {
  const out = [oneLine(verdict), '', intro];
  for (const sec of sections) {
    out.push('');
    if (sec.title) out.push(sec.title, '-'.repeat(sec.title.length));
    for (const l of sec.lines) {
      const url = urlOf(base, l.link);
      const text = url ? `${l.text} <${url}>` : l.text;
      out.push(sec.title ? `${l.depth ? '    ' : ''}- ${text}` : text);
    }
  }
  return `${out.join('\n')}\n`;
}

export { escapeHtml };

/** Row colours by health; mail clients drop <style> blocks, so every style is inline. */
export const HEALTH_COLOURS: Record<JobHealth, { bg: string; fg: string }> = {
  ok: { bg: '#e6f4ea', fg: '#137333' },
  failing: { bg: '#fce8e6', fg: '#a50e0e' },
  waiting: { bg: '#fef7e0', fg: '#8a5300' },
  paused: { bg: '#fef7e0', fg: '#8a5300' },
  disabled: { bg: '#f1f3f4', fg: '#5f6368' },
};

const CELL = 'padding: 4px 8px; border: 1px solid #dadce0; text-align: left';

interface HtmlExtras {
  /** publicUrl: lines about a job, alert or heal link to the dashboard; null: no links. */
  base: string | null;
  /** Each job's last runs, newest first. */
  strips: Map<string, RunDot[]>;
}

/** A line's text as HTML, its link span an <a> to the dashboard when there is an address. */
function lineHtml(l: Line, base: string | null): string {
  const e = escapeHtml;
  const url = urlOf(base, l.link);
  if (!url || !l.link) return e(l.text);
  const { start, end } = l.link;
  return `${e(l.text.slice(0, start))}<a href="${e(url)}">${e(l.text.slice(start, end))}</a>${e(l.text.slice(end))}`;
}

/**
 * A job's last runs as a row of small coloured cells, oldest first (the dashboard's strip):
 * inline SVG and style sheets do not survive mail clients, table cells with a background do.
 * The colours are report/tones.ts's; the counts follow in words for readers without colour.
 */
function stripHtml(runs: RunDot[]): string {
  if (runs.length === 0) return 'no runs yet';
  const cells = [...runs]
    .reverse()
    .map(
      (r) =>
        `<td style="width: 6px; height: 14px; padding: 0; background: ${TONE_COLOURS.light[runTone(r.outcome)]}; font-size: 1px; line-height: 1px">&nbsp;</td>`,
    )
    .join('');
  const words = escapeHtml(toneCounts(runs.map((r) => r.outcome)));
  return `<table cellspacing="2" cellpadding="0" style="border-collapse: separate"><tr>${cells}<td style="padding: 0 0 0 6px; font-size: 12px; white-space: nowrap">${words}</td></tr></table>`;
}

function jobsTable(rows: JobRow[], t: Time, x: HtmlExtras): string {
  const e = escapeHtml;
  const head = ['Job', 'State', 'Last run', 'Next run', 'Last runs']
    .map((h) => `<th style="${CELL}; background: #f8f9fa">${h}</th>`)
    .join('');
  const body = rows.slice(0, LIST_CAP).map((r) => {
    const c = HEALTH_COLOURS[r.health];
    const last = r.external
      ? r.lastRun
        ? `${t(r.lastRun.at)} (ping)`
        : 'no ping yet'
      : r.lastRun
        ? `${t(r.lastRun.at)} (${r.lastRun.outcome})`
        : 'no run yet';
    const next = r.nextRun === null ? '—' : r.external ? `ping expected by ${t(r.nextRun)}` : t(r.nextRun);
    // The colour on every cell too: Outlook's renderer ignores a row's background.
    const td = (inner: string): string => `<td style="${CELL}; background: ${c.bg}; color: ${c.fg}">${inner}</td>`;
    const name = x.base !== null ? `<a href="${e(`${x.base}${jobPath(r.name)}`)}" style="color: ${c.fg}">${e(r.name)}</a>` : e(r.name);
    const strip = r.external ? e('external: pings only') : stripHtml(x.strips.get(r.name) ?? []);
    const cells = [name, e(r.state), e(last), e(next), strip].map(td).join('');
    return `<tr data-health="${r.health}" style="background: ${c.bg}; color: ${c.fg}">${cells}</tr>`;
  });
  // Capped like the text's lists: a mail past ~100 KB is clipped by Gmail, and the jobs that need
  // you are listed above the table whatever their place in it.
  if (rows.length > LIST_CAP)
    body.push(`<tr><td colspan="5" style="${CELL}">${rows.length - LIST_CAP} more jobs: nightshift status lists them all</td></tr>`);
  return [
    '<table cellspacing="0" cellpadding="0" style="border-collapse: collapse; font-size: 14px">',
    `<tr>${head}</tr>`,
    ...body,
    '</table>',
  ].join('\n');
}

function renderHtml(verdict: string, intro: string, sections: Section[], jobs: JobRow[], t: Time, x: HtmlExtras): string {
  const e = escapeHtml;
  const out = [
    '<!doctype html>',
    '<html><head><meta charset="utf-8"><title>nightshift digest</title></head>',
    '<body style="font-family: Arial, Helvetica, sans-serif; line-height: 1.4; color: #202124">',
    `<h1 style="font-size: 20px">${e(oneLine(verdict))}</h1>`,
    `<p>${e(intro)}</p>`,
  ];
  for (const sec of sections) {
    if (sec.title) out.push(`<h2 style="font-size: 16px">${e(sec.title)}</h2>`);
    if (!sec.title) {
      out.push(...sec.lines.map((l) => `<p>${lineHtml(l, x.base)}</p>`));
      continue;
    }
    // The jobs section is the coloured table; its text lines are the plain part's version of it.
    if (sec.title === 'Jobs') {
      out.push(`<p>${e(sec.lines[0]!.text)}</p>`, jobsTable(jobs, t, x));
      continue;
    }
    out.push('<ul>');
    // A depth-1 line belongs to the list item before it.
    const items: Array<{ line: Line; children: Line[] }> = [];
    for (const l of sec.lines) {
      const parent = items[items.length - 1];
      if (l.depth === 1 && parent) parent.children.push(l);
      else items.push({ line: l, children: [] });
    }
    for (const item of items) {
      const children = item.children.length ? `<ul>${item.children.map((c) => `<li>${lineHtml(c, x.base)}</li>`).join('')}</ul>` : '';
      out.push(`<li>${lineHtml(item.line, x.base)}${children}</li>`);
    }
    out.push('</ul>');
  }
  out.push('</body></html>');
  return `${out.join('\n')}\n`;
}
