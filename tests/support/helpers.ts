// Shared test plumbing: temp homes, a real daemon process, and polling helpers.
import { afterAll, afterEach } from 'vitest';
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { execa, type ResultPromise } from 'execa';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { compileJob, DEFAULT_POLICY, type Job } from '../../src/config/home.js';
import { homePaths } from '../../src/config/paths.js';
import { leashFor, type Leash } from '../../src/run/launch.js';
import { JobSpecSchema } from '../../src/config/schema.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'cli.js');
export const FIXTURES = join(ROOT, 'tests', 'fixtures');

/** The leash a daemon on this home would put every process on (the default policy). */
export function testLeash(home: string = tmpdir(), state?: string): Leash {
  return leashFor(homePaths(home, state), null);
}

export function tempDir(prefix = 'ns-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function makeHome(jobs: Record<string, string> = {}, policy?: string): string {
  const home = tempDir('ns-home-');
  mkdirSync(join(home, 'jobs'));
  mkdirSync(join(home, 'rules'));
  mkdirSync(join(home, 'protected'));
  if (policy !== undefined) writeFileSync(join(home, 'protected', 'policy.yaml'), policy);
  for (const [name, text] of Object.entries(jobs)) writeFileSync(join(home, 'jobs', `${name}.yaml`), text);
  return home;
}

export function writeJob(home: string, name: string, text: string): void {
  writeFileSync(join(home, 'jobs', `${name}.yaml`), text);
}

/** A compiled job for unit tests of the runner, from the same schema the daemon uses. */
export function job(name: string, spec: Record<string, unknown>, home = tmpdir()): Job {
  return compileJob(name, join(home, 'jobs', `${name}.yaml`), home, JobSpecSchema.parse(spec), DEFAULT_POLICY, 'test');
}

export async function waitFor<T>(
  fn: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  // Elapsed time, not Date: a test on faked Date (vi.useFakeTimers) still gets its limit.
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/**
 * True when nobody holds an flock on the file: a process inside a sandbox (whose pids mean nothing
 * outside its PID namespace) proves it is alive by holding one, and dead by letting it go.
 */
export function flockFree(file: string): boolean {
  return spawnSync('flock', ['-n', file, 'true']).status === 0;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0); it is dead for our purposes.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export function query<T = Record<string, unknown>>(state: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(join(state, 'nightshift.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

export interface DaemonProc {
  home: string;
  state: string;
  proc: ResultPromise;
  lines: () => Array<Record<string, unknown>>;
  waitLog: (pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number, what?: string) => Promise<Record<string, unknown>>;
  stop: () => Promise<void>;
}

export async function startDaemon(
  home: string,
  opts: { state?: string; env?: Record<string, string>; asNobody?: boolean; prefix?: string[] } = {},
): Promise<DaemonProc> {
  const state = opts.state ?? join(home, 'state');
  // As root, a daemon may be started as the unprivileged user nobody (setpriv keeps its pid), to
  // test the code paths of an ordinary account; the home must then belong to nobody.
  const argv = ['node', CLI, '--home', home, '--state', state, 'start'];
  const [file, ...args] = [
    ...(opts.prefix ?? []),
    ...(opts.asNobody ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', ...argv] : argv),
  ];
  // forceKillAfterDelay: false — execa would SIGKILL the daemon 5 s after our SIGTERM, before it
  // has stopped its jobs (killGrace 10 s), and leave their process groups behind.
  const proc = execa(file!, args, {
    reject: false,
    env: opts.env,
    buffer: false,
    stdin: 'ignore',
    forceKillAfterDelay: false,
  });
  const lines: Array<Record<string, unknown>> = [];
  let partial = '';
  proc.stdout?.on('data', (c: Buffer) => {
    partial += c.toString();
    let i;
    while ((i = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      try {
        lines.push(JSON.parse(line));
      } catch {
        lines.push({ msg: line, raw: true });
      }
    }
  });
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const d: DaemonProc = {
    home,
    state,
    proc,
    lines: () => lines,
    waitLog: (pred, timeoutMs = 10_000, what = 'log line') => waitFor(() => lines.find(pred), timeoutMs, `${what}; stderr: ${stderr}`),
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await Promise.race([proc, sleep(15_000)]);
      }
    },
  };
  // Generous: a start takes under a second, but a loaded machine of this kind has been 2.3x slower.
  await d.waitLog((l) => l.msg === 'nightshift started', 60_000, 'daemon start');
  return d;
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The daemons a test file starts and the folders it makes: each daemon is stopped after its test;
 * folders are removed after their test, or after the whole file (`dirs: 'after-all'`) when tests
 * share them.
 */
export function trackDaemons(o: { dirs?: 'after-each' | 'after-all' } = {}): { daemons: DaemonProc[]; dirs: string[] } {
  const daemons: DaemonProc[] = [];
  const dirs: string[] = [];
  // Tidying is not what a test measures: on a busy disk, removing a file's worth of homes took
  // over 30 s (the default hook limit) once, with the suite pinned to one core.
  afterEach(async () => {
    for (const d of daemons.splice(0)) await d.stop();
    if (o.dirs !== 'after-all') for (const h of dirs.splice(0)) cleanup(h);
  }, 120_000);
  afterAll(() => {
    for (const h of dirs.splice(0)) cleanup(h);
  }, 300_000);
  return { daemons, dirs };
}

export async function cli(args: string[], opts: { env?: Record<string, string> } = {}) {
  return execa('node', [CLI, ...args], { reject: false, env: opts.env, stdin: 'ignore' });
}

/**
 * A policy.page.command that appends each page it gets on stdin to DIR/pages.jsonl, one per line;
 * `pages()` returns the pages written completely so far.
 */
export function pageCapture(dir: string): { command: string; pages: () => Array<Record<string, unknown>> } {
  const file = join(dir, 'pages.jsonl');
  const command = join(dir, 'capture.sh');
  writeFileSync(command, `#!/bin/sh\ncat >> ${file}\necho >> ${file}\n`);
  chmodSync(command, 0o755);
  const pages = (): Array<Record<string, unknown>> => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return [];
    }
    // the last piece is a page still being written (or empty)
    return text
      .split('\n')
      .slice(0, -1)
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  return { command, pages };
}

/**
 * One request answered by the daemon over its control socket. The daemon serves it in a later turn
 * of its event loop than anything it had already logged, so what it did in those turns is done.
 */
export function roundTrip(d: { state: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: join(d.state, 'nightshift.sock'), path: '/health' }, (res) => {
      res.resume();
      res.on('end', () => resolve());
    });
    req.on('error', reject);
    req.end();
  });
}

/** path → type, mode, content hash or link target: the whole tree, for before/after comparison. */
export function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string, rel: string): void => {
    const st = lstatSync(p);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out[rel] = `link ${readlinkSync(p)}`;
    else if (st.isDirectory()) {
      out[rel] = `dir ${mode}`;
      for (const e of readdirSync(p).sort()) walk(join(p, e), `${rel}/${e}`);
    } else out[rel] = `file ${mode} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
  };
  walk(root, '.');
  return out;
}
