// Runs one job process: argv (or an explicit /bin/sh -c), its own process group so that timeouts
// and shutdown reach grandchildren, output into a capped log, and a plain-words reason for
// whatever happened. It decides nothing about scheduling; it reports.
import type { ResultPromise } from 'execa';
import { existsSync, readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { globRegExp, hasWildcard } from '../glob.js';
import { setTimeout as sleep } from 'node:timers/promises';
import vm from 'node:vm';
import { formatDuration } from '../config/duration.js';
import type { Job } from '../config/home.js';
import { CappedLog, DEFAULT_LOG_CAP } from './logcap.js';
import { SYSTEMD_NOTIFY_ENV } from '../notify/systemd.js';
import { exitOf, groupAlive, killNow, launch, StartError, startFailure, terminateGroup, type Launched, type Leash } from './launch.js';
import type { RunOutcome } from '../model.js';
import { errorMessage, errorCode } from '../errors.js';
import { elapsedMs, wallNow } from '../clock.js';
import { accountEnv } from './account.js';
import { denialSentence, findDenial } from './denied.js';
import { userInfo } from 'node:os';

export type StopReason = 'timeout' | 'replace' | 'shutdown' | 'manual' | 'halt';

export interface RunResult {
  outcome: RunOutcome;
  exitCode: number | null;
  signal: string | null;
  startedAt: number;
  endedAt: number;
  durationMs: number;
  outputBytes: number;
  outputTail: string;
  reason: string;
  /** Why the run's log file could not be written (e.g. ENOSPC: the state folder is full); the run went on without it. */
  logError?: NodeJS.ErrnoException | null;
}

export interface StartOptions {
  job: Job;
  runId: number;
  trigger: string;
  logPath: string;
  logCap?: number;
  now?: () => number;
  extraEnv?: Record<string, string>;
  /** The timeout fired (before the kill grace runs): the watchdog raises `hung` at once. */
  onTimeout?: (outputSoFar: string) => void;
  /** Called synchronously once the child exists, so its process group is on record before it can outlive us. */
  onSpawn?: (pgid: number) => void;
  /** The log file could not be written (first error only); the run goes on without it. */
  onLogError?: (err: Error) => void;
  /** What the run is kept from (the launcher's sandbox). */
  leash: Leash;
}

// systemd's notification variables belong to the daemon: a job that inherited them could pet the
// watchdog or claim readiness on nightshift's behalf.
const PRIVATE_ENV = new Set<string>(SYSTEMD_NOTIFY_ENV);

export function jobEnv(job: Job, extra: Record<string, string>): Record<string, string> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !PRIVATE_ENV.has(k)) base[k] = v;
  return { ...base, ...(job.account ? accountEnv(job.account) : {}), ...(job.spec.env ?? {}), NIGHTSHIFT_JOB: job.name, ...extra };
}

function argvOf(job: Job): [string, string[]] {
  if (job.spec.shell !== undefined) return ['/bin/sh', ['-c', job.spec.shell]];
  const [file, ...args] = job.spec.command ?? [];
  if (file === undefined) throw new Error(`job ${job.name} has no command`);
  return [file, args];
}

export class RunningProcess {
  readonly done: Promise<RunResult>;
  private stopReason: StopReason | null = null;
  private pgidValue: number | null = null;
  private exited = false;
  /** Killed at once (killNow), not given its killGrace. */
  private forced = false;
  private stopWaiters: Array<() => void> = [];

  constructor(private readonly opts: StartOptions) {
    this.done = this.execute();
  }

  get pgid(): number | null {
    return this.pgidValue;
  }

  /** Stops the run (whole process group): SIGTERM, then SIGKILL after the job's killGrace. */
  stop(reason: StopReason): Promise<RunResult> {
    if (this.stopReason === null) this.stopReason = reason;
    for (const w of this.stopWaiters.splice(0)) w();
    return this.done;
  }

  /**
   * Stops the run's whole group with SIGKILL now, also while its timeout's SIGTERM grace runs: a
   * heal that runs a hung job again does not wait out a grace the hung run has shown it ignores.
   */
  killNow(reason: StopReason): Promise<RunResult> {
    if (this.stopReason === null) this.stopReason = reason;
    this.forced = true;
    for (const w of this.stopWaiters.splice(0)) w();
    if (this.pgidValue !== null && !this.exited) killNow(this.pgidValue);
    return this.done;
  }

  private async execute(): Promise<RunResult> {
    const { job, logPath } = this.opts;
    const now = this.opts.now ?? wallNow;
    const log = new CappedLog(logPath, this.opts.logCap ?? DEFAULT_LOG_CAP, this.opts.onLogError);
    const startedAt = now();
    // The duration on the monotonic clock: a wall-clock step during the run must not make it
    // negative, or shorter than a minDuration expectation.
    const startedMono = elapsedMs();
    const finish = (outcome: RunOutcome, reason: string, exitCode: number | null = null, signal: string | null = null): RunResult => {
      const endedAt = now();
      const durationMs = Math.round(elapsedMs() - startedMono);
      const { bytes, tail } = log.close();
      const logNote = log.error ? ` (the log could not be written: ${log.error.message})` : '';
      // A failure that says it may not write somewhere: the reason says what to change.
      const denial = outcome === 'failed' && exitCode !== null ? findDenial(tail, job.cwd ?? job.home) : null;
      if (denial) {
        const account = job.account?.name ?? userInfo().username;
        // systemd gives every service process an INVOCATION_ID: the unit's sandbox is in force.
        reason += ` ${denialSentence(denial, { leash: this.opts.leash, systemd: process.env.INVOCATION_ID !== undefined, account })}`;
      }
      return {
        outcome,
        exitCode,
        signal,
        startedAt,
        endedAt,
        durationMs,
        outputBytes: bytes,
        outputTail: tail,
        reason: reason + logNote,
        logError: log.error,
      };
    };

    if (job.cwd !== undefined && !existsSync(job.cwd)) {
      log.write(Buffer.from(`nightshift: working directory ${job.cwd} does not exist\n`));
      return finish('failed', `could not start: the working directory ${job.cwd} does not exist`);
    }

    const [file, args] = argvOf(job);
    let sub: ResultPromise;
    let launched: Launched;
    try {
      launched = launch(
        [file, ...args],
        { profile: 'job', leash: this.opts.leash, seeAllProcesses: job.spec.seeAllProcesses, account: job.account },
        {
          // Without a cwd of its own a job runs in its home, where its relative paths (and those
          // of its expect.files, its rules' fixes and probes) point: not wherever the daemon was
          // started (`/` under systemd).
          cwd: job.cwd ?? job.home,
          env: jobEnv(job, { ...this.opts.extraEnv, NIGHTSHIFT_RUN_ID: String(this.opts.runId), NIGHTSHIFT_TRIGGER: this.opts.trigger }),
          reject: false,
          buffer: false,
          stdin: 'ignore',
          stdout: 'pipe',
          stderr: 'pipe',
        },
      );
      sub = launched.sub;
    } catch (err) {
      if (err instanceof StartError) {
        log.write(Buffer.from(`nightshift: could not start: ${err.message}\n`));
        return finish('failed', `could not start: ${err.message}`);
      }
      return finish('failed', `could not start ${file}: ${errorMessage(err)}`);
    }
    const onData = (chunk: Buffer): void => log.write(chunk);
    sub.stdout?.on('data', onData);
    sub.stderr?.on('data', onData);

    const exitEvent = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
      sub.once('exit', (code, signal) => res(exitOf(launched, code, signal))),
    );
    const settled = Promise.resolve(sub).then(
      (r) => r,
      (e: unknown) => e as Record<string, unknown>,
    );

    const pid = sub.pid;
    if (pid === undefined) {
      const why = startFailure(await settled, file);
      log.write(Buffer.from(`nightshift: could not start: ${why}\n`));
      return finish('failed', `could not start: ${why}`);
    }
    this.pgidValue = pid;
    this.opts.onSpawn?.(pid);

    // The timeout and external stops race the process's own exit.
    const timeoutMs = job.spec.timeout;
    let timer: NodeJS.Timeout | undefined;
    const stopRequested = new Promise<void>((res) => {
      this.stopWaiters.push(res);
      if (this.stopReason !== null) res();
      timer = setTimeout(() => {
        if (this.stopReason === null) {
          this.stopReason = 'timeout';
          try {
            this.opts.onTimeout?.(log.lastOutput());
          } catch {
            // a listener's failure must not keep the job from being stopped
          }
        }
        res();
      }, timeoutMs);
    });

    let killedBy: 'term' | 'kill' | 'gone' | null = null;
    const first = await Promise.race([exitEvent.then(() => 'exit' as const), stopRequested.then(() => 'stop' as const)]);
    clearTimeout(timer);
    if (first === 'stop') {
      if (this.forced) {
        killNow(pid);
        killedBy = 'kill';
      } else killedBy = await terminateGroup(pid, job.spec.killGrace);
    }
    const exit = await exitEvent;
    this.exited = true;
    // A job's leftover children (it exited before them) would be orphans nobody watches: a run
    // owns its whole process group, like systemd's control group.
    let leftovers: 'term' | 'kill' | 'gone' = 'gone';
    // In its own PID namespace everything else was killed by the kernel when the job ended; the
    // last of it may still be on its way out: a moment for that before anything counts as left.
    if (launched.contained && !job.spec.seeAllProcesses) for (let i = 0; i < 50 && groupAlive(pid); i++) await sleep(10);
    if (groupAlive(pid)) leftovers = await terminateGroup(pid, Math.min(job.spec.killGrace, 5000));
    // Output may still be held open by a process that escaped the group; do not wait forever.
    await Promise.race([settled, sleep(2000)]);
    sub.stdout?.destroy();
    sub.stderr?.destroy();
    const leftoverNote =
      leftovers === 'gone' ? '' : ` Processes it left behind were stopped (${leftovers === 'kill' ? 'SIGKILL' : 'SIGTERM'}).`;

    const sig = exit.signal;
    const code = exit.code;
    if (this.stopReason !== null && first === 'stop') {
      const how = this.forced
        ? 'SIGKILL at once (a heal ran the job again)'
        : killedBy === 'kill'
          ? `SIGTERM, then SIGKILL after ${formatDuration(job.spec.killGrace)}`
          : 'SIGTERM';
      if (this.stopReason === 'timeout') {
        return finish(
          'timeout',
          `ran longer than its timeout of ${formatDuration(timeoutMs)}; stopped with ${how}.${leftoverNote}`,
          code,
          sig,
        );
      }
      const why: Record<Exclude<StopReason, 'timeout'>, string> = {
        replace: 'a new run replaced it (concurrency: replace, or a heal restarting a long-running job)',
        shutdown: 'nightshift was shutting down',
        manual: 'an operator stopped it',
        halt: 'the kill switch is on',
      };
      return finish('killed', `stopped because ${why[this.stopReason]}; stopped with ${how}.${leftoverNote}`, code, sig);
    }
    if (sig !== null) return finish('failed', `killed by signal ${sig}.${leftoverNote}`, code, sig);
    if (code !== 0) return finish('failed', `exited with code ${String(code)}.${leftoverNote}`, code, sig);

    const result = finish('ok', `exited with code 0.${leftoverNote}`, 0, null);
    // With no log file (the state folder is full), the output kept in memory is what can be checked.
    // Only the last 4 KiB are kept then: a miss in them proves nothing about a longer output.
    const partial = log.error !== null && result.outputBytes > Buffer.byteLength(result.outputTail ?? '');
    const wrong = checkExpectations(job, result, logPath, now(), log.error ? result.outputTail : undefined, partial);
    if (wrong) return { ...result, outcome: 'wrong', reason: `exited with code 0 but ${wrong}` };
    return result;
  }

  get hasExited(): boolean {
    return this.exited;
  }
}

const REGEX_LIMIT_MS = 1000;
const regexContext = vm.createContext({ re: /x/, text: '' });

/** A pattern from a spec runs over up to 1 MiB of job output: bounded in time so it cannot freeze the daemon. */
function regexTest(pattern: string, text: string): boolean | 'timeout' {
  regexContext.re = new RegExp(pattern);
  regexContext.text = text;
  try {
    return vm.runInContext('re.test(text)', regexContext, { timeout: REGEX_LIMIT_MS }) as boolean;
  } catch (err) {
    if (errorCode(err) === 'ERR_SCRIPT_EXECUTION_TIMEOUT') return 'timeout';
    throw err;
  } finally {
    regexContext.text = '';
  }
}

/** exit 0 is not enough: "valid but wrong" is caught here. Returns what is wrong, or null. */
export function checkExpectations(
  job: Job,
  r: Pick<RunResult, 'durationMs'>,
  logPath: string,
  now: number,
  outputInMemory?: string,
  partialOutput = false,
): string | null {
  const ex = job.spec.expect;
  if (!ex) return null;
  const problems: string[] = [];
  if (ex.minDuration !== undefined && r.durationMs < ex.minDuration) {
    problems.push(`it finished in ${formatDuration(r.durationMs)}, faster than the expected minimum of ${formatDuration(ex.minDuration)}`);
  }
  for (const f of ex.files ?? []) {
    const pattern = isAbsolute(f.path) ? f.path : resolve(job.cwd ?? job.home, f.path);
    const found = expectedFile(pattern);
    if (!found) {
      problems.push(hasWildcard(pattern) ? `no file matches the expected ${pattern}` : `the expected file ${pattern} does not exist`);
      continue;
    }
    const { path, st } = found;
    if (f.maxAge !== undefined && now - st.mtimeMs > f.maxAge) {
      problems.push(`the expected file ${path} is ${formatDuration(now - st.mtimeMs)} old (at most ${formatDuration(f.maxAge)} expected)`);
    }
    if (f.minBytes !== undefined && st.size < f.minBytes) {
      problems.push(`the expected file ${path} has ${st.size} bytes (at least ${f.minBytes} expected)`);
    }
  }
  if (ex.outputMatches !== undefined) {
    let out = outputInMemory ?? '';
    if (outputInMemory === undefined) {
      try {
        out = readFileSync(logPath, 'utf8');
      } catch {
        // an unreadable log cannot show the expected text: reported below
      }
    }
    const m = regexTest(ex.outputMatches, out);
    if (m === 'timeout')
      problems.push(
        `checking its output against /${ex.outputMatches}/ took over ${REGEX_LIMIT_MS} ms (the pattern backtracks badly); treated as not matched`,
      );
    else if (!m && !partialOutput) problems.push(`its output did not match /${ex.outputMatches}/`);
  }
  return problems.length ? problems.join('; ') : null;
}

export interface PrecheckVerdict {
  idle: boolean;
  reason: string;
}

/**
 * The LLM-free gate. Only a first stdout line of exactly "IDLE" skips the run; any error,
 * timeout or other output means "run" (fail open to work).
 */
export interface PrecheckOptions {
  timeoutMs?: number;
  /** Run id and state folder, so that a crash-restart can find and kill a pre-check left behind. */
  extraEnv?: Record<string, string>;
  /** The pre-check's process group, so shutdown and replace can stop it. */
  onSpawn?: (pgid: number) => void;
  /** What it is kept from: a pre-check is contained as its job is. */
  leash: Leash;
  /** Stops it at once (its whole group killed): nightshift is stopping, or the kill switch went on. */
  signal?: AbortSignal;
}

export async function runPrecheck(job: Job, opts: PrecheckOptions): Promise<PrecheckVerdict> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const argv = job.spec.precheck;
  if (!argv || argv.length === 0) return { idle: false, reason: 'no pre-check' };
  const [file, ...args] = argv as [string, ...string[]];
  try {
    const { sub } = launch(
      [file, ...args],
      { profile: 'job', leash: opts.leash, seeAllProcesses: job.spec.seeAllProcesses, account: job.account },
      {
        cwd: job.cwd !== undefined && existsSync(job.cwd) ? job.cwd : job.home,
        env: jobEnv(job, { ...opts.extraEnv, NIGHTSHIFT_PRECHECK: '1' }),
        reject: false,
        stdin: 'ignore',
        stderr: 'ignore',
        maxBuffer: 64 * 1024,
      },
    );
    if (sub.pid !== undefined) opts.onSpawn?.(sub.pid);
    // execa's own timeout would kill only the direct child; a grandchild holding stdout would hang us.
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (sub.pid !== undefined) killNow(sub.pid);
    }, timeoutMs);
    let stopped = false;
    const stop = (): void => {
      stopped = true;
      if (sub.pid !== undefined) killNow(sub.pid);
    };
    if (opts.signal?.aborted) stop();
    else opts.signal?.addEventListener('abort', stop, { once: true });
    const r = await sub;
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', stop);
    if (sub.pid !== undefined && groupAlive(sub.pid)) killNow(sub.pid);
    if (stopped) return { idle: false, reason: 'pre-check was stopped (nightshift is stopping, or the kill switch went on)' };
    if (timedOut) return { idle: false, reason: `pre-check timed out after ${formatDuration(timeoutMs)}; running the job anyway` };
    if (r.failed && r.exitCode === undefined)
      return { idle: false, reason: `pre-check could not run (${r.shortMessage}); running the job anyway` };
    // Fail open: IDLE counts only from a pre-check that itself succeeded.
    if (r.exitCode !== 0) return { idle: false, reason: `pre-check exited with code ${String(r.exitCode)}; running the job anyway` };
    const firstLine = String(r.stdout ?? '')
      .split('\n')[0]
      ?.trim();
    if (firstLine === 'IDLE') return { idle: true, reason: 'pre-check said IDLE: nothing to do' };
    return { idle: false, reason: 'pre-check found work' };
  } catch (err) {
    return { idle: false, reason: `pre-check failed (${errorMessage(err)}); running the job anyway` };
  }
}

/**
 * The file an `expect.files` path names: the path itself, or — with a wildcard in its file name
 * (`/var/backups/shop-*.sql.gz`, a file named by its date) — the newest file that matches.
 */
function expectedFile(pattern: string): { path: string; st: Stats } | null {
  if (!hasWildcard(basename(pattern))) {
    try {
      return { path: pattern, st: statSync(pattern) };
    } catch {
      return null;
    }
  }
  const re = globRegExp(basename(pattern));
  let newest: { path: string; st: Stats } | null = null;
  let names: string[];
  try {
    names = readdirSync(dirname(pattern));
  } catch {
    return null;
  }
  for (const name of names) {
    if (!re.test(name)) continue;
    try {
      const st = statSync(join(dirname(pattern), name));
      if (st.isFile() && (!newest || st.mtimeMs > newest.st.mtimeMs)) newest = { path: join(dirname(pattern), name), st };
    } catch {
      // gone between the listing and the look: not a match
    }
  }
  return newest;
}
