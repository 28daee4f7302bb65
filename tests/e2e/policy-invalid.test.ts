// A typo in protected/policy.yaml. Found in a new user's first hour: the log said "kill switch ON:
// the policy file cannot be read… failing closed" and a moment later "invalid policy … the previous
// policy stays in force", and the digest counted two flips of a switch nobody touched. What an
// operator must see instead: the last good policy keeps scheduling and the digest; every
// autonomous action stops until the file is valid again (law 3); one plain sentence says so in the
// log, status and the digest; the kill switch is not said to flip. Across a restart too.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { callDaemon } from '../../src/control/socket.js';
import { cli, makeHome, query, startDaemon, trackDaemons, waitFor, type DaemonProc } from '../support/helpers.js';

const { daemons, dirs } = trackDaemons();
const WAIT_MS = 30_000;

describe('an invalid policy', () => {
  it('keeps the last good policy for scheduling and the digest, stops every autonomous action, says so once, and flips no switch', async () => {
    const home = makeHome(
      {
        agent: 'every: 1s\nagent: true\ncommand: ["true"]\n',
        plain: 'every: 1s\ncommand: ["true"]\n',
        daily: 'schedule: "0 3 * * *"\ncommand: ["true"]\n',
      },
      'timezone: Asia/Tokyo\n',
    );
    dirs.push(home);
    const policyFile = join(home, 'protected', 'policy.yaml');
    const sentence = `${policyFile} is invalid: the last good policy keeps scheduling and the digest, and every autonomous action (fixes, brains, agent jobs) is stopped until the file is valid again`;
    let d = await startDaemon(home);
    daemons.push(d);
    const ns = (...args: string[]) => cli(['--home', home, '--state', d.state, ...args]);
    const dailyUtcHour = async (p: DaemonProc): Promise<number> => {
      const r = await callDaemon(join(p.state, 'nightshift.sock'), 'GET', '/status');
      const next = (r.body as { jobs: Array<{ name: string; nextRun: number | null }> }).jobs.find((j) => j.name === 'daily')!.nextRun!;
      return (next % 86_400_000) / 3_600_000;
    };
    const after = (job: string, outcome: string, t: number) =>
      query<{ created_at: number }>(d.state, 'SELECT created_at FROM runs WHERE job = ? AND outcome = ?', job, outcome).some(
        (r) => r.created_at > t,
      );
    await waitFor(() => after('agent', 'ok', 0), WAIT_MS, 'an agent run');
    expect(await dailyUtcHour(d)).toBe(18); // 03:00 in Tokyo

    writeFileSync(policyFile, 'timezone: [broken\n');
    const said = await d.waitLog((l) => l.msg === sentence, WAIT_MS, 'the one sentence');
    const mark = Date.parse(said.time as string);
    // The problem with its line, and the sentence: nothing about a kill switch turning on.
    expect(d.lines().filter((l) => String(l.msg).startsWith('invalid policy:') && String(l.msg).includes('policy.yaml:1'))).toHaveLength(1);
    expect(d.lines().filter((l) => String(l.msg).includes('kill switch ON'))).toEqual([]);
    expect(d.lines().filter((l) => String(l.msg).includes('stays in force'))).toEqual([]);
    // Every autonomous action stops (an agent job is one); the rest keeps working, on the last good policy.
    await waitFor(() => after('agent', 'skipped-halted', mark), WAIT_MS, 'the agent job halted');
    await waitFor(() => after('plain', 'ok', mark), WAIT_MS, 'plain runs on');
    expect(await dailyUtcHour(d)).toBe(18);

    const status = await ns('status');
    expect(status.exitCode).toBe(1);
    expect(status.stdout).toContain(`Kill switch: off, but autonomous actions are STOPPED: ${sentence}`);
    expect(status.stdout).toContain('policy.yaml:1');
    const ks = await ns('kill', 'status');
    expect(ks.exitCode).toBe(1);
    expect(ks.stdout).toContain('kill switch off');
    expect(ks.stderr).toContain(`autonomous actions stay stopped: ${sentence}`);
    const digest = await ns('digest');
    expect(digest.stdout.split('\n')[0]).toContain('autonomous actions are stopped');
    expect(digest.stdout).toContain(`now off, but autonomous actions are stopped: ${sentence}`);
    expect(digest.stdout).not.toMatch(/turned on or off \d+ time/);

    // A restart with the file still invalid: the last good policy (Tokyo) is in force from the
    // first moment, not the defaults, and the actions stay stopped.
    await d.stop();
    d = await startDaemon(home, { state: d.state });
    daemons.push(d);
    expect(d.lines().filter((l) => l.msg === sentence)).toHaveLength(1);
    expect(await dailyUtcHour(d)).toBe(18);
    const restarted = Date.parse(d.lines().find((l) => l.msg === 'nightshift started')!.time as string);
    await waitFor(() => after('agent', 'skipped-halted', restarted), WAIT_MS, 'the agent job still halted');

    writeFileSync(policyFile, 'timezone: UTC\n');
    await d.waitLog((l) => l.msg === 'the policy is valid again: autonomous actions may run again', WAIT_MS, 'valid again');
    await waitFor(() => after('agent', 'ok', restarted), WAIT_MS, 'the agent job runs again');
    expect(await dailyUtcHour(d)).toBe(3);

    // The journal: one episode of an invalid policy, and the switch never recorded as flipped.
    expect(query(d.state, "SELECT * FROM events WHERE kind = 'kill-switch'")).toEqual([]);
    expect(query(d.state, "SELECT * FROM events WHERE kind = 'policy-invalid'")).toHaveLength(1);
    expect((await ns('digest')).stdout).not.toMatch(/turned on or off \d+ time/);
  }, 240_000);

  it('a policy deleted while nightshift was down keeps actions stopped at the next start, and kill on works even when the database cannot be read', async () => {
    const home = makeHome({ agent: 'every: 1s\nagent: true\ncommand: ["true"]\n' }, 'killSwitch: run/KILL\n');
    dirs.push(home);
    const policyFile = join(home, 'protected', 'policy.yaml');
    let d = await startDaemon(home);
    daemons.push(d);
    const ns = (...args: string[]) => cli(['--home', home, '--state', d.state, ...args]);
    await waitFor(() => query(d.state, "SELECT 1 FROM runs WHERE job = 'agent' AND outcome = 'ok'").length > 0, WAIT_MS, 'an agent run');
    expect((await ns('kill', 'on')).exitCode).toBe(0); // run/KILL, the policy's switch
    await d.stop();
    // Deleted while down: the defaults would look for state/KILL, which is not there.
    rmSync(policyFile);
    d = await startDaemon(home, { state: d.state });
    daemons.push(d);
    const started = Date.parse(d.lines().find((l) => l.msg === 'nightshift started')!.time as string);
    await waitFor(
      () =>
        query<{ created_at: number }>(d.state, "SELECT created_at FROM runs WHERE job = 'agent' AND outcome = 'skipped-halted'").some(
          (r) => r.created_at > started,
        ),
      WAIT_MS,
      'the agent job halted',
    );
    expect(query(d.state, "SELECT 1 FROM runs WHERE job = 'agent' AND outcome = 'ok' AND created_at > ?", started)).toEqual([]);
    const status = await ns('status');
    expect(status.stdout).toContain('the policy file was deleted; autonomous actions are halted until it is restored');
    expect(status.stdout).not.toMatch(/Kill switch: off\./);
    await d.stop();

    // The database cannot be read: kill still writes the switch, from the files as they are.
    writeFileSync(policyFile, 'killSwitch: run/KILL\n');
    rmSync(join(home, 'run', 'KILL'));
    writeFileSync(join(d.state, 'nightshift.db'), 'this is not a database');
    for (const f of ['-wal', '-shm']) rmSync(join(d.state, `nightshift.db${f}`), { force: true });
    const on = await ns('kill', 'on');
    expect(on.exitCode).toBe(0);
    expect(on.stderr).toContain('cannot be read');
    expect(existsSync(join(home, 'run', 'KILL'))).toBe(true);
  }, 180_000);
});
