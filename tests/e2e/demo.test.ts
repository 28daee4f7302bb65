// The example home the repository ships (jobs/, rules/, protected/ at its root), which `npm start`
// runs: it validates, and a real daemon on it shows what README's tour says each demo job shows.
// The daemon runs on a copy of the three folders, so that its state/ and work/ stay out of the
// repository; the files are the repository's own, unchanged.
import { cpSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { callDaemon } from '../../src/control/socket.js';
import { cli, query, ROOT, startDaemon, tempDir, trackDaemons, waitFor, type DaemonProc } from '../support/helpers.js';

const { daemons, dirs } = trackDaemons();

// The heal demos run on their schedules ("within two minutes of npm start"): a generous wait for
// a loaded machine, ended as soon as what is waited for is in the database.
const WAIT_MS = 240_000;

interface Run {
  id: number;
  job: string;
  trigger: string;
  outcome: string | null;
  scheduled_for: number | null;
  reason: string | null;
  output_tail: string | null;
}
interface Attempt {
  id: number;
  job: string;
  fingerprint: string;
  rule: string | null;
  autonomy: string | null;
  outcome: string | null;
  proposal: string | null;
  detail: string | null;
}

function exampleHome(): string {
  const home = tempDir('ns-demo-');
  dirs.push(home);
  for (const f of ['jobs', 'rules', 'protected']) cpSync(join(ROOT, f), join(home, f), { recursive: true });
  return home;
}

describe('the example home (npm start)', () => {
  it('validates with no problem, and a daemon on it shows what each demo job is there to show', async () => {
    const home = exampleHome();
    const ns = (...args: string[]) => cli(['--home', home, ...args]);
    const v = await ns('validate');
    expect(v.exitCode, v.stdout + v.stderr).toBe(0);

    // nightly-backup, on the spring-forward night: 02:30 on the 27th and 28th, 03:00 (+02:00) on the
    // 29th (the skipped hour), then 02:30 again
    const next = await ns('next', 'nightly-backup', '--from', '2026-03-27T00:00:00Z', '--count', '4');
    expect(next.stdout.trim().split('\n')).toEqual([
      '2026-03-27T02:30:00+01:00',
      '2026-03-28T02:30:00+01:00',
      '2026-03-29T03:00:00+02:00',
      '2026-03-30T02:30:00+02:00',
    ]);

    const d: DaemonProc = await startDaemon(home);
    daemons.push(d);
    // When the daemon started, by its own log: the heal demos are due within two minutes of it.
    const started = Date.parse(d.lines().find((l) => l.msg === 'nightshift started')!.time as string);
    const runs = (job: string): Run[] => query<Run>(d.state, 'SELECT * FROM runs WHERE job = ? ORDER BY id', job);
    const attempts = (job: string): Attempt[] => query<Attempt>(d.state, 'SELECT * FROM heal_attempts WHERE job = ? ORDER BY id', job);

    // demo-sync runs every 15 minutes; `run` shows it at once: it fails, rule 30 writes a fresh
    // token, the probe (the sync again) still fails, the change is rolled back (the folder did not
    // exist: removed) and the rule is demoted from auto to gated.
    expect((await ns('run', 'demo-sync')).exitCode).toBe(1);
    const first = await waitFor(() => attempts('demo-sync').find((a) => a.outcome !== null), WAIT_MS, 'the first demo-sync heal');
    expect(first, first.detail ?? '').toMatchObject({ rule: '30-refresh-sync-cache', autonomy: 'auto', outcome: 'rolled-back' });
    expect(existsSync(join(home, 'work', 'sync-cache'))).toBe(false);
    expect(query(d.state, 'SELECT rule, level FROM rule_ladder')).toEqual([{ rule: '30-refresh-sync-cache', level: 'gated' }]);
    // the second attempt waits for a person; status shows what to type
    const waiting = await waitFor(
      () => attempts('demo-sync').find((a) => a.outcome === 'awaiting-approval'),
      WAIT_MS,
      'the second attempt awaiting approval',
    );
    expect(waiting.autonomy).toBe('gated');
    const status = await ns('status');
    expect(status.stdout).toContain(`nightshift approve H-${waiting.id}`);
    // approved, it is rolled back too; then the incident is blocked
    expect((await ns('approve', `H-${waiting.id}`)).exitCode, 'approve').not.toBe(3);
    await waitFor(() => attempts('demo-sync').some((a) => a.outcome === 'blocked'), WAIT_MS, 'the incident blocked');
    expect(attempts('demo-sync').map((a) => a.outcome)).toEqual(['rolled-back', 'rolled-back', 'blocked']);
    expect(existsSync(join(home, 'work', 'sync-cache'))).toBe(false);

    // orders-export: exit 0, its file fresh and big enough, its output matching: ok
    const run = await ns('run', 'orders-export');
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    // (its own run: a scheduled one of the same job — every 5 minutes — may have come just after it)
    expect(runs('orders-export').filter((r) => r.trigger === 'manual')).toMatchObject([{ outcome: 'ok' }]);
    expect(statSync(join(home, 'work', 'orders.csv')).size).toBeGreaterThanOrEqual(10);

    // legacy-report is external: pings by the CLI and over the socket are its life
    expect((await ns('run', 'legacy-report')).exitCode).toBe(2);
    expect((await ns('ping', 'legacy-report')).exitCode).toBe(0);
    expect((await callDaemon(join(d.state, 'nightshift.sock'), 'GET', '/ping/legacy-report')).status).toBe(200);
    expect(query(d.state, "SELECT kind FROM heartbeats WHERE job = 'legacy-report'")).toEqual([{ kind: 'success' }, { kind: 'success' }]);

    // inbox-sweep: an empty inbox makes its pre-check say IDLE (skipped-precheck); mail in it
    // makes the next minute's run sweep it
    await waitFor(() => runs('inbox-sweep').find((r) => r.outcome === 'skipped-precheck'), WAIT_MS, 'an idle inbox-sweep');
    expect(runs('inbox-sweep').filter((r) => r.outcome !== null && r.outcome !== 'skipped-precheck')).toEqual([]);
    mkdirSync(join(home, 'work', 'inbox'), { recursive: true });
    writeFileSync(join(home, 'work', 'inbox', 'mail-1'), 'hello\n');
    const swept = await waitFor(() => runs('inbox-sweep').find((r) => r.outcome === 'ok'), WAIT_MS, 'the inbox swept');
    expect(swept.trigger).toBe('schedule');
    expect(swept.output_tail).toContain('swept');
    expect(readdirSync(join(home, 'work', 'done'))).toEqual(['mail-1']);
    expect(readdirSync(join(home, 'work', 'inbox'))).toEqual([]);

    // heartbeat-demo: every 30 s, on the half minute
    const beat = await waitFor(() => runs('heartbeat-demo').find((r) => r.outcome === 'ok'), WAIT_MS, 'a heartbeat-demo run');
    expect(beat.scheduled_for! % 30_000).toBe(0);
    expect(beat.output_tail).toContain('nightshift demo: still here');

    // demo-report is "valid but wrong" (exit 0, "0 rows"): its shadow rule only writes a proposal
    const report = await waitFor(() => attempts('demo-report').find((a) => a.outcome !== null), WAIT_MS, 'the demo-report heal');
    expect(report).toMatchObject({ fingerprint: 'demo-report:wrong', rule: '20-propose-report-rerun', outcome: 'proposed' });
    expect(report.proposal).toBeTruthy();
    // its first run, which the proposal is about, was for an instant within two minutes of the start
    expect(runs('demo-report')[0]!.scheduled_for! - started).toBeLessThanOrEqual(120_000);
    expect(runs('demo-report').filter((r) => r.trigger === 'heal' || r.trigger === 'probe')).toEqual([]);

    // demo-export: a run leaves its lock behind, the next one hangs on it until its 10 s timeout;
    // rule 10 removes the lock and the export, run again as the probe, passes: fixed-verified
    const exp = await waitFor(() => attempts('demo-export').find((a) => a.outcome !== null), WAIT_MS, 'the demo-export heal');
    expect(exp, exp.detail ?? '').toMatchObject({
      fingerprint: 'demo-export:hung',
      rule: '10-stale-export-lock',
      outcome: 'fixed-verified',
    });
    const exports = runs('demo-export');
    const hung = exports.find((r) => r.outcome === 'timeout')!;
    expect(hung.output_tail).toMatch(/lock .* held/);
    // the run that hung was the one of its second instant, within two minutes of the start
    expect(hung.scheduled_for! - started).toBeLessThanOrEqual(120_000);
    expect(exports.find((r) => r.trigger === 'probe')?.outcome).toBe('ok');
    const heals = await ns('heals');
    expect(heals.stdout).toContain('10-stale-export-lock');
  }, 600_000);
});
