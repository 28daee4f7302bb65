// The daemon's wiring, in one place: lock, store, home, scheduler, supervisor, watcher, control
// socket and systemd notifications. Each piece has start()/stop(); this file decides the order.
import { mkdirSync, statSync, unlinkSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { ControlError, ControlServer } from './control/socket.js';
import { controlRoutes, type ControlActions, type PingKind } from './control/routes.js';
import { policyInvalidSentence, type Job, type LoadedRule } from './config/home.js';
import { type HomePaths } from './config/paths.js';
import { formatDuration } from './config/duration.js';
import { StateLock } from './store/lock.js';
import type { Logger } from './log.js';
import { createNotifier, type Notifier } from './notify/systemd.js';
import { Scheduler } from './schedule/scheduler.js';
import { readableTime } from './schedule/instants.js';
import { dashboardLink, type Policy } from './config/schema.js';
import { formatProblem, type SpecProblem } from './config/parse.js';
import { formatBytes, isDiskFull, Store, type DiskFullEvent } from './store/store.js';
import { ShuttingDown, Supervisor } from './run/supervisor.js';
import { type ClockJump } from './schedule/timer.js';
import { systemClock, type Clock } from './clock.js';
import { checkKillSwitch, killSwitchPath, setKillSwitch, switchWhy, type KillState } from './control/killswitch.js';
import { ActionRefused, Dashboard, type WebActions } from './web/server.js';
import { newPingKey, pingKeyHash, pingPath } from './web/ping-http.js';
import { killOrphanSandboxes, leashFor, type Leash } from './run/launch.js';
import { ConfigWatcher, FileWatcher } from './config/watch.js';
import { LiveConfig } from './config/live.js';
import { HeartbeatFiles } from './watch/heartbeat-files.js';
import { judgedByHeal, Watchdog } from './watch/watchdog.js';
import { INSTALL_PARTS, installDigest, installState } from './heal/zone.js';
import { digestFile, DigestService } from './notify/digester.js';
import { Deadman, Pager } from './notify/pager.js';
import { Healer, HealError } from './heal/healer.js';
import { healLines } from './report/healview.js';
import { refOf } from './model.js';
import { scheduleInWords } from './schedule/words.js';
import { errorMessage, errorCode } from './errors.js';
import { bootInfo, openFileEndingIn } from './run/proc.js';
import { Retention, type Pruned, type RetentionLimits } from './store/retention.js';

export const VERSION = '0.1.0';
/** A restart loop: this many starts within this window (systemd gives up after 5 in 10 min). */
export const RESTART_LOOP_STARTS = 5;
export const RESTART_LOOP_WINDOW_MS = 10 * 60_000;

export interface DaemonOptions {
  paths: HomePaths;
  log: Logger;
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
  logCap?: number;
  reloadDebounceMs?: number;
  /** The home or state folder was moved away while nightshift ran: it is stopping (see homeIntact). */
  onHomeLost?: (why: string) => void;
}

export interface LiveJob {
  name: string;
  running: number[];
  nextRun: number | null;
  /** When the watchdog raises "missed" if no success comes first (its armed timer); null when none is armed. */
  successDeadline: number | null;
}

export class Daemon {
  readonly paths: HomePaths;
  private readonly log: Logger;
  private readonly clock: Clock;
  /** This boot of the machine (the kernel's boot id and its start), read once at start; null where there is none. */
  private readonly boot = bootInfo();
  private lock: StateLock | null = null;
  private store!: Store;
  private scheduler!: Scheduler;
  private supervisor!: Supervisor;
  private watcher: ConfigWatcher | null = null;
  private watchdog: Watchdog | null = null;
  private killWatcher: FileWatcher | null = null;
  private heartbeatFiles: HeartbeatFiles | null = null;
  private lastKill: KillState | null = null;
  /** The home and state folders as found at start (device:inode), by path. */
  private folderIds = new Map<string, string | null>();
  private homeLost: string | null = null;
  private homeTimer: NodeJS.Timeout | null = null;
  private pager: Pager | null = null;
  private deadman: Deadman | null = null;
  private healer: Healer | null = null;
  private digests: DigestService | null = null;
  private retention: Retention | null = null;
  private control: ControlServer | null = null;
  private dashboard: Dashboard | null = null;
  /** The dashboard's address as it was started: a policy change of it restarts the server. */
  private dashboardAt: string | null = null;
  private notifier: Notifier;
  private watchdogTimer: NodeJS.Timeout | null = null;
  private cfg!: LiveConfig;
  private startedAt = 0;
  private stopPromise: Promise<void> | null = null;

  constructor(private readonly opts: DaemonOptions) {
    this.paths = opts.paths;
    this.log = opts.log;
    this.clock = opts.clock ?? systemClock;
    this.notifier = createNotifier(opts.env ?? process.env, (err) => this.log.error({ err: err.message }, 'systemd notification failed'));
  }

  async start(): Promise<void> {
    const { paths, log } = this;
    this.startedAt = this.clock.now();
    mkdirSync(paths.state, { recursive: true, mode: 0o750 });
    mkdirSync(paths.logs, { recursive: true });
    for (const p of [paths.home, paths.state]) this.folderIds.set(p, folderId(p));
    // Launches and heals look on their own; this catches a move while nothing else happens.
    this.homeTimer = setInterval(() => this.homeIntact(), 60_000).unref();
    this.lock = StateLock.acquire(paths.lock);
    try {
      this.store = Store.open(paths.db, { log });
      this.store.held.events.on('disk-full', (ev) => this.diskFullChanged(ev));
      // Every row a page may show, as it is written: the open dashboard pages hear of it at once.
      this.store.sql.onChange((c) => this.dashboard?.push(c));
      const downSince = this.store.life.lastActivityAt();
      this.supervisor = new Supervisor({
        store: this.store,
        logsDir: paths.logs,
        stateDir: paths.state,
        clock: this.clock,
        log,
        logCap: this.opts.logCap,
        lookup: (name) => this.jobs.get(name),
        killSwitch: () => this.killState(),
        leash: () => this.leash(),
      });
      this.supervisor.events.on('run-timed-out', ({ job, runId, output }) => {
        // A heal's probe or rerun that hangs fails its attempt; it is not a new incident.
        const trigger = this.store.runs.get(runId)?.trigger ?? 'schedule';
        if (!judgedByHeal(job, trigger)) this.watchdog?.runTimedOut(job, runId, output);
      });
      this.supervisor.events.on('run-finished', (row) => this.watchdog?.runFinished(row));
      // Sandboxes a dead daemon left (its kill -9 normally ends them with it) go before anything
      // is recorded or restored: an escaped writer must not outlive the restore.
      const orphans = await killOrphanSandboxes(paths);
      if (orphans) log.warn({ sandboxes: orphans }, `${orphans} sandbox(es) left by the previous daemon were killed`);
      const interrupted = await this.supervisor.recoverInterrupted();
      if (interrupted.length)
        this.store.journal.record(
          this.clock.now(),
          'recovered',
          null,
          `${interrupted.length} run(s) were interrupted by the previous stop`,
        );

      this.cfg = new LiveConfig({ paths, log, clock: this.clock, store: this.store });
      this.cfg.load();
      // Changes come only from the spec watcher, started once everything they reach exists.
      this.wireConfig();

      this.scheduler = new Scheduler({
        store: this.store,
        clock: this.clock,
        jobs: () => this.jobs,
        onDue: (job, instant, trigger, repeat, cursorTo) => this.supervisor.dispatchScheduled(job, instant, trigger, repeat, cursorTo),
        recordMissed: ({ job, first, count, catchUp, cause }) => {
          const why =
            cause === 'clock-jump'
              ? 'skipped by a forward jump of the system clock'
              : cause === 'late'
                ? 'passed while nightshift was late to start the run before them (the machine was busy); they were not run'
                : 'missed while nightshift was down';
          const msg = `${count}${count >= 1000 ? '+' : ''} scheduled run(s) since ${readableTime(first, job.timezone)} were ${why}${catchUp ? '; running once now (catchUp)' : ' (catchUp is off)'}`;
          log.warn({ job: job.name, missed: count }, msg);
          const kind = cause === 'clock-jump' ? 'missed-by-clock-jump' : cause === 'late' ? 'missed-late' : 'missed-while-down';
          this.store.journal.record(this.clock.now(), kind, job.name, msg, {
            first,
            count,
          });
        },
        log,
      });
      this.scheduler.events.on('clock-jump', (jump) => this.clockJumped(jump));
      this.pager = new Pager({ store: this.store, getPolicy: () => this.policy, clock: this.clock, log, leash: () => this.leash() });
      this.watchdog = new Watchdog({
        store: this.store,
        clock: this.clock,
        log,
        getJob: (name) => this.jobs.get(name),
      });
      this.watchdog.events.on('alert', ({ alert, isNew }) => {
        // Only a new, unfolded alert may interrupt a human, and only if the policy allows its kind.
        if (isNew && alert.folded_under === null) {
          this.pager?.page({
            event: 'alert',
            kind: alert.kind,
            fingerprint: alert.fingerprint,
            job: alert.job,
            message: alert.message,
            card: `/alerts#${refOf('alert', alert.id)}`,
          });
        }
        this.healer?.alertChanged(alert);
      });
      this.watchdog.events.on('resolved', (alerts) => this.healer?.alertsResolved(alerts));
      this.watchdog.start(this.jobs.values(), downSince);
      this.healer = new Healer({
        store: this.store,
        clock: this.clock,
        log,
        paths,
        getJob: (name) => this.jobs.get(name),
        getRules: () => this.rules,
        getPolicy: () => this.policy,
        killState: () => this.killState(),
        homeIntact: () => this.homeIntact(),
        runJob: (job, trigger, opts) => this.supervisor.runNow(job, trigger, opts),
        stopJob: (name) => this.supervisor.stopJob(name, 'manual'),
        killJobNow: (name) => this.supervisor.killJobNow(name, 'manual'),
        waitJobIdle: (name) => this.supervisor.waitIdle(name),
        resolveAlert: (alert, resolution, why) => this.watchdog?.resolveAlert(alert, resolution, why),
        page: (ev) => this.pager?.page(ev),
        leash: () => this.leash(),
      });
      // Before anything can run: a fix a dead daemon left half-done is rolled back first.
      const healsRecovered = await this.healer.recover();
      await this.noteInstall();
      if (healsRecovered.length)
        this.store.journal.record(
          this.clock.now(),
          'recovered',
          null,
          `${healsRecovered.length} heal attempt(s) were interrupted by the previous stop`,
        );

      this.lastKill = this.killState();
      // A flip made while we were down is journaled now: compare with the last recorded state.
      const wasOn = this.store.journal.killSwitchRecordedOn();
      if (this.lastKill.halted) log.warn({ path: this.lastKill.path }, `starting halted: ${this.lastKill.reason}`);
      if (wasOn !== this.lastKill.switchOn) {
        this.store.journal.record(
          this.clock.now(),
          'kill-switch',
          null,
          this.lastKill.switchOn
            ? `kill switch on at start (${switchWhy(this.lastKill)})`
            : 'kill switch found off at start (turned off while nightshift was down)',
          { on: this.lastKill.switchOn },
        );
      }
      this.killWatcher = new FileWatcher(
        () => this.killSwitchChanged(),
        (err) => log.error({ err: err.message }, 'watching the kill switch failed; it is still checked before every action'),
      );
      await this.killWatcher.start([this.lastKill.path]);
      this.heartbeatFiles = new HeartbeatFiles({
        home: paths.home,
        clock: this.clock,
        log,
        store: this.store,
        watchdog: this.watchdog,
        jobs: () => this.jobs,
      });
      await this.heartbeatFiles.start();

      this.watcher = new ConfigWatcher({
        paths: [paths.jobsDir, paths.rulesDir, paths.protectedDir],
        debounceMs: this.opts.reloadDebounceMs,
        onChange: (file, removed) => this.cfg.apply(file, removed),
        onError: (err) => log.error({ err: err.message }, 'watching the spec folders failed'),
      });
      mkdirSync(paths.jobsDir, { recursive: true });
      await this.watcher.start();

      this.control = new ControlServer(paths.socket, controlRoutes(this.controlActions()), (err) =>
        log.error({ err: errorMessage(err) }, 'control request failed'),
      );
      await this.control.start();
      await this.startDashboard();

      this.deadman = new Deadman({ store: this.store, getPolicy: () => this.policy, clock: this.clock, log, leash: () => this.leash() });
      this.digests = new DigestService({
        store: this.store,
        paths,
        getJobs: () => this.jobs,
        getPolicy: () => this.policy,
        getKill: () => this.killState(),
        clock: this.clock,
        log,
        getHeals: (w) => healLines(this.store, w.from, w.to),
        getConfig: () => ({ problems: this.cfg.problemList(), lastGood: this.cfg.lastGood() }),
      });
      this.digests.events.on('handled', () => void this.deadman?.kick());

      this.retention = new Retention({
        store: this.store,
        limits: () => retentionLimits(this.policy),
        now: () => this.clock.now(),
        removeFiles: (p) => removePrunedFiles(paths, p, log),
        log,
      });

      // Last: only now can a run start, so a failed start-up never leaves a job behind.
      this.retention.start();
      this.deadman.start();
      this.digests.start();
      this.scheduler.start();
      this.runBootJobs();
      this.supervisor.armPendingRetries();
      this.healer.start();

      this.store.journal.record(this.clock.now(), 'daemon-start', null, `nightshift ${VERSION} started (pid ${process.pid})`);
      this.prunePingKeys();
      this.checkRestartLoop();
      log.info(
        { jobs: this.jobs.size, rules: this.rules.size, problems: this.problemList().length, state: paths.state, version: VERSION },
        'nightshift started',
      );
      this.notifier.ready(`${this.jobs.size} jobs`);
      this.startWatchdog();
    } catch (err) {
      this.scheduler?.stop();
      await this.healer?.stop().catch(() => {});
      await this.supervisor?.shutdown('shutdown').catch(() => {});
      await this.stopNotifiers();
      await this.teardown();
      throw err;
    }
  }

  /**
   * The state folder filled up, or has room again: said once per episode in the log, the journal
   * and a page (if policy.page.allow lists disk-full).
   */
  private diskFullChanged(ev: DiskFullEvent): void {
    const free = ev.free === null ? 'unknown' : formatBytes(ev.free);
    if (ev.kind === 'full') {
      const message =
        `the state folder ${ev.dir} is full (${free} free; ${ev.where}: ${ev.error}). Jobs keep running and their records wait in ` +
        `memory until space returns; heals do nothing meanwhile (no snapshot, no fix). Free space on that filesystem.`;
      this.log.error({ state: ev.dir, freeBytes: ev.free, where: ev.where, err: ev.error }, message);
      // Held in memory with the rest and written when space returns, at the moment it happened.
      this.store.journal.record(ev.since, 'disk-full', null, message, { state: ev.dir, freeBytes: ev.free, error: ev.error });
      // The page does not wait for space: the page command gets it on stdin, from memory.
      this.pager?.page({ event: 'disk-full', fingerprint: 'nightshift:disk-full', message, state: ev.dir, freeBytes: ev.free });
      return;
    }
    const message =
      `the state folder ${ev.dir} has room again (${free} free) after ${formatDuration(Math.max(0, ev.at - ev.since))} full; ` +
      `${ev.writes} record(s) kept in memory were written, ${ev.runs.length} of them finished runs`;
    this.log.warn({ state: ev.dir, freeBytes: ev.free, runs: ev.runs.map((r) => r.id), writes: ev.writes }, message);
    this.store.journal.record(ev.at, 'disk-full-resolved', null, message, {
      state: ev.dir,
      freeBytes: ev.free,
      since: ev.since,
      writes: ev.writes,
    });
  }

  /**
   * Many starts in a short time mean a crash loop (systemd restarting a daemon that dies): the
   * one thing about nightshift itself worth waking someone for. The pager pages a fingerprint at
   * most once an hour, so a loop pages once.
   */
  private checkRestartLoop(): void {
    const now = this.clock.now();
    const starts = this.store.journal.between(now - RESTART_LOOP_WINDOW_MS, now + 1, 'daemon-start').length;
    if (starts < RESTART_LOOP_STARTS) return;
    const message = `nightshift started ${starts} times in the last ${formatDuration(RESTART_LOOP_WINDOW_MS)}: it keeps crashing or being restarted (journalctl -u nightshift shows why)`;
    this.log.error({ starts }, message);
    this.pager?.page({ event: 'daemon-restart-loop', fingerprint: 'nightshift:daemon-restart-loop', message, starts });
  }

  /** Journals a step of the wall clock (the scheduler calls this before it re-plans for it). */
  private clockJumped(jump: ClockJump): void {
    const size = formatDuration(Math.abs(jump.deltaMs));
    const msg =
      jump.deltaMs > 0
        ? `the system clock jumped forward by ${size} (to ${new Date(jump.after).toISOString()}): instants it skipped are handled like downtime (catchUp jobs run once, the others are recorded as missed)`
        : `the system clock went back by ${size} (to ${new Date(jump.after).toISOString()}): schedules follow the new time; a fixed-time job does not run a time it already ran (steps under 3 h)`;
    this.log.warn({ deltaMs: jump.deltaMs, from: new Date(jump.before).toISOString(), to: new Date(jump.after).toISOString() }, msg);
    this.store.journal.record(this.clock.now(), 'clock-jump', null, msg, { deltaMs: jump.deltaMs, before: jump.before, after: jump.after });
  }

  /** systemd's watchdog: petted from the event loop, and only while the scheduler is keeping up. */
  private startWatchdog(): void {
    const interval = this.notifier.watchdogIntervalMs;
    if (!interval) return;
    this.watchdogTimer = setInterval(() => {
      if (this.scheduler.healthy(Math.max(5000, interval))) this.notifier.watchdog();
      else this.log.error('the scheduler is behind its deadlines; not petting the systemd watchdog');
    }, interval);
  }

  /** Graceful stop: no new runs, running jobs get SIGTERM (SIGKILL after their killGrace), everything recorded. */
  stop(): Promise<void> {
    if (!this.stopPromise) this.stopPromise = this.doStop();
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    this.log.info({ running: this.supervisor?.runningCount() ?? 0 }, 'nightshift stopping');
    this.notifier.stopping();
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    this.scheduler?.stop();
    this.watchdog?.stop();
    await this.watcher?.stop();
    // No button may start anything while the heals and runs are being stopped.
    await this.endDashboard();
    // Heals first: a fix in flight is rolled back while its probe's runs can still be stopped cleanly.
    await this.healer?.stop();
    await this.supervisor?.shutdown('shutdown');
    await this.stopNotifiers();
    this.store?.held.retryNow();
    const full = this.store?.held.diskFull();
    if (full && full.held > 0) {
      this.log.error(
        { state: this.paths.state, held: full.held },
        `stopping while the state folder ${this.paths.state} is still full: ${full.held} record(s) kept in memory since ${new Date(full.since).toISOString()} cannot be written and are lost (this log has the runs)`,
      );
    }
    try {
      this.store?.journal.record(this.clock.now(), 'daemon-stop', null, 'nightshift stopped');
    } catch {
      // the store may be the reason we stop
    }
    await this.teardown();
    this.log.info('nightshift stopped');
  }

  private async stopNotifiers(): Promise<void> {
    await Promise.allSettled([this.digests?.stop(), this.deadman?.stop(), this.pager?.stop(), this.retention?.stop()]);
  }

  /** Second signal: kill every job group at once. */
  forceStop(): void {
    this.supervisor?.killAllNow();
  }

  private async teardown(): Promise<void> {
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    if (this.homeTimer) clearInterval(this.homeTimer);
    this.scheduler?.stop();
    this.watchdog?.stop();
    await this.watcher?.stop().catch(() => {});
    await this.killWatcher?.stop().catch(() => {});
    await this.heartbeatFiles?.stop();
    await this.control?.stop().catch(() => {});
    await this.endDashboard();
    try {
      this.store?.close();
    } catch {
      // closing twice is harmless
    }
    this.lock?.release();
    this.lock = null;
    this.notifier.close();
  }

  // ---- configuration ----

  private get jobs(): Map<string, Job> {
    return this.cfg.jobs;
  }

  private get rules(): Map<string, LoadedRule> {
    return this.cfg.rules;
  }

  private get policy(): Policy {
    return this.cfg.policy;
  }

  private get policyOk(): boolean {
    return this.cfg.policyOk;
  }

  problemList(): SpecProblem[] {
    return this.cfg.problemList();
  }

  /** Applies one changed file of the home, as the spec watcher does (for tests and the in-process API). */
  reloadFile(file: string, removed: boolean): void {
    this.cfg.apply(file, removed);
  }

  /**
   * Runs each @reboot job once per boot of the machine: the first start of nightshift in a boot
   * runs them, a restart in the same boot does not. Where the kernel gives no boot id (not Linux),
   * every start counts as a boot: running once too often is better than never (fail open to work).
   */
  private runBootJobs(): void {
    const jobs = [...this.jobs.values()].filter((j) => j.atBoot);
    const bootId = this.boot?.id ?? null;
    if (bootId === null) {
      if (jobs.length > 0)
        this.log.warn('no boot id to read (/proc/sys/kernel/random/boot_id): @reboot jobs run at every start of nightshift');
    } else this.store.bootRuns.forgetOtherBoots(bootId);
    const now = this.clock.now();
    for (const job of jobs) {
      const runs = job.spec.enabled && job.managed;
      // A job file written after the boot began (cron has had this boot's @reboot lines; an import
      // made while nightshift was stopped; a renamed file) waits for the next boot, as one added
      // while nightshift runs does.
      const added = this.boot !== null && changedAfter(job.file, this.boot.at);
      try {
        if (bootId !== null && !this.store.bootRuns.claim(job.name, bootId, now, !runs ? 'off' : added ? 'added' : 'run')) continue;
      } catch (err) {
        // Fail open to work: a claim that cannot be written does not keep the job from its run.
        this.log.error(
          { job: job.name, err: errorMessage(err) },
          'the boot run of an @reboot job could not be recorded; running it anyway',
        );
      }
      if (!runs || added) continue;
      this.log.info({ job: job.name, boot: bootId }, 'the machine booted: running its @reboot job');
      this.supervisor.dispatchBoot(job);
    }
  }

  /** What follows a change of the home's files: the configuration itself was applied by LiveConfig. */
  private wireConfig(): void {
    const { log } = this;
    const ev = this.cfg.events;
    ev.on('job-changed', ({ job, prev }) => {
      this.scheduler.upsert(job);
      // An @reboot job that appears (or becomes one) during a boot waits for the next boot, as under cron.
      if (job.atBoot && this.boot) this.store.bootRuns.claim(job.name, this.boot.id, this.clock.now(), 'added');
      this.watchdog?.jobChanged(job, !prev);
      this.heartbeatFiles?.jobsChanged();
      const nextRun = this.scheduler.nextRun(job.name);
      log.info(
        { job: job.name, file: job.file, nextRun: nextRun ? new Date(nextRun).toISOString() : null },
        prev ? 'job changed' : 'job added',
      );
      this.store.journal.record(
        this.clock.now(),
        prev ? 'job-changed' : 'job-added',
        job.name,
        `job ${job.name} ${prev ? 'changed' : 'added'}`,
      );
      // A job made one nightshift runs loses its key: made external again, it gets a new one.
      if (job.managed) this.prunePingKeys();
      // Not a row of the store, yet on every page: the overview lists it, its page says its schedule.
      this.dashboard?.push({ what: 'job', job: job.name });
    });
    ev.on('job-removed', ({ name, file }) => {
      this.scheduler.remove(name);
      this.watchdog?.jobRemoved(name);
      this.heartbeatFiles?.jobsChanged();
      // Its HTTP ping key goes with it: a new job of the same name later gets a new one.
      try {
        if (this.store.pingKeys.remove(name)) log.info({ job: name }, 'the ping key of a removed job was deleted');
      } catch (err) {
        // Left in place it is ignored (only keys of external jobs here now are taken).
        log.warn({ job: name, err: errorMessage(err) }, 'the ping key of a removed job could not be deleted; it is ignored');
      }
      log.info({ job: name, file }, 'job removed (a running process of it is left to finish)');
      this.store.journal.record(this.clock.now(), 'job-removed', name, `job ${name} removed (${file} deleted)`);
      this.dashboard?.push({ what: 'job', job: name });
    });
    ev.on('job-retimed', (job) => {
      this.scheduler.upsert(job);
      this.watchdog?.jobChanged(job, false);
    });
    ev.on('policy-changed', ({ ok, wasOk }) => {
      if (!ok) {
        // Once per episode, as what it is: not a flip of the kill switch (the digest counts those).
        if (wasOk) this.store.journal.record(this.clock.now(), 'policy-invalid', null, policyInvalidSentence(this.paths.policyFile));
        this.killSwitchChanged();
        return;
      }
      this.killWatcher?.setFiles([killSwitchPath(this.paths, this.policy)]);
      this.killSwitchChanged();
      this.digests?.policyChanged();
      if (this.dashboardKey() !== this.dashboardAt) void this.startDashboard();
      this.dashboard?.push({ what: 'job', job: null });
      log.info({ file: this.paths.policyFile }, 'policy reloaded');
      this.store.journal.record(this.clock.now(), 'policy-changed', null, 'policy reloaded');
    });
    ev.on('rules-changed', () => this.healer?.enqueueOpen());
  }

  // ---- kill switch and heartbeats ----

  /**
   * The install's node_modules/ is checked at every heal (a change during one is the protected-zone
   * emergency). Between two starts it changes with every upgrade or rebuild: recorded once, as
   * information, and paged to no one.
   */
  private async noteInstall(): Promise<void> {
    try {
      const digest = installDigest(await installState(undefined, INSTALL_PARTS));
      const last = this.store.journal.recent(1, 'install')[0];
      const before = last ? (JSON.parse(last.data ?? '{}') as { digest?: string }).digest : undefined;
      if (before === digest) return;
      const message =
        before === undefined
          ? 'first start of this nightshift install'
          : 'nightshift was upgraded or changed since its last start (its node_modules/ differ)';
      this.store.journal.record(this.clock.now(), 'install', null, message, { digest });
      this.log.info({ digest: digest.slice(0, 12) }, message);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'the install could not be read for its record');
    }
  }

  /**
   * What every process nightshift starts is kept from, under the policy in force (the last good
   * one). Every launch asks for it: none starts once the home has been moved (homeIntact).
   */
  leash(): Leash {
    if (!this.homeIntact()) throw new Error(this.homeLost!);
    return leashFor(this.paths, this.policy);
  }

  /**
   * A job may write the folder that holds the home. Moved away with another folder put in its
   * place, the home's paths would name what the job made: a state folder without the kill switch,
   * rules of its choosing, and a leash that hides nothing real. From the moment that is seen,
   * nightshift starts nothing (no page either: a page command is a process too), restores nothing
   * by path, records it (the database is open by file descriptor, so the record lands in the real
   * one), and stops with exit code 4, which the unit does not restart: its deadman falls silent
   * and systemd shows the unit failed. A person must put the folder back.
   */
  homeIntact(): boolean {
    if (this.homeLost !== null) return false;
    for (const [p, id] of this.folderIds) {
      const now = folderId(p);
      if (now === id || now === null) continue;
      this.homeLost = `${p} is no longer the folder nightshift started with (it was moved, renamed or replaced while nightshift ran): nightshift stopped; put the folder back (its database is now at ${openFileEndingIn('/nightshift.db') ?? 'an unknown place'}), check it, then start nightshift`;
      this.log.fatal({ folder: p }, this.homeLost);
      try {
        this.store.journal.record(this.clock.now(), 'home-moved', null, this.homeLost);
      } catch {
        // the record is a courtesy; the stop is what matters
      }
      this.opts.onHomeLost?.(this.homeLost);
      return false;
    }
    return true;
  }

  /** The one check every autonomous action goes through (fail closed). */
  killState(): KillState {
    // The last good policy's switch: an invalid policy halts by itself, the switch still counts.
    const path = killSwitchPath(this.paths, this.policy);
    if (!this.homeIntact()) return { halted: true, switchOn: false, reason: this.homeLost!, path, since: null };
    return checkKillSwitch(path, this.policyOk, this.paths.policyFile);
  }

  private killSwitchChanged(by?: string): void {
    const now = this.killState();
    const before = this.lastKill;
    this.lastKill = now;
    if (before && before.halted === now.halted && before.switchOn === now.switchOn) return;
    this.dashboard?.push({ what: 'kill', job: null });
    // The switch itself is a flip; an invalid policy halts too, but LiveConfig says so as what it is.
    if (!before || before.switchOn !== now.switchOn) {
      this.log.warn(
        { path: now.path, halted: now.halted },
        now.switchOn
          ? `kill switch ON (${switchWhy(now)}): autonomous actions and agent jobs are halted`
          : now.halted
            ? `kill switch off; autonomous actions stay stopped: ${now.reason}`
            : 'kill switch off: autonomous actions may run again',
      );
    } else if (!now.halted) this.log.warn({ path: now.path }, 'the policy is valid again: autonomous actions may run again');
    if (this.store.journal.killSwitchRecordedOn() !== now.switchOn) {
      this.store.journal.record(
        this.clock.now(),
        'kill-switch',
        null,
        `kill switch turned ${now.switchOn ? 'on' : 'off'}${by ? ` by ${by}` : ''}${now.switchOn ? ` (${switchWhy(now)})` : ''}`,
        { on: now.switchOn, ...(by ? { by } : {}) },
      );
    }
    if (before && before.halted === now.halted) return;
    if (now.halted) this.healer?.halt();
    else this.healer?.enqueueOpen();
    if (now.halted) {
      void this.supervisor.haltAgents().then((n) => {
        if (n > 0) this.log.warn({ stopped: n }, 'running agent jobs stopped by the kill switch');
      });
    }
  }

  // ---- control API ----

  private jobOr404(name: string | undefined): Job {
    const job = name ? this.jobs.get(name) : undefined;
    if (!job) throw new ControlError(`no job named "${name}" (known: ${[...this.jobs.keys()].slice(0, 20).join(', ') || 'none'})`, 404);
    return job;
  }

  /** Only the external jobs there are now keep a ping key (see PingKeys.keepOnly). */
  private prunePingKeys(): void {
    try {
      const n = this.store.pingKeys.keepOnly([...this.jobs.values()].filter((j) => !j.managed).map((j) => j.name));
      if (n > 0) this.log.info({ removed: n }, 'ping keys of jobs that are gone or no longer external were deleted');
    } catch (err) {
      // Left in place they are ignored while their job is not external; the next start tries again.
      this.log.warn({ err: errorMessage(err) }, 'ping keys of jobs that are gone could not be deleted');
    }
  }

  /** A job `run now` may start: one nightshift runs itself (the CLI and the dashboard both ask here). */
  private runnableOr400(name: string | undefined): Job {
    const job = this.jobOr404(name);
    if (!job.managed)
      throw new ControlError(`job "${job.name}" is external (no command): something else runs it; nightshift only watches it`, 400);
    return job;
  }

  live(): {
    pid: number;
    startedAt: number;
    version: string;
    jobs: LiveJob[];
    problems: string[];
    policyOk: boolean;
    dashboard: { listening: boolean; listen: string | null; publicUrl: string | null };
  } {
    const running = new Map<string, number[]>();
    for (const r of this.supervisor.running()) running.set(r.job, [...(running.get(r.job) ?? []), r.runId]);
    return {
      pid: process.pid,
      startedAt: this.startedAt,
      version: VERSION,
      policyOk: this.policyOk,
      dashboard: this.dashboardState(),
      problems: this.problemList().map(formatProblem),
      jobs: [...this.jobs.values()].map((j) => ({
        name: j.name,
        running: running.get(j.name) ?? [],
        nextRun: this.scheduler.nextRun(j.name) ?? null,
        successDeadline: this.watchdog?.nextDeadline(j.name).missed ?? null,
      })),
    };
  }

  // ---- the dashboard ----

  private dashboardKey(): string {
    const d = this.policy.dashboard;
    return `${d.listen} ${d.publicUrl ?? ''}`;
  }

  private dashboardChain: Promise<void> = Promise.resolve();
  private dashboardRetry: NodeJS.Timeout | null = null;
  /** Set when the daemon stops: nothing starts a dashboard after that. */
  private dashboardDone = false;

  /** Starts, reloads and retries of the server run one after another: two quick reloads cannot cross. */
  private startDashboard(): Promise<void> {
    return (this.dashboardChain = this.dashboardChain.then(() => this.serveDashboard()));
  }

  private async endDashboard(): Promise<void> {
    this.dashboardDone = true;
    await this.dashboardChain.catch(() => {});
    if (this.dashboardRetry) clearTimeout(this.dashboardRetry);
    const old = this.dashboard;
    this.dashboard = null;
    await old?.stop().catch(() => {});
  }

  /**
   * Serves the dashboard as the policy says. A new address is bound before the old one is let go,
   * and a change of publicUrl alone keeps the socket: a gap with the port free would let a job
   * take it and receive the session cookies of every open page. A port that cannot be had is said
   * in the log and the journal (and one that is taken is tried again every 30 s); everything else
   * runs on (fail open to work: the jobs do not need the page).
   */
  private async serveDashboard(retrying = false): Promise<void> {
    if (this.dashboardDone) return;
    const key = this.dashboardKey();
    // Already served as the policy says (a reload that changed nothing of it, or a start after one).
    if (key === this.dashboardAt && (this.dashboard || this.policy.dashboard.listen === 'off')) return;
    if (this.dashboardRetry) clearTimeout(this.dashboardRetry);
    this.dashboardRetry = null;
    const d = this.policy.dashboard;
    const old = this.dashboard;
    if (old && old.listen === d.listen) {
      old.setPublicUrl(d.publicUrl);
      this.dashboardAt = key;
      this.log.info({ listen: d.listen, publicUrl: d.publicUrl }, 'dashboard address changed');
      return;
    }
    if (d.listen === 'off') {
      this.dashboard = null;
      this.dashboardAt = key;
      await old?.stop().catch(() => {});
      return;
    }
    try {
      const dash = new Dashboard({
        listen: d.listen,
        publicUrl: d.publicUrl,
        log: this.log,
        now: () => this.clock.now(),
        describe: (job) => scheduleInWords(job, this.clock.now()),
        actions: this.webActions(),
        data: () => ({
          store: this.store,
          paths: this.paths,
          now: this.clock.now(),
          jobs: this.jobs,
          rules: this.rules,
          policy: this.policy,
          kill: this.killState(),
          config: { problems: this.cfg.problemList(), lastGood: this.cfg.lastGood() },
        }),
      });
      await dash.start();
      this.dashboard = dash;
      this.dashboardAt = key;
      await old?.stop().catch(() => {});
      // The journal first: whoever reads the log line may look for the row at once.
      if (retrying) this.store.journal.record(this.clock.now(), 'dashboard-listening', null, `the dashboard listens on ${d.listen} again`);
      this.log.info({ listen: d.listen, publicUrl: d.publicUrl }, 'dashboard listening');
    } catch (err) {
      const code = errorCode(err);
      if (!retrying) {
        const why =
          code === 'EADDRINUSE'
            ? 'something else holds the port; it is tried again every 30 s: free it, or set dashboard.listen in protected/policy.yaml'
            : code === 'EACCES'
              ? 'a port below 1024 needs root: choose a port above 1024 in dashboard.listen (protected/policy.yaml)'
              : code === 'EADDRNOTAVAIL'
                ? 'this machine has no such address: correct dashboard.listen in protected/policy.yaml'
                : 'correct dashboard.listen or dashboard.publicUrl in protected/policy.yaml';
        const message = `the dashboard could not listen on ${d.listen} (${errorMessage(err)}); jobs and heals run on without it, and nightshift login gives no link meanwhile. ${why}${old ? '. The dashboard stays where it was' : ''}`;
        this.store.journal.record(this.clock.now(), 'dashboard-failed', null, message);
        this.log.error({ listen: d.listen, err: errorMessage(err) }, message);
      }
      // The old server, if any, keeps serving at the old address until the new one can be had.
      if (code === 'EADDRINUSE')
        this.dashboardRetry = setTimeout(() => {
          this.dashboardChain = this.dashboardChain.then(() => (this.dashboardKey() === key ? this.serveDashboard(true) : undefined));
        }, 30_000).unref();
    }
  }

  /** Where the dashboard is served now (null: nowhere): `nightshift login` gives a link only for that address. */
  dashboardState(): { listening: boolean; listen: string | null; publicUrl: string | null } {
    const dash = this.dashboard;
    return { listening: dash !== null, listen: dash?.listen ?? null, publicUrl: dash?.publicUrl ?? null };
  }

  /** The dashboard's buttons: the same actions and checks as the CLI's commands, said as "by web (LABEL)". */
  private webActions(): WebActions {
    const asWeb = <T>(fn: () => T): T => {
      try {
        return fn();
      } catch (err) {
        // The CLI's refusals, in the CLI's words: shown to the person, not logged as faults.
        if (err instanceof ControlError || err instanceof HealError || err instanceof ShuttingDown) throw new ActionRefused(err.message);
        throw err;
      }
    };
    return {
      answer: (id, what, by) => asWeb(() => this.answer(id, what, by)),
      setPaused: (name, paused, by) => asWeb(() => this.setPaused([this.jobOr404(name)], paused, by)),
      runNow: async (name, by) => {
        const job = asWeb(() => this.runnableOr400(name));
        const finished = this.supervisor.runManual(job);
        // The supervisor decides a skip (overlap, halted) at once and settles with that row; a run
        // that started is still under way after this turn of the event loop.
        const settled = await Promise.race([
          finished.then(
            (row) => ({ row }),
            (err: unknown) => ({ err }),
          ),
          new Promise<null>((r) => setImmediate(() => r(null))),
        ]);
        if (settled && 'err' in settled) throw settled.err instanceof ShuttingDown ? new ActionRefused(settled.err.message) : settled.err;
        finished.catch((err: unknown) =>
          this.log.error({ job: job.name, err: errorMessage(err) }, 'a run asked for on the dashboard failed'),
        );
        const runId = settled
          ? settled.row.id
          : this.supervisor
              .running()
              .filter((r) => r.job === job.name)
              .at(-1)?.runId;
        const said = settled
          ? `not started (${(settled.row.reason ?? settled.row.outcome ?? '').replace(/^not started: /, '')})`
          : `run #${runId ?? '?'} started`;
        this.store.journal.record(this.clock.now(), 'run-now', job.name, `job ${job.name} run now by ${by}: ${said}`, { run: runId });
        if (settled) throw new ActionRefused(`${job.name} was ${said}`);
        return `${job.name}: ${said}, by ${by}; its result shows on its page when it ends.`;
      },
      jobOfPingKey: (key) => {
        // Only a job that is here and external now: the key of a removed job, or of one that
        // nightshift runs since, answers as an unknown key does.
        const name = this.store.pingKeys.jobOf(pingKeyHash(key));
        const job = name === undefined ? undefined : this.jobs.get(name);
        return job && !job.managed ? job.name : null;
      },
      ping: (name, kind, output, message) => {
        try {
          this.ping(name, kind, 'http', output, message ?? undefined);
          return true;
        } catch (err) {
          // Removed or made a job nightshift runs between the key's check and the body's end.
          if (err instanceof ControlError) return false;
          throw err;
        }
      },
      killSwitch: (on, by) => {
        setKillSwitch(killSwitchPath(this.paths, this.policy), on, by, this.clock.now());
        // Said at once and with who pressed it; the watcher's later event then finds nothing new.
        this.killSwitchChanged(by);
        const k = this.killState();
        if (k.switchOn) return 'Kill switch ON: every fix and agent job is halted.';
        return k.halted ? `Kill switch off, but autonomous actions stay stopped: ${k.reason}.` : 'Kill switch off: fixes may run again.';
      },
    };
  }

  /** The actions behind the control socket's routes (control/routes.ts). */
  private controlActions(): ControlActions {
    return {
      health: () => ({ ok: true, pid: process.pid, version: VERSION }),
      live: () => this.live(),
      runNow: async (name) => {
        const job = this.runnableOr400(name);
        try {
          return { run: await this.supervisor.runManual(job) };
        } catch (err) {
          if (err instanceof ShuttingDown) throw new ControlError(err.message, 503);
          throw err;
        }
      },
      ping: (name, kind) => this.ping(name, kind),
      pingKey: (name, rotate) => this.pingKey(name, rotate),
      setPaused: (name, paused, by) => this.setPaused(name === null ? [...this.jobs.values()] : [this.jobOr404(name)], paused, by),
      answer: (id, what, by) => this.answer(id, what, by),
    };
  }

  private answer(id: number, what: 'approve' | 'deny', by: string): { attempt: number; job: string; status: string } {
    try {
      const r = what === 'approve' ? this.healer!.approve(id, by) : this.healer!.deny(id, by);
      this.store.journal.record(
        this.clock.now(),
        `heal-${what === 'approve' ? 'approved' : 'denied'}`,
        r.job,
        `heal ${refOf('heal', id)} ${what === 'approve' ? 'approved' : 'denied'} by ${by}: ${r.status}`,
      );
      return r;
    } catch (err) {
      if (err instanceof HealError) throw new ControlError(err.message, err.status);
      if (isDiskFull(err)) {
        // Fail closed: an answer that cannot be journaled does nothing.
        this.store.held.noteDiskFull(err, 'the database');
        throw new ControlError(
          `the state folder ${this.paths.state} is full: the answer could not be recorded, so nothing was run; ${what} again once there is space`,
          503,
        );
      }
      throw err;
    }
  }

  /**
   * A ping of an external job: from `nightshift ping` (source "ping") or over HTTP (source "http",
   * with what was POSTed as its output). Either way the watchdog takes it the same.
   */
  private ping(
    name: string,
    kind: PingKind,
    source = 'ping',
    output: string | null = null,
    message?: string,
  ): { job: string; kind: string; durationMs: number | null } {
    const job = this.jobOr404(name);
    if (job.managed) {
      throw new ControlError(
        `job "${job.name}" is run by nightshift itself; its successful runs are its heartbeats (pings are for external jobs)`,
        400,
      );
    }
    const { durationMs } = this.watchdog!.heartbeat(job, kind, source, message, undefined, output);
    return { job: job.name, kind, durationMs };
  }

  /**
   * `nightshift ping-url`: the external job's HTTP ping key, made on first use and kept (the same
   * address every time), or replaced at once with `rotate` (the old key answers "not found" from
   * this commit on). The address is the dashboard's (publicUrl, else the listen address); null
   * when the dashboard is off.
   */
  private pingKey(
    name: string,
    rotate: boolean,
  ): {
    job: string;
    path: string;
    url: string | null;
    created: boolean;
    rotated: boolean;
    dashboard: { listening: boolean; listen: string | null; publicUrl: string | null };
  } {
    const job = this.jobOr404(name);
    if (job.managed) {
      throw new ControlError(
        `job "${job.name}" is run by nightshift itself; its successful runs are its heartbeats (ping addresses are for external jobs: ones with no command)`,
        400,
      );
    }
    const now = this.clock.now();
    const had = this.store.pingKeys.of(job.name);
    let key = had?.key;
    if (!key || rotate) {
      key = newPingKey();
      try {
        this.store.pingKeys.set(job.name, key, pingKeyHash(key), now);
      } catch (err) {
        if (!isDiskFull(err)) throw err;
        this.store.held.noteDiskFull(err, 'the database');
        throw new ControlError(
          `the state folder ${this.paths.state} is full: no ping key could be ${had ? 'replaced (the old one still works)' : 'made'}; try again once there is space`,
          503,
        );
      }
      // The journal names the job, never the key.
      const [kind, message] = had
        ? ['ping-key-rotated', `ping key of ${job.name} replaced: the old ping address stopped working`]
        : ['ping-key-created', `ping key of ${job.name} made: it may ping over HTTP`];
      this.store.journal.record(now, kind, job.name, message);
      this.log.info({ job: job.name }, message);
    }
    const path = pingPath(key);
    return {
      job: job.name,
      path,
      url: dashboardLink(this.policy, path),
      created: !had,
      rotated: had !== undefined && rotate,
      dashboard: this.dashboardState(),
    };
  }

  private setPaused(jobs: Job[], paused: boolean, by: string): { changed: string[] } {
    const now = this.clock.now();
    const changed: string[] = [];
    for (const job of jobs) {
      const was = this.store.jobStates.get(job.name)?.paused === 1;
      if (was === paused) continue;
      this.store.jobStates.setPaused(job.name, paused, now);
      if (paused) this.store.runs.cancelRetries(job.name);
      this.scheduler.rearm(job.name);
      this.watchdog?.pausedChanged(job, paused);
      changed.push(job.name);
      this.store.journal.record(now, paused ? 'paused' : 'resumed', job.name, `job ${job.name} ${paused ? 'paused' : 'resumed'} by ${by}`);
      this.log.info({ job: job.name, by }, paused ? 'job paused' : 'job resumed');
    }
    // Alerts of a paused job wait for it; resuming hands them to the heal loop.
    if (!paused && changed.length) this.healer?.enqueueOpen();
    return { changed };
  }

  /** For tests and the in-process API. */
  get internals(): {
    store: Store;
    scheduler: Scheduler;
    supervisor: Supervisor;
    watchdog: Watchdog | null;
    healer: Healer | null;
    jobs: Map<string, Job>;
  } {
    return {
      store: this.store,
      scheduler: this.scheduler,
      supervisor: this.supervisor,
      watchdog: this.watchdog,
      healer: this.healer,
      jobs: this.jobs,
    };
  }
}

/**
 * device:inode of a folder, "gone" when nothing is at the path, null when it cannot be told now
 * (an I/O error, a permission problem): only a folder that is gone or another one counts as moved.
 */
function folderId(p: string): string | null {
  try {
    const st = statSync(p);
    return `${st.dev}:${st.ino}`;
  } catch (err) {
    const code = errorCode(err);
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'gone' : null;
  }
}

/** The policy's retention in the store's terms. */
function retentionLimits(policy: Policy): RetentionLimits {
  const r = policy.retention;
  return {
    runsMs: r.runs,
    runsPerJob: r.runsPerJob,
    heartbeatsMs: r.heartbeats,
    alertsMs: r.alerts,
    eventsMs: r.events,
    digestsMs: r.digests,
  };
}

/** Run logs and digest files of pruned rows; only inside the state folder (a row is data, not an order). */
function removePrunedFiles(paths: HomePaths, p: Pruned, log: Logger): void {
  const inside = (f: string, dir: string): boolean => resolve(f).startsWith(`${resolve(dir)}${sep}`);
  const files = [...p.logs.filter((f) => inside(f, paths.logs)), ...p.digests.map((d) => digestFile(paths, d))];
  for (const f of files) {
    try {
      unlinkSync(f);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') log.warn({ file: f, err: errorMessage(err) }, 'retention could not remove a file');
    }
  }
}

/** Whether the file's inode changed (written, renamed, touched) after `at` (epoch ms); false when unreadable. */
function changedAfter(file: string, at: number): boolean {
  try {
    return statSync(file).ctimeMs > at;
  } catch {
    return false;
  }
}
