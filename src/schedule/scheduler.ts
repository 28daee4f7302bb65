// Turns schedules into due instants. Where the next instant comes from is always the same pure
// function (schedule.ts) applied to the job's cursor — the last instant it dispatched, kept in
// SQLite — so a restart or a reload never invents or repeats an instant.
//
// Steps of the wall clock (the ClockWatch of timer.ts notices them, within a minute at most, and
// calls clockJumped before anything due fires):
// - Forward: the instants the clock jumped over are handled exactly like downtime — a catchUp
//   job runs once (trigger catch-up), any other job gets one `missed-by-clock-jump` record; never
//   one run per skipped instant.
// - Backward: the schedule follows the new time at once; the cursor, now ahead of the clock, no
//   longer holds the jobs back. Instants up to the cursor come round a second time. Following
//   Debian cron (man 8 cron), for a step of less than 3 h a fixed-time job does not run a
//   repeated time twice; wildcard and `every:` jobs keep their real interval, and after a step
//   of 3 h or more (a correction) every job runs by the new time. A repeated instant that
//   already has its run is run again at most once per instant (recorded without an instant,
//   since the first run holds it) — spaced by the schedule, never in a burst.
import type { Job } from '../config/home.js';
import { nextAfter } from './instants.js';
import type { Store } from '../store/store.js';
import { DeadlineTimer, JUMP_THRESHOLD_MS, type ClockJump } from './timer.js';
import { type Clock } from '../clock.js';
import { errorMessage } from '../errors.js';
import { Emitter } from '../events.js';
import type { Logger } from '../log.js';

export type DueTrigger = 'schedule' | 'catch-up';
export type MissedCause = 'down' | 'clock-jump' | 'late';

export interface SchedulerDeps {
  store: Store;
  clock: Clock;
  /** The jobs as the daemon holds them now (its one map: the scheduler keeps no copy). */
  jobs: () => ReadonlyMap<string, Job>;
  /**
   * `repeat`: the instant came round again after the clock went back; it may already have its run.
   * `cursorTo`: where the job's cursor moves with the run's row (the instant itself, or for a
   * catch-up the moment up to which the missed instants were counted): the scheduler decides it.
   */
  onDue: (job: Job, instant: number, trigger: DueTrigger, repeat: boolean, cursorTo: number) => boolean;
  /**
   * Records instants that passed without a run (`count` from `first`) and whether one catch-up
   * runs for them. A record, not a notification: if it throws, the cursor does not move past them
   * (no instant leaves no trace), so it is a dependency and not an event.
   */
  recordMissed: (m: Missed) => void;
  log: Logger;
}

export interface Missed {
  job: Job;
  first: number;
  count: number;
  catchUp: boolean;
  cause: MissedCause;
}

/** What the scheduler tells the others. */
export type SchedulerEvents = {
  /** A step of the wall clock, before any job is re-planned for it. */
  'clock-jump': ClockJump;
};

// Counting missed instants after a long downtime is bounded; an every-second job down for a
// month would otherwise cost millions of iterations at start-up.
const MISSED_SCAN_LIMIT = 1000;
/** Debian cron's line between a time change (DST-sized) and a correction. */
const CORRECTION_MS = 3 * 3_600_000;

/** A catch-up run to start once the bookkeeping has committed; `countedTo`: where its row moves the cursor. */
interface CatchUp {
  job: Job;
  instant: number;
  countedTo: number;
}

/** After the clock went back: instants up to `until` come round again; `runAgain` says whether they run. */
interface Repeat {
  until: number;
  runAgain: boolean;
}

export class Scheduler {
  readonly events: Emitter<SchedulerEvents>;
  private readonly timer: DeadlineTimer<string>;
  private readonly repeats = new Map<string, Repeat>();

  constructor(private readonly deps: SchedulerDeps) {
    this.events = new Emitter((err, event) => deps.log.error({ event, err: errorMessage(err) }, 'a listener of the scheduler failed'));
    this.timer = new DeadlineTimer<string>(
      (name, at) => this.due(name, at),
      deps.clock,
      (err, name) => this.failed(err, name),
      (jump) => this.clockJumped(jump),
    );
  }

  /**
   * Registers all jobs at start-up. A job whose schedule passed an instant while the daemon was
   * down gets one catch-up run if it asks for it (systemd Persistent=); the others start afresh.
   */
  start(): void {
    const now = this.deps.clock.now();
    // One transaction for the bookkeeping of every job; catch-up runs start only after it has
    // committed, so that no process ever runs before its row is on disk.
    const catchUps: CatchUp[] = [];
    this.deps.store.batch(() => this.prepare(this.deps.jobs().values(), now, catchUps));
    for (const c of catchUps) this.deps.onDue(c.job, c.instant, 'catch-up', false, c.countedTo);
    this.timer.start();
  }

  private prepare(jobs: Iterable<Job>, now: number, catchUps: CatchUp[]): void {
    for (const job of jobs) {
      const state = this.deps.store.jobStates.ensure(job.name, now);
      if (!job.schedule || !job.spec.enabled || !job.managed || state.paused) {
        // Nothing of these is "missed": their clock starts afresh when they become due again.
        this.deps.store.jobStates.setCursor(job.name, now);
        this.arm(job);
        continue;
      }
      this.accountMissed(job, state.cursor, now, 'down', catchUps);
      this.arm(job);
    }
  }

  /**
   * Instants in (cursor, now] that nobody ran: one record, and one catch-up run if the job asks for
   * it (or `runOnce`: Debian cron's rule for a fixed-time job skipped by a short step forward).
   */
  private accountMissed(job: Job, cursor: number, now: number, cause: MissedCause, catchUps: CatchUp[], runOnce = false): void {
    if (!job.schedule) return;
    const first = nextAfter(job.schedule, cursor);
    if (first === null || first > now) return;
    let last = first;
    let count = 1;
    for (let n = nextAfter(job.schedule, first); n !== null && n <= now && count < MISSED_SCAN_LIMIT; n = nextAfter(job.schedule, n)) {
      last = n;
      count++;
    }
    // Instants a late timer passed over are covered by the run it just started: never a catch-up.
    const catchUp = cause !== 'late' && (job.spec.catchUp || runOnce);
    this.deps.recordMissed({ job, first, count, catchUp, cause });
    // The gap is consumed either way: a restart must not catch up the same gap again. For a
    // catch-up, the run's own row moves the cursor to `now` (not to the moment the row is written,
    // which may be seconds later on a busy machine: instants in between would be lost unrecorded),
    // so a crash before that row exists leaves the catch-up to be found again.
    if (catchUp) catchUps.push({ job, instant: last, countedTo: now });
    else this.deps.store.jobStates.setCursor(job.name, now);
  }

  private failed(err: unknown, job: string): void {
    this.deps.log.error({ job, err: errorMessage(err) }, 'scheduling failed');
  }

  /**
   * The wall clock stepped (see the module comment). Runs inside the timer's fire, before any
   * deadline is fired, so no instant is dispatched on the old time.
   */
  private clockJumped(jump: ClockJump): void {
    this.events.emit('clock-jump', jump);
    const now = this.deps.clock.now();
    const runnable = (job: Job, state: { paused: number | boolean } | undefined): boolean =>
      !!state && !!job.schedule && job.spec.enabled && job.managed && !state.paused;
    if (jump.deltaMs > 0) {
      // Instants up to the step were due anyway: the step is only noticed when a timer fires (up
      // to a minute later), often the very timer of such an instant. The latest of them runs now,
      // as a late timer runs it; only what lies beyond the step was skipped by it.
      for (const job of this.deps.jobs().values()) {
        try {
          const state = this.deps.store.jobStates.get(job.name);
          if (!runnable(job, state)) continue;
          const late = lastInstantUpTo(job, state!.cursor, Math.min(jump.before, now));
          if (late !== null) {
            // Instants before it that a late timer had not fired either are recorded, not dropped.
            this.accountMissed(job, state!.cursor, late - 1, 'late', []);
            this.deps.onDue(job, late, 'schedule', false, late);
          }
        } catch (err) {
          this.failed(err, job.name);
        }
      }
    }
    const catchUps: CatchUp[] = [];
    this.deps.store.batch(() => {
      for (const job of this.deps.jobs().values()) {
        try {
          const state = this.deps.store.jobStates.get(job.name);
          this.repeats.delete(job.name);
          if (state && jump.deltaMs > 0 && runnable(job, state)) {
            // Debian cron: a fixed-time job in a span skipped by a step under 3 h runs once soon after.
            const fixedTime = job.schedule?.kind === 'cron' && job.schedule.expr.fixedTime;
            this.accountMissed(
              job,
              Math.max(state.cursor, jump.before),
              now,
              'clock-jump',
              catchUps,
              fixedTime && jump.deltaMs < CORRECTION_MS,
            );
          } else if (state && jump.deltaMs < 0 && state.cursor > now + JUMP_THRESHOLD_MS) {
            this.repeats.set(job.name, this.repeatPlan(job, state.cursor, -jump.deltaMs));
          }
          this.arm(job);
        } catch (err) {
          this.failed(err, job.name);
        }
      }
    });
    for (const { job, instant, countedTo } of catchUps) {
      try {
        this.deps.onDue(job, instant, 'catch-up', false, countedTo);
      } catch (err) {
        this.failed(err, job.name);
      }
      this.arm(job);
    }
  }

  private repeatPlan(job: Job, until: number, backMs: number): Repeat {
    const fixedTime = job.schedule?.kind === 'cron' && job.schedule.expr.fixedTime;
    return { until, runAgain: !(fixedTime && backMs < CORRECTION_MS) };
  }

  stop(): void {
    this.timer.stop();
  }

  /** A job was added or changed (hot reload; the daemon's map has it already): planned afresh. A running process of it is not this module's business. */
  upsert(job: Job): void {
    this.deps.store.jobStates.ensure(job.name, this.deps.clock.now());
    this.arm(job);
  }

  /** A job was removed (from the daemon's map already): its next instant is forgotten. */
  remove(name: string): void {
    this.repeats.delete(name);
    this.timer.delete(name);
  }

  nextRun(name: string): number | undefined {
    return this.timer.get(name);
  }

  /** False when the earliest deadline is overdue by more than slackMs: the loop is not advancing. */
  healthy(slackMs: number): boolean {
    return this.timer.healthy(slackMs);
  }

  /** Re-computes a job's next instant from its cursor (after pause/resume or a clock change). */
  rearm(name: string): void {
    const job = this.deps.jobs().get(name);
    if (job) this.arm(job);
  }

  private arm(job: Job, notBefore = 0): void {
    // Paused jobs keep their timer: each instant is recorded as skipped-paused, so a pause is
    // visible in history instead of a silent gap.
    if (!job.schedule || !job.spec.enabled || !job.managed) {
      this.timer.delete(job.name);
      return;
    }
    const state = this.deps.store.jobStates.get(job.name);
    const now = this.deps.clock.now();
    const cursor = state?.cursor ?? now;
    let from: number;
    if (cursor > now + JUMP_THRESHOLD_MS) {
      // The clock is behind the last dispatched instant: it went back (now, or while nightshift
      // was down, when the size of the step is unknown and cursor - now is all we know).
      let rep = this.repeats.get(job.name);
      if (!rep || rep.until !== cursor) this.repeats.set(job.name, (rep = this.repeatPlan(job, cursor, cursor - now)));
      from = rep.runAgain ? Math.max(now, notBefore) : Math.max(cursor, notBefore);
    } else {
      this.repeats.delete(job.name);
      from = Math.max(cursor, now, notBefore);
    }
    const next = nextAfter(job.schedule, from);
    if (next === null) this.timer.delete(job.name);
    else this.timer.set(job.name, next);
  }

  private due(name: string, at: number): void {
    const job = this.deps.jobs().get(name);
    if (!job) return;
    const rep = this.repeats.get(name);
    try {
      const claimed = this.deps.onDue(job, at, 'schedule', rep !== undefined && at <= rep.until, at);
      // The cursor moved to `at` with the run row. If the timer fired late (a busy machine), the
      // instants that passed meanwhile are coalesced into this run, as cron does, but recorded:
      // never an instant that left no trace. Only when this dispatch claimed its instant: a
      // long-running job still running passes its instants by design, and a duplicate was
      // accounted for by the dispatch that claimed it.
      if (!rep && claimed) this.accountMissed(job, at, this.deps.clock.now(), 'late', []);
    } catch (err) {
      this.failed(err, job.name);
    } finally {
      this.arm(job, at);
    }
  }
}

/** The job's last instant in (cursor, limit], or null (a bounded walk: at most MISSED_SCAN_LIMIT steps). */
function lastInstantUpTo(job: Job, cursor: number, limit: number): number | null {
  if (!job.schedule) return null;
  let last: number | null = null;
  let steps = 0;
  for (
    let n = nextAfter(job.schedule, cursor);
    n !== null && n <= limit && steps < MISSED_SCAN_LIMIT;
    n = nextAfter(job.schedule, n), steps++
  )
    last = n;
  return last;
}
