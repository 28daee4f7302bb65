// Decides what becomes of a due instant or a manual request — paused, overlap, pre-check, run,
// retry — and writes every decision to the store before acting on it.
import { mkdirSync, unlinkSync } from 'node:fs';
import { reapLeftovers } from './proc.js';
import { join } from 'node:path';
import { runLogPath } from './logcap.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatDuration } from '../config/duration.js';
import type { Job } from '../config/home.js';
import type { Logger } from '../log.js';
import { killNow, type Leash } from './launch.js';
import { RunningProcess, runPrecheck, type StopReason } from './runner.js';
import { isDiskFull, type RunRow, type Store } from '../store/store.js';
import { isHealTrigger, RETRYABLE_OUTCOMES, type RunTrigger } from '../model.js';
import { monoOf } from '../schedule/timer.js';
import { type Clock } from '../clock.js';
import { errorMessage } from '../errors.js';
import { Emitter } from '../events.js';

export const LOGS_KEPT_PER_JOB = 100;

export interface SupervisorDeps {
  store: Store;
  logsDir: string;
  stateDir: string;
  clock: Clock;
  log: Logger;
  /** Looks the job up again when a retry comes due: the spec may have changed or gone. */
  lookup: (name: string) => Job | undefined;
  /** The kill switch, checked synchronously right before an agent job would start. */
  killSwitch?: () => { halted: boolean; reason: string };
  /** What every run and pre-check is kept from (the launcher's sandbox). */
  leash: () => Leash;
  logCap?: number;
}

interface Active {
  runId: number;
  proc: RunningProcess | null;
  /** Set when the run is stopped before its process exists (replaced, shut down): it never starts. */
  cancelled: StopReason | null;
  precheckPgid: number | null;
  done: Promise<RunRow>;
}

export class ShuttingDown extends Error {}

export interface RunNowOptions {
  /** Called once the run's process exists. */
  onStarted?: (runId: number) => void;
  /** Stop whatever run of the job is under way first, whatever its concurrency says. */
  replace?: boolean;
}

/** What the supervisor tells the others: a run ended (its row is on disk), a run hit its timeout. */
export type SupervisorEvents = {
  'run-finished': RunRow;
  'run-timed-out': { job: Job; runId: number; output: string };
};

export class Supervisor {
  readonly events: Emitter<SupervisorEvents>;
  private readonly active = new Map<string, Map<number, Active>>();
  private readonly retryTimers = new Map<number, NodeJS.Timeout>();
  private stopping = false;

  constructor(private readonly deps: SupervisorDeps) {
    mkdirSync(deps.logsDir, { recursive: true });
    this.events = new Emitter((err, event) => deps.log.error({ event, err: errorMessage(err) }, 'a listener of the supervisor failed'));
    // Runs that finished while the state folder was full reach the watchdog once their rows are
    // written: an alert raised from a row that may never exist could not be written either.
    deps.store.held.events.on('disk-full', (ev) => {
      if (ev.kind !== 'resolved') return;
      for (const row of ev.runs) this.events.emit('run-finished', row);
    });
  }

  runningCount(job?: string): number {
    if (job) return this.active.get(job)?.size ?? 0;
    let n = 0;
    for (const m of this.active.values()) n += m.size;
    return n;
  }

  running(): Array<{ job: string; runId: number; pgid: number | null }> {
    const out: Array<{ job: string; runId: number; pgid: number | null }> = [];
    for (const [job, m] of this.active) for (const a of m.values()) out.push({ job, runId: a.runId, pgid: a.proc?.pgid ?? null });
    return out;
  }

  /**
   * A scheduled instant (or catch-up) is due. Synchronously claims the instant in the store —
   * so the scheduler's cursor has moved before this returns — then runs asynchronously.
   */
  /** Dispatches a due instant; true when this dispatch claimed it (its row is written, or held while the disk is full). */
  dispatchScheduled(job: Job, instant: number, trigger: 'schedule' | 'catch-up', repeat = false, cursorTo = instant): boolean {
    if (this.stopping) return false;
    // A long-running job's schedule only starts it again once it has ended: while it runs, its
    // instants pass without a skipped-overlap row each (every: 1s would write 86,400 a day).
    if (job.longRunning && job.spec.concurrency === 'forbid' && (this.active.get(job.name)?.size ?? 0) > 0) {
      this.deps.store.jobStates.setCursor(job.name, cursorTo);
      return false;
    }
    let started = this.begin(job, trigger, { scheduledFor: instant, cursorTo, precheck: true });
    const claimed = started !== 'duplicate';
    // The clock went back and this wall-clock time came round again (scheduler.ts): the first
    // run keeps the instant, this one runs on the real interval, recorded without an instant.
    if (started === 'duplicate' && repeat) started = this.begin(job, trigger, { precheck: true });
    if (started === 'duplicate') this.deps.log.warn({ job: job.name, instant }, 'instant already dispatched; not running it twice');
    return claimed;
  }

  /** The one run of an @reboot job after a boot of the machine (the daemon has claimed its turn). */
  dispatchBoot(job: Job): void {
    if (this.stopping) return;
    void this.begin(job, 'boot', { precheck: true });
  }

  /** `nightshift run JOB`: runs now whatever the schedule says, and resolves with the finished row. */
  async runManual(job: Job): Promise<RunRow> {
    return this.runNow(job, 'manual');
  }

  /**
   * Runs now, without the pre-check, and resolves with the finished row: `manual`, a heal's
   * `rerun` fix (`heal`) or its probe (`probe`). Overlap rules apply as for any run, unless
   * `opts.replace` says to stop the run under way.
   */
  async runNow(job: Job, trigger: 'manual' | 'heal' | 'probe', opts: RunNowOptions = {}): Promise<RunRow> {
    if (this.stopping) throw new ShuttingDown('nightshift is shutting down; the run was not started');
    const r = this.begin(job, trigger, { precheck: false, ...opts });
    if (r === 'duplicate') throw new Error(`unexpected duplicate for a ${trigger} run`);
    return r;
  }

  private begin(
    job: Job,
    trigger: RunTrigger,
    o: {
      scheduledFor?: number;
      cursorTo?: number;
      precheck: boolean;
      attempt?: number;
      parentId?: number;
      claimed?: number;
    } & RunNowOptions,
  ): Promise<RunRow> | 'duplicate' {
    const { store, clock } = this.deps;
    const now = clock.now();
    const base = {
      job: job.name,
      trigger,
      scheduledFor: o.scheduledFor ?? null,
      cursorTo: o.scheduledFor !== undefined ? (o.cursorTo ?? o.scheduledFor) : null,
      now,
      specHash: job.hash,
      attempt: o.attempt ?? 1,
      parentId: o.parentId ?? null,
    };

    const skip = (outcome: 'skipped-paused' | 'skipped-overlap' | 'skipped-halted', reason: string): Promise<RunRow> | 'duplicate' => {
      let id: number | null;
      if (o.claimed !== undefined) {
        store.runs.finish(o.claimed, job.name, { outcome, endedAt: now, durationMs: 0, reason });
        id = o.claimed;
      } else {
        id = store.runs.insert({ ...base, outcome, reason }, { holdIfFull: true });
      }
      if (id === null) return 'duplicate';
      this.deps.log.info({ job: job.name, run: id, trigger, outcome }, reason);
      return Promise.resolve(this.finished(id));
    };

    const state = store.jobStates.get(job.name);
    if (state?.paused && trigger !== 'manual' && !isHealTrigger(trigger))
      return skip('skipped-paused', 'the job is paused (nightshift resume to restart it)');
    if (job.spec.agent && this.deps.killSwitch) {
      const k = this.deps.killSwitch();
      if (k.halted) return skip('skipped-halted', `not started: ${k.reason} (agent jobs halt with the kill switch)`);
    }

    const running = this.active.get(job.name);
    const toReplace: Active[] = [];
    if (running && running.size > 0) {
      const ids = [...running.keys()].map((i) => `#${i}`).join(', ');
      if (o.replace || job.spec.concurrency === 'replace') toReplace.push(...running.values());
      else if (job.spec.concurrency === 'forbid')
        return skip('skipped-overlap', `the previous run (${ids}) is still running (concurrency: forbid)`);
    }

    // Fail open to work: a full state folder does not stop the business's jobs; the row waits in
    // memory (negative id) and is written when space returns. A heal's fix or probe is an action:
    // without its row on disk it does not run (fail closed), so those still throw.
    const id = o.claimed ?? store.runs.insert(base, { holdIfFull: !isHealTrigger(trigger) });
    if (id === null) return 'duplicate';
    if (store.runs.isHeld(id))
      this.deps.log.warn(
        { job: job.name, run: id, trigger },
        'the state folder is full: this run goes ahead with its record kept in memory until space returns',
      );
    const entry: Active = { runId: id, proc: null, cancelled: null, precheckPgid: null, done: Promise.resolve(null as unknown as RunRow) };
    let map = this.active.get(job.name);
    if (!map) this.active.set(job.name, (map = new Map<number, Active>()));
    map.set(id, entry);
    entry.done = this.execute(job, id, trigger, o.precheck, toReplace, entry, o.onStarted).finally(() => {
      map.delete(id);
      if (map.size === 0 && this.active.get(job.name) === map) this.active.delete(job.name);
    });
    return entry.done;
  }

  private async execute(
    job: Job,
    id: number,
    trigger: RunTrigger,
    precheck: boolean,
    toReplace: Active[],
    entry: Active,
    onStarted?: (runId: number) => void,
  ): Promise<RunRow> {
    const { store, clock, log } = this.deps;
    try {
      if (toReplace.length > 0) {
        log.info(
          { job: job.name, run: id, replacing: toReplace.map((a) => a.runId) },
          'replacing the running run (concurrency: replace, or a heal restarting a long-running job)',
        );
        await Promise.all(toReplace.map((a) => this.stopEntry(a, 'replace')));
      }
      if (precheck && job.spec.precheck && !entry.cancelled) {
        const verdict = await runPrecheck(job, {
          extraEnv: { NIGHTSHIFT_RUN_ID: String(id), NIGHTSHIFT_STATE: this.deps.stateDir },
          leash: this.deps.leash(),
          onSpawn: (pgid) => {
            entry.precheckPgid = pgid;
            store.runs.setPgid(id, job.name, pgid);
          },
        });
        entry.precheckPgid = null;
        if (verdict.idle) {
          store.runs.finish(id, job.name, { outcome: 'skipped-precheck', endedAt: clock.now(), durationMs: 0, reason: verdict.reason });
          log.info({ job: job.name, run: id, outcome: 'skipped-precheck' }, verdict.reason);
          return this.finished(id);
        }
        if (verdict.reason !== 'pre-check found work') log.warn({ job: job.name, run: id }, verdict.reason);
      }
      // The kill switch again, right before the process exists: it may have been turned on
      // during the pre-check or the wait for a replaced run.
      if (job.spec.agent && this.deps.killSwitch && !entry.cancelled && !this.stopping) {
        const k = this.deps.killSwitch();
        if (k.halted) {
          store.runs.finish(id, job.name, {
            outcome: 'skipped-halted',
            endedAt: clock.now(),
            durationMs: 0,
            reason: `not started: ${k.reason} (agent jobs halt with the kill switch)`,
          });
          return this.finished(id);
        }
      }
      if (entry.cancelled || this.stopping) {
        const why =
          entry.cancelled === 'replace'
            ? 'a newer run replaced it before it started (concurrency: replace, or a heal restarting a long-running job)'
            : entry.cancelled === 'halt'
              ? 'the kill switch is on'
              : 'nightshift was shutting down';
        store.runs.finish(id, job.name, {
          outcome: entry.cancelled === 'halt' ? 'skipped-halted' : 'killed',
          endedAt: clock.now(),
          durationMs: 0,
          reason: `not started: ${why}`,
        });
        return this.finished(id);
      }
      const dir = join(this.deps.logsDir, job.name);
      try {
        mkdirSync(dir, { recursive: true });
      } catch (err) {
        // Without its folder the log cannot be created; the run goes ahead and its row says so.
        if (!isDiskFull(err)) throw err;
      }
      const logPath = runLogPath(this.deps.logsDir, { job: job.name, id });
      const proc = new RunningProcess({
        job,
        runId: id,
        trigger,
        logPath,
        logCap: this.deps.logCap,
        now: () => clock.now(),
        extraEnv: { NIGHTSHIFT_STATE: this.deps.stateDir },
        leash: this.deps.leash(),
        onSpawn: (pgid) => {
          store.runs.markStarted(id, job.name, pgid, logPath, clock.now());
          onStarted?.(id);
        },
        onTimeout: (output) => this.events.emit('run-timed-out', { job, runId: id, output }),
        onLogError: (err) => {
          if (isDiskFull(err)) store.held.noteDiskFull(err, `the log of run ${id} of ${job.name} (${logPath})`);
          else
            log.error(
              { job: job.name, run: id, path: logPath, err: err.message },
              'the run log could not be written; the run goes on without it',
            );
        },
      });
      entry.proc = proc;
      log.info({ job: job.name, run: id, trigger }, 'run started');
      const r = await proc.done;
      if (proc.pgid === null) store.runs.markStarted(id, job.name, null, logPath, r.startedAt);

      const row = store.runs.get(id)!;
      let retryAt: number | null = null;
      const retries = job.spec.retries;
      if (RETRYABLE_OUTCOMES.has(r.outcome) && retries && row.attempt <= retries.count && !this.stopping && !isHealTrigger(trigger)) {
        retryAt = r.endedAt + retries.delay;
      }
      const reason =
        retryAt !== null ? `${r.reason} Retry ${row.attempt} of ${retries!.count} in ${formatDuration(retries!.delay)}.` : r.reason;
      store.runs.finish(id, job.name, {
        outcome: r.outcome,
        endedAt: r.endedAt,
        exitCode: r.exitCode,
        signal: r.signal,
        durationMs: r.durationMs,
        outputTail: r.outputTail,
        outputBytes: r.outputBytes,
        reason,
        retryAt,
      });
      log[r.outcome === 'ok' ? 'info' : 'warn'](
        { job: job.name, run: id, trigger, outcome: r.outcome, exitCode: r.exitCode, durationMs: r.durationMs },
        `run finished: ${reason}`,
      );
      if (retryAt !== null) this.armRetry(id, retryAt);
      try {
        this.pruneLogs(job.name);
      } catch (err) {
        // The run is recorded; old logs are pruned again after the next run.
        log.warn({ job: job.name, err: errorMessage(err) }, 'pruning old run logs failed');
      }
      return this.finished(id);
    } catch (err) {
      // Never leave a row open because of our own bug: record it and say so.
      const message = errorMessage(err);
      log.error({ job: job.name, run: id, err: message }, 'run failed inside nightshift');
      store.runs.finish(id, job.name, { outcome: 'failed', endedAt: clock.now(), reason: `nightshift could not run it: ${message}` });
      return this.finished(id);
    }
  }

  private finished(id: number): RunRow {
    const row = this.deps.store.runs.get(id)!;
    // A row still held in memory is handed on when it is written (see the constructor).
    if (!this.deps.store.runs.isHeld(id)) this.events.emit('run-finished', row);
    return row;
  }

  // ---- retries: planned in the run row, so a restart picks them up ----

  armPendingRetries(): void {
    for (const row of this.deps.store.runs.pendingRetries()) this.armRetry(row.id, row.retry_at!);
  }

  private armRetry(parentId: number, at: number): void {
    const existing = this.retryTimers.get(parentId);
    if (existing) clearTimeout(existing);
    const delay = Math.max(0, at - this.deps.clock.now());
    // The delay is waited on the monotonic clock: a step of the wall clock meanwhile neither
    // holds a retry back (and with it the alert of a last failure) nor fires it early.
    const due = monoOf(this.deps.clock) + delay;
    this.retryTimers.set(
      parentId,
      setTimeout(
        () => {
          this.retryTimers.delete(parentId);
          // A clamped or early timer re-arms instead of retrying before its time.
          const left = due - monoOf(this.deps.clock);
          if (left > 5) this.armRetry(parentId, this.deps.clock.now() + left);
          else this.fireRetry(parentId);
        },
        Math.min(delay, 2 ** 31 - 1),
      ),
    );
  }

  private fireRetry(parentId: number): void {
    if (this.stopping) return;
    const { store, log } = this.deps;
    const parent = store.runs.get(parentId);
    if (!parent || parent.retry_at === null) return;
    const job = this.deps.lookup(parent.job);
    if (!job || !job.managed || !job.spec.enabled) {
      const why = !job ? 'the job no longer exists' : !job.managed ? 'the job is now external' : 'the job is disabled';
      store.runs.finish(parentId, parent.job, {
        ...rowFinish(parent, this.deps.clock.now()),
        reason: `${parent.reason ?? ''} The retry was dropped: ${why}.`.trim(),
        retryAt: null,
      });
      store.journal.record(this.deps.clock.now(), 'retry-dropped', parent.job, `retry of run #${parentId} dropped: ${why}`);
      log.info({ job: parent.job, run: parentId }, `retry dropped: ${why}`);
      return;
    }
    const childId = store.runs.takeRetry(
      parentId,
      {
        job: job.name,
        trigger: 'retry',
        now: this.deps.clock.now(),
        attempt: parent.attempt + 1,
        parentId,
        specHash: job.hash,
      },
      { holdIfFull: true },
    );
    if (childId === null) return;
    void this.begin(job, 'retry', { precheck: false, attempt: parent.attempt + 1, parentId, claimed: childId });
  }

  // ---- crash recovery ----

  /**
   * Runs left open by a daemon that died are marked `interrupted`, and whatever is left of their
   * processes (found by the run id in their environment, so a recycled pid is never hit) is killed.
   */
  async recoverInterrupted(): Promise<RunRow[]> {
    const { store, clock, log } = this.deps;
    const open = store.runs.open();
    if (open.length === 0) return [];
    const byRun = reapLeftovers(
      open.map((r) => ({ id: r.id, pgid: r.pgid, since: r.created_at, leaderAt: r.started_at })),
      'NIGHTSHIFT_RUN_ID',
      this.deps.stateDir,
    );
    const killed: number[] = [];
    for (const row of open) {
      const pids = byRun.get(row.id) ?? [];
      killed.push(...pids);
      const reason =
        `nightshift stopped while this run was in progress` +
        (pids.length ? `; ${pids.length} leftover process(es) were killed at restart` : '') +
        '.';
      store.runs.finish(row.id, row.job, {
        outcome: 'interrupted',
        endedAt: clock.now(),
        durationMs: row.started_at ? clock.now() - row.started_at : null,
        reason,
        exitCode: null,
      });
      log.warn({ job: row.job, run: row.id, killed: pids }, reason);
    }
    if (killed.length) await sleep(50);
    return open.map((r) => store.runs.get(r.id)!);
  }

  // ---- shutdown ----

  /** Stops every running job (SIGTERM, SIGKILL after its killGrace) and waits until all are recorded. */
  async shutdown(reason: StopReason = 'shutdown'): Promise<void> {
    this.stopping = true;
    for (const t of this.retryTimers.values()) clearTimeout(t);
    this.retryTimers.clear();
    // Runs still starting are waited for too: each notices `stopping` and records itself.
    for (let round = 0; round < 3 && this.runningCount() > 0; round++) {
      const all: Promise<unknown>[] = [];
      for (const m of this.active.values()) for (const a of m.values()) all.push(this.stopEntry(a, reason));
      await Promise.allSettled(all);
    }
  }

  private stopEntry(a: Active, reason: StopReason): Promise<unknown> {
    if (a.proc) return a.proc.stop(reason);
    a.cancelled ??= reason;
    if (a.precheckPgid !== null) killNow(a.precheckPgid);
    return a.done;
  }

  /** Forceful for one job: SIGKILL each of its runs (and pre-checks) now, and wait for their rows. */
  async killJobNow(name: string, reason: StopReason): Promise<void> {
    const m = this.active.get(name);
    if (!m) return;
    await Promise.allSettled(
      [...m.values()].map((a) => {
        if (a.proc) return a.proc.killNow(reason);
        a.cancelled ??= reason;
        if (a.precheckPgid !== null) killNow(a.precheckPgid);
        return a.done;
      }),
    );
  }

  /** Forceful: SIGKILL every group now (a second signal during shutdown). */
  killAllNow(): void {
    for (const m of this.active.values()) {
      for (const a of m.values()) {
        if (a.proc?.pgid) killNow(a.proc.pgid);
        if (a.precheckPgid !== null) killNow(a.precheckPgid);
      }
    }
  }

  /** The kill switch went on: running agent jobs are stopped like a timeout and recorded. */
  async haltAgents(): Promise<number> {
    const stops: Promise<unknown>[] = [];
    for (const m of this.active.values()) {
      for (const a of m.values()) {
        const job = this.deps.lookup(this.jobOf(a.runId) ?? '');
        if (job?.spec.agent) stops.push(this.stopEntry(a, 'halt'));
      }
    }
    await Promise.allSettled(stops);
    return stops.length;
  }

  private jobOf(runId: number): string | undefined {
    for (const [job, m] of this.active) if (m.has(runId)) return job;
    return undefined;
  }

  /** Resolves when no run of the job is in flight (a hung one is being killed by its timeout). */
  async waitIdle(name: string): Promise<void> {
    for (let m = this.active.get(name); m && m.size > 0; m = this.active.get(name)) {
      await Promise.allSettled([...m.values()].map((a) => a.done));
    }
  }

  async stopJob(name: string, reason: StopReason): Promise<void> {
    const m = this.active.get(name);
    if (!m) return;
    await Promise.allSettled([...m.values()].map((a) => this.stopEntry(a, reason)));
  }

  private pruneLogs(job: string): void {
    for (const r of this.deps.store.runs.logsBeyond(job, LOGS_KEPT_PER_JOB)) {
      try {
        unlinkSync(r.log_path);
      } catch {
        // already gone
      }
      this.deps.store.runs.clearLogPath(r.id);
    }
  }
}

function rowFinish(row: RunRow, now: number) {
  return {
    outcome: row.outcome ?? 'failed',
    endedAt: row.ended_at ?? now,
    exitCode: row.exit_code,
    signal: row.signal,
    durationMs: row.duration_ms,
    outputTail: row.output_tail,
    outputBytes: row.output_bytes,
    reason: row.reason,
  } as const;
}
