// Notices what went wrong and raises alerts: a run that failed after its retries, passed its
// timeout, or exited 0 with a broken expectation; a job whose success did not come by its
// expected instant + grace; an external job that started and never ended. Deadlines come from the
// same schedule code as the scheduler, and one timer waits for the earliest of them.
import { formatDuration } from '../config/duration.js';
import type { Job } from '../config/home.js';
import type { Logger } from '../log.js';
import { nextAfter, readableTime } from '../schedule/instants.js';
import type { AlertRow, RunRow, Store } from '../store/store.js';
import { ALERTING_OUTCOMES, isHealTrigger, type AlertKind } from '../model.js';
import { DeadlineTimer, type ClockJump } from '../schedule/timer.js';
import { type Clock } from '../clock.js';
import { errorMessage } from '../errors.js';
import { Emitter } from '../events.js';

const EXTERNAL_DEFAULT_GRACE = 5 * 60_000;

export interface WatchdogDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  getJob: (name: string) => Job | undefined;
}

/** What the watchdog tells the others. */
export type WatchdogEvents = {
  /** A new or counted alert; `isNew` and not folded is what may page. */
  alert: { alert: AlertRow; isNew: boolean };
  resolved: AlertRow[];
};

/** How late a success may be: explicit heartbeat.grace, else enough for the job's own timeout and retries. */
export function graceOf(job: Job): number {
  if (job.spec.heartbeat?.grace !== undefined) return job.spec.heartbeat.grace;
  if (!job.managed) return EXTERNAL_DEFAULT_GRACE;
  const once = job.spec.timeout + job.spec.killGrace;
  const r = job.spec.retries;
  return once + (r ? r.count * (r.delay + once) : 0) + 60_000;
}

/**
 * The rule of lateness, in one place: a success is expected by the job's first schedule instant
 * after `since` (its last sign of life, or when its clock started) plus its grace. Null for a job
 * with no schedule or no instant ahead. The watchdog arms its timer with it; status and `next`
 * show it as "expected by".
 */
export function successDeadline(job: Job, since: number): { expected: number; deadline: number } | null {
  if (!job.schedule) return null;
  const expected = nextAfter(job.schedule, since);
  return expected === null ? null : { expected, deadline: expected + graceOf(job) };
}

type Key = `missed:${string}` | `hung:${string}`;

/**
 * A heal's own runs (its rerun fix and its probe) are judged by the heal loop: their success is
 * not a self-recovery and their failure is the attempt's, not a new incident. Except a rerun of a
 * long-running job: the heal does not wait for its end, so its end is judged as any run's.
 */
export function judgedByHeal(job: Job, trigger: string): boolean {
  return isHealTrigger(trigger) && (trigger === 'probe' || !job.longRunning);
}

export class Watchdog {
  readonly events: Emitter<WatchdogEvents>;
  private readonly timer: DeadlineTimer<Key>;
  /** Per job: the moment its clock (re)started — boot, added, resumed. Nothing before it can be "missed". */
  private readonly clockStart = new Map<string, number>();
  /** The expected instant each missed-deadline is for. */
  private readonly expected = new Map<string, number>();

  constructor(private readonly deps: WatchdogDeps) {
    this.events = new Emitter((err, event) => deps.log.error({ event, err: errorMessage(err) }, 'a listener of the watchdog failed'));
    this.timer = new DeadlineTimer<Key>(
      (key, at) => this.due(key, at),
      deps.clock,
      (err, key) => deps.log.error({ key, err: errorMessage(err) }, 'watchdog deadline handler failed'),
      (jump) => this.clockJumped(jump),
    );
  }

  /**
   * The wall clock stepped. Instants the clock jumped over (forward) or that come round again
   * (backward) are the scheduler's business (a catch-up, a missed-by-clock-jump record, a
   * repeat), not missed deadlines: each job's clock starts afresh at the new time, as after a
   * restart. An instant that had really come before the step keeps its deadline, moved with the
   * clock so that its grace stays the same real time, and so do hang deadlines of external jobs:
   * an alert that was due is still raised, on time.
   */
  private clockJumped(jump: ClockJump): void {
    const now = this.deps.clock.now();
    for (const name of this.clockStart.keys()) {
      const job = this.deps.getJob(name);
      if (!job) continue;
      this.clockStart.set(name, now);
      const hung = this.timer.get(`hung:${name}`);
      if (hung !== undefined) this.timer.set(`hung:${name}`, hung + jump.deltaMs);
      const missed = this.timer.get(`missed:${name}`);
      const expected = this.expected.get(name);
      if (missed !== undefined && expected !== undefined && expected <= jump.before)
        this.timer.set(`missed:${name}`, missed + jump.deltaMs);
      else this.armMissed(job);
    }
  }

  /**
   * `downSince`: when the previous daemon was last seen doing anything (null on a first start).
   * Deadlines of instants expected while we were down are not raised (no burst after a restart);
   * an instant expected while the previous daemon was still up keeps its deadline if its grace
   * runs past this start — a restart must not lose a real miss.
   */
  start(jobs: Iterable<Job>, downSince: number | null = null): void {
    const now = this.deps.clock.now();
    // One read transaction: one snapshot and one lock for 10,000 jobs' look-ups.
    this.deps.store.batch(() => {
      for (const job of jobs) {
        this.clockStart.set(job.name, now);
        if (downSince !== null && job.schedule && job.spec.enabled) {
          const d = successDeadline(job, this.deps.store.life.lastLifeAt(job.name) ?? 0);
          if (d !== null && d.expected <= downSince && d.deadline > now) this.clockStart.set(job.name, 0);
        }
        this.armMissed(job);
        this.armHungFromStore(job, now);
        this.raiseLostAlert(job);
      }
    });
    this.timer.start();
  }

  /**
   * A run's row is committed before its alert is raised (two transactions): a kill -9 between
   * them would lose the alert for good. At start, a last run that failed with no alert of its own
   * gets it now.
   */
  private raiseLostAlert(job: Job): void {
    const last = this.deps.store.runs.lastFinished(job.name);
    if (!last || !(last.outcome && ALERTING_OUTCOMES.has(last.outcome)) || last.retry_at !== null) return;
    if (this.deps.store.alerts.forRun(job.name, last.id)) return;
    this.deps.log.warn({ job: job.name, run: last.id }, 'the alert of a run that failed just before nightshift stopped is raised now');
    this.runFinished(last);
  }

  stop(): void {
    this.timer.stop();
  }

  /** The earliest pending deadline (for status and tests). */
  nextDeadline(job: string): { missed?: number; hung?: number } {
    return { missed: this.timer.get(`missed:${job}`), hung: this.timer.get(`hung:${job}`) };
  }

  jobChanged(job: Job, isNew: boolean): void {
    if (isNew) this.clockStart.set(job.name, this.deps.clock.now());
    this.armMissed(job);
  }

  jobRemoved(name: string): void {
    // Nothing is left to recover: its alerts end with the job, and say so.
    const resolved = this.deps.store.alerts.resolve(name, this.deps.clock.now(), 'job-removed');
    if (resolved.length) this.unfoldDependents(name);
    this.timer.delete(`missed:${name}`);
    this.timer.delete(`hung:${name}`);
    this.clockStart.delete(name);
    this.expected.delete(name);
  }

  /** Resuming starts the job's clock afresh; pausing stops its deadlines. */
  pausedChanged(job: Job, paused: boolean): void {
    if (paused) {
      this.timer.delete(`missed:${job.name}`);
      return;
    }
    this.clockStart.set(job.name, this.deps.clock.now());
    this.armMissed(job);
  }

  // ---- events from the supervisor ----

  /** The runner's timeout fired: raise `hung` now, not after the kill grace. */
  runTimedOut(job: Job, runId: number, outputSoFar: string | null = null): void {
    this.raise(
      job,
      'hung',
      `run #${runId} passed its timeout of ${formatDuration(job.spec.timeout)}; nightshift is stopping it (SIGTERM, then SIGKILL after ${formatDuration(job.spec.killGrace)})`,
      {
        runId,
        outputTail: outputSoFar,
      },
    );
  }

  runFinished(row: RunRow): void {
    const job = this.deps.getJob(row.job);
    if (!job || row.outcome === null) return;
    if (judgedByHeal(job, row.trigger)) return;
    const now = this.deps.clock.now();
    switch (row.outcome) {
      case 'ok':
        this.resolveAll(job, now, `run #${row.id} succeeded`);
        this.armMissed(job);
        return;
      case 'skipped-precheck':
      case 'skipped-halted':
        this.armMissed(job);
        return;
      case 'failed':
        if (row.retry_at !== null) return; // not failed yet: a retry is planned
        this.raise(job, 'failed', `run #${row.id} failed: ${row.reason ?? 'no reason recorded'}`, {
          runId: row.id,
          exitCode: row.exit_code,
          outputTail: row.output_tail,
        });
        return;
      case 'timeout': {
        const open = this.deps.store.alerts.openFor(`${job.name}:hung`);
        if (open?.run_id === row.id) return; // raised when the timeout fired
        this.raise(job, 'hung', `run #${row.id} ${row.reason ?? 'passed its timeout'}`, {
          runId: row.id,
          exitCode: row.exit_code,
          outputTail: row.output_tail,
        });
        return;
      }
      case 'wrong':
        this.raise(job, 'wrong', `run #${row.id} ${row.reason ?? 'exited 0 but an expectation failed'}`, {
          runId: row.id,
          exitCode: row.exit_code,
          outputTail: row.output_tail,
        });
        return;
      default:
        return; // killed, interrupted, skipped-overlap, skipped-paused: not the job's fault
    }
  }

  // ---- heartbeats of external jobs ----

  /** `at`: when it happened, if earlier than now (a heartbeat-file touch written a moment later). */
  heartbeat(
    job: Job,
    kind: 'start' | 'success' | 'fail',
    source: string,
    message?: string,
    at?: number,
    output: string | null = null,
  ): { durationMs: number | null } {
    const { store, clock } = this.deps;
    const now = at ?? clock.now();
    let durationMs: number | null = null;
    if (kind !== 'start') {
      const last = store.heartbeats.last(job.name);
      if (last?.kind === 'start') durationMs = now - last.at;
    }
    store.heartbeats.record(job.name, kind, now, source, durationMs, output);
    if (kind === 'start') {
      this.timer.set(`hung:${job.name}`, now + job.spec.timeout);
      return { durationMs };
    }
    this.timer.delete(`hung:${job.name}`);
    if (kind === 'success') {
      this.resolveAll(job, now, `success ping (${source})`);
      this.armMissed(job);
    } else {
      this.raise(job, 'failed', `the job reported a failure (${source})${message ? `: ${message}` : ''}`, {});
    }
    return { durationMs };
  }

  // ---- deadlines ----

  private armMissed(job: Job): void {
    const key: Key = `missed:${job.name}`;
    const paused = this.deps.store.jobStates.get(job.name)?.paused === 1;
    if (!job.schedule || !job.spec.enabled || paused) {
      this.timer.delete(key);
      return;
    }
    const now = this.deps.clock.now();
    // A last success "in the future" was recorded before the clock went back: it says the job
    // was fine up to now, not that nothing is due until the clock reaches it again.
    const base = Math.max(Math.min(this.deps.store.life.lastLifeAt(job.name) ?? 0, now), this.clockStart.get(job.name) ?? now);
    const d = successDeadline(job, base);
    if (d === null) {
      this.timer.delete(key);
      return;
    }
    this.expected.set(job.name, d.expected);
    this.timer.set(key, d.deadline);
  }

  private armHungFromStore(job: Job, now: number): void {
    if (job.managed) return;
    const last = this.deps.store.heartbeats.last(job.name);
    if (last?.kind !== 'start') return;
    // An end ping sent while we were down was lost: give the job a fresh grace, not an instant alarm.
    this.timer.set(`hung:${job.name}`, Math.max(last.at + job.spec.timeout, now + graceOf(job)));
  }

  private due(key: Key, _at: number): void {
    const [kind, name] = key.split(':', 2) as ['missed' | 'hung', string];
    const job = this.deps.getJob(name);
    if (!job) return;
    if (kind === 'hung') {
      const last = this.deps.store.heartbeats.last(name);
      if (last?.kind !== 'start') return;
      const ago = this.deps.clock.now() - last.at;
      const started = ago >= 0 ? `started ${formatDuration(ago)} ago` : 'started before the system clock went back';
      this.raise(
        job,
        'hung',
        `${started} (ping --start) and reported no end within its timeout of ${formatDuration(job.spec.timeout)}`,
        {},
      );
      return;
    }
    const expected = this.expected.get(name);
    if (expected === undefined || !job.schedule) return;
    try {
      const explained = this.deps.store.alerts.open(name).some((a) => a.kind !== 'missed');
      if (!explained) {
        const lastOk = this.deps.store.life.lastSuccessAt(name);
        this.raise(
          job,
          'missed',
          `no success by ${readableTime(expected, job.timezone, true)} + grace ${formatDuration(graceOf(job))}` +
            (lastOk ? ` (last success ${readableTime(lastOk, job.timezone, true)})` : ' (no success recorded yet)'),
          {},
        );
      }
    } finally {
      // Re-armed even when the alert could not be written (a full disk): the job stays watched.
      // Count the next expected instant too, if it also passes without a success (from now, if
      // the clock went back since `expected`).
      this.clockStart.set(name, Math.max(this.clockStart.get(name) ?? 0, Math.min(expected, this.deps.clock.now())));
      this.armMissed(job);
    }
  }

  // ---- alerts ----

  private raise(
    job: Job,
    kind: AlertKind,
    message: string,
    extra: { runId?: number; exitCode?: number | null; outputTail?: string | null },
  ): void {
    const { store, clock, log } = this.deps;
    const foldedUnder = this.blockingDependency(job);
    const { alert, isNew } = store.alerts.raise({
      job: job.name,
      kind,
      at: clock.now(),
      message,
      runId: extra.runId ?? null,
      exitCode: extra.exitCode ?? null,
      outputTail: extra.outputTail ?? null,
      foldedUnder,
    });
    log.warn(
      { job: job.name, alert: alert.id, kind, count: alert.count, foldedUnder },
      `${isNew ? 'alert raised' : 'alert occurred again'}: ${job.name} ${kind}${foldedUnder ? ` (blocked by ${foldedUnder.split(':')[0]})` : ''}`,
    );
    this.events.emit('alert', { alert, isNew });
  }

  /** The open alert of a dependency (followed to its root) this job's alert is folded under. */
  private blockingDependency(job: Job, seen = new Set<string>()): string | null {
    seen.add(job.name);
    for (const dep of job.spec.dependsOn ?? []) {
      if (seen.has(dep)) continue;
      const open = this.deps.store.alerts.open(dep);
      if (open.length === 0) continue;
      const root = open.find((a) => a.folded_under !== null)?.folded_under;
      return root ?? open[0]!.fingerprint;
    }
    return null;
  }

  /**
   * A dependency's alerts ended: alerts folded under them stand on their own again (and may page),
   * since whatever is still wrong with the dependent job is no longer explained by it.
   */
  private unfoldDependents(dependency: string): void {
    for (const alert of this.deps.store.alerts.unfoldUnder(dependency)) {
      const job = this.deps.getJob(alert.job);
      const refold = job ? this.blockingDependency(job) : null;
      if (refold) {
        this.deps.store.alerts.fold(alert.id, refold);
        continue;
      }
      this.deps.log.warn({ job: alert.job, alert: alert.id }, `alert no longer blocked by ${dependency}: ${alert.job} ${alert.kind}`);
      this.events.emit('alert', { alert, isNew: true });
    }
  }

  /** The heal loop resolved one alert (fixed-verified, or self-recovered at its pre-check). */
  resolveAlert(alert: AlertRow, resolution: string, why: string): void {
    const resolved = this.deps.store.alerts.resolve(alert.job, this.deps.clock.now(), resolution, [alert.kind]);
    if (resolved.length === 0) return;
    this.unfoldDependents(alert.job);
    this.deps.log.info({ job: alert.job, alerts: resolved.map((a) => a.id) }, `alert resolved (${resolution}): ${why}`);
    const job = this.deps.getJob(alert.job);
    if (job) this.armMissed(job);
    this.events.emit('resolved', resolved);
  }

  private resolveAll(job: Job, at: number, why: string): void {
    const resolved = this.deps.store.alerts.resolve(job.name, at, 'self-recovered');
    if (resolved.length === 0) return;
    this.unfoldDependents(job.name);
    this.deps.log.info({ job: job.name, alerts: resolved.map((a) => a.id) }, `alerts resolved (self-recovered): ${why}`);
    this.events.emit('resolved', resolved);
  }
}
