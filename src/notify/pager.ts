// The only things allowed to interrupt a person at once (Law 6: heal first, page never): events
// on policy.page.allow, at most once per fingerprint per hour. The event goes to the page command
// as JSON on stdin — never into argv, env or a shell (Law 8: alert text is data). The deadman
// lives here too: it is the other command that exists only to reach the outside world.
import { setTimeout as sleep } from 'node:timers/promises';
import { formatDuration } from '../config/duration.js';
import type { Logger } from '../log.js';
import { SYSTEMD_NOTIFY_ENV } from './systemd.js';
import {
  exitOf,
  groupAlive,
  killNow,
  launch,
  startFailure,
  terminateGroup,
  UncontainedError,
  type Confinement,
  type Launched,
  type Leash,
} from '../run/launch.js';
import { dashboardLink, type Policy } from '../config/schema.js';
import { isDiskFull, type Store } from '../store/store.js';
import { DeadlineTimer } from '../schedule/timer.js';
import { elapsedMs, type Clock } from '../clock.js';
import { oneLine, textAsData } from '../text.js';
import { errorMessage } from '../errors.js';

export const COMMAND_TIMEOUT_MS = 10_000;
export const PAGE_INTERVAL_MS = 3_600_000;
export const DEADMAN_INTERVAL_MS = 3_600_000;
const KILL_GRACE_MS = 1000;
const CAPTURE_CAP = 4096;

// ---- bounded commands ----

export interface BoundedResult {
  ok: boolean;
  exitCode: number | null;
  signal: string | null;
  /** It did not finish in time; its whole process group was killed. */
  timedOut: boolean;
  durationMs: number;
  stdout: string;
  stderr: string;
  /** It could not be started at all. */
  startError: string | null;
  /** Stopped from outside (opts.signal), e.g. the kill switch during a fix; its group was killed. */
  aborted: boolean;
  /** Not started: a fix or probe that cannot be contained on this machine never runs. */
  uncontained?: boolean;
}

export interface BoundedOptions {
  input?: string | Buffer;
  timeoutMs: number;
  /** Added to the daemon's environment (minus systemd's variables). */
  env?: Record<string, string>;
  cwd?: string;
  /** Aborting kills the whole group at once (SIGTERM, SIGKILL after a second). */
  signal?: AbortSignal;
  /** The group id, as soon as the command exists: journal it so a restart can find leftovers. */
  onSpawn?: (pgid: number) => void;
  /** How long SIGTERM may take before SIGKILL (default 1 s). */
  killGraceMs?: number;
  /** How the command is contained (the launcher's profile and leash). */
  confine: Confinement;
  /** How many characters of stdout are kept (default 4096, as of stderr always). */
  stdoutCap?: number;
}

/** The daemon's environment minus what belongs to the daemon alone (systemd's notify socket). */
function commandEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  const privateNames = new Set<string>(SYSTEMD_NOTIFY_ENV);
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !privateNames.has(k)) env[k] = v;
  return env;
}

class Capture {
  private text = '';
  constructor(private readonly cap = CAPTURE_CAP) {}
  add(chunk: Buffer): void {
    if (this.text.length < this.cap) this.text += chunk.toString('utf8').slice(0, this.cap - this.text.length);
  }
  get value(): string {
    return this.text.trim();
  }
}

/**
 * Runs an argv in its own process group with `input` on stdin and a hard time limit, after which
 * the whole group is killed. Never throws. Leftovers that outlive the command (a background
 * notifier it forked) are killed at the same deadline.
 */
export async function runBounded(argv: readonly string[], opts: BoundedOptions): Promise<BoundedResult> {
  const started = elapsedMs();
  const [file, ...args] = argv;
  const result = (r: Partial<BoundedResult>): BoundedResult => ({
    ok: false,
    exitCode: null,
    signal: null,
    timedOut: false,
    durationMs: Math.round(elapsedMs() - started),
    stdout: '',
    stderr: '',
    startError: null,
    aborted: false,
    ...r,
  });
  if (file === undefined) return result({ startError: 'no command given' });
  if (opts.signal?.aborted) return result({ aborted: true, startError: 'stopped before it started' });

  let launched: Launched;
  try {
    launched = launch([file, ...args], opts.confine, {
      input: opts.input ?? '',
      env: { ...commandEnv(), ...opts.env },
      cwd: opts.cwd,
      reject: false,
      buffer: false,
      stdout: 'pipe',
      stderr: 'pipe',
    });
  } catch (err) {
    if (err instanceof UncontainedError)
      return result({ startError: `not started, because it cannot be contained here: ${err.message}`, uncontained: true });
    return result({ startError: errorMessage(err) });
  }
  const { sub } = launched;
  const settled = Promise.resolve(sub).then(
    (r) => r as unknown as Record<string, unknown>,
    (e: unknown) => e as Record<string, unknown>,
  );
  const pid = sub.pid;
  if (pid === undefined) {
    return result({ startError: startFailure(await settled, file) });
  }

  opts.onSpawn?.(pid);
  const out = new Capture(opts.stdoutCap);
  const err = new Capture();
  sub.stdout?.on('data', (c: Buffer) => out.add(c));
  sub.stderr?.on('data', (c: Buffer) => err.add(c));
  // A command that ignores its input and exits makes our stdin write fail: that is not an error of ours.
  sub.stdin?.on('error', () => {});

  let timedOut = false;
  let aborted = false;
  let exited = false;
  const grace = opts.killGraceMs ?? KILL_GRACE_MS;
  const kill = (): void => {
    if (!exited) timedOut = true;
    void terminateGroup(pid, grace).catch(() => {});
  };
  const deadline = setTimeout(kill, opts.timeoutMs);
  const onAbort = (): void => {
    if (exited) return;
    aborted = true;
    void terminateGroup(pid, grace).catch(() => {});
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    sub.once('exit', (code, signal) => res(exitOf(launched, code, signal))),
  );
  exited = true;
  opts.signal?.removeEventListener('abort', onAbort);
  // Let the last bytes of stderr arrive; a grandchild holding the pipe must not hold us.
  await Promise.race([settled, sleep(100)]);
  if (groupAlive(pid)) deadline.unref();
  else clearTimeout(deadline);
  if (timedOut || aborted) {
    // terminateGroup already runs; make sure nothing of the group is left when we report.
    for (let i = 0; i < 50 && groupAlive(pid); i++) await sleep(40);
    try {
      killNow(pid);
    } catch {
      // gone or not ours any more: nothing left to kill
    }
  }
  return result({
    ok: !timedOut && !aborted && exit.code === 0,
    exitCode: exit.code,
    signal: exit.signal,
    timedOut,
    aborted,
    stdout: out.value,
    stderr: err.value,
  });
}

/** What happened, in plain words, with the command's own last words when it failed. */
export function describeResult(r: BoundedResult, timeoutMs: number): string {
  if (r.aborted) return 'was stopped (its process group was killed)';
  if (r.startError) return `could not start: ${r.startError}`;
  if (r.timedOut) return `did not finish within ${formatDuration(timeoutMs)} and was killed`;
  const said = r.stderr || r.stdout;
  const tail = said ? `: ${said.replace(/\s+/g, ' ').slice(-500)}` : '';
  if (r.ok) return `done in ${formatDuration(r.durationMs)}`;
  if (r.signal) return `was killed by ${r.signal}${tail}`;
  return `exited with code ${r.exitCode}${tail}`;
}

// ---- paging ----

export interface PageEvent {
  /** What happened, e.g. protected-zone, heal-blocked, daemon-restart-loop, alert. */
  event: string;
  /** What is "the same page": at most one per fingerprint per hour, e.g. db-backup:failed. */
  fingerprint: string;
  job?: string;
  message: string;
  /** Its card on the dashboard ("/heals#H-4"; the overview when absent): sent as `url`, a full address. */
  card?: string;
  [k: string]: unknown;
}

/** What page() decided at once; the command itself runs in the background. */
export type PageDecision = 'paging' | 'not-allowed' | 'suppressed' | 'not-configured';

/** An event pages when its name, its alert kind or its fingerprint is on policy.page.allow. */
export function pageAllowed(policy: Policy, ev: PageEvent): boolean {
  const allow = policy.page.allow;
  return allow.includes(ev.event) || (typeof ev.kind === 'string' && allow.includes(ev.kind)) || allow.includes(ev.fingerprint);
}

export interface PagerDeps {
  store: Store;
  /** What page and deadman commands are kept from (the launcher's sandbox). */
  leash(): Leash;
  getPolicy(): Policy;
  clock: Clock;
  log: Logger;
  /** How long a page command may take before its group is killed (default 10 s). */
  timeoutMs?: number;
  /** The least time between two pages with the same fingerprint (default 1 h). */
  intervalMs?: number;
}

export class Pager {
  private readonly inFlight = new Set<Promise<void>>();
  /** Pages this process recorded: a row without an outcome that is not one of these was left by a daemon that died. */
  private readonly mine = new Set<number>();
  /** When each fingerprint was last paged without a row (the disk was full): the rate limit still holds. */
  private readonly unrecorded = new Map<string, number>();
  private readonly timeoutMs: number;
  private readonly intervalMs: number;

  constructor(private readonly deps: PagerDeps) {
    this.timeoutMs = deps.timeoutMs ?? COMMAND_TIMEOUT_MS;
    this.intervalMs = deps.intervalMs ?? PAGE_INTERVAL_MS;
  }

  /**
   * Decides at once and returns; the page command runs in the background and never throws.
   * A repeat within the interval is not run and not put in the pages table (which holds only
   * pages that went out, or tried to): it is logged and journaled as a 'page-suppressed' event.
   */
  page(ev: PageEvent): PageDecision {
    const { store, log } = this.deps;
    try {
      const policy = this.deps.getPolicy();
      if (!pageAllowed(policy, ev)) {
        log.info(
          { event: ev.event, fingerprint: ev.fingerprint },
          'not paging: the event is not on policy.page.allow (it goes to the digest)',
        );
        return 'not-allowed';
      }
      const now = this.deps.clock.now();
      const last = store.pages.last(ev.fingerprint);
      // A page a previous daemon recorded but did not see through (it died first, often before its
      // command even started — a crash loop right after start) may never have gone out: it does
      // not hold back this one. At least once: a duplicate beats a lost page.
      const interrupted = last !== undefined && last.outcome === null && !this.mine.has(last.id);
      if (interrupted)
        store.pages.finish(
          last.id,
          'interrupted',
          'nightshift stopped before the page command was seen to finish; the next page was not held back',
        );
      // A page whose row could not be written yet (a full disk) counts too.
      const lastAt = Math.max(last && !interrupted ? last.at : -Infinity, this.unrecorded.get(ev.fingerprint) ?? -Infinity);
      if (now - lastAt < this.intervalMs) {
        const msg = `not paging again for ${ev.fingerprint}: last page ${formatDuration(now - lastAt)} ago (at most one per ${formatDuration(this.intervalMs)})`;
        log.info({ event: ev.event, fingerprint: ev.fingerprint, lastPageId: last?.id ?? null }, msg);
        store.journal.record(now, 'page-suppressed', ev.job ?? null, msg, {
          event: ev.event,
          fingerprint: ev.fingerprint,
          lastPageId: last?.id ?? null,
        });
        return 'suppressed';
      }
      // Recorded before anything runs: a second call right now sees it, and so does a restart.
      // A full state folder does not silence a page (it may be what the page is about): the page
      // goes out, and its row is written whole when space returns.
      let id: number | null = null;
      try {
        id = store.pages.record(ev.fingerprint, ev.event, now);
        this.mine.add(id);
      } catch (err) {
        if (!isDiskFull(err)) throw err;
        store.held.noteDiskFull(err, 'the database');
        if (this.unrecorded.size > 1000) this.unrecorded.clear();
        this.unrecorded.set(ev.fingerprint, now);
      }
      const command = policy.page.command;
      if (!command) {
        const detail = 'policy.page.command is not set: nobody could be paged; add page: { command: [...] } to protected/policy.yaml';
        if (id === null) store.pages.recordFinished(ev.fingerprint, ev.event, now, 'not-configured', detail);
        else store.pages.finish(id, 'not-configured', detail);
        log.error({ event: ev.event, fingerprint: ev.fingerprint }, detail);
        return 'not-configured';
      }
      this.track(this.run(id, command, ev, now));
      return 'paging';
    } catch (err) {
      log.error(
        { err: errorMessage(err), event: ev.event, fingerprint: ev.fingerprint },
        'paging failed before the page command could run',
      );
      return 'not-configured';
    }
  }

  private async run(id: number | null, command: string[], ev: PageEvent, now: number): Promise<void> {
    const { store, log } = this.deps;
    // Alert text is data: what relays the page (an SMS gateway, a chat) gets it inert too.
    // `url` opens the card on the phone (null while the dashboard is off): an app like ntfy makes it a button.
    const { card, ...rest } = ev;
    const url = dashboardLink(this.deps.getPolicy(), card ?? '/');
    const payload = `${JSON.stringify({ ...rest, message: textAsData(ev.message), at: new Date(now).toISOString(), url })}\n`;
    const r = await runBounded(command, {
      input: payload,
      timeoutMs: this.timeoutMs,
      confine: { profile: 'notify', leash: this.deps.leash() },
    });
    const outcome = r.ok ? 'sent' : r.timedOut ? 'timeout' : 'failed';
    const detail = describeResult(r, this.timeoutMs);
    try {
      if (id === null) store.pages.recordFinished(ev.fingerprint, ev.event, now, outcome, detail);
      else store.pages.finish(id, outcome, detail);
    } catch (err) {
      log.error({ err: errorMessage(err), pageId: id }, 'could not record the page outcome');
    }
    if (r.ok) log.warn({ event: ev.event, fingerprint: ev.fingerprint, pageId: id }, `paged: ${oneLine(ev.message)}`);
    else
      log.error(
        { event: ev.event, fingerprint: ev.fingerprint, pageId: id, command: command[0] },
        `the page command ${detail}; nobody may have been paged — check policy.page.command`,
      );
  }

  /** Runs the deadman with this pager's policy, store and limit. */
  runDeadman(reason: DeadmanReason = 'manual'): Promise<DeadmanResult> {
    const p = runDeadman({ ...this.deps, reason, timeoutMs: this.timeoutMs });
    this.track(p.then(() => {}));
    return p;
  }

  private track(p: Promise<void>): void {
    const q = p.catch((err: unknown) => this.deps.log.error({ err: errorMessage(err) }, 'paging failed'));
    this.inFlight.add(q);
    void q.finally(() => this.inFlight.delete(q));
  }

  /** Resolves when every page command started so far has finished (or been killed). */
  async idle(): Promise<void> {
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
  }

  async stop(): Promise<void> {
    await this.idle();
  }
}

// ---- the deadman: something outside watches the watcher ----

export type DeadmanReason = 'start' | 'hourly' | 'digest' | 'manual';

export interface DeadmanResult {
  ran: boolean;
  ok: boolean;
  detail: string;
}

/**
 * Runs policy.deadman once and journals it as an event of kind 'deadman' (data.ok). Not
 * configured: nothing runs and nothing is recorded. Never throws.
 */
export async function runDeadman(deps: {
  store: Store;
  leash(): Leash;
  getPolicy(): Policy;
  clock: Clock;
  log: Logger;
  reason: DeadmanReason;
  timeoutMs?: number;
}): Promise<DeadmanResult> {
  const { store, log } = deps;
  const timeoutMs = deps.timeoutMs ?? COMMAND_TIMEOUT_MS;
  let argv: string[] | undefined;
  try {
    argv = deps.getPolicy().deadman;
  } catch (err) {
    log.error({ err: errorMessage(err) }, 'deadman not run: the policy could not be read');
    return { ran: false, ok: false, detail: 'the policy could not be read' };
  }
  if (!argv) return { ran: false, ok: false, detail: 'policy.deadman is not set' };
  const r = await runBounded(argv, { timeoutMs, confine: { profile: 'notify', leash: deps.leash() } });
  const detail = describeResult(r, timeoutMs);
  const message = r.ok ? `deadman ping ok (${deps.reason})` : `deadman ping failed (${deps.reason}): ${argv[0]} ${detail}`;
  try {
    store.journal.record(deps.clock.now(), 'deadman', null, message, {
      ok: r.ok,
      reason: deps.reason,
      exitCode: r.exitCode,
      timedOut: r.timedOut,
      durationMs: r.durationMs,
    });
  } catch (err) {
    log.error({ err: errorMessage(err) }, 'could not record the deadman ping');
  }
  if (r.ok) log.info({ reason: deps.reason, durationMs: r.durationMs }, 'deadman ping ok');
  else
    log.error(
      { reason: deps.reason, command: argv[0] },
      `${message}; the outside monitor will think nightshift is down — check policy.deadman`,
    );
  return { ran: true, ok: r.ok, detail };
}

/** The same needs as the pager; intervalMs is the time between two pings (default 1 h). */
export type DeadmanDeps = PagerDeps;

/** Pings at start, every hour, and after each digest (kick), on one DeadlineTimer. */
export class Deadman {
  private readonly timer: DeadlineTimer<'ping'>;
  private readonly intervalMs: number;
  private running: Promise<DeadmanResult> | null = null;
  private queued: Promise<DeadmanResult> | null = null;
  private stopped = true;
  private stopping: Promise<void> | null = null;

  constructor(private readonly deps: DeadmanDeps) {
    this.intervalMs = deps.intervalMs ?? DEADMAN_INTERVAL_MS;
    this.timer = new DeadlineTimer<'ping'>(
      () => void this.run('hourly'),
      deps.clock,
      (err) => deps.log.error({ err: errorMessage(err) }, 'deadman timer failed'),
    );
  }

  start(): void {
    this.stopped = false;
    this.stopping = null;
    this.timer.start();
    void this.run('start');
  }

  /** After each digest: "the daily digest happened" is what the outside monitor is told. */
  kick(): void {
    if (!this.stopped) void this.run('digest');
  }

  /** One ping now; the hourly one is counted from here. */
  run(reason: DeadmanReason): Promise<DeadmanResult> {
    if (this.running) {
      // The ping under way began before this reason arose: one more after it, however many callers.
      this.queued ??= this.running.then((prev) => {
        this.queued = null;
        return this.stopped ? prev : this.run(reason);
      });
      return this.queued;
    }
    this.timer.set('ping', this.deps.clock.now() + this.intervalMs);
    const p = runDeadman({ ...this.deps, reason }).finally(() => {
      this.running = null;
    });
    this.running = p;
    return p;
  }

  stop(): Promise<void> {
    if (!this.stopping) {
      this.stopped = true;
      this.timer.stop();
      const r = this.queued ?? this.running;
      this.stopping = r ? r.then(() => {}) : Promise.resolve();
    }
    return this.stopping;
  }
}
