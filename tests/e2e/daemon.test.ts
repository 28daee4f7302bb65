// The daemon as users run it: a real `nightshift start` process, real jobs, a real SQLite file.
import type { RunRow } from '../../src/store/store.js';
import { execa } from 'execa';
import { existsSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { UnixDgramSocket } from 'unix-dgram';
import { callDaemon } from '../../src/control/socket.js';
import { describe, expect, it, vi } from 'vitest';
import {
  cleanup,
  cli,
  CLI,
  FIXTURES,
  flockFree,
  makeHome,
  pidAlive,
  query,
  startDaemon,
  waitFor,
  writeJob,
  trackDaemons,
  type DaemonProc,
} from '../support/helpers.js';

/** A row of the runs table, as the tests read it back with query(). */
type Run = RunRow;
const runs = (d: { state: string }, job?: string): Run[] =>
  job ? query<Run>(d.state, 'SELECT * FROM runs WHERE job = ? ORDER BY id', job) : query<Run>(d.state, 'SELECT * FROM runs ORDER BY id');

// How long a test waits for a marker (a row, a log line, a file) is no claim about speed: each
// wait ends as soon as its marker appears, and this suite must pass on a loaded, one-core machine.
// Latency is measured in bench/ instead.
const WAIT_MS = 30_000;
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const { daemons, dirs: homes } = trackDaemons();
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
    await waitFor(() => runs(d, 'tick').filter((r) => r.outcome === 'ok').length >= 3, WAIT_MS, '3 runs');
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
  // How fast a reload takes effect is a latency figure (bench/scale.mjs: reload latency of one
  // changed file, in-place write and atomic rename); this test proves what each reload causes,
  // from the times the daemon recorded.
  it('a job added, changed and removed takes effect, without a restart', async () => {
    // witness: scheduled on the same whole seconds as the job; its runs show which instants the
    // daemon has handled since the removal
    const d = await daemon({ witness: 'every: 1s\ncommand: ["true"]\n' });
    const t0 = Date.now();
    writeJob(d.home, 'late', 'every: 1s\ncommand: ["echo", "v1"]\n');
    const added = await d.waitLog((l) => l.msg === 'job added' && l.job === 'late', WAIT_MS, 'job added');
    const addedAt = Date.parse(added.time as string);
    expect(addedAt).toBeGreaterThanOrEqual(t0); // this write's reload, not an earlier one
    const first = await waitFor(() => runs(d, 'late').find((r) => r.outcome === 'ok'), WAIT_MS, 'first run of added job');
    expect(first.created_at).toBeGreaterThanOrEqual(addedAt);
    expect(first.trigger).toBe('schedule');

    writeJob(d.home, 'late', 'every: 1s\ncommand: ["echo", "v2"]\n');
    const changed = await d.waitLog((l) => l.msg === 'job changed' && l.job === 'late', WAIT_MS, 'job changed');
    const changedAt = Date.parse(changed.time as string);
    await waitFor(() => runs(d, 'late').some((r) => r.created_at > changedAt && r.outcome), WAIT_MS, 'a finished run of the changed job');
    // every run begun after the reload runs the new version; the new version never ran before it
    const tail = (r: Run) =>
      query<{ output_tail: string | null }>(d.state, 'SELECT output_tail FROM runs WHERE id = ?', r.id)[0]!.output_tail;
    const finished = runs(d, 'late').filter((r) => r.outcome === 'ok');
    expect(finished.filter((r) => r.created_at > changedAt).map(tail)).toEqual(
      finished.filter((r) => r.created_at > changedAt).map(() => 'v2\n'),
    );
    for (const r of finished.filter((x) => tail(x) === 'v2\n')) expect(r.created_at).toBeGreaterThanOrEqual(changedAt);

    unlinkSync(join(d.home, 'jobs', 'late.yaml'));
    const removed = await d.waitLog(
      (l) => l.msg?.toString().startsWith('job removed') === true && l.job === 'late',
      WAIT_MS,
      'job removed',
    );
    const removedAt = Date.parse(removed.time as string);
    // The daemon has handled two whole-second instants after the removal (the witness ran on
    // them): the removed job had its chance to be scheduled on them, and was not.
    await waitFor(
      () => runs(d, 'witness').filter((r) => r.scheduled_for! > removedAt).length >= 2,
      WAIT_MS,
      'two instants after the removal handled',
    );
    expect(runs(d, 'late').filter((r) => r.created_at > removedAt || r.scheduled_for! > removedAt)).toEqual([]);
  });

  it('an invalid edit is logged with FILE:LINE and the last good version keeps running', async () => {
    const d = await daemon({ steady: 'every: 1s\ncommand: ["echo", "good"]\n' });
    await waitFor(() => runs(d, 'steady').some((r) => r.outcome === 'ok'), WAIT_MS, 'first run');
    writeJob(d.home, 'steady', 'every: 1s\ncommand: ["echo", "bad"]\ntimeout: soon\n');
    const err = await d.waitLog(
      (l) => typeof l.msg === 'string' && l.msg.startsWith('invalid spec') && l.job === 'steady',
      WAIT_MS,
      'the invalid edit refused',
    );
    expect(err.msg).toContain(`${join(d.home, 'jobs', 'steady.yaml')}:3: timeout:`);
    expect(err.msg).toContain('the last good version keeps running');
    // runs begun after the invalid edit was refused are of the last good version
    const refusedAt = Date.parse(err.time as string);
    const after = () =>
      query<{ output_tail: string }>(
        d.state,
        "SELECT output_tail FROM runs WHERE job='steady' AND outcome='ok' AND created_at > ? ORDER BY id",
        refusedAt,
      );
    await waitFor(() => after().length >= 2, WAIT_MS, 'two runs after the invalid edit');
    const kept = after();
    expect(kept.map((r) => r.output_tail)).toEqual(kept.map(() => 'good\n'));

    // status shows the problem to the operator
    const st = await cli(['--home', d.home, '--state', d.state, 'status']);
    expect(st.exitCode).toBe(1);
    expect(st.stdout).toContain('steady.yaml:3: timeout:');
    // fixed again: the new version takes over and the problem is gone
    writeJob(d.home, 'steady', 'every: 1s\ncommand: ["echo", "fixed"]\n');
    await waitFor(
      () => query<{ n: number }>(d.state, "SELECT count(*) AS n FROM runs WHERE job='steady' AND output_tail = 'fixed\n'")[0]!.n > 0,
      WAIT_MS,
      'fixed version runs',
    );
    expect((await cli(['--home', d.home, '--state', d.state, 'status'])).stdout).not.toContain('steady.yaml:3');
  });

  it('editing the spec of a running job does not disturb its process', async () => {
    // the run goes on until the test says so (after the edit took effect), not for a fixed time
    const go = join(makeHomeTmp(), 'go');
    const d = await daemon({ slow: `command: ["sh", "-c", "while [ ! -e ${go} ]; do sleep 0.05; done; echo finished"]\n` });
    const run = cli(['--home', d.home, '--state', d.state, 'run', 'slow']);
    await waitFor(() => runs(d, 'slow').some((r) => r.started_at), WAIT_MS, 'slow started');
    writeJob(d.home, 'slow', 'command: ["sh", "-c", "echo edited"]\ntimeout: 1m\n');
    const changed = await d.waitLog((l) => l.msg === 'job changed' && l.job === 'slow', WAIT_MS, 'job changed');
    writeFileSync(go, '');
    const r = await run;
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('finished');
    const row = runs(d, 'slow')[0]!;
    expect(row.outcome).toBe('ok');
    // the edit took effect while this run was under way
    expect(Date.parse(changed.time as string)).toBeGreaterThanOrEqual(row.started_at!);
    expect(Date.parse(changed.time as string)).toBeLessThanOrEqual(row.ended_at!);
  });
});

describe('overlap, retries, catch-up', () => {
  it('concurrency forbid records skipped-overlap; allow overlaps; replace kills the old run first', async () => {
    // forbidden and allowed each append "RUN_ID JOB TRIGGER PID start" as they start and "... end"
    // as they finish to one file (home/evidence, O_APPEND): the processes' own word of when they ran.
    const recorded = `cwd: .\ncommand: ["${join(FIXTURES, 'fault-job.sh')}", "evidence", "2.5"]\n`;
    const d = await daemon({
      forbidden: `every: 1s\n${recorded}`,
      allowed: `every: 1s\nconcurrency: allow\n${recorded}`,
      replaced: 'every: 1s\nconcurrency: replace\nkillGrace: 1s\ncommand: ["sleep", "30"]\n',
    });
    /** The evidence of one job, in the order it was written: [run id, 'start' | 'end']. */
    const evidenceOf = (job: string): Array<[number, string]> =>
      (existsSync(join(d.home, 'evidence')) ? readFileSync(join(d.home, 'evidence'), 'utf8') : '')
        .split('\n')
        .map((l) => l.split(' '))
        .filter((f) => f[1] === job)
        .map((f) => [Number(f[0]), f[4]!]);
    /** Two runs whose processes were alive at once: the second started before the first ended (file order). */
    const overlapInEvidence = (job: string): [number, number] | undefined => {
      const alive = new Set<number>();
      for (const [id, what] of evidenceOf(job)) {
        if (what === 'end') alive.delete(id);
        else if (alive.size > 0) return [[...alive][0]!, id];
        else alive.add(id);
      }
      return undefined;
    };
    // forbid: an instant that came while the previous run was still running is recorded, not run
    const skipped = await waitFor(
      () => runs(d, 'forbidden').find((r) => r.outcome === 'skipped-overlap'),
      WAIT_MS,
      'a skipped-overlap of forbidden',
    );
    expect(skipped.reason).toContain('still running (concurrency: forbid)');
    const busy = runs(d, 'forbidden').find(
      (r) =>
        r.id < skipped.id &&
        r.outcome !== 'skipped-overlap' &&
        r.created_at <= skipped.created_at &&
        (r.ended_at === null || r.ended_at >= skipped.created_at),
    );
    expect(busy, 'a run of forbidden was under way when the instant was skipped').toBeDefined();
    // Two runs whose recorded [started_at, ended_at] intersect (a run still going ends at infinity,
    // unless only finished runs count); a skipped instant is no run.
    const overlapOf = (a: Run[], finishedOnly: boolean): [Run, Run] | undefined => {
      const end = (r: Run) => r.ended_at ?? Infinity;
      const ran = a.filter((r) => r.started_at !== null && !r.outcome?.startsWith('skipped') && (!finishedOnly || r.ended_at !== null));
      for (const x of ran) for (const y of ran) if (x.id < y.id && y.started_at! < end(x) && x.started_at! < end(y)) return [x, y];
      return undefined;
    };
    // allow: two runs of the same job really ran at the same time — by their recorded times, and by
    // the processes themselves: the second wrote "start" before the first wrote "end"
    const [a1, a2] = await waitFor(() => overlapOf(runs(d, 'allowed'), true), WAIT_MS, 'two overlapping runs of allowed');
    expect([a1.outcome, a2.outcome]).toEqual(['ok', 'ok']);
    const [e1, e2] = await waitFor(() => overlapInEvidence('allowed'), WAIT_MS, 'two runs of allowed alive at once');
    expect(
      runs(d, 'allowed')
        .filter((r) => r.id === e1 || r.id === e2)
        .map((r) => r.trigger),
    ).toEqual(['schedule', 'schedule']);
    expect(runs(d, 'allowed').filter((r) => r.outcome === 'skipped-overlap')).toEqual([]);
    // ...while no two runs of forbidden ever did (it has had as many instants by now, and skipped
    // one): neither by their recorded times nor by their own word — each run's "start" comes after
    // the "end" of the one before
    await waitFor(() => evidenceOf('forbidden').some(([, what]) => what === 'end'), WAIT_MS, 'a run of forbidden that finished');
    expect(overlapOf(runs(d, 'forbidden'), false)).toBeUndefined();
    expect(overlapInEvidence('forbidden'), JSON.stringify(evidenceOf('forbidden'))).toBeUndefined();
    // replace: the old run is killed, and its replacement started only after it ended
    const next = await waitFor(
      () => {
        const rp = runs(d, 'replaced');
        const killed = rp.find((r) => r.outcome === 'killed');
        return killed && rp.find((r) => r.id > killed.id && r.started_at);
      },
      WAIT_MS,
      'a run of replaced that replaced a killed one',
    );
    const killed = runs(d, 'replaced').find((r) => r.outcome === 'killed')!;
    expect(killed.reason).toContain('a new run replaced it');
    expect(next.started_at!).toBeGreaterThanOrEqual(killed.ended_at!);
  });

  it('retries a failed run with its delay, then stops (attempt numbers chained)', async () => {
    const d = await daemon({ flaky: 'command: ["sh", "-c", "echo boom; exit 2"]\nretries: { count: 2, delay: 300ms }\n' });
    const r = await cli(['--home', d.home, '--state', d.state, 'run', 'flaky']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain('Retry 1 of 2 in 300ms');
    await waitFor(() => runs(d, 'flaky').filter((x) => x.outcome).length === 3, WAIT_MS, '3 attempts');
    const rows = runs(d, 'flaky');
    // A retry runs only from a retry planned in its parent's row (retry_at; a restart re-arms
    // those). Each planned one was taken, and the last attempt planned none: no fourth can come.
    expect(rows.map((x) => x.retry_at)).toEqual([null, null, null]);
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
    await waitFor(() => runs(d, 'caught').some((r) => r.outcome === 'ok'), WAIT_MS, 'first run');
    await d.stop();
    await sleep(5000); // at least two instants pass while down (checked below from the record of the miss)
    const before = runs(d).length;
    const d2 = await startDaemon(d.home, { state: d.state });
    daemons.push(d2);
    await waitFor(() => runs(d2, 'caught').some((r) => r.trigger === 'catch-up' && r.outcome === 'ok'), WAIT_MS, 'catch-up run');
    const catchUps = runs(d2, 'caught').filter((r) => r.trigger === 'catch-up');
    expect(catchUps).toHaveLength(1);
    // for an instant missed while down (one may also pass during a slow start: still a miss)
    expect(catchUps[0]!.scheduled_for!).toBeLessThanOrEqual(catchUps[0]!.created_at);
    expect(catchUps[0]!.scheduled_for!).toBeGreaterThan(
      Math.max(
        ...runs(d, 'caught')
          .filter((r) => r.id <= before)
          .map((r) => r.scheduled_for ?? 0),
      ),
    );
    expect(runs(d2, 'plain').filter((r) => r.id > before && r.trigger === 'catch-up')).toHaveLength(0);
    const ev = query<{ job: string; message: string; data: string }>(
      d.state,
      "SELECT job, message, data FROM events WHERE kind = 'missed-while-down' ORDER BY id",
    );
    expect(ev.find((e) => e.job === 'plain')!.message).toContain('catchUp is off');
    // one catch-up run for several missed instants
    expect((JSON.parse(ev.find((e) => e.job === 'caught')!.data) as { count: number }).count).toBeGreaterThanOrEqual(2);
    // A second restart does not catch up the same downtime again (on a loaded machine an instant
    // may pass during this restart too: catching that one up is right, but only that one). The
    // start-up claims its catch-ups before it logs "nightshift started" (startDaemon waits for it).
    await d2.stop();
    const lastIdBefore = Math.max(...runs(d2).map((r) => r.id));
    const lastClaimed = Math.max(...runs(d2, 'caught').map((r) => r.scheduled_for ?? 0));
    const missesOf = (): Array<{ id: number; first: number }> =>
      query<{ id: number; data: string }>(
        d.state,
        "SELECT id, data FROM events WHERE kind = 'missed-while-down' AND job = 'caught' ORDER BY id",
      ).map((e) => ({ id: e.id, first: (JSON.parse(e.data) as { first: number }).first }));
    const lastMissBefore = Math.max(...missesOf().map((e) => e.id));
    const d3 = await startDaemon(d.home, { state: d.state });
    daemons.push(d3);
    // Bounded by a positive event: a scheduled run of the same job, after the restart, has finished.
    await waitFor(
      () => runs(d3, 'caught').some((r) => r.id > lastIdBefore && r.trigger === 'schedule' && r.outcome === 'ok'),
      WAIT_MS,
      'a scheduled run of caught after the second restart',
    );
    const again = runs(d3, 'caught').filter((r) => r.trigger === 'catch-up' && r.id > lastIdBefore);
    const newMisses = missesOf().filter((e) => e.id > lastMissBefore);
    // Only instants after the last one handled count as missed, and each miss gets one catch-up.
    for (const e of newMisses) expect(e.first).toBeGreaterThan(lastClaimed);
    expect(again).toHaveLength(newMisses.length);
    expect(again.length).toBeLessThanOrEqual(1);
    for (const r of again) expect(r.scheduled_for!).toBeGreaterThan(lastClaimed);
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
    await waitFor(() => existsSync(pidfile) && readFileSync(pidfile, 'utf8').trim().split('\n').length === 3, WAIT_MS, 'grandchildren');
    const pids = readFileSync(pidfile, 'utf8').trim().split('\n').map(Number);
    await waitFor(() => runs(d, 'quick').some((r) => r.outcome === 'ok'), WAIT_MS, 'a finished run of quick');
    d.proc.kill('SIGKILL');
    await d.proc;
    expect(pids.every(pidAlive)).toBe(true);
    const open = runs(d).filter((r) => r.ended_at === null);
    expect(open.some((r) => r.job === 'hog')).toBe(true);
    const before = runs(d);

    const d2 = await startDaemon(d.home, { state: d.state });
    daemons.push(d2);
    await waitFor(() => pids.every((p) => !pidAlive(p)), WAIT_MS, 'orphans killed');
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
    await waitFor(
      () => existsSync(pidfile) && readFileSync(pidfile, 'utf8').trim().split('\n').length === 3,
      WAIT_MS,
      'grandchildren holding the lock',
    );
    expect(flockFree(lock)).toBe(false);
    await waitFor(() => runs(d, 'quick').some((r) => r.outcome === 'ok'), WAIT_MS, 'a finished run of quick');
    d.proc.kill('SIGKILL');
    await d.proc;
    // No daemon runs now: the sandbox died with the one that was killed.
    await waitFor(() => flockFree(lock), WAIT_MS, 'the grandchildren gone with the daemon (the lock free)');
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
    const r = await execa('node', [CLI, '--home', d.home, '--state', d.state, 'start'], { reject: false, timeout: WAIT_MS });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('another nightshift daemon already owns the state folder');
    expect(r.stderr).toContain(`pid ${d.proc.pid}`);
    // the first one is unharmed
    expect((await cli(['--home', d.home, '--state', d.state, 'pause', '--all'])).exitCode).toBe(0);
  });

  it('SIGTERM stops scheduling, SIGTERMs running jobs, records them and exits 0', async () => {
    const d = await daemon({ longjob: 'command: ["sleep", "60"]\nkillGrace: 2s\n' });
    void cli(['--home', d.home, '--state', d.state, 'run', 'longjob']);
    await waitFor(() => runs(d, 'longjob').some((r) => r.started_at), WAIT_MS, 'started');
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
    const sleeper = await waitFor(() => findPid('301'), WAIT_MS, 'env -i sleep');
    const pre = await waitFor(() => findPid('302'), WAIT_MS, 'pre-check sleep');
    expect(readFileSync(`/proc/${sleeper}/environ`, 'latin1')).toBe(''); // it really has no environment
    d.proc.kill('SIGKILL');
    await d.proc;
    expect(pidAlive(sleeper)).toBe(true);
    expect(pidAlive(pre)).toBe(true);
    const d2 = await startDaemon(d.home, { state: d.state });
    daemons.push(d2);
    await waitFor(() => !pidAlive(sleeper) && !pidAlive(pre), WAIT_MS, 'leftovers killed');
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
    await waitFor(() => existsSync(runUp), WAIT_MS, 'the env -i process holding its lock');
    await waitFor(() => existsSync(preUp), WAIT_MS, 'the pre-check holding its lock');
    expect(flockFree(runLock)).toBe(false);
    expect(flockFree(preLock)).toBe(false);
    d.proc.kill('SIGKILL');
    await d.proc;
    await waitFor(() => flockFree(runLock) && flockFree(preLock), WAIT_MS, 'both gone with the daemon (their locks free)');
    const d2 = await startDaemon(d.home, { state: d.state });
    daemons.push(d2);
    expect(runs(d2, 'noenv')[0]!.outcome).toBe('interrupted');
    expect(runs(d2, 'gated')[0]!.outcome).toBe('interrupted');
  });

  it('a spec that became invalid while the daemon was down keeps running as its last good version', async () => {
    const d = await daemon({ keeper: 'every: 1s\ncommand: ["echo", "last-good"]\n' });
    await waitFor(() => runs(d, 'keeper').some((r) => r.outcome === 'ok'), WAIT_MS, 'a run');
    await d.stop();
    writeJob(d.home, 'keeper', 'every: 1s\ncommand: ["echo", "broken"]\nconcurrency: sometimes\n');
    const d2 = await startDaemon(d.home, { state: d.state });
    daemons.push(d2);
    const kept = await d2.waitLog(
      (l) => typeof l.msg === 'string' && l.msg.includes('running its last good version'),
      WAIT_MS,
      'last good version kept',
    );
    const keptAt = Date.parse(kept.time as string);
    await waitFor(() => runs(d2, 'keeper').some((r) => r.outcome === 'ok' && r.started_at! > keptAt), WAIT_MS, 'last good version runs');
    expect(
      query<{ output_tail: string }>(d.state, "SELECT output_tail FROM runs WHERE job='keeper' ORDER BY id DESC LIMIT 1")[0]!.output_tail,
    ).toBe('last-good\n');
    const st = await cli(['--home', d.home, '--state', d.state, 'status']);
    expect(st.stdout).toContain('keeper.yaml:3: concurrency:');
  });

  it('a start-up that fails (state path too long for a socket) starts no job', async () => {
    const home = makeHome({ eager: 'every: 1s\ncatchUp: true\ncommand: ["sleep", "30"]\n' });
    homes.push(home);
    const state = join(home, 'x'.repeat(120));
    const r = await execa('node', [CLI, '--home', home, '--state', state, 'start'], { reject: false, timeout: WAIT_MS });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('longer than 107 bytes');
    expect(query<{ n: number }>(state, 'SELECT count(*) AS n FROM runs')[0]!.n).toBe(0);
  });

  it('concurrency replace: a run waiting to replace another is itself replaced before it starts', async () => {
    // killGrace 5s: the first run holds out that long, so the third request arrives while the second still waits, even on a loaded machine
    const d = await daemon({ rep: 'concurrency: replace\nkillGrace: 5s\nshell: "trap \'\' TERM; sleep 20; echo done"\n' });
    const args = ['--home', d.home, '--state', d.state, 'run', 'rep'];
    const r1 = cli(args);
    await waitFor(() => runs(d, 'rep')[0]?.started_at, WAIT_MS, 'first started');
    const r2 = cli(args);
    await waitFor(() => runs(d, 'rep').length === 2, WAIT_MS, 'second requested');
    const r3 = cli(args);
    await waitFor(() => runs(d, 'rep').length === 3, WAIT_MS, 'third requested');
    const [o1, o2] = await Promise.all([r1, r2]);
    expect(o1.stdout).toContain('killed');
    expect(o2.stdout).toContain('not started: a newer run replaced it before it started');
    await waitFor(() => runs(d, 'rep')[2]?.started_at, WAIT_MS, 'third started');
    void r3;
  });

  it('SIGTERM: a job that ignores SIGTERM is SIGKILLed after its killGrace, recorded, and the daemon exits 0', async () => {
    const d = await daemon({ stubborn: `command: ["${join(FIXTURES, 'ignore-term.sh')}"]\nkillGrace: 1s\n` });
    void cli(['--home', d.home, '--state', d.state, 'run', 'stubborn']);
    // the job says so once its trap is set
    const logPath = await waitFor(
      () => query<{ log_path: string | null }>(d.state, "SELECT log_path FROM runs WHERE job = 'stubborn'")[0]?.log_path,
      WAIT_MS,
      'started',
    );
    await waitFor(() => existsSync(logPath) && readFileSync(logPath, 'utf8').includes('ignoring SIGTERM'), WAIT_MS, 'SIGTERM ignored');
    d.proc.kill('SIGTERM');
    const res = await d.proc;
    expect(res.exitCode).toBe(0);
    const row = runs(d, 'stubborn')[0]!;
    expect(row.outcome).toBe('killed');
    expect(row.reason).toContain('SIGTERM, then SIGKILL after 1s');
    // killGrace was given in full: the run ended at least 1 s after the stop began, and before the daemon exited
    const stopping = Date.parse((await d.waitLog((l) => l.msg === 'nightshift stopping', WAIT_MS, 'nightshift stopping')).time as string);
    const stopped = Date.parse((await d.waitLog((l) => l.msg === 'nightshift stopped', WAIT_MS, 'nightshift stopped')).time as string);
    expect(row.ended_at! - stopping).toBeGreaterThanOrEqual(1000);
    expect(row.ended_at!).toBeLessThanOrEqual(stopped);
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
    // Raw garbage on the socket, with a well-formed health request behind it on the same
    // connection: the daemon drops the connection at the garbage and serves nothing sent after it.
    const reply = await new Promise<string>((resolve) => {
      const c = connect(sock, () => c.end(Buffer.from('GARBAGE\r\n\r\n\x00\xff\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n')));
      let text = '';
      c.on('data', (b) => (text += b.toString()));
      c.on('close', () => resolve(text));
      c.on('error', () => resolve(text));
    });
    expect(reply).toBe('');
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
    await waitFor(() => runs(d, 'p').some((r) => r.outcome === 'ok'), WAIT_MS, 'a run');
    const paused = await cli(['--home', d.home, '--state', d.state, 'pause', 'p']);
    expect(paused.stdout).toContain('paused: p');
    await waitFor(() => runs(d, 'p').some((r) => r.outcome === 'skipped-paused'), WAIT_MS, 'skipped-paused');
    const st = await cli(['--home', d.home, '--state', d.state, 'status']);
    expect(st.stdout).toMatch(/^p\s+PAUSED/m);
    await cli(['--home', d.home, '--state', d.state, 'resume', 'p']);
    const resumedAt = Date.parse((await d.waitLog((l) => l.msg === 'job resumed' && l.job === 'p', WAIT_MS, 'job resumed')).time as string);
    await waitFor(() => runs(d, 'p').some((r) => r.outcome === 'ok' && r.started_at! > resumedAt), WAIT_MS, 'run after resume');
    const h = await cli(['--home', d.home, '--state', d.state, 'history', 'p', '--json']);
    const rows = JSON.parse(h.stdout) as Run[];
    expect(rows.some((r) => r.outcome === 'skipped-paused' && r.reason!.includes('paused'))).toBe(true);
    const json = JSON.parse((await cli(['--home', d.home, '--state', d.state, 'status', '--json'])).stdout);
    expect(json.daemon.running).toBe(true);
    expect(json.jobs[0].name).toBe('p');
  });

  it('reading commands work with the daemon stopped', async () => {
    const d = await daemon({ r: 'every: 1s\ncommand: ["true"]\n' });
    await waitFor(() => runs(d, 'r').some((x) => x.outcome === 'ok'), WAIT_MS, 'a run');
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
      await waitFor(() => got.some((g) => g.msg.includes('READY=1')), WAIT_MS, 'READY');
      expect(got.find((g) => g.msg.includes('READY=1'))!.msg).toContain(`MAINPID=${d.proc.pid}`);
      await waitFor(() => got.filter((g) => g.msg === 'WATCHDOG=1').length >= 3, WAIT_MS, 'watchdog pings');
      // Not more often than every 500 ms (half of WATCHDOG_USEC): the daemon arms its pings after
      // it logs "nightshift started", so its k-th ping cannot arrive before k intervals after that
      // (a late ping only arrives later). That they come no later than that is a latency figure,
      // not checked here; the interval itself is WATCHDOG_USEC / 2 (tests/notify.test.ts).
      const started = Date.parse(d.lines().find((l) => l.msg === 'nightshift started')!.time as string);
      expect(got.findIndex((g) => g.msg.includes('READY=1'))).toBeLessThan(got.findIndex((g) => g.msg === 'WATCHDOG=1'));
      const pings = got.filter((g) => g.msg === 'WATCHDOG=1').map((g) => g.at);
      // (5 ms per interval: Node's timers count whole milliseconds)
      pings.forEach((at, i) => expect(at - started, `ping ${i + 1}`).toBeGreaterThanOrEqual((i + 1) * (500 - 5)));
      // The job must not see the daemon's NOTIFY_SOCKET.
      writeJob(d.home, 'envcheck', 'command: ["sh", "-c", "echo notify=${NOTIFY_SOCKET:-unset}"]\n');
      await d.waitLog((l) => l.msg === 'job added' && l.job === 'envcheck', WAIT_MS, 'job added');
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
  await waitFor(() => jobs.every((job) => after(job).length > 0), WAIT_MS, 'instants claimed after the restart');
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
    await d.waitLog((l) => l.msg?.toString().startsWith('run finished') === true, WAIT_MS, 'run finished');
    const all = d.lines();
    expect(all.every((l) => !l.raw)).toBe(true);
    expect(JSON.stringify(all)).not.toContain('s3cr3t-value-123');
    expect(all.some((l) => l.msg === 'run started' && l.job === 'secretive')).toBe(true);
  });

  it('keeps the newest 100 logs per job: after 103 runs the 3 oldest logs are gone (their runs stay in history), the rest intact; other jobs keep theirs', async () => {
    const d = await daemon({
      chatty: 'command: ["sh", "-c", "echo this is run $NIGHTSHIFT_RUN_ID"]\n',
      other: 'command: ["sh", "-c", "echo the other job"]\n',
    });
    const sock = join(d.state, 'nightshift.sock');
    const run = async (name: string): Promise<number> => {
      // The daemon answers once the run has finished and its old logs are pruned.
      const r = await callDaemon(sock, 'POST', `/run/${name}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return (r.body as { run: { id: number } }).run.id;
    };
    const otherId = await run('other');
    const ids: number[] = [];
    for (let i = 0; i < 103; i++) ids.push(await run('chatty'));
    const logDir = join(d.state, 'logs', 'chatty');
    const kept = readdirSync(logDir)
      .map((f) => Number(/^(\d+)\.log$/.exec(f)?.[1]))
      .sort((a, b) => a - b);
    // exactly the newest 100, by run id, and each one is the log of its own run
    expect(kept).toEqual(ids.slice(3));
    for (const id of kept) expect(readFileSync(join(logDir, `${id}.log`), 'utf8')).toBe(`this is run ${id}\n`);
    // the three oldest lost their log only: their rows are still in history, with no log path
    const rows = runs(d, 'chatty');
    expect(rows.map((r) => r.id)).toEqual(ids);
    expect(rows.filter((r) => r.log_path === null).map((r) => r.id)).toEqual(ids.slice(0, 3));
    expect(rows.every((r) => r.outcome === 'ok')).toBe(true);
    // another job's log is not counted against this one's
    expect(readdirSync(join(d.state, 'logs', 'other'))).toEqual([`${otherId}.log`]);
  }, 240_000);
});
