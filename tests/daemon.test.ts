// The daemon as users run it: a real `nightshift start` process, real jobs, a real SQLite file.
import { execa } from 'execa';
import { existsSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { UnixDgramSocket } from 'unix-dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, cli, CLI, FIXTURES, flockFree, makeHome, pidAlive, query, startDaemon, waitFor, writeJob, type DaemonProc } from './helpers.js';

interface Run {
  id: number;
  job: string;
  trigger: string;
  scheduled_for: number | null;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  outcome: string | null;
  reason: string | null;
  attempt: number;
  parent_id: number | null;
  pgid: number | null;
}
const runs = (d: { state: string }, job?: string): Run[] =>
  job ? query<Run>(d.state, 'SELECT * FROM runs WHERE job = ? ORDER BY id', job) : query<Run>(d.state, 'SELECT * FROM runs ORDER BY id');

const daemons: DaemonProc[] = [];
const homes: string[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
  for (const h of homes.splice(0)) cleanup(h);
});
async function daemon(jobs: Record<string, string>, opts: { env?: Record<string, string> } = {}): Promise<DaemonProc> {
  const home = makeHome(jobs);
  homes.push(home);
  const d = await startDaemon(home, opts);
  daemons.push(d);
  return d;
}

describe('scheduling', () => {
  it('runs an every-second job on whole seconds, one row per instant, trigger schedule', async () => {
    const d = await daemon({ tick: 'every: 1s\ncommand: ["true"]\n' });
    await waitFor(() => runs(d, 'tick').filter((r) => r.outcome === 'ok').length >= 3, 6000, '3 runs');
    const rows = runs(d, 'tick').filter((r) => r.outcome);
    for (const r of rows) {
      expect(r.trigger).toBe('schedule');
      expect(r.scheduled_for! % 1000).toBe(0);
      expect(r.started_at! - r.scheduled_for!).toBeGreaterThanOrEqual(0);
    }
    const instants = rows.map((r) => r.scheduled_for);
    expect(new Set(instants).size).toBe(instants.length);
  });
});

describe('hot reload', () => {
  it('a job added, changed and removed takes effect within 1 s, without a restart', async () => {
    const d = await daemon({});
    const t0 = Date.now();
    writeJob(d.home, 'late', 'every: 1s\ncommand: ["echo", "v1"]\n');
    const added = await d.waitLog((l) => l.msg === 'job added' && l.job === 'late', 3000);
    expect(Date.parse(added.time as string) - t0).toBeLessThan(1000);
    await waitFor(() => runs(d, 'late').some((r) => r.outcome === 'ok'), 3000, 'first run of added job');

    const t1 = Date.now();
    writeJob(d.home, 'late', 'every: 1s\ncommand: ["echo", "v2"]\n');
    const changed = await d.waitLog((l) => l.msg === 'job changed' && l.job === 'late', 3000);
    expect(Date.parse(changed.time as string) - t1).toBeLessThan(1000);
    await waitFor(() => query<{ output_tail: string }>(d.state, "SELECT output_tail FROM runs WHERE job='late' AND output_tail LIKE 'v2%'").length > 0, 3000, 'v2 output');

    const t2 = Date.now();
    unlinkSync(join(d.home, 'jobs', 'late.yaml'));
    const removed = await d.waitLog((l) => l.msg?.toString().startsWith('job removed') === true && l.job === 'late', 3000);
    expect(Date.parse(removed.time as string) - t2).toBeLessThan(1000);
    await sleep(300);
    const count = runs(d, 'late').length;
    await sleep(1500);
    expect(runs(d, 'late').length).toBe(count);
  });

  it('an invalid edit is logged with FILE:LINE and the last good version keeps running', async () => {
    const d = await daemon({ steady: 'every: 1s\ncommand: ["echo", "good"]\n' });
    await waitFor(() => runs(d, 'steady').some((r) => r.outcome === 'ok'), 3000, 'first run');
    writeJob(d.home, 'steady', 'every: 1s\ncommand: ["echo", "bad"]\ntimeout: soon\n');
    const err = await d.waitLog((l) => typeof l.msg === 'string' && l.msg.startsWith('invalid spec') && l.job === 'steady', 3000);
    expect(err.msg).toContain(`${join(d.home, 'jobs', 'steady.yaml')}:3: timeout:`);
    expect(err.msg).toContain('the last good version keeps running');
    const before = runs(d, 'steady').length;
    await sleep(2200);
    const after = query<{ output_tail: string }>(d.state, "SELECT output_tail FROM runs WHERE job='steady' AND outcome='ok' ORDER BY id DESC LIMIT 1");
    expect(runs(d, 'steady').length).toBeGreaterThan(before);
    expect(after[0]!.output_tail).toBe('good\n');

    // status shows the problem to the operator
    const st = await cli(['--home', d.home, '--state', d.state, 'status']);
    expect(st.exitCode).toBe(1);
    expect(st.stdout).toContain('steady.yaml:3: timeout:');
    // fixed again: the new version takes over and the problem is gone
    writeJob(d.home, 'steady', 'every: 1s\ncommand: ["echo", "fixed"]\n');
    await waitFor(() => query<{ n: number }>(d.state, "SELECT count(*) AS n FROM runs WHERE job='steady' AND output_tail = 'fixed\n'")[0]!.n > 0, 4000, 'fixed version runs');
    expect((await cli(['--home', d.home, '--state', d.state, 'status'])).stdout).not.toContain('steady.yaml:3');
  });

  it('editing the spec of a running job does not disturb its process', async () => {
    const d = await daemon({ slow: 'command: ["sh", "-c", "sleep 1.5; echo finished"]\n' });
    const run = cli(['--home', d.home, '--state', d.state, 'run', 'slow']);
    await waitFor(() => runs(d, 'slow').some((r) => r.started_at), 3000, 'slow started');
    writeJob(d.home, 'slow', 'command: ["sh", "-c", "echo edited"]\ntimeout: 1m\n');
    await d.waitLog((l) => l.msg === 'job changed' && l.job === 'slow', 3000);
    const r = await run;
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('finished');
    expect(runs(d, 'slow')[0]!.outcome).toBe('ok');
  });
});

describe('overlap, retries, catch-up', () => {
  it('concurrency forbid records skipped-overlap; allow overlaps; replace kills the old run first', async () => {
    const d = await daemon({
      forbidden: 'every: 1s\ncommand: ["sleep", "2.5"]\n',
      allowed: 'every: 1s\nconcurrency: allow\ncommand: ["sleep", "2.5"]\n',
      replaced: 'every: 1s\nconcurrency: replace\nkillGrace: 1s\ncommand: ["sleep", "30"]\n',
    });
    await sleep(3500);
    const f = runs(d, 'forbidden');
    expect(f.some((r) => r.outcome === 'skipped-overlap')).toBe(true);
    expect(f.find((r) => r.outcome === 'skipped-overlap')!.reason).toContain('still running (concurrency: forbid)');
    const a = runs(d, 'allowed');
    const overlapping = a.filter((r) => r.started_at && (r.ended_at === null || r.ended_at > Date.now() - 10_000));
    expect(a.every((r) => r.outcome !== 'skipped-overlap')).toBe(true);
    expect(overlapping.length).toBeGreaterThanOrEqual(2);
    const rp = runs(d, 'replaced');
    const killed = rp.filter((r) => r.outcome === 'killed');
    expect(killed.length).toBeGreaterThanOrEqual(1);
    expect(killed[0]!.reason).toContain('a new run replaced it');
    // the replacement started only after the old one ended
    const next = rp.find((r) => r.id > killed[0]!.id && r.started_at)!;
    expect(next.started_at!).toBeGreaterThanOrEqual(killed[0]!.ended_at!);
  });

  it('retries a failed run with its delay, then stops (attempt numbers chained)', async () => {
    const d = await daemon({ flaky: 'command: ["sh", "-c", "echo boom; exit 2"]\nretries: { count: 2, delay: 300ms }\n' });
    const r = await cli(['--home', d.home, '--state', d.state, 'run', 'flaky']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain('Retry 1 of 2 in 300ms');
    await waitFor(() => runs(d, 'flaky').filter((x) => x.outcome).length === 3, 5000, '3 attempts');
    await sleep(800);
    const rows = runs(d, 'flaky');
    expect(rows.map((x) => [x.trigger, x.attempt, x.outcome])).toEqual([
      ['manual', 1, 'failed'],
      ['retry', 2, 'failed'],
      ['retry', 3, 'failed'],
    ]);
    expect(rows[1]!.parent_id).toBe(rows[0]!.id);
    expect(rows[2]!.parent_id).toBe(rows[1]!.id);
    expect(rows[1]!.started_at! - rows[0]!.ended_at!).toBeGreaterThanOrEqual(290);
    expect(rows[2]!.reason).not.toContain('Retry');
  });

  it('catchUp runs once after downtime (trigger catch-up); without it nothing runs and the miss is recorded', async () => {
    const d = await daemon({ caught: 'every: 2s\ncatchUp: true\ncommand: ["true"]\n', plain: 'every: 2s\ncommand: ["true"]\n' });
    await waitFor(() => runs(d, 'caught').some((r) => r.outcome === 'ok'), 4000, 'first run');
    await d.stop();
    await sleep(5000); // at least two instants pass while down
    const before = runs(d).length;
    const t = Date.now();
    const d2 = await startDaemon(d.home, { state: d.state });
    daemons.push(d2);
    await waitFor(() => runs(d2, 'caught').some((r) => r.trigger === 'catch-up' && r.outcome === 'ok'), 3000, 'catch-up run');
    const catchUps = runs(d2, 'caught').filter((r) => r.trigger === 'catch-up');
    expect(catchUps).toHaveLength(1);
    // for an instant missed while down (one may also pass during a slow start: still a miss)
    expect(catchUps[0]!.scheduled_for!).toBeLessThanOrEqual(catchUps[0]!.created_at);
    expect(catchUps[0]!.scheduled_for!).toBeGreaterThan(Math.max(...runs(d, 'caught').filter((r) => r.id <= before).map((r) => r.scheduled_for ?? 0)));
    expect(runs(d2, 'plain').filter((r) => r.id > before && r.trigger === 'catch-up')).toHaveLength(0);
    const ev = query<{ job: string; message: string }>(d.state, "SELECT job, message FROM events WHERE kind = 'missed-while-down' ORDER BY id");
    expect(ev.find((e) => e.job === 'plain')!.message).toContain('catchUp is off');
    // a second restart does not catch up the same downtime again (on a loaded machine an instant
    // may pass during this restart too: catching that one up is right, but only that one)
    await d2.stop();
    const d3 = await startDaemon(d.home, { state: d.state });
    daemons.push(d3);
    await sleep(500);
    const again = runs(d3, 'caught').filter((r) => r.trigger === 'catch-up' && r.id !== catchUps[0]!.id);
    expect(again.length).toBeLessThanOrEqual(1);
    for (const r of again) expect(r.scheduled_for!).toBeGreaterThan(t);
  });
});

describe('crash safety', () => {
  // With seeAllProcesses the job runs in the machine's PID namespace: its pids are real, and a
  // kill -9 of the daemon ends only the job's first process (bwrap's --die-with-parent); the
  // grandchildren it forked live on in its process group until the next daemon kills them.
  it('kill -9 mid-run: rows become interrupted, orphaned groups are killed, no instant runs twice', async () => {
    const pidfile = join(makeHomeTmp(), 'pids');
    const d = await daemon({
      hog: `every: 1s\nseeAllProcesses: true\nkillGrace: 1s\ncommand: ["${join(FIXTURES, 'grandchildren.sh')}", "${pidfile}", "3"]\n`,
      quick: 'every: 1s\ncommand: ["true"]\n',
    });
    await waitFor(() => existsSync(pidfile) && readFileSync(pidfile, 'utf8').trim().split('\n').length === 3, 5000, 'grandchildren');
    const pids = readFileSync(pidfile, 'utf8').trim().split('\n').map(Number);
    await waitFor(() => runs(d, 'quick').some((r) => r.outcome === 'ok'), 3000, 'a finished run of quick');
    d.proc.kill('SIGKILL');
    await d.proc;
    expect(pids.every(pidAlive)).toBe(true);
    const open = runs(d).filter((r) => r.ended_at === null);
    expect(open.some((r) => r.job === 'hog')).toBe(true);
    const before = runs(d);

    const d2 = await startDaemon(d.home, { state: d.state });
    daemons.push(d2);
    await waitFor(() => pids.every((p) => !pidAlive(p)), 3000, 'orphans killed');
    expectInterrupted(d.state, open);
    await expectNoInstantTwice(d2, before, ['hog', 'quick']);
  });

  it('contained (the default): kill -9 mid-run takes every process of the run with it, even escaped ones; rows become interrupted, no instant runs twice', async () => {
    const dir = makeHomeTmp();
    const lock = join(dir, 'hog.lock');
    const pidfile = join(dir, 'pids');
    const d = await daemon({
      // three grandchildren that ignore SIGTERM, leave the job's session and process group, and
      // hold a shared lock for as long as they live (the pids they record are namespace pids)
      hog: `every: 1s\nkillGrace: 1s\ncommand: ["${join(FIXTURES, 'grandchildren.sh')}", "${pidfile}", "3", "${lock}"]\n`,
      quick: 'every: 1s\ncommand: ["true"]\n',
    });
    await waitFor(() => existsSync(pidfile) && readFileSync(pidfile, 'utf8').trim().split('\n').length === 3, 5000, 'grandchildren holding the lock');
    expect(flockFree(lock)).toBe(false);
    await waitFor(() => runs(d, 'quick').some((r) => r.outcome === 'ok'), 3000, 'a finished run of quick');
    d.proc.kill('SIGKILL');
    await d.proc;
    // No daemon runs now: the sandbox died with the one that was killed.
    await waitFor(() => flockFree(lock), 3000, 'the grandchildren gone with the daemon (the lock free)');
    const open = runs(d).filter((r) => r.ended_at === null);
    expect(open.some((r) => r.job === 'hog')).toBe(true);
    const before = runs(d);

    const d2 = await startDaemon(d.home, { state: d.state });
    daemons.push(d2);
    expectInterrupted(d.state, open);
    await expectNoInstantTwice(d2, before, ['hog', 'quick']);
  });

  it('a second daemon on the same state folder is refused with a clear message', async () => {
    const d = await daemon({});
    const r = await execa('node', [CLI, '--home', d.home, '--state', d.state, 'start'], { reject: false, timeout: 10_000 });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('another nightshift daemon already owns the state folder');
    expect(r.stderr).toContain(`pid ${d.proc.pid}`);
    // the first one is unharmed
    expect((await cli(['--home', d.home, '--state', d.state, 'pause', '--all'])).exitCode).toBe(0);
  });

  it('SIGTERM stops scheduling, SIGTERMs running jobs, records them and exits 0', async () => {
    const d = await daemon({ longjob: 'command: ["sleep", "60"]\nkillGrace: 2s\n' });
    void cli(['--home', d.home, '--state', d.state, 'run', 'longjob']);
    await waitFor(() => runs(d, 'longjob').some((r) => r.started_at), 3000, 'started');
    d.proc.kill('SIGTERM');
    const res = await d.proc;
    expect(res.exitCode).toBe(0);
    const row = runs(d, 'longjob')[0]!;
    expect(row.outcome).toBe('killed');
    expect(row.reason).toContain('nightshift was shutting down');
    expect(row.reason).not.toContain('SIGKILL');
    expect(existsSync(join(d.state, 'nightshift.sock'))).toBe(false);
  });
});

describe('crash safety, continued', () => {
  // seeAllProcesses: a kill -9 of the daemon ends the first process of the job and of the
  // pre-check (bwrap's --die-with-parent), not what they forked. Left behind here: a process that
  // dropped its environment (found only by its process group) and the pre-check's child.
  it('after kill -9, processes that dropped their environment and pre-checks left behind are killed too', async () => {
    const d = await daemon({
      noenv: 'seeAllProcesses: true\nshell: "env -i sleep 301 & wait"\n',
      gated: 'every: 2s\nseeAllProcesses: true\nprecheck: ["sh", "-c", "sleep 302 & wait"]\ncommand: ["true"]\n',
    });
    void cli(['--home', d.home, '--state', d.state, 'run', 'noenv']);
    const findPid = (arg: string) => {
      const r = require_ps().find((p) => p.args === `sleep ${arg}`);
      return r?.pid;
    };
    const sleeper = await waitFor(() => findPid('301'), 4000, 'env -i sleep');
    const pre = await waitFor(() => findPid('302'), 5000, 'pre-check sleep');
    expect(readFileSync(`/proc/${sleeper}/environ`, 'latin1')).toBe(''); // it really has no environment
    d.proc.kill('SIGKILL');
    await d.proc;
    expect(pidAlive(sleeper)).toBe(true);
    expect(pidAlive(pre)).toBe(true);
    const d2 = await startDaemon(d.home, { state: d.state });
    daemons.push(d2);
    await waitFor(() => !pidAlive(sleeper) && !pidAlive(pre), 3000, 'leftovers killed');
    expect(runs(d2, 'noenv')[0]!.outcome).toBe('interrupted');
    expect(runs(d2, 'gated')[0]!.outcome).toBe('interrupted');
  });

  it('contained (the default): kill -9 takes processes that dropped their environment and left the group, and pre-checks, with it', async () => {
    const dir = makeHomeTmp();
    const [runLock, preLock] = [join(dir, 'noenv.lock'), join(dir, 'pre.lock')];
    const [runUp, preUp] = [join(dir, 'noenv.up'), join(dir, 'pre.up')];
    // Each holds its lock for as long as it lives and says so (the .up file) once it does.
    const noenv = `env -i setsid flock ${runLock} sh -c 'echo up > ${runUp}; sleep 301' & wait`;
    const d = await daemon({
      noenv: `shell: ${JSON.stringify(noenv)}\n`,
      gated: `every: 2s\nprecheck: ["flock", "${preLock}", "sh", "-c", "echo up > ${preUp}; sleep 302"]\ncommand: ["true"]\n`,
    });
    void cli(['--home', d.home, '--state', d.state, 'run', 'noenv']);
    await waitFor(() => existsSync(runUp), 4000, 'the env -i process holding its lock');
    await waitFor(() => existsSync(preUp), 5000, 'the pre-check holding its lock');
    expect(flockFree(runLock)).toBe(false);
    expect(flockFree(preLock)).toBe(false);
    d.proc.kill('SIGKILL');
    await d.proc;
    await waitFor(() => flockFree(runLock) && flockFree(preLock), 3000, 'both gone with the daemon (their locks free)');
    const d2 = await startDaemon(d.home, { state: d.state });
    daemons.push(d2);
    expect(runs(d2, 'noenv')[0]!.outcome).toBe('interrupted');
    expect(runs(d2, 'gated')[0]!.outcome).toBe('interrupted');
  });

  it('a spec that became invalid while the daemon was down keeps running as its last good version', async () => {
    const d = await daemon({ keeper: 'every: 1s\ncommand: ["echo", "last-good"]\n' });
    await waitFor(() => runs(d, 'keeper').some((r) => r.outcome === 'ok'), 3000, 'a run');
    await d.stop();
    writeJob(d.home, 'keeper', 'every: 1s\ncommand: ["echo", "broken"]\nconcurrency: sometimes\n');
    const d2 = await startDaemon(d.home, { state: d.state });
    daemons.push(d2);
    await d2.waitLog((l) => typeof l.msg === 'string' && l.msg.includes('running its last good version'), 3000);
    const startedAt = Date.now();
    await waitFor(() => runs(d2, 'keeper').some((r) => r.outcome === 'ok' && r.started_at! > startedAt), 3000, 'last good version runs');
    expect(query<{ output_tail: string }>(d.state, "SELECT output_tail FROM runs WHERE job='keeper' ORDER BY id DESC LIMIT 1")[0]!.output_tail).toBe('last-good\n');
    const st = await cli(['--home', d.home, '--state', d.state, 'status']);
    expect(st.stdout).toContain('keeper.yaml:3: concurrency:');
  });

  it('a start-up that fails (state path too long for a socket) starts no job', async () => {
    const home = makeHome({ eager: 'every: 1s\ncatchUp: true\ncommand: ["sleep", "30"]\n' });
    homes.push(home);
    const state = join(home, 'x'.repeat(120));
    const r = await execa('node', [CLI, '--home', home, '--state', state, 'start'], { reject: false, timeout: 15_000 });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('longer than 107 bytes');
    expect(query<{ n: number }>(state, 'SELECT count(*) AS n FROM runs')[0]!.n).toBe(0);
  });

  it('concurrency replace: a run waiting to replace another is itself replaced before it starts', async () => {
    // killGrace 5s: the first run holds out that long, so the third request arrives while the second still waits, even on a loaded machine
    const d = await daemon({ rep: 'concurrency: replace\nkillGrace: 5s\nshell: "trap \'\' TERM; sleep 20; echo done"\n' });
    const args = ['--home', d.home, '--state', d.state, 'run', 'rep'];
    const r1 = cli(args);
    await waitFor(() => runs(d, 'rep')[0]?.started_at, 3000, 'first started');
    const r2 = cli(args);
    await waitFor(() => runs(d, 'rep').length === 2, 3000, 'second requested');
    const r3 = cli(args);
    await waitFor(() => runs(d, 'rep').length === 3, 3000, 'third requested');
    const [o1, o2] = await Promise.all([r1, r2]);
    expect(o1.stdout).toContain('killed');
    expect(o2.stdout).toContain('not started: a newer run replaced it before it started');
    await waitFor(() => runs(d, 'rep')[2]?.started_at, 5000, 'third started');
    void r3;
  });

  it('SIGTERM: a job that ignores SIGTERM is SIGKILLed after its killGrace, recorded, and the daemon exits 0', async () => {
    const d = await daemon({ stubborn: `command: ["${join(FIXTURES, 'ignore-term.sh')}"]\nkillGrace: 1s\n` });
    void cli(['--home', d.home, '--state', d.state, 'run', 'stubborn']);
    await waitFor(() => runs(d, 'stubborn')[0]?.started_at, 3000, 'started');
    await sleep(200);
    const t = Date.now();
    d.proc.kill('SIGTERM');
    const res = await d.proc;
    expect(res.exitCode).toBe(0);
    expect(Date.now() - t).toBeGreaterThanOrEqual(1000);
    const row = runs(d, 'stubborn')[0]!;
    expect(row.outcome).toBe('killed');
    expect(row.reason).toContain('SIGTERM, then SIGKILL after 1s');
  });
});

describe('control socket and CLI', () => {
  it('the socket is 0600 and bad requests get clear errors without hurting the daemon', async () => {
    const d = await daemon({ j: 'every: 1h\ncommand: ["true"]\n' });
    const sock = join(d.state, 'nightshift.sock');
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    const curl = async (...args: string[]) => execa('curl', ['-s', '--unix-socket', sock, ...args], { reject: false });
    expect(JSON.parse((await curl('http://x/nope')).stdout).error).toContain('no such endpoint');
    expect(JSON.parse((await curl('-X', 'POST', 'http://x/run/..%2F..%2Fetc')).stdout).error).toContain('is not a valid job name');
    expect(JSON.parse((await curl('-X', 'POST', 'http://x/run/ghost')).stdout).error).toContain('no job named "ghost"');
    expect(JSON.parse((await curl('http://x/run/j')).stdout).error).toContain('GET is not allowed');
    expect(JSON.parse((await curl('-X', 'POST', 'http://x/run/%E0%A4%A')).stdout).error).toContain('not valid percent-encoding');
    expect(JSON.parse((await curl('-X', 'POST', '-d', '{not json', 'http://x/pause/j')).stdout).error).toContain('not valid JSON');
    // raw garbage on the socket
    const reply = await new Promise<string>((resolve) => {
      const c = connect(sock, () => c.end(Buffer.from('GARBAGE\r\n\r\n\x00\xff')));
      let text = '';
      c.on('data', (b) => (text += b.toString()));
      c.on('close', () => resolve(text));
      c.on('error', () => resolve(text));
    });
    expect(reply).not.toContain('health');
    expect(JSON.parse((await curl('http://x/health')).stdout).ok).toBe(true);
  });

  it('exit codes: 2 for usage, 3 when the daemon is not running, 1 for a failed run', async () => {
    const home = makeHome({ fails: 'command: ["false"]\n' });
    homes.push(home);
    const noDaemon = await cli(['--home', home, 'run', 'fails']);
    expect(noDaemon.exitCode).toBe(3);
    expect(noDaemon.stderr).toContain('daemon is not running');
    expect((await cli(['--home', home, 'pause', 'fails'])).exitCode).toBe(3);
    expect((await cli(['--home', home, 'frobnicate'])).exitCode).toBe(2);
    expect((await cli(['--home', home, 'run'])).exitCode).toBe(2);
    expect((await cli(['--home', home, 'run', 'Bad Name'])).exitCode).toBe(2);
    expect((await cli(['--home', home, 'history', '--limit', 'many'])).stderr).toContain('--limit must be a whole number');
    expect((await cli(['--home', home, 'next', 'fails', '--from', 'yesterday'])).exitCode).toBe(2);
    for (const c of ['start', 'validate', 'status', 'next', 'run', 'history', 'pause', 'resume']) {
      const h = await cli([c, '--help']);
      expect(h.exitCode, c).toBe(0);
      expect(h.stdout, c).toContain(`usage: nightshift`);
    }
    const d = await startDaemon(home);
    daemons.push(d);
    const r = await cli(['--home', home, 'run', 'fails']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain('failed — exited with code 1');
    expect((await cli(['--home', home, 'run', 'ghost'])).exitCode).toBe(2);
  });

  it('pause records skipped-paused instants; resume starts the clock afresh; history and status show it', async () => {
    const d = await daemon({ p: 'every: 1s\ncommand: ["true"]\n' });
    await waitFor(() => runs(d, 'p').some((r) => r.outcome === 'ok'), 3000, 'a run');
    const paused = await cli(['--home', d.home, '--state', d.state, 'pause', 'p']);
    expect(paused.stdout).toContain('paused: p');
    await waitFor(() => runs(d, 'p').some((r) => r.outcome === 'skipped-paused'), 3000, 'skipped-paused');
    const st = await cli(['--home', d.home, '--state', d.state, 'status']);
    expect(st.stdout).toMatch(/^p\s+PAUSED/m);
    await cli(['--home', d.home, '--state', d.state, 'resume', 'p']);
    const resumedAt = Date.now();
    await waitFor(() => runs(d, 'p').some((r) => r.outcome === 'ok' && r.started_at! > resumedAt), 3000, 'run after resume');
    const h = await cli(['--home', d.home, '--state', d.state, 'history', 'p', '--json']);
    const rows = JSON.parse(h.stdout) as Run[];
    expect(rows.some((r) => r.outcome === 'skipped-paused' && r.reason!.includes('paused'))).toBe(true);
    const json = JSON.parse((await cli(['--home', d.home, '--state', d.state, 'status', '--json'])).stdout);
    expect(json.daemon.running).toBe(true);
    expect(json.jobs[0].name).toBe('p');
  });

  it('reading commands work with the daemon stopped', async () => {
    const d = await daemon({ r: 'every: 1s\ncommand: ["true"]\n' });
    await waitFor(() => runs(d, 'r').some((x) => x.outcome === 'ok'), 3000, 'a run');
    await d.stop();
    const st = await cli(['--home', d.home, '--state', d.state, 'status']);
    expect(st.exitCode).toBe(1);
    expect(st.stdout.split('\n')[0]).toContain('nightshift is NOT RUNNING');
    expect(st.stdout).toContain('Daemon: NOT RUNNING');
    expect(st.stdout).toMatch(/^r\s+OK\s+ok/m);
    const h = await cli(['--home', d.home, '--state', d.state, 'history']);
    expect(h.stdout).toMatch(/#\d+\s+r\s+schedule/);
    const n = await cli(['--home', d.home, '--state', d.state, 'next', 'r', '--count', '3', '--from', '2026-01-01T00:00:00Z']);
    expect(n.stdout.trim().split('\n')).toHaveLength(3);
  });
});

describe('systemd notification', () => {
  it('sends READY=1, WATCHDOG=1 at half the interval, and STOPPING=1 to a real datagram socket', async () => {
    const unix = createRequire(import.meta.url)('unix-dgram') as typeof import('unix-dgram');
    const dir = makeHomeTmp();
    const path = join(dir, 'notify.sock');
    const got: Array<{ at: number; msg: string }> = [];
    const sock: UnixDgramSocket = unix.createSocket('unix_dgram', (buf) => got.push({ at: Date.now(), msg: buf.toString() }));
    sock.bind(path);
    try {
      const d = await daemon({ j: 'every: 1h\ncommand: ["true"]\n' }, { env: { NOTIFY_SOCKET: path, WATCHDOG_USEC: '1000000' } });
      await waitFor(() => got.some((g) => g.msg.includes('READY=1')), 3000, 'READY');
      expect(got.find((g) => g.msg.includes('READY=1'))!.msg).toContain(`MAINPID=${d.proc.pid}`);
      await waitFor(() => got.filter((g) => g.msg === 'WATCHDOG=1').length >= 3, 3000, 'watchdog pings');
      const pings = got.filter((g) => g.msg === 'WATCHDOG=1').map((g) => g.at);
      const gaps = pings.slice(1).map((t, i) => t - pings[i]!);
      for (const gap of gaps) {
        expect(gap).toBeGreaterThan(350);
        expect(gap).toBeLessThan(800);
      }
      // The job must not see the daemon's NOTIFY_SOCKET.
      writeJob(d.home, 'envcheck', 'command: ["sh", "-c", "echo notify=${NOTIFY_SOCKET:-unset}"]\n');
      await d.waitLog((l) => l.msg === 'job added' && l.job === 'envcheck');
      const r = await cli(['--home', d.home, '--state', d.state, 'run', 'envcheck']);
      expect(r.stdout).toContain('notify=unset');
      d.proc.kill('SIGTERM');
      await d.proc;
      expect(got.some((g) => g.msg.startsWith('STOPPING=1'))).toBe(true);
    } finally {
      sock.close();
      cleanup(dir);
    }
  });
});

/** Processes of this machine with their full command line (from /proc). */
function require_ps(): Array<{ pid: number; args: string }> {
  const out: Array<{ pid: number; args: string }> = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      out.push({ pid: Number(e), args: readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ') });
    } catch {
      // gone
    }
  }
  return out;
}

/** The rows the dead daemon left open are now final: interrupted, and say why. */
function expectInterrupted(state: string, open: Run[]): void {
  for (const o of open) {
    const row = query<Run>(state, 'SELECT * FROM runs WHERE id = ?', o.id)[0]!;
    expect(row.outcome).toBe('interrupted');
    expect(row.reason).toContain('nightshift stopped while this run was in progress');
  }
}

/**
 * Once the restarted daemon has claimed instants of each job, every instant it claimed lies after
 * every instant claimed before the kill: none runs twice.
 */
async function expectNoInstantTwice(d2: DaemonProc, before: Run[], jobs: string[]): Promise<void> {
  const lastIdBefore = Math.max(...before.map((r) => r.id));
  const after = (job: string) => runs(d2, job).filter((r) => r.id > lastIdBefore && r.trigger === 'schedule');
  await waitFor(() => jobs.every((job) => after(job).length > 0), 5000, 'instants claimed after the restart');
  for (const job of jobs) {
    const lastBefore = Math.max(...before.filter((r) => r.job === job).map((r) => r.scheduled_for ?? 0));
    for (const r of after(job)) expect(r.scheduled_for!).toBeGreaterThan(lastBefore);
  }
  expect(runs(d2).filter((r) => r.ended_at === null && r.job === 'quick').length).toBeLessThanOrEqual(1);
}

function makeHomeTmp(): string {
  const h = makeHome();
  homes.push(h);
  return h;
}

describe('logs', () => {
  it('writes one JSON event per state change and never the values of a job env', async () => {
    const d = await daemon({ secretive: 'command: ["true"]\nenv: { API_TOKEN: "s3cr3t-value-123" }\n' });
    await cli(['--home', d.home, '--state', d.state, 'run', 'secretive']);
    await d.waitLog((l) => l.msg?.toString().startsWith('run finished') === true);
    const all = d.lines();
    expect(all.every((l) => !l.raw)).toBe(true);
    expect(JSON.stringify(all)).not.toContain('s3cr3t-value-123');
    expect(all.some((l) => l.msg === 'run started' && l.job === 'secretive')).toBe(true);
  });
});

void writeFileSync;
