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
import { formatInstant, nextAfter, type Schedule } from '../schedule/instants.js';
import type { Policy } from '../config/schema.js';
import type { AlertRow, DigestRow, EventRow, JobStateRow, PageRow, RunRow, Store } from '../store/store.js';
import { FAILED_OUTCOMES } from '../model.js';
import { oneLine } from '../text.js';
import { systemTimeZone } from '../schedule/timezone.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** Long lists are cut here; the counts above them stay exact. */
const LIST_CAP = 50;
/** More scheduled instants than this in 24 h is "every few seconds": counting further tells nobody anything. */
const NEXT_RUNS_CAP = 2000;

/** Run outcomes that mean "this job did not do its work" (the same set `status` calls failing). */

/** A heal attempt's outcome, as the heal loop will hand it over (empty until it exists). */
export interface HealLine {
  at: number;
  job: string;
  rule?: string | null;
  /** A heal outcome (docs/concepts.md), e.g. fixed-verified, rolled-back, blocked, awaiting-approval. */
  outcome: string;
  detail?: string | null;
}

/** Heal outcomes that leave the decision with a person. */
const HEAL_NEEDS_APPROVAL = new Set(['awaiting-approval']);
const HEAL_BLOCKED = new Set(['blocked', 'needs-human', 'refused', 'rollback-failed']);

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
}

/** Reads the rows of a digest's window (and what is open now) from the store. */
export function digestFacts(store: Store, window: DigestWindow): DigestFacts {
  return {
    openAlerts: store.alerts.open(),
    windowAlerts: store.alerts.between(window.from, window.to),
    runs: store.runs.between(window.from, window.to),
    jobStates: store.jobStates.all(),
    killFlips: store.journal.between(window.from, window.to, 'kill-switch'),
    deadmanPings: store.journal.between(window.from, window.to, 'deadman'),
    pages: store.pages.between(window.from, window.to),
    unsentDigests: store.digests.unsent(),
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
  /** Jobs with an open, unfolded alert. */
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

function when(ms: number, tz: string): string {
  const s = formatInstant(ms, tz);
  return `${s.slice(0, 10)} ${s.slice(11, 16)}`;
}

function hours(ms: number): string {
  const h = Math.round((ms / HOUR_MS) * 100) / 100;
  return `${h} ${h === 1 ? 'hour' : 'hours'}`;
}

function quote(text: string): string {
  return `"${oneLine(text)}"`;
}

// ---- the model both renderings come from ----

interface Line {
  text: string;
  depth: 0 | 1;
}

interface Section {
  title: string;
  lines: Line[];
}

class SectionBuilder {
  readonly lines: Line[] = [];
  constructor(readonly title: string) {}
  add(text: string, depth: 0 | 1 = 0): void {
    this.lines.push({ text, depth });
  }
  /** Adds up to LIST_CAP items and says how many were left out. */
  addList(items: string[], depth: 0 | 1 = 0): void {
    for (const item of items.slice(0, LIST_CAP)) this.add(item, depth);
    if (items.length > LIST_CAP) this.add(`… and ${items.length - LIST_CAP} more`, depth);
  }
  build(): Section {
    return { title: this.title, lines: this.lines.length ? this.lines : [{ text: 'nothing', depth: 0 }] };
  }
}

export function verdictFor(totalJobs: number, needsYou: number, kill: KillState): string {
  let v: string;
  if (needsYou > 0) v = `${plural(needsYou, 'job')} ${needsYou === 1 ? 'needs' : 'need'} you`;
  else if (totalJobs === 0) v = 'No jobs configured';
  else if (totalJobs === 1) v = 'The 1 job is healthy';
  else v = `All ${totalJobs} jobs healthy`;
  // Healthy jobs with every autonomous action stopped is not an all-clear.
  if (kill.switchOn) return `${v}; kill switch is ON`;
  // Halted without the switch: the policy file is invalid (its sentence is in the kill-switch section).
  return kill.halted ? `${v}; autonomous actions are stopped` : v;
}

export function composeDigest(input: DigestInput): ComposedDigest {
  const { facts, jobs, policy, kill, date, window, now } = input;
  const heals = input.heals ?? [];
  const tz = digestZone(policy);
  const t = (ms: number): string => when(ms, tz);

  const open = facts.openAlerts;
  const unfolded = open.filter((a) => a.folded_under === null);
  // A job whose alert is folded under a dependency that no longer has an open alert needs you too.
  const blockingJobs = new Set(unfolded.map((a) => a.job));
  const orphaned = open.filter((a) => a.folded_under !== null && !blockingJobs.has(a.folded_under.split(':')[0]!));
  const needsYou = new Set([...unfolded, ...orphaned].map((a) => a.job)).size;
  const contained = input.containment;
  // Healthy jobs with no fix able to run is not an all-clear either.
  const config = input.config ?? { problems: [], lastGood: [] };
  const badFiles = new Set(config.problems.map((p) => p.file)).size;
  const verdict =
    verdictFor(jobs.size, needsYou, kill) +
    (badFiles ? `; ${plural(badFiles, 'spec file')} with errors` : '') +
    (contained && !contained.ok ? '; no fix can run (no sandbox)' : '');

  const runs = facts.runs;
  const sections: Section[] = [
    needsYouSection(open, unfolded, heals, t),
    ...configSection(config, jobs, tz),
    healSection(heals, t),
    runsSection(runs, t),
    precheckSection(runs),
    pausedSection(facts.jobStates, jobs, t),
    alertsSection(facts.windowAlerts, window, t),
    killSection(facts.killFlips, kill, t, contained),
    watcherSection(facts, policy, t),
    unsentSection(facts.unsentDigests, date, t),
    nextSection(facts.jobStates, jobs, now, t),
  ];
  const intro = `nightshift digest for ${date}, covering ${t(window.from)} to ${t(window.to)} (${hours(window.to - window.from)}; times in ${tz}).`;
  return { verdict, needsYou, text: renderText(verdict, intro, sections), html: renderHtml(verdict, intro, sections) };
}

/** Only when a file is invalid: an empty section would be noise every day. */
function configSection(config: ConfigState, jobs: Map<string, Job>, tz: string): Section[] {
  if (config.problems.length === 0) return [];
  const s = new SectionBuilder('Spec files with errors');
  const byFile = new Map<string, SpecProblem[]>();
  for (const p of config.problems) byFile.set(p.file, [...(byFile.get(p.file) ?? []), p]);
  for (const [file, problems] of byFile) {
    for (const p of problems) s.add(formatProblem(p));
    const g = config.lastGood.find((x) => x.file === file);
    if (g) s.add(`${lastGoodSentence(g.job, g.file, g.savedAt, jobs.get(g.job)?.timezone ?? tz)}.`, 1);
  }
  return [s.build()];
}

function alertLine(a: AlertRow, t: (ms: number) => string): string {
  const times = a.count === 1 ? 'once' : `${a.count} times, last ${t(a.last_seen_at)}`;
  return `${a.job}: ${a.kind} since ${t(a.opened_at)} (${times}): ${quote(a.message)}`;
}

function needsYouSection(open: AlertRow[], unfolded: AlertRow[], heals: HealLine[], t: (ms: number) => string): Section {
  const s = new SectionBuilder('Needs you');
  const folded = new Map<string, AlertRow[]>();
  for (const a of open) {
    if (a.folded_under === null) continue;
    // folded_under is the dependency's fingerprint (JOB:KIND); group by the job.
    const dep = a.folded_under.split(':')[0]!;
    const list = folded.get(dep) ?? [];
    list.push(a);
    folded.set(dep, list);
  }
  const shownUnder = new Set<string>();
  if (open.length === 0) s.add('no open alerts');
  for (const a of unfolded.slice(0, LIST_CAP)) {
    s.add(alertLine(a, t));
    if (shownUnder.has(a.job)) continue;
    shownUnder.add(a.job);
    for (const f of folded.get(a.job) ?? []) s.add(`blocked by ${a.job}: ${alertLine(f, t)}`, 1);
  }
  if (unfolded.length > LIST_CAP) s.add(`… and ${unfolded.length - LIST_CAP} more open alerts`);
  // Folded under a dependency that has no open alert of its own (it recovered first).
  for (const [dep, list] of folded) {
    if (shownUnder.has(dep)) continue;
    s.add(`blocked by ${dep} (which has no open alert now):`);
    for (const f of list) s.add(alertLine(f, t), 1);
  }
  const approvals = heals.filter((h) => HEAL_NEEDS_APPROVAL.has(h.outcome));
  const blocked = heals.filter((h) => HEAL_BLOCKED.has(h.outcome));
  s.add(`waiting for your approval: ${approvals.length ? approvals.length : 'none'}`);
  s.addList(
    approvals.map((h) => healLine(h, t)),
    1,
  );
  s.add(`heals blocked, waiting for a person: ${blocked.length ? blocked.length : 'none'}`);
  s.addList(
    blocked.map((h) => healLine(h, t)),
    1,
  );
  return s.build();
}

function healLine(h: HealLine, t: (ms: number) => string): string {
  const rule = h.rule ? ` by rule ${h.rule}` : '';
  const detail = h.detail ? `: ${quote(h.detail)}` : '';
  return `${t(h.at)} ${h.job}${rule}: ${h.outcome}${detail}`;
}

function healSection(heals: HealLine[], t: (ms: number) => string): Section {
  const s = new SectionBuilder('Fixed and rolled back');
  const done = heals.filter((h) => !HEAL_NEEDS_APPROVAL.has(h.outcome) && !HEAL_BLOCKED.has(h.outcome));
  if (done.length) {
    const byOutcome = countBy(done.map((h) => h.outcome));
    s.add(`${plural(done.length, 'heal attempt')}: ${[...byOutcome].map(([o, n]) => `${n} ${o}`).join(', ')}`);
    s.addList(
      done.map((h) => healLine(h, t)),
      1,
    );
  }
  return s.build();
}

function countBy(values: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}

const OUTCOME_ORDER = [
  'ok',
  'failed',
  'timeout',
  'wrong',
  'interrupted',
  'killed',
  'skipped-precheck',
  'skipped-overlap',
  'skipped-paused',
  'skipped-halted',
  'running',
];

function outcomeWords(counts: Map<string, number>): string {
  return [...counts]
    .sort((a, b) => OUTCOME_ORDER.indexOf(a[0]) - OUTCOME_ORDER.indexOf(b[0]))
    .map(([o, n]) => `${n} ${o}`)
    .join(', ');
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

function runsSection(runs: RunRow[], t: (ms: number) => string): Section {
  const s = new SectionBuilder('Failures and flips');
  if (runs.length === 0) {
    s.add('no runs in this window');
    return s.build();
  }
  s.add(`${plural(runs.length, 'run')}: ${outcomeWords(countBy(runs.map((r) => r.outcome ?? 'running')))}`);
  const byJob = new Map<string, RunRow[]>();
  for (const r of runs) {
    const list = byJob.get(r.job);
    if (list) list.push(r);
    else byJob.set(r.job, [r]);
  }
  const troubled: string[] = [];
  let quiet = 0;
  for (const [job, list] of [...byJob].sort((a, b) => byName(a[0], b[0]))) {
    const bad = list.filter((r) => r.outcome !== null && FAILED_OUTCOMES.has(r.outcome));
    const flips = countFlips(list);
    if (bad.length === 0 && flips === 0) {
      quiet++;
      continue;
    }
    const lastBad = bad[bad.length - 1];
    const flipText = flips ? `; flipped ${plural(flips, 'time')} between ok and failing` : '';
    const lastText = lastBad
      ? `; last failure ${t(lastBad.ended_at ?? lastBad.created_at)}${lastBad.reason ? `: ${quote(lastBad.reason)}` : ''}`
      : '';
    troubled.push(
      `${job}: ${plural(list.length, 'run')} (${outcomeWords(countBy(list.map((r) => r.outcome ?? 'running')))})${flipText}${lastText}`,
    );
  }
  s.addList(troubled);
  if (quiet) s.add(`${plural(quiet, 'other job')} ran without a failure`);
  return s.build();
}

function precheckSection(runs: RunRow[]): Section {
  const s = new SectionBuilder('Skipped by pre-check');
  const skipped = runs.filter((r) => r.outcome === 'skipped-precheck');
  s.add(`${plural(skipped.length, 'run')} skipped by pre-check (LLM runs saved)`);
  const byJob = countBy(skipped.map((r) => r.job));
  s.addList(
    [...byJob].sort((a, b) => byName(a[0], b[0])).map(([job, n]) => `${job}: ${n}`),
    1,
  );
  return s.build();
}

function pausedSection(states: Map<string, JobStateRow>, jobs: Map<string, Job>, t: (ms: number) => string): Section {
  const s = new SectionBuilder('Paused jobs');
  const items: string[] = [];
  for (const st of [...states.values()].sort((a, b) => byName(a.job, b.job))) {
    if (st.paused !== 1 || !jobs.has(st.job)) continue;
    items.push(`${st.job}: paused${st.paused_at !== null ? ` since ${t(st.paused_at)}` : ''} (resume with: nightshift resume ${st.job})`);
  }
  for (const job of [...jobs.values()].sort((a, b) => byName(a.name, b.name))) {
    if (!job.spec.enabled) items.push(`${job.name}: disabled in its file (enabled: false)`);
  }
  if (items.length === 0) s.add('none');
  s.addList(items);
  return s.build();
}

function alertsSection(rows: AlertRow[], w: DigestWindow, t: (ms: number) => string): Section {
  const s = new SectionBuilder('Alerts opened and resolved');
  const opened = rows.filter((a) => a.opened_at >= w.from && a.opened_at < w.to);
  const resolved = rows.filter((a) => a.resolved_at !== null && a.resolved_at >= w.from && a.resolved_at < w.to);
  const how = countBy(resolved.map((a) => a.resolution ?? 'resolved'));
  const howText = how.size ? ` (${[...how].map(([r, n]) => `${n} ${r}`).join(', ')})` : '';
  s.add(`${opened.length} opened, ${resolved.length} resolved${howText}`);
  s.addList(
    rows.map((a) => {
      const end = a.resolved_at === null ? 'still open' : `resolved ${t(a.resolved_at)} (${a.resolution ?? 'resolved'})`;
      return `${a.job} ${a.kind}: opened ${t(a.opened_at)}, ${end}`;
    }),
    1,
  );
  return s.build();
}

function killSection(flips: EventRow[], kill: KillState, t: (ms: number) => string, contained?: Containment): Section {
  const s = new SectionBuilder('Kill switch');
  s.add(
    kill.switchOn
      ? `now ON${kill.since !== null ? ` since ${t(kill.since)}` : ''}: ${oneLine(kill.reason)}`
      : kill.halted
        ? `now off, but autonomous actions are stopped: ${oneLine(kill.reason)}`
        : 'now off',
  );
  if (contained && !contained.ok)
    s.add(
      `containment UNAVAILABLE: jobs run uncontained and no fix, brain or probe runs (heal outcome uncontained) — ${oneLine(contained.reason, 400)}`,
    );
  if (flips.length === 0) s.add('not switched in this window');
  else {
    s.add(`switched ${plural(flips.length, 'time')} in this window:`);
    s.addList(
      flips.map((e) => `${t(e.at)}: ${oneLine(e.message)}`),
      1,
    );
  }
  return s.build();
}

function watcherSection(facts: DigestFacts, policy: Policy, t: (ms: number) => string): Section {
  const s = new SectionBuilder('Pages and deadman');
  const pages = facts.pages;
  if (pages.length === 0) s.add('nobody was paged');
  else {
    s.add(`${plural(pages.length, 'page')}: ${outcomeWords(countBy(pages.map((p) => p.outcome ?? 'running')))}`);
    s.addList(
      pages.map(
        (p) =>
          `${t(p.at)} ${oneLine(p.event, 100)} (${oneLine(p.fingerprint, 100)}): ${p.outcome ?? 'running'}${p.detail ? `: ${quote(p.detail)}` : ''}`,
      ),
      1,
    );
  }
  const pings = facts.deadmanPings;
  const failed = pings.filter((e) => !isOkEvent(e.data));
  if (pings.length === 0) s.add(policy.deadman ? 'deadman: no ping in this window' : 'deadman: not configured (policy.deadman)');
  else {
    s.add(`deadman: ${pings.length - failed.length} ok, ${failed.length} failed`);
    const last = failed[failed.length - 1];
    if (last) s.add(`last failure ${t(last.at)}: ${oneLine(last.message)}`, 1);
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

function unsentSection(unsent: DigestRow[], date: string, t: (ms: number) => string): Section {
  const s = new SectionBuilder('Digests not sent');
  const rows = unsent.filter((d) => d.date !== date && d.last_error !== null).reverse();
  if (rows.length === 0) s.add('none');
  s.addList(
    rows.map((d) => {
      const next = d.next_attempt_at !== null ? `trying again ${t(d.next_attempt_at)}` : 'no more attempts';
      return `${d.date}: not sent after ${plural(d.attempts, 'attempt')} (${next}); the text is in digests/${d.date}.md in the state folder; last error: ${quote(d.last_error ?? '')}`;
    }),
  );
  return s.build();
}

function nextSection(states: Map<string, JobStateRow>, jobs: Map<string, Job>, now: number, t: (ms: number) => string): Section {
  const s = new SectionBuilder('Next 24 hours');
  const until = now + DAY_MS;
  const items: Array<{ name: string; count: number; first: number; capped: boolean }> = [];
  const paused: string[] = [];
  let idle = 0;
  for (const job of jobs.values()) {
    if (!job.managed || !job.spec.enabled || !job.schedule) continue;
    if (states.get(job.name)?.paused === 1) {
      paused.push(job.name);
      continue;
    }
    const r = upcoming(job.schedule, now, until);
    if (r.count === 0) idle++;
    else items.push({ name: job.name, ...r });
  }
  items.sort((a, b) => a.first - b.first || byName(a.name, b.name));
  const total = items.reduce((n, i) => n + i.count, 0);
  const capped = items.some((i) => i.capped);
  s.add(`${capped ? 'more than ' : ''}${plural(total, 'scheduled run')} of ${plural(items.length, 'job')}`);
  s.addList(
    items.map((i) => `${i.name}: ${i.capped ? 'more than ' : ''}${plural(i.count, 'run')}, first ${t(i.first)}`),
    1,
  );
  if (idle) s.add(`${plural(idle, 'scheduled job')} ${idle === 1 ? 'has' : 'have'} no run in the next 24 hours`);
  if (paused.length) s.add(`not counted, paused: ${paused.sort().join(', ')}`);
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

function renderText(verdict: string, intro: string, sections: Section[]): string {
  const out = [oneLine(verdict), '', intro];
  for (const sec of sections) {
    out.push('', sec.title, '-'.repeat(sec.title.length));
    for (const l of sec.lines) out.push(`${l.depth ? '    ' : ''}- ${l.text}`);
  }
  return `${out.join('\n')}\n`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function renderHtml(verdict: string, intro: string, sections: Section[]): string {
  const e = escapeHtml;
  const out = [
    '<!doctype html>',
    '<html><head><meta charset="utf-8"><title>nightshift digest</title></head>',
    '<body style="font-family: sans-serif; line-height: 1.4">',
    `<h1>${e(oneLine(verdict))}</h1>`,
    `<p>${e(intro)}</p>`,
  ];
  for (const sec of sections) {
    out.push(`<h2>${e(sec.title)}</h2>`, '<ul>');
    // A depth-1 line belongs to the list item before it.
    const items: Array<{ text: string; children: string[] }> = [];
    for (const l of sec.lines) {
      const parent = items[items.length - 1];
      if (l.depth === 1 && parent) parent.children.push(l.text);
      else items.push({ text: l.text, children: [] });
    }
    for (const item of items) {
      const children = item.children.length ? `<ul>${item.children.map((c) => `<li>${e(c)}</li>`).join('')}</ul>` : '';
      out.push(`<li>${e(item.text)}${children}</li>`);
    }
    out.push('</ul>');
  }
  out.push('</body></html>');
  return `${out.join('\n')}\n`;
}
