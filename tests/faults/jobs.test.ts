// Fault suite: misbehaving jobs, through a real daemon (not only the runner module). Each one is
// run by the daemon while an every-second job keeps being scheduled; the test reads the run's row
// (outcome, exit, log file), /proc (what is left of its processes, the daemon's peak memory) and
// checks that the other job ran during the misbehaving run and after it.
//
// The jobs about stopping processes come twice. With `seeAllProcesses: true` a job runs in the
// machine's PID namespace and is stopped by process group: its pids are real and checked as such.
// By default a job runs in its own PID namespace, where the pids it records mean nothing outside;
// there each process that must die holds an flock, and a free lock (flockFree) proves it dead.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LOG_CAP } from '../../src/run/logcap.js';
import {
  cleanup,
  cli,
  FIXTURES,
  flockFree,
  makeHome,
  pidAlive,
  query,
  startDaemon,
  tempDir,
  waitFor,
  type DaemonProc,
} from '../support/helpers.js';

interface Row {
  id: number;
  trigger: string;
  scheduled_for: number | null;
  job: string;
  outcome: string | null;
  exit_code: number | null;
  signal: string | null;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  pgid: number | null;
  log_path: string | null;
  output_bytes: number | null;
  output_tail: string | null;
  reason: string | null;
}

// How long a test waits for a marker (a row, a file) is no claim about speed: each wait ends as
// soon as its marker appears, and this suite must pass on a loaded, one-core machine.
const WAIT_MS = 30_000;
const TEST_MS = 120_000;

const GIB = 1024 * 1024 * 1024;
const TICK_MS = 1000; // the shortest "every"
const work = tempDir('ns-faultjobs-');
const evidence = join(work, 'evidence');
const pidfile = (name: string): string => join(work, `${name}.pid`);
const lockfile = (name: string): string => join(work, `${name}.lock`);

const home = makeHome(
  {
    tick: `every: ${TICK_MS}ms\ncommand: ["${join(FIXTURES, 'fault-job.sh')}", "${evidence}"]\n`,
    flood: `command: ["node", "${join(FIXTURES, 'flood.js')}", "${GIB}"]\ntimeout: 5m\n`,
    forker: `command: ["${join(FIXTURES, 'grandchildren.sh')}", "${pidfile('forker')}", "50"]\ntimeout: 2s\nkillGrace: 1s\nseeAllProcesses: true\n`,
    // 3 s: 50 setsid + flock + sh starts must all hold the lock before the timeout, on one core too
    'forker-contained': `command: ["${join(FIXTURES, 'grandchildren.sh')}", "${pidfile('forker-contained')}", "50", "${lockfile('forker-contained')}"]\ntimeout: 3s\nkillGrace: 1s\n`,
    closer: `command: ["${join(FIXTURES, 'close-stdout.sh')}", "${pidfile('closer')}"]\ntimeout: 2s\nkillGrace: 500ms\nseeAllProcesses: true\n`,
    'closer-contained': `command: ["${join(FIXTURES, 'close-stdout.sh')}", "${pidfile('closer-contained')}", "forever", "${lockfile('closer-contained')}"]\ntimeout: 2s\nkillGrace: 500ms\n`,
    'closer-ends': `command: ["${join(FIXTURES, 'close-stdout.sh')}", "${pidfile('closer-ends')}", "2.5"]\ntimeout: 1m\n`,
    // with a lock: the job exits only once its child has set its SIGTERM trap (and says so), however slow the machine
    leaver: `command: ["${join(FIXTURES, 'exit-holding-pipe.sh')}", "${pidfile('leaver')}", "${lockfile('leaver')}"]\ntimeout: 1m\nkillGrace: 2s\nseeAllProcesses: true\n`,
    'leaver-contained': `command: ["${join(FIXTURES, 'exit-holding-pipe.sh')}", "${pidfile('leaver-contained')}", "${lockfile('leaver-contained')}"]\ntimeout: 1m\nkillGrace: 2s\n`,
  },
  'timezone: UTC\n',
);
let d: DaemonProc;

beforeAll(async () => {
  d = await startDaemon(home);
  // a few ticks first: the daemon's idle peak memory is the baseline of the flood test
  await waitFor(() => ticks().length >= 2, WAIT_MS, 'two tick runs');
}, TEST_MS);

afterAll(async () => {
  await d?.stop();
  cleanup(home);
  cleanup(work);
});

function lastRun(job: string): Row {
  const row = query<Row>(d.state, 'SELECT * FROM runs WHERE job = ? ORDER BY id DESC LIMIT 1', job)[0];
  if (!row) throw new Error(`no run of ${job} recorded`);
  return row;
}

function ticks(): Row[] {
  return query<Row>(d.state, "SELECT * FROM runs WHERE job = 'tick' AND outcome = 'ok' ORDER BY id");
}

/**
 * The daemon kept scheduling `tick` while the run was under way and after it: every instant of
 * tick's grid from the one before the run to the one after it has exactly one row (a stalled
 * scheduler would have coalesced the instants it was late for, and left them without one). Each
 * row is a run that the job's evidence, outside the state folder, says really started, or — when
 * the machine was slow enough that the previous tick run was still going — a skipped-overlap
 * recorded while that run was under way (by their recorded times).
 */
async function expectSchedulingGoesOn(row: Row): Promise<void> {
  const from = Math.ceil((row.started_at! - TICK_MS) / TICK_MS) * TICK_MS;
  const to = Math.floor((row.ended_at! + TICK_MS) / TICK_MS) * TICK_MS;
  const done = (): Row[] => query<Row>(d.state, "SELECT * FROM runs WHERE job = 'tick' AND outcome IS NOT NULL ORDER BY id");
  const rowsFor = (): Row[] =>
    query<Row>(
      d.state,
      "SELECT * FROM runs WHERE job = 'tick' AND trigger = 'schedule' AND scheduled_for BETWEEN ? AND ? ORDER BY scheduled_for, id",
      from,
      to,
    );
  // positive marker: the daemon has finished with an instant at or after `to`, and with every row up to it
  await waitFor(
    () => done().some((t) => t.scheduled_for! >= to) && rowsFor().every((t) => t.outcome !== null),
    WAIT_MS,
    `a tick run after ${row.job} #${row.id}`,
  );
  const what = `instants of tick around ${row.job} #${row.id}`;
  const around = rowsFor();
  const grid: number[] = [];
  for (let t = from; t <= to; t += TICK_MS) grid.push(t);
  expect(
    around.map((t) => t.scheduled_for),
    what,
  ).toEqual(grid);
  expect(
    around.filter((t) => t.outcome !== 'ok' && t.outcome !== 'skipped-overlap'),
    what,
  ).toEqual([]);
  const all = done();
  for (const skipped of around.filter((t) => t.outcome === 'skipped-overlap')) {
    const busy = all.find(
      (t) => t.id < skipped.id && t.outcome === 'ok' && t.created_at <= skipped.created_at && t.ended_at! >= skipped.created_at,
    );
    expect(busy, `tick #${skipped.id} skipped as an overlap while no tick run was under way`).toBeDefined();
  }
  const started = new Set(
    readFileSync(evidence, 'utf8')
      .split('\n')
      .filter((l) => l.endsWith(' start'))
      .map((l) => Number(l.split(' ')[0])),
  );
  expect(
    around.filter((t) => t.outcome === 'ok' && !started.has(t.id)),
    what,
  ).toEqual([]);
}

/** Live (non-zombie) processes in a process group. */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'latin1');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[2]) === pgid && rest[0] !== 'Z') out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Live processes that carry this run's id in their environment (its descendants, wherever they went). */
function runProcesses(runId: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${e}/environ`, 'latin1').split('\0');
      if (env.includes(`NIGHTSHIFT_RUN_ID=${runId}`) && env.includes(`NIGHTSHIFT_STATE=${d.state}`) && pidAlive(Number(e)))
        out.push(Number(e));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return out;
}

/** Lines written so far to a file (0 while it does not exist). */
function lineCount(file: string): number {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
}

function vmHWMkB(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]);
}

describe('misbehaving jobs under a real daemon', () => {
  it(
    'a job that prints 1 GiB: the log keeps head and tail within the cap, the row counts every byte, the daemon memory stays bounded',
    async () => {
      const daemonPid = d.proc.pid!;
      const before = vmHWMkB(daemonPid);
      const res = await cli(['--home', home, 'run', 'flood']);
      expect(res.exitCode, res.stderr).toBe(0);
      const row = lastRun('flood');
      expect(row.outcome).toBe('ok');
      expect(row.exit_code).toBe(0);
      expect(row.output_bytes).toBe(GIB + '\nEND-MARKER\n'.length);
      const size = statSync(row.log_path!).size;
      expect(size).toBeGreaterThanOrEqual(DEFAULT_LOG_CAP);
      expect(size).toBeLessThan(DEFAULT_LOG_CAP + 200); // the cap plus the "left out" marker line
      const text = readFileSync(row.log_path!, 'latin1');
      expect(text.startsWith('HEAD-MARKER')).toBe(true);
      expect(text).toContain(`[nightshift: ${GIB + 12 - DEFAULT_LOG_CAP} bytes of output left out here`);
      expect(text.trimEnd().endsWith('END-MARKER')).toBe(true);
      expect(row.output_tail!.trimEnd().endsWith('END-MARKER')).toBe(true);
      // 1 GiB went through the daemon; its peak resident memory grew by a small fraction of that
      const grewMB = (vmHWMkB(daemonPid) - before) / 1024;
      expect(grewMB, `the daemon's peak RSS grew by ${grewMB.toFixed(1)} MB (idle peak ${(before / 1024).toFixed(1)} MB)`).toBeLessThan(96);
      await expectSchedulingGoesOn(row);
    },
    TEST_MS,
  );

  it(
    'a job that forks 50 grandchildren and ignores SIGTERM: after timeout + killGrace nothing of it is left',
    async () => {
      const res = await cli(['--home', home, 'run', 'forker']);
      expect(res.exitCode).toBe(1);
      const row = lastRun('forker');
      expect(row.outcome).toBe('timeout');
      expect(row.signal).toBe('SIGKILL');
      expect(row.reason).toContain('ran longer than its timeout of 2s');
      expect(row.reason).toContain('SIGKILL after 1s');
      expect(readFileSync(row.log_path!, 'utf8')).toContain('forked 50');
      const pids = readFileSync(pidfile('forker'), 'utf8').trim().split('\n').map(Number);
      expect(pids).toHaveLength(50);
      // the row is written once the group is gone: nothing to wait for
      expect(pids.filter(pidAlive)).toEqual([]);
      expect(groupMembers(row.pgid!)).toEqual([]);
      expect(runProcesses(row.id)).toEqual([]);
      await expectSchedulingGoesOn(row);
    },
    TEST_MS,
  );

  it(
    'contained (the default): a job whose 50 grandchildren leave its process group and ignore SIGTERM: after timeout + killGrace nothing of it is left',
    async () => {
      const lock = lockfile('forker-contained');
      const run = cli(['--home', home, 'run', 'forker-contained']);
      // Each grandchild writes its line once it holds the lock (the pids are the job's own namespace's: only counted).
      await waitFor(() => lineCount(pidfile('forker-contained')) === 50, WAIT_MS, '50 grandchildren holding the lock');
      expect(flockFree(lock)).toBe(false);
      const res = await run;
      expect(res.exitCode).toBe(1);
      const row = lastRun('forker-contained');
      expect(row.outcome).toBe('timeout');
      expect(row.signal).toBe('SIGKILL');
      expect(row.reason).toContain('ran longer than its timeout of 3s');
      expect(row.reason).toContain('SIGKILL after 1s');
      expect(readFileSync(row.log_path!, 'utf8')).toContain('forked 50');
      expect(lineCount(pidfile('forker-contained'))).toBe(50);
      // the row is written once the sandbox is gone: nothing to wait for
      expect(flockFree(lock)).toBe(true);
      expect(groupMembers(row.pgid!)).toEqual([]);
      expect(runProcesses(row.id)).toEqual([]);
      await expectSchedulingGoesOn(row);
    },
    TEST_MS,
  );

  it(
    'a job that closes stdout and keeps running is still timed out, and its log is kept',
    async () => {
      const res = await cli(['--home', home, 'run', 'closer']);
      expect(res.exitCode).toBe(1);
      const row = lastRun('closer');
      expect(row.outcome).toBe('timeout');
      expect(row.signal).toBe('SIGKILL'); // it ignored SIGTERM
      expect(readFileSync(row.log_path!, 'utf8')).toBe('before closing stdout\n');
      expect(row.output_tail).toBe('before closing stdout\n');
      const pid = Number(readFileSync(pidfile('closer'), 'utf8'));
      expect(pidAlive(pid)).toBe(false);
      expect(groupMembers(row.pgid!)).toEqual([]);
      await expectSchedulingGoesOn(row);
    },
    TEST_MS,
  );

  it(
    'contained (the default): a job that closes stdout and keeps running is still timed out, and its log is kept',
    async () => {
      const lock = lockfile('closer-contained');
      const run = cli(['--home', home, 'run', 'closer-contained']);
      // It takes the lock before it writes its pid file, and keeps it until it dies.
      await waitFor(() => existsSync(pidfile('closer-contained')), WAIT_MS, 'the job holding its lock');
      expect(flockFree(lock)).toBe(false);
      const res = await run;
      expect(res.exitCode).toBe(1);
      const row = lastRun('closer-contained');
      expect(row.outcome).toBe('timeout');
      expect(row.signal).toBe('SIGKILL'); // it ignored SIGTERM
      expect(readFileSync(row.log_path!, 'utf8')).toBe('before closing stdout\n');
      expect(row.output_tail).toBe('before closing stdout\n');
      // the row is written once the sandbox is gone: nothing to wait for
      expect(flockFree(lock)).toBe(true);
      expect(groupMembers(row.pgid!)).toEqual([]);
      expect(runProcesses(row.id)).toEqual([]);
      await expectSchedulingGoesOn(row);
    },
    TEST_MS,
  );

  it(
    'a job that closes stdout and exits later ends when it exits, not when its output closes',
    async () => {
      const res = await cli(['--home', home, 'run', 'closer-ends']);
      expect(res.exitCode).toBe(0);
      const row = lastRun('closer-ends');
      expect(row.outcome).toBe('ok');
      expect(row.exit_code).toBe(0);
      const ended = join(work, 'closer-ends.pid.ended');
      expect(existsSync(ended)).toBe(true);
      // the job wrote its last file after its output had closed; the run ended after that
      expect(row.ended_at!).toBeGreaterThanOrEqual(Math.floor(statSync(ended).mtimeMs));
      expect(readFileSync(row.log_path!, 'utf8')).toBe('before closing stdout\n');
      await expectSchedulingGoesOn(row);
    },
    TEST_MS,
  );

  it(
    'a job that exits before its children (one holding its stdout, ignoring SIGTERM): the run ends with the exit, the child is stopped',
    async () => {
      const res = await cli(['--home', home, 'run', 'leaver']);
      expect(res.exitCode).toBe(0);
      const row = lastRun('leaver');
      // The job's exit decides: ok, exit 0 — not a timeout waiting for the pipe to close (the contract:
      // a run owns its process group, so what it leaves behind is stopped and said so).
      expect(row.outcome).toBe('ok');
      expect(row.exit_code).toBe(0);
      expect(row.reason).toContain('Processes it left behind were stopped (SIGKILL)');
      const log = readFileSync(row.log_path!, 'utf8');
      expect(log).toContain('main exiting');
      expect(log).toContain('child still here');
      const child = Number(readFileSync(pidfile('leaver'), 'utf8'));
      expect(pidAlive(child)).toBe(false);
      expect(flockFree(lockfile('leaver'))).toBe(true);
      expect(groupMembers(row.pgid!)).toEqual([]);
      expect(runProcesses(row.id)).toEqual([]);
      await expectSchedulingGoesOn(row);
    },
    TEST_MS,
  );

  it(
    'contained (the default): a job that exits before its children (one holding its stdout, ignoring SIGTERM): the run ends with the exit, the child dies with it',
    async () => {
      const res = await cli(['--home', home, 'run', 'leaver-contained']);
      expect(res.exitCode).toBe(0);
      const row = lastRun('leaver-contained');
      expect(row.outcome).toBe('ok');
      expect(row.exit_code).toBe(0);
      // The child died with the job's PID namespace the moment the job exited: nothing was left to
      // stop, so the reason has no note about leftovers.
      expect(row.reason).toBe('exited with code 0.');
      const log = readFileSync(row.log_path!, 'utf8');
      expect(log).toContain('main exiting');
      expect(log).toContain('child still here');
      // The job exited only once the child held the lock (the child then wrote its pid file)...
      expect(readFileSync(pidfile('leaver-contained'), 'utf8').trim()).toMatch(/^\d+$/);
      // ...and when the row is written, the lock is free: the child is gone. Nothing to wait for.
      expect(flockFree(lockfile('leaver-contained'))).toBe(true);
      expect(groupMembers(row.pgid!)).toEqual([]);
      expect(runProcesses(row.id)).toEqual([]);
      await expectSchedulingGoesOn(row);
    },
    TEST_MS,
  );
});
