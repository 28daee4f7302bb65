// What every command shares: the context it runs in, its exit codes, the helpers that read a
// home or talk to the daemon, and the JSON every --json prints.
import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { type ParseArgsConfig } from 'node:util';
import { errorMessage } from '../errors.js';
import { callDaemon, daemonListening } from '../control/socket.js';
import { loadHome, restoreLastGood, type LoadedHome } from '../config/home.js';
import { type HomePaths } from '../config/paths.js';
import { NAME_PATTERN } from '../names.js';
import { parseRef, refOf } from '../model.js';
import { checkKillSwitch, killSwitchPath, type KillState } from '../control/killswitch.js';
import { type LiveInfo } from '../report/status.js';
import { Store } from '../store/store.js';
import { wallNow } from '../clock.js';
import { systemTimeZone } from '../schedule/timezone.js';

export const EXIT = { ok: 0, unhealthy: 1, usage: 2, unreachable: 3, homeMoved: 4 } as const;

export class UsageError extends Error {}

export interface Out {
  out: (s: string) => void;
  err: (s: string) => void;
}

export const GLOBAL_OPTIONS = {
  home: { type: 'string' },
  state: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

export interface Command {
  summary: string;
  usage: string;
  help: string;
  options: ParseArgsConfig['options'];
  run: (ctx: Ctx) => number | Promise<number>;
}

export interface Ctx {
  paths: HomePaths;
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  io: Out;
}

/**
 * JSON for scripts. JSON.stringify escapes C0 control characters but lets C1 ones and the
 * characters that reorder text (U+202E) through: escaped too, the same data, inert on a terminal.
 */
export const json = (v: unknown): string =>
  JSON.stringify(v, null, 2).replace(
    /[\u0080-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );

/** How to point a command at a home, for the messages of a folder that is none. */
const POINT_AT_A_HOME =
  'point at one with --home DIR (and --state DIR when its state lives elsewhere), or set NIGHTSHIFT_HOME and NIGHTSHIFT_STATE; ' +
  "the service's own folders are on its ExecStart line: systemctl cat nightshift";

/**
 * Every command but `start` refuses a folder that is not a home: one with none of a home's parts
 * is a command typed in the wrong folder, not an empty home whose "All 0 jobs healthy" (or "no runs
 * recorded yet", or "daemon not reachable") would be believed.
 */
export function assertHome(paths: HomePaths): void {
  if (!existsSync(paths.home)) throw new UsageError(`the home folder ${paths.home} does not exist; ${POINT_AT_A_HOME}`);
  if (![paths.jobsDir, paths.rulesDir, paths.protectedDir].some((d) => existsSync(d)))
    throw new UsageError(`${paths.home} is not a nightshift home (it has no jobs/, rules/ or protected/ folder); ${POINT_AT_A_HOME}`);
}

export function loadHomeOrFail(ctx: Ctx): LoadedHome {
  assertHome(ctx.paths);
  return loadHome(ctx.paths);
}

export function openStore(ctx: Ctx): Store | null {
  return Store.openForReading(ctx.paths.db);
}

/**
 * The home as the daemon runs it: a job whose file is invalid now counts as its last good version
 * (kept in the state database), so that no command loses sight of a job that still runs.
 */
export function loadHomeAsRun(ctx: Ctx, store: Store | null): LoadedHome {
  const home = loadHomeOrFail(ctx);
  if (store) restoreLastGood(home, (file) => store.specs.get(file));
  return home;
}

/** loadHomeAsRun for a command that needs nothing else of the state database. */
export function readHomeAsRun(ctx: Ctx): LoadedHome {
  let store: Store | null;
  try {
    store = openStore(ctx);
  } catch (err) {
    // A database that cannot be read (damaged, locked, from a newer nightshift) must not stop a
    // command that works from the files — `kill` least of all: the files as they are, and a note.
    ctx.io.err(`note: ${ctx.paths.db} cannot be read (${errorMessage(err)}); the last good versions of invalid files are not shown`);
    return loadHomeOrFail(ctx);
  }
  try {
    return loadHomeAsRun(ctx, store);
  } finally {
    store?.close();
  }
}

export async function liveInfo(ctx: Ctx): Promise<LiveInfo | null> {
  if (!(await daemonListening(ctx.paths.socket))) return null;
  try {
    const r = await callDaemon(ctx.paths.socket, 'GET', '/status');
    return r.status === 200 ? (r.body as LiveInfo) : null;
  } catch {
    return null;
  }
}

export function positiveInt(v: string | boolean | undefined, what: string, dflt: number, max = 100_000): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`${what} must be a whole number from 1 to ${max}, got "${String(v)}"`);
  return n;
}

export function jobName(ctx: Ctx, required = true): string | undefined {
  const name = ctx.positionals[0];
  if (name === undefined) {
    if (required) throw new UsageError('which job? give its name (the file name in jobs/ without .yaml)');
    return undefined;
  }
  if (!NAME_PATTERN.test(name)) throw new UsageError(`"${name}" is not a valid job name (lower-case letters, digits, "-" and "_")`);
  if (ctx.positionals.length > 1) throw new UsageError(`unexpected argument "${ctx.positionals[1]}"`);
  return name;
}

export async function act(ctx: Ctx, method: 'GET' | 'POST', path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await callDaemon(ctx.paths.socket, method, path);
  return {
    status: r.status,
    body: (typeof r.body === 'object' && r.body !== null ? r.body : { error: String(r.body) }) as Record<string, unknown>,
  };
}

export async function answerHeal(ctx: Ctx, verb: 'approve' | 'deny'): Promise<number> {
  const id = ctx.positionals[0];
  if (id === undefined) throw new UsageError(`which heal? give its ID (nightshift status lists the ones waiting): nightshift ${verb} H-4`);
  const ref = parseRef('heal', id);
  if ('error' in ref) throw new UsageError(`${ref.error} (nightshift status lists the heals waiting for an answer)`);
  if (ctx.positionals.length > 1) throw new UsageError(`unexpected argument "${ctx.positionals[1]}"`);
  const r = await act(ctx, 'POST', `/${verb}/${ref.id}`);
  if (r.status !== 200) {
    ctx.io.err(`nightshift ${verb}: ${String(r.body.error)}`);
    return r.status === 404 || r.status === 410 || r.status === 400 ? EXIT.usage : EXIT.unhealthy;
  }
  ctx.io.out(
    ctx.values.json ? json(r.body) : `heal ${refOf('heal', Number(r.body.attempt))} (${String(r.body.job)}): ${String(r.body.status)}`,
  );
  return EXIT.ok;
}

export async function pauseResume(ctx: Ctx, verb: 'pause' | 'resume'): Promise<number> {
  let path: string;
  if (ctx.values.all) {
    if (ctx.positionals.length) throw new UsageError('give either a job name or --all, not both');
    path = `/${verb}-all`;
  } else path = `/${verb}/${jobName(ctx)!}`;
  const r = await act(ctx, 'POST', path);
  if (r.status !== 200) {
    ctx.io.err(`nightshift: ${String(r.body.error)}`);
    return r.status === 404 ? EXIT.usage : EXIT.unhealthy;
  }
  const changed = (r.body.changed as string[]) ?? [];
  ctx.io.out(changed.length ? `${verb}d: ${changed.join(', ')}` : `nothing to ${verb}: already ${verb}d`);
  return EXIT.ok;
}

/** A flip made while the daemon is down is journaled at once, so status and the digest show it. */
export function recordKillFlip(ctx: Ctx, k: KillState): void {
  if (!existsSync(ctx.paths.db)) return;
  let store: Store | null = null;
  try {
    store = Store.open(ctx.paths.db);
    if (store.journal.killSwitchRecordedOn() !== k.switchOn) {
      store.journal.record(
        wallNow(),
        'kill-switch',
        null,
        k.switchOn
          ? `kill switch turned on (nightshift kill on by ${userInfoName()})`
          : `kill switch turned off (nightshift kill off by ${userInfoName()})`,
        { on: k.switchOn },
      );
    }
  } catch {
    // the daemon records the flip when it sees the file; this is a convenience
  } finally {
    store?.close();
  }
}

export function killOf(home: LoadedHome): KillState {
  return checkKillSwitch(killSwitchPath(home.paths, home.policy), home.policyOk, home.paths.policyFile);
}

/**
 * The zone each job's times are shown in (the one rule of every surface). A job that is gone
 * gets the zone it would have now: the policy's, else the system's. `home` should be as run
 * (loadHomeAsRun), so a job whose file is invalid keeps its own zone.
 */
export function zoneOf(home: LoadedHome): (job: string) => string {
  return (job) => home.jobs.get(job)?.timezone ?? home.policy.timezone ?? systemTimeZone();
}

export function userInfoName(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}
