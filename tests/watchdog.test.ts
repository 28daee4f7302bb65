// The watchdog as users meet it: a real daemon, real pings, real files, alerts in SQLite.
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { callDaemon } from '../src/control.js';
import { cleanup, cli, makeHome, query, startDaemon, waitFor, writeJob, type DaemonProc } from './helpers.js';

interface Alert {
  id: number;
  fingerprint: string;
  job: string;
  kind: string;
  opened_at: number;
  count: number;
  message: string;
  folded_under: string | null;
  resolved_at: number | null;
  resolution: string | null;
  run_id: number | null;
}
const alerts = (d: { state: string }, job?: string): Alert[] =>
  job ? query<Alert>(d.state, 'SELECT * FROM alerts WHERE job = ? ORDER BY id', job) : query<Alert>(d.state, 'SELECT * FROM alerts ORDER BY id');

const daemons: DaemonProc[] = [];
const homes: string[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
  for (const h of homes.splice(0)) cleanup(h);
});
async function daemon(jobs: Record<string, string>, policy?: string): Promise<DaemonProc> {
  const home = makeHome(jobs, policy);
  homes.push(home);
  const d = await startDaemon(home);
  daemons.push(d);
  return d;
}
const ns = (d: DaemonProc, ...args: string[]) => cli(['--home', d.home, '--state', d.state, ...args]);

describe('alerts from runs', () => {
  it('a run that failed just before a kill -9 (row committed, alert not yet) gets its alert at the next start', async () => {
    const d = await daemon({ sync: 'command: ["sh", "-c", "exit 3"]\n', fine: 'command: ["true"]\n' });
    await ns(d, 'run', 'sync');
    await ns(d, 'run', 'fine');
    await waitFor(() => alerts(d, 'sync').length === 1, 3000, 'alert');
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
      stuck: 'command: ["sleep", "30"]\ntimeout: 1s\nkillGrace: 3s\n',
    });
    await ns(d, 'run', 'breaks');
    // no alert while a retry is pending
    expect(alerts(d, 'breaks')).toHaveLength(0);
    await waitFor(() => alerts(d, 'breaks').length === 1, 3000, 'failed alert after the retry');
    const failed = alerts(d, 'breaks')[0]!;
    expect(failed).toMatchObject({ fingerprint: 'breaks:failed', kind: 'failed', count: 1, resolved_at: null });
    expect(failed.message).toContain('exited with code 4');
    await ns(d, 'run', 'breaks');
    await waitFor(() => alerts(d, 'breaks')[0]!.count === 2, 3000, 'second occurrence');
    expect(alerts(d, 'breaks')).toHaveLength(1);

    await ns(d, 'run', 'lies');
    expect(alerts(d, 'lies')[0]).toMatchObject({ kind: 'wrong' });
    expect(alerts(d, 'lies')[0]!.message).toContain('did not match');

    const t0 = Date.now();
    const run = ns(d, 'run', 'stuck');
    await waitFor(() => alerts(d, 'stuck').length === 1, 3000, 'hung alert');
    const hung = alerts(d, 'stuck')[0]!;
    expect(hung.kind).toBe('hung');
    expect(hung.message).toContain('passed its timeout of 1s; nightshift is stopping it');
    // raised at the timeout, before the 3 s kill grace is over
    expect(hung.opened_at - t0).toBeLessThan(2500);
    expect((await run).stdout).toContain('timeout');
    expect(alerts(d, 'stuck')).toHaveLength(1);
    expect(alerts(d, 'stuck')[0]!.count).toBe(1);

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

describe('missed deadlines and heartbeats', () => {
  it('an external every-2s job that stops pinging is alerted within 1 s after its deadline; a ping resolves it', async () => {
    const d = await daemon({ pinger: 'every: 2s\nheartbeat: { grace: 1500ms }\n' });
    // ping about every second over the socket (a CLI start can take over a second on a loaded
    // machine): always within an instant + grace, so no alert
    for (let i = 0; i < 4; i++) {
      expect((await callDaemon(join(d.state, 'nightshift.sock'), 'POST', '/ping/pinger')).status).toBe(200);
      await sleep(1000);
    }
    expect(alerts(d, 'pinger')).toHaveLength(0);
    const lastPing = query<{ at: number }>(d.state, "SELECT max(at) AS at FROM heartbeats WHERE job='pinger'")[0]!.at;
    const deadline = (Math.floor(lastPing / 2000) + 1) * 2000 + 1500;
    await waitFor(() => alerts(d, 'pinger').length === 1, 6000, 'missed alert');
    const a = alerts(d, 'pinger')[0]!;
    expect(a.kind).toBe('missed');
    expect(a.opened_at).toBeGreaterThanOrEqual(deadline);
    expect(a.opened_at - deadline).toBeLessThan(1000);
    expect(a.message).toContain('no success by');
    await ns(d, 'ping', 'pinger');
    await waitFor(() => alerts(d, 'pinger')[0]!.resolution === 'self-recovered', 2000, 'resolved by ping');
  });

  it('ping --start then a success records the duration; --start with no end within the timeout is hung; --fail is failed', async () => {
    const d = await daemon({ ext: 'timeout: 1s\n' });
    expect((await ns(d, 'ping', 'ext', '--start')).exitCode).toBe(0);
    await sleep(300);
    const done = await ns(d, 'ping', 'ext');
    expect(done.stdout).toMatch(/ran \d+ ms since its start ping/);
    const hb = query<{ kind: string; duration_ms: number | null }>(d.state, "SELECT kind, duration_ms FROM heartbeats WHERE job='ext' ORDER BY id");
    expect(hb.map((h) => h.kind)).toEqual(['start', 'success']);
    expect(hb[1]!.duration_ms).toBeGreaterThanOrEqual(300);

    await ns(d, 'ping', 'ext', '--start');
    await waitFor(() => alerts(d, 'ext').some((a) => a.kind === 'hung'), 3000, 'hung');
    expect(alerts(d, 'ext').find((a) => a.kind === 'hung')!.message).toContain('reported no end within its timeout of 1s');
    await ns(d, 'ping', 'ext', '--fail');
    expect(alerts(d, 'ext').map((a) => a.kind)).toContain('failed');
    // curl on the control socket does the same
    const sock = join(d.state, 'nightshift.sock');
    const { execa } = await import('execa');
    const r = await execa('curl', ['-s', '--unix-socket', sock, 'http://x/ping/ext']);
    expect(JSON.parse(r.stdout)).toMatchObject({ job: 'ext', kind: 'success' });
    await waitFor(() => alerts(d, 'ext').every((a) => a.resolved_at !== null), 2000, 'all resolved');
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
    await waitFor(() => query(d.state, "SELECT * FROM heartbeats WHERE job='filebeat' AND source='file'").length === 1, 3000, 'file heartbeat');
    const now = new Date();
    utimesSync(join(home, 'beats', 'filebeat.ok'), now, now);
    await waitFor(() => query(d.state, "SELECT * FROM heartbeats WHERE job='filebeat' AND source='file'").length >= 2, 3000, 'second file heartbeat');
  });

  it('after a restart: open alerts are kept, and the time the daemon was down raises no burst of missed alerts', async () => {
    const d = await daemon({
      ext1: 'every: 1s\nheartbeat: { grace: 2s }\n',
      ext2: 'every: 1s\nheartbeat: { grace: 2s }\n',
      broken: 'command: ["false"]\n',
    });
    await ns(d, 'run', 'broken');
    await waitFor(() => alerts(d, 'ext1').length === 1 && alerts(d, 'ext2').length === 1, 6000, 'missed alerts');
    await ns(d, 'ping', 'ext1');
    await ns(d, 'ping', 'ext2');
    expect(alerts(d).filter((a) => a.kind === 'missed' && a.resolved_at === null)).toHaveLength(0);
    await d.stop();
    await sleep(4000); // several instants and deadlines pass while nightshift is down
    const d2 = await startDaemon(d.home, { state: d.state });
    daemons.push(d2);
    await sleep(1000);
    // no alert for the downtime: each job's clock starts afresh at the restart
    expect(alerts(d2).filter((a) => a.kind === 'missed' && a.resolved_at === null)).toHaveLength(0);
    expect(alerts(d2)).toHaveLength(3);
    // the open failed alert survived the restart
    expect(alerts(d2, 'broken')[0]!.resolved_at).toBeNull();
    expect((await cli(['--home', d.home, '--state', d.state, 'alerts'])).stdout).toContain('broken');
    // and the watchdog still works after the restart
    await waitFor(() => alerts(d2).filter((a) => a.kind === 'missed' && a.resolved_at === null).length === 2, 6000, 'missed again');
  });

  it('resume of a paused job starts its clock afresh (no missed alert for the pause)', async () => {
    const d = await daemon({ beat: 'every: 1s\nheartbeat: { grace: 2s }\n' });
    await ns(d, 'ping', 'beat');
    await ns(d, 'pause', 'beat');
    await sleep(4000); // longer than an instant + grace: a running clock would have alerted
    expect(alerts(d, 'beat')).toHaveLength(0);
    await ns(d, 'resume', 'beat');
    await ns(d, 'ping', 'beat');
    await sleep(500);
    expect(alerts(d, 'beat')).toHaveLength(0);
  });
});

describe('kill switch', () => {
  it('halts agent jobs (skipped-halted), stops a running one, is shown in status, and records each flip', async () => {
    const d = await daemon({
      agent: 'every: 1s\nagent: true\ncommand: ["sleep", "30"]\nconcurrency: allow\nkillGrace: 1s\n',
      plain: 'every: 1s\ncommand: ["true"]\n',
    });
    await waitFor(() => query<{ started_at: number }>(d.state, "SELECT started_at FROM runs WHERE job='agent' AND started_at IS NOT NULL").length > 0, 3000, 'agent running');
    const on = await ns(d, 'kill', 'on');
    expect(on.stdout).toContain('kill switch ON');
    expect(existsSync(join(d.state, 'KILL'))).toBe(true);
    await waitFor(
      () => query<{ outcome: string; reason: string }>(d.state, "SELECT outcome, reason FROM runs WHERE job='agent' AND outcome = 'killed'").length > 0,
      4000,
      'running agent stopped',
    );
    const killed = query<{ reason: string }>(d.state, "SELECT reason FROM runs WHERE job='agent' AND outcome = 'killed'")[0]!;
    expect(killed.reason).toContain('the kill switch is on');
    await waitFor(() => query(d.state, "SELECT * FROM runs WHERE job='agent' AND outcome = 'skipped-halted'").length > 0, 3000, 'skipped-halted');
    // ordinary jobs go on
    const before = query(d.state, "SELECT * FROM runs WHERE job='plain' AND outcome='ok'").length;
    await sleep(1500);
    expect(query(d.state, "SELECT * FROM runs WHERE job='plain' AND outcome='ok'").length).toBeGreaterThan(before);
    const st = await ns(d, 'status');
    expect(st.stdout).toContain('Kill switch: ON');
    expect((await ns(d, 'kill', 'status')).exitCode).toBe(1);
    // plain rm works as well as "kill off"
    rmSync(join(d.state, 'KILL'));
    await waitFor(() => query(d.state, "SELECT * FROM events WHERE kind='kill-switch'").length === 2, 3000, 'two flips');
    const flips = query<{ message: string }>(d.state, "SELECT message FROM events WHERE kind='kill-switch' ORDER BY id");
    expect(flips[0]!.message).toContain('turned on');
    expect(flips[1]!.message).toBe('kill switch turned off');
    expect((await ns(d, 'kill', 'status')).exitCode).toBe(0);
  });

  it('is checked synchronously before each agent run, even when no watcher event arrives', async () => {
    const home = makeHome({ agent: 'every: 1s\nagent: true\ncommand: ["true"]\n' }, 'killSwitch: halt-here\n');
    homes.push(home);
    // the switch is on before the daemon starts: the very first run is halted
    writeFileSync(join(home, 'halt-here'), '');
    const d = await startDaemon(home);
    daemons.push(d);
    await waitFor(() => query(d.state, "SELECT * FROM runs WHERE job='agent'").length >= 2, 4000, 'two instants');
    const outcomes = query<{ outcome: string }>(d.state, "SELECT outcome FROM runs WHERE job='agent' AND outcome IS NOT NULL").map((r) => r.outcome);
    expect(new Set(outcomes)).toEqual(new Set(['skipped-halted']));
  });

  it('a malformed policy on reload keeps the previous policy but fails closed for the kill switch', async () => {
    const d = await daemon({ agent: 'every: 1s\nagent: true\ncommand: ["true"]\n', plain: 'every: 1s\ncommand: ["true"]\n' }, 'timezone: UTC\n');
    await waitFor(() => query(d.state, "SELECT * FROM runs WHERE job='agent' AND outcome='ok'").length > 0, 3000, 'agent ok');
    writeFileSync(join(d.home, 'protected', 'policy.yaml'), 'timezone: [broken\n');
    await d.waitLog((l) => typeof l.msg === 'string' && l.msg.startsWith('invalid policy'), 3000);
    const mark = Date.now();
    await waitFor(() => query<{ created_at: number }>(d.state, "SELECT created_at FROM runs WHERE job='agent' AND outcome='skipped-halted'").some((r) => r.created_at >= mark), 3000, 'halted');
    const ks = await ns(d, 'kill', 'status');
    expect(ks.exitCode).toBe(1);
    expect(ks.stdout).toContain('policy file cannot be read');
    const st = await ns(d, 'status');
    expect(st.stdout).toContain('policy.yaml:1');
    // non-agent jobs keep working (fail open to work)
    await waitFor(() => query<{ created_at: number }>(d.state, "SELECT created_at FROM runs WHERE job='plain' AND outcome='ok'").some((r) => r.created_at >= mark), 3000, 'plain runs on');
    writeFileSync(join(d.home, 'protected', 'policy.yaml'), 'timezone: UTC\n');
    const mark2 = Date.now() + 300;
    await waitFor(() => query<{ created_at: number }>(d.state, "SELECT created_at FROM runs WHERE job='agent' AND outcome='ok'").some((r) => r.created_at >= mark2), 4000, 'agent runs again');
  });
});

describe('review cases', () => {
  it('the kill switch turned on during an agent pre-check stops the run before it starts', async () => {
    // a scheduled agent run whose pre-check takes 1.5 s
    const d = await daemon({ gated: 'every: 2s\nagent: true\nprecheck: ["sh", "-c", "sleep 1.5; echo WORK"]\ncommand: ["sleep", "30"]\n' });
    await waitFor(() => query<{ pgid: number | null }>(d.state, "SELECT pgid FROM runs WHERE job='gated' AND pgid IS NOT NULL AND ended_at IS NULL").length > 0, 5000, 'pre-check running');
    await ns(d, 'kill', 'on');
    await waitFor(() => query(d.state, "SELECT * FROM runs WHERE job='gated' AND outcome IS NOT NULL").length > 0, 5000, 'first gated run ended');
    const first = query<{ outcome: string; started_at: number | null; log_path: string | null }>(d.state, "SELECT outcome, started_at, log_path FROM runs WHERE job='gated' ORDER BY id LIMIT 1")[0]!;
    expect(first.outcome).toBe('skipped-halted');
    expect(first.log_path).toBeNull();
  });

  it('a kill switch in a folder that does not exist yet is still watched; a deleted policy fails closed', async () => {
    const d = await daemon({ agent: 'every: 1s\nagent: true\nconcurrency: allow\nkillGrace: 1s\ncommand: ["sleep", "30"]\n' }, 'killSwitch: run/KILL\n');
    await waitFor(() => query(d.state, "SELECT * FROM runs WHERE job='agent' AND started_at IS NOT NULL AND ended_at IS NULL").length > 0, 3000, 'agent running');
    await ns(d, 'kill', 'on'); // creates run/ and run/KILL
    await waitFor(() => query(d.state, "SELECT * FROM runs WHERE job='agent' AND outcome='killed'").length > 0, 5000, 'running agent stopped');
    await ns(d, 'kill', 'off');
    await waitFor(() => query<{ created_at: number }>(d.state, "SELECT created_at FROM runs WHERE job='agent' AND started_at IS NOT NULL AND ended_at IS NULL").length > 0, 4000, 'agent again');
    rmSync(join(d.home, 'protected', 'policy.yaml'));
    await d.waitLog((l) => typeof l.msg === 'string' && l.msg.includes('the policy file was deleted'), 3000);
    const mark = Date.now();
    await waitFor(() => query<{ created_at: number }>(d.state, "SELECT created_at FROM runs WHERE job='agent' AND outcome='skipped-halted'").some((r) => r.created_at >= mark), 4000, 'halted after policy deletion');
  });

  it('when a dependency recovers, alerts folded under it stand on their own again', async () => {
    const d = await daemon({ base: 'command: ["sh", "-c", "test -f base-ok"]\ncwd: "."\n', child: 'command: ["false"]\ndependsOn: [base]\n' });
    await ns(d, 'run', 'base');
    await ns(d, 'run', 'child');
    expect(alerts(d, 'child')[0]!.folded_under).toBe('base:failed');
    writeFileSync(join(d.home, 'base-ok'), '');
    await ns(d, 'run', 'base');
    await waitFor(() => alerts(d, 'child')[0]!.folded_under === null, 2000, 'unfolded');
    const st = await ns(d, 'status');
    expect(st.stdout.split('\n')[0]).toContain('1 job(s) failing: child');
    const dg = await ns(d, 'digest');
    expect(dg.stdout.split('\n')[0]).toContain('1 job needs you');
  });

  it('removing a job resolves its open alerts (job-removed)', async () => {
    const d = await daemon({ gone: 'command: ["false"]\n' });
    await ns(d, 'run', 'gone');
    rmSync(join(d.home, 'jobs', 'gone.yaml'));
    await waitFor(() => alerts(d, 'gone')[0]!.resolution === 'job-removed', 3000, 'resolved on removal');
  });

  it('a restart inside a grace window keeps that deadline', async () => {
    const d = await daemon({ late: 'every: 4s\nheartbeat: { grace: 3s }\n' });
    await ns(d, 'ping', 'late');
    const ping = query<{ at: number }>(d.state, "SELECT at FROM heartbeats WHERE job='late'")[0]!.at;
    const expected = (Math.floor(ping / 4000) + 1) * 4000;
    // restart after the expected instant but before its deadline (expected + 3 s)
    await sleep(Math.max(0, expected + 300 - Date.now()));
    await d.stop();
    const d2 = await startDaemon(d.home, { state: d.state });
    daemons.push(d2);
    await waitFor(() => alerts(d2, 'late').length === 1, 6000, 'missed alert after restart');
    expect(alerts(d2, 'late')[0]!.opened_at).toBeLessThan(expected + 3000 + 1500);
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
