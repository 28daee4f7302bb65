// The watchdog as users meet it: a real daemon, real pings, real files, alerts in SQLite.
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { callDaemon } from '../../src/control/socket.js';
import { cli, makeHome, query, startDaemon, waitFor, writeJob, type DaemonProc, trackDaemons } from '../support/helpers.js';

interface Alert {
  id: number;
  fingerprint: string;
  job: string;
  kind: string;
  opened_at: number;
  last_seen_at: number;
  count: number;
  message: string;
  folded_under: string | null;
  resolved_at: number | null;
  resolution: string | null;
  run_id: number | null;
}
const alerts = (d: { state: string }, job?: string): Alert[] =>
  job
    ? query<Alert>(d.state, 'SELECT * FROM alerts WHERE job = ? ORDER BY id', job)
    : query<Alert>(d.state, 'SELECT * FROM alerts ORDER BY id');

// What these tests check does not depend on how fast the machine is; how long they take does
// (CLI starts, a daemon's start): a generous limit, not vitest's 30 s.
const LIMIT = 90_000;

const { daemons, dirs: homes } = trackDaemons();
async function daemon(jobs: Record<string, string>, policy?: string): Promise<DaemonProc> {
  const home = makeHome(jobs, policy);
  homes.push(home);
  const d = await startDaemon(home);
  daemons.push(d);
  return d;
}
const ns = (d: DaemonProc, ...args: string[]) => cli(['--home', d.home, '--state', d.state, ...args]);
const sockOf = (d: DaemonProc): string => join(d.state, 'nightshift.sock');

/** The first instant of an `every: N` schedule after `at` (instants are multiples of N). */
const nextInstant = (at: number, everyMs: number): number => (Math.floor(at / everyMs) + 1) * everyMs;
/**
 * The instant a missed alert was first raised for. Its message names the instant of its latest
 * occurrence ("no success by <instant> + grace"), and the occurrences counted on it are the
 * job's consecutive instants; so this holds whenever the alert is read, however late.
 */
function firstMissed(a: Alert, everyMs: number): number {
  // "2026-12-05 15:04:06 UTC" or "… +01:00": the job's zone, to the second.
  const m = /no success by (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) (UTC|[+-]\d\d:\d\d) \+ grace/.exec(a.message);
  expect(m, a.message).not.toBeNull();
  return Date.parse(`${m![1]}T${m![2]}${m![3] === 'UTC' ? 'Z' : m![3]}`) - (a.count - 1) * everyMs;
}
/** The time of a daemon log line (pino's isoTime, as the daemon recorded it). */
const logTime = (l: Record<string, unknown>): number => Date.parse(l.time as string);
const killFlips = (d: DaemonProc) =>
  query<{ at: number; message: string; data: string }>(
    d.state,
    "SELECT at, message, data FROM events WHERE kind='kill-switch' ORDER BY id",
  );

describe('alerts from runs', { timeout: LIMIT }, () => {
  it('a run that failed just before a kill -9 (row committed, alert not yet) gets its alert at the next start', async () => {
    const d = await daemon({ sync: 'command: ["sh", "-c", "exit 3"]\n', fine: 'command: ["true"]\n' });
    await ns(d, 'run', 'sync');
    await ns(d, 'run', 'fine');
    await waitFor(() => alerts(d, 'sync').length === 1, 10_000, 'alert');
    d.proc.kill('SIGKILL');
    await d.proc;
    // the state such a kill leaves: the failed run on record, its alert never written
    const db = new Database(join(d.state, 'nightshift.db'));
    db.prepare('DELETE FROM alerts').run();
    db.close();
    const d2 = await startDaemon(d.home, { state: d.state });
    daemons.push(d2);
    const [a] = alerts(d2, 'sync');
    expect(a).toMatchObject({ fingerprint: 'sync:failed', kind: 'failed', resolved_at: null });
    expect(alerts(d2, 'fine')).toHaveLength(0);
    // and only once: another restart does not raise it again
    await d2.stop();
    const d3 = await startDaemon(d.home, { state: d.state });
    daemons.push(d3);
    expect(alerts(d3)).toHaveLength(1);
    expect(alerts(d3)[0]!.count).toBe(1);
  });

  it('failed after retries, wrong on a broken expectation, hung at the timeout; one open alert per fingerprint, occurrences counted', async () => {
    const d = await daemon({
      breaks: 'command: ["sh", "-c", "echo disk full; exit 4"]\nretries: { count: 1, delay: 200ms }\n',
      lies: 'command: ["echo", "exported 0 orders"]\nexpect: { outputMatches: "exported [1-9]" }\n',
      // ignores SIGTERM: it ends only when its kill grace is over and SIGKILL comes
      stuck: `command: ["sh", "-c", "trap '' TERM; sleep 30"]\ntimeout: 1s\nkillGrace: 3s\n`,
    });
    await ns(d, 'run', 'breaks');
    await waitFor(() => alerts(d, 'breaks').length === 1, 10_000, 'failed alert after the retry');
    const failed = alerts(d, 'breaks')[0]!;
    expect(failed).toMatchObject({ fingerprint: 'breaks:failed', kind: 'failed', count: 1, resolved_at: null });
    expect(failed.message).toContain('exited with code 4');
    // No alert while a retry is pending: the one alert counts one occurrence, raised for the
    // retry (attempt 2) once it had failed, not at the first attempt's failure (recorded times).
    const attempts = query<{ id: number; attempt: number; ended_at: number; parent_id: number | null; reason: string }>(
      d.state,
      "SELECT id, attempt, ended_at, parent_id, reason FROM runs WHERE job='breaks' ORDER BY id",
    );
    expect(attempts.map((r) => r.attempt)).toEqual([1, 2]);
    expect(attempts[0]!.reason).toContain('Retry 1 of 1');
    expect(attempts[1]!.parent_id).toBe(attempts[0]!.id);
    expect(failed.run_id).toBe(attempts[1]!.id);
    expect(failed.opened_at).toBeGreaterThanOrEqual(attempts[1]!.ended_at);
    await ns(d, 'run', 'breaks');
    await waitFor(() => alerts(d, 'breaks')[0]!.count === 2, 10_000, 'second occurrence');
    expect(alerts(d, 'breaks')).toHaveLength(1);

    await ns(d, 'run', 'lies');
    expect(alerts(d, 'lies')[0]).toMatchObject({ kind: 'wrong' });
    expect(alerts(d, 'lies')[0]!.message).toContain('did not match');

    const run = ns(d, 'run', 'stuck');
    await waitFor(() => alerts(d, 'stuck').length === 1, 10_000, 'hung alert');
    const hung = alerts(d, 'stuck')[0]!;
    expect(hung.kind).toBe('hung');
    expect(hung.message).toContain('passed its timeout of 1s; nightshift is stopping it');
    expect((await run).stdout).toContain('timeout');
    expect(alerts(d, 'stuck')).toHaveLength(1);
    expect(alerts(d, 'stuck')[0]!.count).toBe(1);
    // Raised at the timeout, while the kill grace was still running: not before the run had passed
    // its 1 s, and before the run was over. The run ignored SIGTERM, so it lasted the whole 3 s
    // grace after its timeout. (Times as the daemon recorded them; Node's timers may fire a
    // millisecond early by the wall clock. How soon after the timeout: bench/detection.mjs, hung.)
    const stuck = query<{ id: number; outcome: string; started_at: number; ended_at: number }>(
      d.state,
      "SELECT id, outcome, started_at, ended_at FROM runs WHERE job='stuck'",
    );
    expect(stuck).toHaveLength(1);
    expect(stuck[0]!.outcome).toBe('timeout');
    expect(hung.run_id).toBe(stuck[0]!.id);
    expect(stuck[0]!.ended_at - stuck[0]!.started_at).toBeGreaterThanOrEqual(1000 + 3000 - 2);
    expect(hung.opened_at).toBeGreaterThanOrEqual(stuck[0]!.started_at + 1000 - 2);
    expect(hung.opened_at).toBeLessThan(stuck[0]!.ended_at);

    const out = await ns(d, 'alerts');
    expect(out.exitCode).toBe(1);
    expect(out.stdout).toMatch(/breaks\s+failed\s+2/);
    const json = JSON.parse((await ns(d, 'alerts', '--json')).stdout) as Alert[];
    expect(json.map((a) => a.fingerprint).sort()).toEqual(['breaks:failed', 'lies:wrong', 'stuck:hung']);
  });

  it('a verified success resolves the open alerts of the job as self-recovered', async () => {
    const d = await daemon({ flaky: 'command: ["sh", "-c", "test -f ok-now"]\ncwd: "."\n' });
    await ns(d, 'run', 'flaky');
    expect(alerts(d, 'flaky')[0]!.resolved_at).toBeNull();
    writeFileSync(join(d.home, 'ok-now'), '');
    await ns(d, 'run', 'flaky');
    const a = alerts(d, 'flaky')[0]!;
    expect(a.resolution).toBe('self-recovered');
    expect(a.resolved_at).not.toBeNull();
    expect((await ns(d, 'alerts')).exitCode).toBe(0);
    expect((await ns(d, 'alerts', '--all')).stdout).toContain('self-recovered');
  });

  it('dependsOn: while the dependency has an open alert, the dependent alert is folded under it', async () => {
    const d = await daemon({
      'db-backup': 'command: ["false"]\n',
      export: 'command: ["false"]\ndependsOn: [db-backup]\n',
      report: 'command: ["false"]\ndependsOn: [export]\n',
    });
    await ns(d, 'run', 'db-backup');
    await ns(d, 'run', 'export');
    await ns(d, 'run', 'report');
    expect(alerts(d, 'db-backup')[0]!.folded_under).toBeNull();
    expect(alerts(d, 'export')[0]!.folded_under).toBe('db-backup:failed');
    expect(alerts(d, 'report')[0]!.folded_under).toBe('db-backup:failed');
    const st = await ns(d, 'status');
    expect(st.stdout).toMatch(/^export\s.*failed since .* \(blocked by db-backup\)/m);
    expect(st.stdout.split('\n')[0]).toContain('1 job(s) failing: db-backup');
  });
});

describe('missed deadlines and heartbeats', { timeout: LIMIT }, () => {
  it('an external every-2s job that stops pinging is alerted at its deadline, for the instant it missed; a ping resolves it', async () => {
    const d = await daemon({ pinger: 'every: 2s\nheartbeat: { grace: 1500ms }\n' });
    const deadlineAfter = (at: number): number => nextInstant(at, 2000) + 1500;
    const pingTimes = (): number[] =>
      query<{ at: number }>(d.state, "SELECT at FROM heartbeats WHERE job='pinger' ORDER BY id").map((h) => h.at);
    // ping over the socket every 200 ms until the pings the daemon recorded span two instants
    // and their deadlines
    for (;;) {
      expect((await callDaemon(sockOf(d), 'POST', '/ping/pinger')).status).toBe(200);
      const at = pingTimes();
      if (at[at.length - 1]! - at[0]! >= 4000) break;
      await sleep(200);
    }
    const pings = pingTimes();
    const lastPing = pings[pings.length - 1]!;
    const a = await waitFor(() => alerts(d, 'pinger').find((x) => x.opened_at > lastPing), 15_000, 'missed alert after the last ping');
    // No alert while the pings came in time: one raised while pinging is only right if a deadline
    // really passed before the next ping came (a machine that held a ping back for over a second).
    for (const x of alerts(d, 'pinger').filter((x) => x.id !== a.id)) {
      const before = pings.filter((p) => p < x.opened_at);
      if (before.length > 0)
        expect(x.opened_at, 'an alert raised while the pings came in time').toBeGreaterThanOrEqual(
          deadlineAfter(before[before.length - 1]!),
        );
    }
    expect(a.kind).toBe('missed');
    // Raised at the deadline after the last ping (not before it), for the first instant that
    // passed without one. (How soon after the deadline: bench/detection.mjs, missed.)
    expect(a.opened_at).toBeGreaterThanOrEqual(deadlineAfter(lastPing));
    expect(firstMissed(a, 2000)).toBe(nextInstant(lastPing, 2000));
    await ns(d, 'ping', 'pinger');
    await waitFor(() => alerts(d, 'pinger').find((x) => x.id === a.id)!.resolution === 'self-recovered', 10_000, 'resolved by ping');
  });

  it('ping --start then a success records the duration; --start with no end within the timeout is hung; --fail is failed', async () => {
    const d = await daemon({ ext: 'timeout: 1s\n' });
    expect((await ns(d, 'ping', 'ext', '--start')).exitCode).toBe(0);
    await sleep(300);
    const done = await ns(d, 'ping', 'ext');
    expect(done.stdout).toMatch(/ran \d+ ms since its start ping/);
    const hb = query<{ kind: string; at: number; duration_ms: number | null }>(
      d.state,
      "SELECT kind, at, duration_ms FROM heartbeats WHERE job='ext' ORDER BY id",
    );
    expect(hb.map((h) => h.kind)).toEqual(['start', 'success']);
    // the time between the two pings as the daemon recorded them, at least the 300 ms slept between them
    expect(hb[1]!.duration_ms).toBe(hb[1]!.at - hb[0]!.at);
    expect(hb[1]!.duration_ms).toBeGreaterThanOrEqual(300);

    await ns(d, 'ping', 'ext', '--start');
    await waitFor(() => alerts(d, 'ext').some((a) => a.kind === 'hung'), 10_000, 'hung');
    expect(alerts(d, 'ext').find((a) => a.kind === 'hung')!.message).toContain('reported no end within its timeout of 1s');
    await ns(d, 'ping', 'ext', '--fail');
    expect(alerts(d, 'ext').map((a) => a.kind)).toContain('failed');
    // curl on the control socket does the same
    const sock = join(d.state, 'nightshift.sock');
    const { execa } = await import('execa');
    const r = await execa('curl', ['-s', '--unix-socket', sock, 'http://x/ping/ext']);
    expect(JSON.parse(r.stdout)).toMatchObject({ job: 'ext', kind: 'success' });
    await waitFor(() => alerts(d, 'ext').every((a) => a.resolved_at !== null), 10_000, 'all resolved');
  });

  it('ping for an unknown job: clear error, exit 2, nothing recorded; a managed job is refused too', async () => {
    const d = await daemon({ managed: 'command: ["true"]\n' });
    const r = await ns(d, 'ping', 'ghost');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('no job named "ghost"');
    const m = await ns(d, 'ping', 'managed');
    expect(m.exitCode).toBe(2);
    expect(m.stderr).toContain('its successful runs are its heartbeats');
    expect(query(d.state, 'SELECT * FROM heartbeats')).toHaveLength(0);
  });

  it('touching heartbeat.file is a success ping', async () => {
    const home = makeHome({ filebeat: 'every: 1h\nheartbeat: { file: "beats/filebeat.ok", grace: 1m }\n' });
    homes.push(home);
    mkdirSync(join(home, 'beats'));
    const d = await startDaemon(home);
    daemons.push(d);
    writeFileSync(join(home, 'beats', 'filebeat.ok'), 'x');
    const beats = () => query<{ at: number }>(d.state, "SELECT at FROM heartbeats WHERE job='filebeat' AND source='file'");
    const first = (await waitFor(() => beats().at(0), 10_000, 'file heartbeat')).at;
    const now = new Date();
    utimesSync(join(home, 'beats', 'filebeat.ok'), now, now);
    // A streak of touches is one row whose time moves on (a worker may touch every 200 ms).
    await waitFor(() => beats().length === 1 && beats()[0]!.at > first, 10_000, 'the second touch on record');
  });

  it('after a restart: open alerts are kept, and the time the daemon was down raises no burst of missed alerts', async () => {
    const d = await daemon({
      ext1: 'every: 1s\nheartbeat: { grace: 2s }\n',
      ext2: 'every: 1s\nheartbeat: { grace: 2s }\n',
      broken: 'command: ["false"]\n',
    });
    await ns(d, 'run', 'broken');
    await waitFor(() => alerts(d, 'ext1').length === 1 && alerts(d, 'ext2').length === 1, 10_000, 'missed alerts');
    // ping both over the socket and stop at once: no deadline (2 s of grace) passes in between
    await callDaemon(sockOf(d), 'POST', '/ping/ext1');
    await callDaemon(sockOf(d), 'POST', '/ping/ext2');
    await d.stop();
    // (read once the daemon is gone: what it left)
    expect(alerts(d).filter((a) => a.kind === 'missed' && a.resolved_at === null)).toHaveLength(0);
    const before = alerts(d);
    await sleep(4000); // downtime: several instants and deadlines pass while nightshift is down
    // Every instant of the downtime is before this moment, and the new daemon's clock starts after it.
    const restartedAfter = Date.now();
    const d2 = await startDaemon(d.home, { state: d.state });
    daemons.push(d2);
    // The watchdog works after the restart: nobody pings, so both jobs are alerted again ...
    const fresh = (): Alert[] => alerts(d2).filter((a) => a.id > before[before.length - 1]!.id);
    await waitFor(() => fresh().length === 2, 15_000, 'missed again');
    expect(
      fresh()
        .map((a) => a.fingerprint)
        .sort(),
    ).toEqual(['ext1:missed', 'ext2:missed']);
    // ... for instants after the restart only: no alert (and no occurrence counted) for the
    // downtime, each job's clock started afresh. (From the records, whenever they are read.)
    for (const a of fresh()) expect(firstMissed(a, 1000), `${a.fingerprint}: first instant alerted`).toBeGreaterThan(restartedAfter);
    // the alerts from before the restart are as they were: the open failed alert survived it
    expect(alerts(d2).filter((a) => a.id <= before[before.length - 1]!.id)).toEqual(before);
    expect(alerts(d2, 'broken')[0]!.resolved_at).toBeNull();
    expect((await cli(['--home', d.home, '--state', d.state, 'alerts'])).stdout).toContain('broken');
  });

  it('a managed job with no success is missed after its default grace (timeout + killGrace per attempt, retry delays, + 1m), not before', async () => {
    // Every run is replaced by the next instant's before it can end: the job never succeeds and
    // never fails (a replaced run is nobody's fault), so missed is the only alert it can get.
    // Default grace: (5s + 1s) for the run, 1s of delay, (5s + 1s) for the retry, + 1m = 1m13s.
    const before = Date.now();
    const d = await daemon({
      spin: 'every: 1s\nconcurrency: replace\ntimeout: 5s\nkillGrace: 1s\nretries: { count: 1, delay: 1s }\ncommand: ["sleep", "30"]\n',
    });
    const grace = 6_000 + 1_000 + 6_000 + 60_000;
    const a = await waitFor(() => alerts(d, 'spin')[0], 150_000, 'the missed alert');
    expect(a.kind).toBe('missed');
    expect(a.message).toContain('+ grace 1m13s');
    // For the job's first instant after the daemon started (its first run was for that instant or,
    // when the scheduler came up a moment after the watchdog, the next one) ...
    const instant = firstMissed(a, 1000);
    const first = query<{ at: number }>(d.state, "SELECT min(scheduled_for) AS at FROM runs WHERE job = 'spin'")[0]!.at;
    expect(instant).toBeGreaterThan(before);
    expect(instant).toBeLessThanOrEqual(first);
    // ... and raised by the daemon only once that instant + the grace had passed (its own record)
    expect(a.opened_at).toBeGreaterThanOrEqual(instant + grace);
    // all that time the job was run at its instants, each run replaced by the next, none alerting
    const outcomes = query<{ outcome: string; n: number }>(
      d.state,
      "SELECT outcome, count(*) AS n FROM runs WHERE job = 'spin' AND ended_at IS NOT NULL AND scheduled_for < ? GROUP BY outcome",
      instant + grace,
    );
    expect(outcomes.map((o) => o.outcome)).toEqual(['killed']);
    expect(outcomes[0]!.n).toBeGreaterThan(grace / 1000 / 2);
  }, 200_000);

  it('a pre-check that says IDLE counts as life: a job that is only ever idle raises no missed alert, where the same schedule and grace with no life does', async () => {
    const d = await daemon({
      // never does its work (the command would fail with 9): each instant its pre-check says IDLE
      idle: 'every: 1s\nheartbeat: { grace: 3s }\nprecheck: ["sh", "-c", "echo IDLE"]\ncommand: ["sh", "-c", "exit 9"]\n',
      // the control: same schedule and grace, its pre-check finds work, and its one run never ends
      // (within its timeout): no success, no other alert, so the watchdog raises missed
      stuck: 'every: 1s\nheartbeat: { grace: 3s }\ntimeout: 1h\nprecheck: ["sh", "-c", "echo WORK"]\ncommand: ["sleep", "600"]\n',
    });
    // Three occurrences of the control's alert: three of its deadlines have passed, and the idle
    // job's deadlines are the same instants + the same grace, armed from the same start.
    const control = await waitFor(() => alerts(d, 'stuck').find((a) => a.count >= 3), 60_000, "the control's third missed");
    expect(control.kind).toBe('missed');
    const idleRuns = query<{ outcome: string; reason: string; scheduled_for: number }>(
      d.state,
      "SELECT outcome, reason, scheduled_for FROM runs WHERE job = 'idle' AND ended_at IS NOT NULL ORDER BY id",
    );
    // the idle job's instants up to then were each run to the pre-check and skipped, never worked
    expect(idleRuns.length).toBeGreaterThanOrEqual(3);
    expect(new Set(idleRuns.map((r) => r.outcome))).toEqual(new Set(['skipped-precheck']));
    expect(idleRuns[0]!.reason).toMatch(/IDLE/);
    expect(alerts(d, 'idle')).toEqual([]);
  });

  it('resume of a paused job starts its clock afresh (no missed alert for the pause)', async () => {
    // tick: a managed job whose runs show how far the daemon's own clock has got
    const d = await daemon({ beat: 'every: 1s\nheartbeat: { grace: 2s }\n', tick: 'every: 1s\ncommand: ["true"]\n' });
    /** Resolves once the daemon has dispatched an instant at or after `at`: its timers due earlier have fired. */
    const daemonPassed = (at: number, what: string) =>
      waitFor(() => query(d.state, "SELECT id FROM runs WHERE job='tick' AND scheduled_for >= ?", at).length > 0, 15_000, what);
    const sock = sockOf(d);
    // ping, then pause at once over the socket (no deadline passes in between: 2 s of grace)
    await callDaemon(sock, 'POST', '/ping/beat');
    await callDaemon(sock, 'POST', '/pause/beat');
    const ping = query<{ at: number }>(d.state, "SELECT at FROM heartbeats WHERE job='beat'")[0]!.at;
    const pausedAt = query<{ at: number }>(d.state, "SELECT at FROM events WHERE kind='paused' AND job='beat'")[0]!.at;
    const deadline = nextInstant(ping, 1000) + 2000;
    expect(pausedAt, 'paused before the deadline of the ping').toBeLessThan(deadline);
    // a running clock would have alerted at that deadline: wait until the daemon is a second past it
    await daemonPassed(deadline + 1000, 'the daemon to pass the deadline of the ping');
    // None for the pause. (On a slow machine the first instant's deadline can pass between the
    // daemon's start and the ping: that alert was raised, and last seen, before the ping.)
    for (const a of alerts(d, 'beat')) expect(a.last_seen_at, a.message).toBeLessThanOrEqual(ping);
    await ns(d, 'resume', 'beat');
    await ns(d, 'ping', 'beat');
    const resumedAt = query<{ at: number }>(d.state, "SELECT at FROM events WHERE kind='resumed' AND job='beat'")[0]!.at;
    // A clock that did not start afresh would have alerted at once for the instants of the pause;
    // wait until the daemon is a second past the resume.
    await daemonPassed(resumedAt + 1000, 'the daemon to pass the resume');
    // Nothing for the pause: an alert, if any, is for an instant after the resume (only when the
    // machine held the ping after the resume back for its whole grace).
    for (const a of alerts(d, 'beat')) {
      expect(a.kind).toBe('missed');
      expect(firstMissed(a, 1000)).toBeGreaterThan(resumedAt);
    }
  });
});

describe('kill switch', { timeout: LIMIT }, () => {
  it('halts agent jobs (skipped-halted), stops a running one, is shown in status, and records each flip', async () => {
    const d = await daemon({
      agent: 'every: 1s\nagent: true\ncommand: ["sleep", "30"]\nconcurrency: allow\nkillGrace: 1s\n',
      plain: 'every: 1s\ncommand: ["true"]\n',
    });
    await waitFor(
      () => query<{ started_at: number }>(d.state, "SELECT started_at FROM runs WHERE job='agent' AND started_at IS NOT NULL").length > 0,
      10_000,
      'agent running',
    );
    const on = await ns(d, 'kill', 'on');
    expect(on.stdout).toContain('kill switch ON');
    expect(existsSync(join(d.state, 'KILL'))).toBe(true);
    await waitFor(
      () =>
        query<{ outcome: string; reason: string }>(d.state, "SELECT outcome, reason FROM runs WHERE job='agent' AND outcome = 'killed'")
          .length > 0,
      10_000,
      'running agent stopped',
    );
    const killed = query<{ reason: string }>(d.state, "SELECT reason FROM runs WHERE job='agent' AND outcome = 'killed'")[0]!;
    expect(killed.reason).toContain('the kill switch is on');
    await waitFor(
      () => query(d.state, "SELECT * FROM runs WHERE job='agent' AND outcome = 'skipped-halted'").length > 0,
      10_000,
      'skipped-halted',
    );
    // ordinary jobs go on: a plain run succeeds after the daemon recorded the switch turned on
    const onAt = (await waitFor(() => killFlips(d)[0], 10_000, 'the flip journaled')).at;
    await waitFor(
      () => query(d.state, "SELECT id FROM runs WHERE job='plain' AND outcome='ok' AND created_at > ?", onAt).length > 0,
      10_000,
      'a plain run while the switch is on',
    );
    const st = await ns(d, 'status');
    // One line that says it once: on since when, which file, what it stops, how to turn it off.
    const line = st.stdout.split('\n').find((l) => l.startsWith('Kill switch:'))!;
    expect(line).toMatch(/^Kill switch: ON since \d{4}-\d\d-\d\d \d\d:\d\d (UTC|[+-]\d\d:\d\d) \(/);
    expect(line).toContain(` (${join(d.state, 'KILL')} exists) — `);
    expect(line.match(/kill switch/gi)).toHaveLength(1);
    expect(line).toContain('nightshift kill off');
    expect(on.stdout.match(/kill switch/gi)).toHaveLength(1);
    expect((await ns(d, 'kill', 'status')).exitCode).toBe(1);
    // plain rm works as well as "kill off"
    rmSync(join(d.state, 'KILL'));
    await waitFor(() => query(d.state, "SELECT * FROM events WHERE kind='kill-switch'").length === 2, 10_000, 'two flips');
    const flips = query<{ message: string }>(d.state, "SELECT message FROM events WHERE kind='kill-switch' ORDER BY id");
    expect(flips[0]!.message).toBe(`kill switch turned on (${join(d.state, 'KILL')} exists)`);
    expect(flips[1]!.message).toBe('kill switch turned off');
    expect((await ns(d, 'kill', 'status')).exitCode).toBe(0);
  });

  it('is checked synchronously before each agent run, even when no watcher event arrives', async () => {
    // The switch's folder is a symlink (a deploy's `current`): re-pointing it at a folder that
    // already holds the switch turns it on with no change inside the watched folder, so the
    // watcher sees nothing; only the check right before each run can find it.
    const home = makeHome({ agent: 'every: 1s\nagent: true\ncommand: ["true"]\n' }, 'killSwitch: current/halt-here\n');
    homes.push(home);
    mkdirSync(join(home, 'releases', 'a'), { recursive: true });
    mkdirSync(join(home, 'releases', 'b'));
    writeFileSync(join(home, 'releases', 'b', 'halt-here'), '');
    symlinkSync('releases/a', join(home, 'current'));
    const d = await startDaemon(home);
    daemons.push(d);
    const agentRuns = () =>
      query<{ id: number; outcome: string | null }>(d.state, "SELECT id, outcome FROM runs WHERE job='agent' ORDER BY id");
    // off: the agent runs
    await waitFor(() => agentRuns().some((r) => r.outcome === 'ok'), 10_000, 'an agent run while the switch is off');
    symlinkSync('releases/b', join(home, 'current.new'));
    renameSync(join(home, 'current.new'), join(home, 'current'));
    // every run recorded from now on was decided after the switch came on
    const lastBefore = Math.max(...agentRuns().map((r) => r.id));
    await waitFor(
      () => agentRuns().filter((r) => r.id > lastBefore && r.outcome !== null).length >= 2,
      10_000,
      'two instants after the flip',
    );
    expect(
      new Set(
        agentRuns()
          .filter((r) => r.id > lastBefore && r.outcome !== null)
          .map((r) => r.outcome),
      ),
    ).toEqual(new Set(['skipped-halted']));
    // the premise: no watcher event arrived (it would have journaled the flip)
    expect(killFlips(d)).toEqual([]);
    expect((await ns(d, 'kill', 'status')).exitCode).toBe(1);
  });

  it('a malformed policy on reload keeps the previous policy but fails closed for the kill switch', async () => {
    // daily has no time zone of its own: it follows the policy's, and the daemon's next run of it
    // (GET /status) shows which policy is in force: 03:00 UTC, or 03:00 in Tokyo (18:00 UTC).
    const d = await daemon(
      {
        agent: 'every: 1s\nagent: true\ncommand: ["true"]\n',
        plain: 'every: 1s\ncommand: ["true"]\n',
        daily: 'schedule: "0 3 * * *"\ncommand: ["true"]\n',
      },
      'timezone: UTC\n',
    );
    const utcHourOfNextDaily = async (): Promise<number> => {
      const r = await callDaemon(sockOf(d), 'GET', '/status');
      const next = (r.body as { jobs: Array<{ name: string; nextRun: number | null }> }).jobs.find((j) => j.name === 'daily')!.nextRun;
      expect(next).not.toBeNull();
      return (next! % 86_400_000) / 3_600_000;
    };
    /** Resolves with the next log line matching pred, after those already logged. */
    const nextLog = (pred: (l: Record<string, unknown>) => boolean, what: string) => {
      const seen = d.lines().filter(pred).length;
      return () => waitFor(() => d.lines().filter(pred)[seen], 10_000, what);
    };
    const reloaded = (l: Record<string, unknown>) => l.msg === 'policy reloaded';
    await waitFor(() => query(d.state, "SELECT * FROM runs WHERE job='agent' AND outcome='ok'").length > 0, 10_000, 'agent ok');
    expect(await utcHourOfNextDaily()).toBe(3);
    // the previous policy is a changed one, not the one the daemon started with
    const tokyo = nextLog(reloaded, 'policy reloaded (Asia/Tokyo)');
    writeFileSync(join(d.home, 'protected', 'policy.yaml'), 'timezone: Asia/Tokyo\n');
    await tokyo();
    expect(await utcHourOfNextDaily()).toBe(18);
    writeFileSync(join(d.home, 'protected', 'policy.yaml'), 'timezone: [broken\n');
    // logged once the daemon runs on the previous policy and fails closed: runs it records later were decided after that
    const mark = logTime(await d.waitLog((l) => typeof l.msg === 'string' && l.msg.startsWith('invalid policy'), 10_000));
    // the previous policy (Tokyo), neither the first one nor the defaults, is still in force
    expect(await utcHourOfNextDaily()).toBe(18);
    await waitFor(
      () =>
        query<{ created_at: number }>(d.state, "SELECT created_at FROM runs WHERE job='agent' AND outcome='skipped-halted'").some(
          (r) => r.created_at > mark,
        ),
      10_000,
      'halted',
    );
    expect(
      query<{ outcome: string }>(
        d.state,
        "SELECT outcome FROM runs WHERE job='agent' AND created_at > ? AND outcome IS NOT NULL",
        mark,
      ).every((r) => r.outcome === 'skipped-halted'),
    ).toBe(true);
    const ks = await ns(d, 'kill', 'status');
    expect(ks.exitCode).toBe(1);
    expect(ks.stderr).toContain('policy.yaml is invalid: the last good policy keeps scheduling');
    const st = await ns(d, 'status');
    expect(st.stdout).toContain('policy.yaml:1');
    // non-agent jobs keep working (fail open to work)
    await waitFor(
      () =>
        query<{ created_at: number }>(d.state, "SELECT created_at FROM runs WHERE job='plain' AND outcome='ok'").some(
          (r) => r.created_at > mark,
        ),
      10_000,
      'plain runs on',
    );
    const fixed = nextLog(reloaded, 'policy reloaded (fixed)');
    writeFileSync(join(d.home, 'protected', 'policy.yaml'), 'timezone: UTC\n');
    const mark2 = logTime(await fixed());
    expect(await utcHourOfNextDaily()).toBe(3);
    await waitFor(
      () =>
        query<{ created_at: number }>(d.state, "SELECT created_at FROM runs WHERE job='agent' AND outcome='ok'").some(
          (r) => r.created_at > mark2,
        ),
      10_000,
      'agent runs again',
    );
  });
});

describe('review cases', { timeout: LIMIT }, () => {
  it('the kill switch turned on during an agent pre-check stops the run before it starts', async () => {
    // a scheduled agent run whose pre-check says WORK only once the test lets it (the file
    // "release", written after the switch is on; it gives up after about 30 s)
    const home = makeHome();
    homes.push(home);
    const release = join(home, 'release');
    writeJob(
      home,
      'gated',
      `every: 2s\nagent: true\nprecheck: ["sh", "-c", "i=0; while [ ! -e '${release}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; echo WORK"]\ncommand: ["sleep", "30"]\n`,
    );
    const d = await startDaemon(home);
    daemons.push(d);
    await waitFor(
      () =>
        query<{ pgid: number | null }>(d.state, "SELECT pgid FROM runs WHERE job='gated' AND pgid IS NOT NULL AND ended_at IS NULL")
          .length > 0,
      10_000,
      'pre-check running',
    );
    await ns(d, 'kill', 'on');
    writeFileSync(release, '');
    // The first run itself: on a slow machine the next instant (2 s later) may end first, as an overlap.
    const first = await waitFor(
      () =>
        query<{ outcome: string | null; started_at: number | null; log_path: string | null }>(
          d.state,
          "SELECT outcome, started_at, log_path FROM runs WHERE job='gated' ORDER BY id LIMIT 1",
        ).find((r) => r.outcome !== null),
      10_000,
      'first gated run ended',
    );
    expect(first.outcome).toBe('skipped-halted');
    expect(first.log_path).toBeNull();
  });

  it('a kill switch in a folder that does not exist yet is still watched; a deleted policy fails closed', async () => {
    const d = await daemon(
      { agent: 'every: 1s\nagent: true\nconcurrency: allow\nkillGrace: 1s\ncommand: ["sleep", "30"]\n' },
      'killSwitch: run/KILL\n',
    );
    await waitFor(
      () => query(d.state, "SELECT * FROM runs WHERE job='agent' AND started_at IS NOT NULL AND ended_at IS NULL").length > 0,
      10_000,
      'agent running',
    );
    await ns(d, 'kill', 'on'); // creates run/ and run/KILL
    await waitFor(
      () => query(d.state, "SELECT * FROM runs WHERE job='agent' AND outcome='killed'").length > 0,
      10_000,
      'running agent stopped',
    );
    await ns(d, 'kill', 'off');
    await waitFor(
      () =>
        query<{ created_at: number }>(
          d.state,
          "SELECT created_at FROM runs WHERE job='agent' AND started_at IS NOT NULL AND ended_at IS NULL",
        ).length > 0,
      10_000,
      'agent again',
    );
    rmSync(join(d.home, 'protected', 'policy.yaml'));
    // logged once the daemon fails closed: runs it records later were decided after that
    const mark = logTime(await d.waitLog((l) => typeof l.msg === 'string' && l.msg.includes('the policy file was deleted'), 10_000));
    await waitFor(
      () =>
        query<{ created_at: number }>(d.state, "SELECT created_at FROM runs WHERE job='agent' AND outcome='skipped-halted'").some(
          (r) => r.created_at > mark,
        ),
      10_000,
      'halted after policy deletion',
    );
  });

  it('when a dependency recovers, alerts folded under it stand on their own again', async () => {
    const d = await daemon({
      base: 'command: ["sh", "-c", "test -f base-ok"]\ncwd: "."\n',
      child: 'command: ["false"]\ndependsOn: [base]\n',
    });
    await ns(d, 'run', 'base');
    await ns(d, 'run', 'child');
    expect(alerts(d, 'child')[0]!.folded_under).toBe('base:failed');
    writeFileSync(join(d.home, 'base-ok'), '');
    await ns(d, 'run', 'base');
    await waitFor(() => alerts(d, 'child')[0]!.folded_under === null, 10_000, 'unfolded');
    const st = await ns(d, 'status');
    expect(st.stdout.split('\n')[0]).toContain('1 job(s) failing: child');
    const dg = await ns(d, 'digest');
    expect(dg.stdout.split('\n')[0]).toContain('1 job needs you');
  });

  it('removing a job resolves its open alerts (job-removed)', async () => {
    const d = await daemon({ gone: 'command: ["false"]\n' });
    await ns(d, 'run', 'gone');
    rmSync(join(d.home, 'jobs', 'gone.yaml'));
    await waitFor(() => alerts(d, 'gone')[0]!.resolution === 'job-removed', 10_000, 'resolved on removal');
  });

  it('a restart inside a grace window keeps that deadline', async () => {
    const d = await daemon({ late: 'every: 2s\nheartbeat: { grace: 8s }\n' });
    await ns(d, 'ping', 'late');
    const ping = query<{ at: number }>(d.state, "SELECT at FROM heartbeats WHERE job='late'")[0]!.at;
    const expected = nextInstant(ping, 2000);
    // restart after the expected instant (it comes while this daemon is up) but before its
    // deadline, expected + 8 s of grace
    await sleep(Math.max(0, expected + 100 - Date.now()));
    await d.stop();
    const d2 = await startDaemon(d.home, { state: d.state });
    daemons.push(d2);
    // the premise, as both daemons recorded it: stopped after the instant, up again before its deadline
    const lifecycle = query<{ kind: string; at: number }>(
      d.state,
      "SELECT kind, at FROM events WHERE kind IN ('daemon-stop', 'daemon-start') ORDER BY id",
    );
    expect(lifecycle.map((e) => e.kind)).toEqual(['daemon-start', 'daemon-stop', 'daemon-start']);
    expect(lifecycle[1]!.at).toBeGreaterThanOrEqual(expected);
    expect(lifecycle[2]!.at, 'the restart must land inside the grace window').toBeLessThan(expected + 8000);
    const a = await waitFor(() => alerts(d2, 'late')[0], 20_000, 'missed alert after restart');
    // The deadline was kept: the alert is for the instant that came before the restart (not the
    // next one, which a fresh clock would have waited for), and not raised before its grace was over.
    expect(a.kind).toBe('missed');
    expect(firstMissed(a, 2000)).toBe(expected);
    expect(a.opened_at).toBeGreaterThanOrEqual(expected + 8000);
  });

  it('a kill switch flipped while the daemon is down is journaled', async () => {
    const d = await daemon({});
    await d.stop();
    await cli(['--home', d.home, '--state', d.state, 'kill', 'on']);
    await cli(['--home', d.home, '--state', d.state, 'kill', 'off']);
    const flips = query<{ message: string }>(d.state, "SELECT message FROM events WHERE kind='kill-switch' ORDER BY id");
    expect(flips.map((f) => f.message)).toEqual([expect.stringContaining('turned on'), expect.stringContaining('turned off')]);
  });
});
