// Turns schedules into due instants. Where the next instant comes from is always the same pure
// function (schedule.ts) applied to the job's cursor — the last instant it dispatched, kept in
// SQLite — so a restart, a reload or a clock step never invents or repeats an instant.
import type { Job } from './home.js';
import { nextAfter } from './schedule.js';
import type { Store } from './store.js';
import { DeadlineTimer, type Clock } from './timer.js';

export type DueTrigger = 'schedule' | 'catch-up';

export interface SchedulerDeps {
  store: Store;
  clock: Clock;
  onDue: (job: Job, instant: number, trigger: DueTrigger) => void;
  onMissed?: (job: Job, firstMissed: number, count: number, catchUp: boolean) => void;
  onError?: (err: unknown, job: string) => void;
}

// Counting missed instants after a long downtime is bounded; an every-second job down for a
// month would otherwise cost millions of iterations at start-up.
const MISSED_SCAN_LIMIT = 1000;

export class Scheduler {
  private readonly jobs = new Map<string, Job>();
  private readonly timer: DeadlineTimer<string>;

  constructor(private readonly deps: SchedulerDeps) {
    this.timer = new DeadlineTimer<string>((name, at) => this.due(name, at), deps.clock, (err, name) => deps.onError?.(err, name));
  }

  /**
   * Registers all jobs at start-up. A job whose schedule passed an instant while the daemon was
   * down gets one catch-up run if it asks for it (systemd Persistent=); the others start afresh.
   */
  start(jobs: Iterable<Job>): void {
    const now = this.deps.clock.now();
    // One transaction for the bookkeeping of every job; catch-up runs start only after it has
    // committed, so that no process ever runs before its row is on disk.
    const catchUps: Array<[Job, number]> = [];
    this.deps.store.batch(() => this.prepare(jobs, now, catchUps));
    for (const [job, instant] of catchUps) this.deps.onDue(job, instant, 'catch-up');
    this.timer.start();
  }

  private prepare(jobs: Iterable<Job>, now: number, catchUps: Array<[Job, number]>): void {
    for (const job of jobs) {
      this.jobs.set(job.name, job);
      const state = this.deps.store.ensureJobState(job.name, now);
      if (!job.schedule || !job.spec.enabled || !job.managed || state.paused) {
        // Nothing of these is "missed": their clock starts afresh when they become due again.
        this.deps.store.setCursor(job.name, now);
        this.arm(job);
        continue;
      }
      const first = nextAfter(job.schedule, state.cursor);
      if (first !== null && first <= now) {
        let last = first;
        let count = 1;
        for (let n = nextAfter(job.schedule, first); n !== null && n <= now && count < MISSED_SCAN_LIMIT; n = nextAfter(job.schedule, n)) {
          last = n;
          count++;
        }
        const catchUp = job.spec.catchUp;
        this.deps.onMissed?.(job, first, count, catchUp);
        // The downtime is consumed either way: a second restart must not catch up the same gap
        // again. For a catch-up, the run's own row moves the cursor (store.insertRun), so a crash
        // before that row exists leaves the catch-up to be found again.
        if (catchUp) catchUps.push([job, last]);
        else this.deps.store.setCursor(job.name, now);
      }
      this.arm(job);
    }
  }

  stop(): void {
    this.timer.stop();
  }

  /** Adds or replaces a job (hot reload). A running process of the job is not this module's business. */
  upsert(job: Job): void {
    this.deps.store.ensureJobState(job.name, this.deps.clock.now());
    this.jobs.set(job.name, job);
    this.arm(job);
  }

  remove(name: string): void {
    this.jobs.delete(name);
    this.timer.delete(name);
  }

  get(name: string): Job | undefined {
    return this.jobs.get(name);
  }

  all(): Job[] {
    return [...this.jobs.values()];
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
    const job = this.jobs.get(name);
    if (job) this.arm(job);
  }

  private arm(job: Job, notBefore = 0): void {
    // Paused jobs keep their timer: each instant is recorded as skipped-paused, so a pause is
    // visible in history instead of a silent gap.
    if (!job.schedule || !job.spec.enabled || !job.managed) {
      this.timer.delete(job.name);
      return;
    }
    const state = this.deps.store.jobState(job.name);
    const now = this.deps.clock.now();
    const from = Math.max(state?.cursor ?? now, now, notBefore);
    const next = nextAfter(job.schedule, from);
    if (next === null) this.timer.delete(job.name);
    else this.timer.set(job.name, next);
  }

  private due(name: string, at: number): void {
    const job = this.jobs.get(name);
    if (!job) return;
    try {
      this.deps.onDue(job, at, 'schedule');
    } finally {
      // The cursor moved to `at` when the run row was written; if the loop was late, instants
      // that passed meanwhile are coalesced into this one (arm() starts from max(cursor, now)).
      this.arm(job, at);
    }
  }
}
