// What `nightshift status` shows: a dashboard that a person who does not read code can follow.
// Built from the files and SQLite alone, so it works with the daemon down too.
import { AT_BOOT } from '../config/schema.js';
import { dirname } from 'node:path';
import { formatDuration } from '../config/duration.js';
import type { LoadedHome } from '../config/home.js';
import { byName } from '../names.js';
import { nextAfter, readableTime } from '../schedule/instants.js';
import { formatProblem } from '../config/parse.js';
import { switchWhy, type KillState } from '../control/killswitch.js';
import { systemTimeZone } from '../schedule/timezone.js';
import { containment, type Containment } from '../run/launch.js';
import type { AlertRow, RunRow, Store } from '../store/store.js';
import { oneLine } from '../text.js';
import { attention } from './attention.js';
import { FAILED_OUTCOMES, refOf } from '../model.js';
import { successDeadline } from '../watch/watchdog.js';

export type JobHealth = 'ok' | 'running' | 'failing' | 'paused' | 'disabled' | 'never-run' | 'external' | 'manual-only';

export interface JobStatus {
  name: string;
  description: string | null;
  health: JobHealth;
  schedule: string;
  timezone: string;
  lastRun: null | {
    id: number;
    outcome: string | null;
    trigger: string;
    endedAt: number | null;
    durationMs: number | null;
    reason: string | null;
  };
  running: number[];
  nextRun: number | null;
  /** An external job: the time its next success ping is expected by (the instant plus grace), after which "missed" is raised. */
  pingExpectedBy: number | null;
  lastSuccessAt: number | null;
  paused: boolean;
  /** Opted out of its own PID namespace (seeAllProcesses: true): stopped by process group. */
  seeAllProcesses: boolean;
  /** The account of its `user:` (null: it runs as nightshift's own account). */
  user: string | null;
  alerts: Array<{ id: number; kind: string; since: number; count: number; message: string; foldedUnder: string | null }>;
  /** Its file is invalid now: the version saved at `savedAt` runs until the file is fixed. */
  lastGood: { file: string; savedAt: number } | null;
}

export interface StatusReport {
  home: string;
  state: string;
  daemon: { running: boolean; pid?: number; startedAt?: number; version?: string };
  generatedAt: number;
  jobs: JobStatus[];
  problems: string[];
  /** Job files that are invalid and have no valid version to run: their job is not running. */
  neverValid: string[];
  warnings: string[];
  /** `on`: the switch's file; `halted`: every autonomous action stops (the switch, or an invalid policy). */
  killSwitch: {
    on: boolean;
    halted: boolean;
    reason: string;
    /** Why it counts as on ("/srv/state/KILL exists"), or "…absent". */
    why: string;
    /** When its file appeared (its mtime), when on and readable. */
    since: number | null;
    path: string;
    lastFlip: { at: number; message: string; on: boolean } | null;
  };
  pendingApprovals: number;
  /** Whether every process runs in a sandbox here (the launcher's check). */
  containment: Containment;
  /** The jobs that need a person (report/attention.ts: the digest counts the same). */
  needsYou: string[];
  healthy: boolean;
}

export interface LiveInfo {
  pid: number;
  startedAt: number;
  version: string;
  jobs: Array<{ name: string; running: number[]; nextRun: number | null; successDeadline?: number | null }>;
  problems: string[];
  /** Whether the daemon serves its dashboard now (absent from a daemon older than the dashboard). */
  dashboard?: { listening: boolean; listen: string | null; publicUrl: string | null };
}

export function buildStatus(home: LoadedHome, store: Store | null, live: LiveInfo | null, now: number, kill: KillState): StatusReport {
  const openAlerts = new Map<string, AlertRow[]>();
  for (const a of store?.alerts.open() ?? []) openAlerts.set(a.job, [...(openAlerts.get(a.job) ?? []), a]);
  const flip = store?.journal.recent(1, 'kill-switch')[0];
  const last = store?.runs.lastFinishedOfEach() ?? new Map<string, RunRow>();
  const successes = store?.life.lastSuccesses() ?? new Map<string, number>();
  const states = store?.jobStates.all() ?? new Map<string, never>();
  const liveJobs = new Map((live?.jobs ?? []).map((j) => [j.name, j]));
  const openRuns = live ? [] : (store?.runs.open() ?? []);

  const jobs: JobStatus[] = [];
  for (const job of [...home.jobs.values()].sort((a, b) => byName(a.name, b.name))) {
    const lr = last.get(job.name);
    const st = states.get(job.name);
    const paused = st?.paused === 1;
    const lj = liveJobs.get(job.name);
    const running = lj ? lj.running : [];
    let nextRun: number | null = lj ? lj.nextRun : null;
    if (!live && job.schedule && job.managed && job.spec.enabled) nextRun = nextAfter(job.schedule, Math.max(now, st?.cursor ?? now));
    // The watchdog's own timer when it runs; else the deadline it would arm if it started now (a
    // start begins every job's clock afresh), by the same rule.
    let pingExpectedBy: number | null = null;
    if (!job.managed && job.spec.enabled && !paused)
      pingExpectedBy = lj?.successDeadline !== undefined ? lj.successDeadline : (successDeadline(job, now)?.deadline ?? null);
    let health: JobHealth;
    if (!job.spec.enabled) health = 'disabled';
    else if (paused) health = 'paused';
    else if (running.length > 0) health = 'running';
    else if (!job.managed) health = 'external';
    else if (!lr) health = job.schedule ? 'never-run' : 'manual-only';
    else if (lr.outcome && FAILED_OUTCOMES.has(lr.outcome)) health = 'failing';
    else health = 'ok';
    jobs.push({
      name: job.name,
      description: job.spec.description ?? null,
      health,
      seeAllProcesses: job.spec.seeAllProcesses,
      user: job.spec.user ?? null,
      schedule: job.spec.schedule
        ? job.spec.schedule === AT_BOOT
          ? AT_BOOT
          : job.spec.schedule.source
        : job.spec.every !== undefined
          ? `every ${formatDuration(job.spec.every)}`
          : 'on demand',
      timezone: job.timezone,
      lastRun: lr
        ? { id: lr.id, outcome: lr.outcome, trigger: lr.trigger, endedAt: lr.ended_at, durationMs: lr.duration_ms, reason: lr.reason }
        : null,
      running,
      nextRun,
      pingExpectedBy,
      lastSuccessAt: successes.get(job.name) ?? null,
      paused,
      lastGood: home.lastGood.has(job.name) ? { file: job.file, savedAt: home.lastGood.get(job.name)!.savedAt } : null,
      alerts: (openAlerts.get(job.name) ?? []).map((a) => ({
        id: a.id,
        kind: a.kind,
        since: a.opened_at,
        count: a.count,
        message: a.message,
        foldedUnder: a.folded_under,
      })),
    });
  }
  // Under way now: the daemon's own list, or with it down the runs recorded as started and not ended.
  const runningNow = new Set(live ? live.jobs.filter((j) => j.running.length > 0).map((j) => j.name) : openRuns.map((r) => r.job));
  const need = attention(
    [...home.jobs.values()].map((j) => ({
      name: j.name,
      watched: j.managed && j.spec.enabled && states.get(j.name)?.paused !== 1,
      running: runningNow.has(j.name),
      lastOutcome: last.get(j.name)?.outcome ?? null,
    })),
    [...openAlerts.values()].flat(),
  );
  const problems = live ? live.problems : home.problems.map(formatProblem);
  const loaded = new Set([...home.jobs.values()].map((j) => j.file));
  const neverValid = [...new Set(home.problems.map((p) => p.file))].filter((f) => dirname(f) === home.paths.jobsDir && !loaded.has(f));
  return {
    neverValid,
    home: home.paths.home,
    state: home.paths.state,
    daemon: live ? { running: true, pid: live.pid, startedAt: live.startedAt, version: live.version } : { running: false },
    generatedAt: now,
    jobs,
    problems,
    warnings: home.warnings.map(formatProblem),
    killSwitch: {
      on: kill.switchOn,
      halted: kill.halted,
      reason: kill.reason,
      why: switchWhy(kill),
      since: kill.since,
      path: kill.path,
      lastFlip: flip ? { at: flip.at, message: flip.message, on: flipOn(flip.data) } : null,
    },
    pendingApprovals: 0,
    containment: containment(),
    needsYou: need.jobs,
    healthy: live !== null && problems.length === 0 && need.jobs.length === 0,
  };
}

/** One sentence on a job that runs its last good version, the same in status, validate and the digest. */
export function lastGoodSentence(job: string, file: string, savedAt: number, tz: string): string {
  return `${job} keeps running its last good version, from ${readableTime(savedAt, tz)}, until ${file} is fixed`;
}

function flipOn(data: string | null): boolean {
  try {
    return (JSON.parse(data ?? '{}') as { on?: unknown }).on === true;
  } catch {
    return false;
  }
}

export function ago(ms: number): string {
  if (ms < 0) return `in ${formatDuration(-ms)}`;
  if (ms < 1000) return 'just now';
  return `${formatDuration(ms)} ago`;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

const HEALTH_WORDS: Record<JobHealth, string> = {
  ok: 'OK',
  running: 'RUNNING',
  failing: 'FAILING',
  paused: 'PAUSED',
  disabled: 'disabled',
  'never-run': 'waiting',
  external: 'external',
  'manual-only': 'on demand',
};

/** The kill switch in one line that names it once: on since when and why, or off since when. */
function killLine(ks: StatusReport['killSwitch'], now: number, tz: string): string {
  if (ks.on) {
    const since = ks.since !== null ? ` since ${readableTime(ks.since, tz)}` : '';
    return `Kill switch: ON${since} (${ks.why}) — autonomous actions and agent jobs are halted; nightshift kill off turns it off.`;
  }
  const off = ks.lastFlip && !ks.lastFlip.on ? ` since ${readableTime(ks.lastFlip.at, tz)} (${ago(now - ks.lastFlip.at)})` : '';
  return ks.halted ? `Kill switch: off${off}, but autonomous actions are STOPPED: ${ks.reason}.` : `Kill switch: off${off}.`;
}

/** NEXT RUN: when nightshift runs the job next, or for an external job when its ping must have come. */
function nextRunCell(j: JobStatus, now: number): string {
  if (j.pingExpectedBy !== null) return `ping expected by ${readableTime(j.pingExpectedBy, j.timezone)} (${ago(now - j.pingExpectedBy)})`;
  return j.nextRun
    ? `${readableTime(j.nextRun, j.timezone)} (${ago(now - j.nextRun)})`
    : j.health === 'disabled'
      ? '— disabled'
      : j.schedule === AT_BOOT
        ? '— after the next boot (@reboot)'
        : `— ${j.schedule}`;
}

/** `zone`: where the header's own times are shown (they belong to no job): the policy's zone, else the system's. */
export function renderStatus(r: StatusReport, zone: string = systemTimeZone()): string {
  const now = r.generatedAt;
  const lines: string[] = [];
  // A job needs you when something of its own is wrong; one blocked by a failing dependency is shown under it.
  const needing = new Set(r.needsYou);
  const failing = r.jobs.filter((j) => needing.has(j.name));
  const verdict =
    failing.length === 0 && r.problems.length === 0
      ? `All ${r.jobs.length} job(s) healthy.`
      : [
          failing.length ? `${failing.length} job(s) failing: ${failing.map((j) => j.name).join(', ')}.` : '',
          r.problems.length ? `${r.problems.length} problem(s) in the configuration (below).` : '',
        ]
          .filter(Boolean)
          .join(' ');
  lines.push(
    r.daemon.running
      ? `nightshift — ${verdict}`
      : `nightshift is NOT RUNNING — nothing is being scheduled or watched. As last recorded: ${verdict}`,
  );
  lines.push(
    r.daemon.running
      ? `Daemon: running (pid ${r.daemon.pid}, up ${formatDuration(now - (r.daemon.startedAt ?? now))}).  Home: ${r.home}`
      : `Daemon: NOT RUNNING — nothing is being scheduled. Start it with: systemctl start nightshift  (Home: ${r.home})`,
  );
  lines.push(`${killLine(r.killSwitch, now, zone)}  Approvals waiting: ${r.pendingApprovals}.`);
  const seeAll = r.jobs.filter((j) => j.seeAllProcesses).map((j) => j.name);
  lines.push(
    r.containment.ok
      ? `Containment: on — every job, fix and probe runs in its own sandbox${seeAll.length ? ` (sharing the machine's processes, stopped by process group: ${seeAll.join(', ')})` : ''}.`
      : `Containment: UNAVAILABLE — jobs run uncontained and no fix, brain or probe runs (heal outcome uncontained). ${r.containment.reason}.`,
  );
  const others = r.jobs.filter((j) => j.user !== null).map((j) => `${j.name} as ${j.user}`);
  if (others.length > 0) lines.push(`Jobs run as other accounts: ${others.join(', ')}.`);
  lines.push('');
  const w = Math.max(4, ...r.jobs.map((j) => j.name.length)) + 2;
  const nextCells = new Map(r.jobs.map((j) => [j.name, nextRunCell(j, now)]));
  const nw = Math.max(34, ...[...nextCells.values()].map((c) => c.length + 2));
  lines.push(`${pad('JOB', w)}${pad('STATE', 11)}${pad('LAST RUN', 36)}${pad('NEXT RUN', nw)}${pad('LAST SUCCESS', 16)}ALERT`);
  for (const j of r.jobs) {
    let lastRun = '—';
    if (j.running.length) lastRun = `running now (run #${j.running.join(', #')})`;
    else if (j.lastRun)
      lastRun = `${j.lastRun.outcome} ${j.lastRun.endedAt ? ago(now - j.lastRun.endedAt) : ''}${j.lastRun.durationMs != null ? ` (took ${formatDuration(j.lastRun.durationMs)})` : ''}`;
    const succ = j.lastSuccessAt ? ago(now - j.lastSuccessAt) : 'never';
    const alert = j.alerts.length
      ? j.alerts
          .map(
            (a) =>
              `${a.kind}${a.count > 1 ? ` x${a.count}` : ''} since ${ago(now - a.since)}${a.foldedUnder ? ` (blocked by ${a.foldedUnder.split(':')[0]})` : ''}`,
          )
          .join('; ')
      : j.lastGood
        ? 'its file is invalid (below)'
        : '—';
    lines.push(
      `${pad(j.name, w)}${pad(HEALTH_WORDS[j.health], 11)}${pad(lastRun, 36)}${pad(nextCells.get(j.name)!, nw)}${pad(succ, 16)}${alert}`,
    );
  }
  if (r.jobs.length === 0) lines.push('(no jobs: add a file to the jobs/ folder)');
  const withAlerts = r.jobs.filter((j) => j.alerts.length > 0);
  if (withAlerts.length) {
    lines.push('', 'Open alerts (nightshift alerts for details):');
    for (const j of withAlerts)
      for (const a of j.alerts) lines.push(`  ${refOf('alert', a.id)} ${j.name} ${a.kind}: ${oneLine(a.message)}`);
  }
  const why = r.jobs.filter((j) => j.health === 'failing' && j.alerts.length === 0 && j.lastRun?.reason);
  if (why.length) {
    lines.push('', 'Why jobs are failing:');
    for (const j of why) lines.push(`  ${j.name}: run #${j.lastRun!.id} ${j.lastRun!.reason}`);
  }
  const stale = r.jobs.filter((j) => j.lastGood);
  if (stale.length || r.neverValid.length) {
    lines.push('', 'Jobs whose file is invalid now:');
    for (const j of stale) lines.push(`  ${lastGoodSentence(j.name, j.lastGood!.file, j.lastGood!.savedAt, j.timezone)}.`);
    for (const f of r.neverValid) lines.push(`  ${f} has never been valid: its job is not running.`);
  }
  if (r.problems.length) {
    lines.push('', 'Configuration problems (the last good version of each file keeps running):');
    for (const p of r.problems) lines.push(`  ${p}`);
  }
  if (r.warnings.length) {
    lines.push('', 'Warnings:');
    for (const p of r.warnings) lines.push(`  ${p}`);
  }
  return lines.join('\n');
}

export function renderRuns(rows: RunRow[], tzOf: (job: string) => string): string {
  if (rows.length === 0) return 'No runs recorded yet.';
  const lines = [`${pad('RUN', 8)}${pad('JOB', 22)}${pad('TRIGGER', 10)}${pad('STARTED', 28)}${pad('TOOK', 9)}${pad('OUTCOME', 18)}WHY`];
  for (const r of rows) {
    const at = r.started_at ?? r.created_at;
    lines.push(
      `${pad(`#${r.id}`, 8)}${pad(r.job, 22)}${pad(r.trigger, 10)}${pad(readableTime(at, tzOf(r.job), true), 28)}${pad(r.duration_ms != null ? formatDuration(r.duration_ms) : '—', 9)}${pad(r.outcome ?? 'running', 18)}${oneLine(r.reason ?? '')}`,
    );
  }
  return lines.join('\n');
}

export function renderAlerts(rows: AlertRow[], now: number, tzOf: (job: string) => string): string {
  if (rows.length === 0) return 'No alerts.';
  const lines = [
    `${pad('ALERT', 8)}${pad('JOB', 22)}${pad('KIND', 8)}${pad('COUNT', 7)}${pad('OPENED', 36)}${pad('STATE', 26)}WHAT HAPPENED`,
  ];
  for (const a of rows) {
    const state = a.resolved_at
      ? `${a.resolution ?? 'resolved'} ${ago(now - a.resolved_at)}`
      : a.folded_under
        ? `open, blocked by ${a.folded_under.split(':')[0]}`
        : 'OPEN';
    lines.push(
      `${pad(refOf('alert', a.id), 8)}${pad(a.job, 22)}${pad(a.kind, 8)}${pad(String(a.count), 7)}${pad(`${readableTime(a.opened_at, tzOf(a.job))} (${ago(now - a.opened_at)})`, 36)}${pad(state, 26)}${oneLine(a.message)}`,
    );
  }
  return lines.join('\n');
}
