// The root-mode unit's promises, with a real daemon as root under exactly what the unit keeps of
// root: its CapabilityBoundingSet= (read from deploy/nightshift-root.service) and NoNewPrivileges=
// (setpriv --bounding-set, --no-new-privs). A job of root's runs as uid 0 with no capability in
// its own PID namespace; a fix runs as uid 65534 with none; a rollback puts back a file of another
// owner with its owner and mode. Dropping a capability the sandbox needs from the unit makes this fail.
import { chownSync, chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, makeHome, query, ROOT, startDaemon, trackDaemons, waitFor } from '../support/helpers.js';

const { daemons, dirs } = trackDaemons();

function unitBoundingSet(): string {
  const unit = readFileSync(join(ROOT, 'deploy', 'nightshift-root.service'), 'utf8');
  const caps = /^CapabilityBoundingSet=(.+)$/m.exec(unit)?.[1]?.trim().split(/\s+/) ?? [];
  expect(caps.length).toBeGreaterThan(0);
  expect(unit).toMatch(/^NoNewPrivileges=yes$/m);
  // setpriv's names: lower case, without CAP_
  return ['-all', ...caps.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)].join(',');
}

describe('the daemon as root under the root-mode unit (its capability bounding set, no new privileges)', () => {
  it("contains a job of root's (uid 0, no capabilities, own PID namespace), runs a fix as 65534 without capabilities, and rolls back a file of another owner exactly", async () => {
    if (process.getuid?.() !== 0)
      // Deliberately a failure, not a skip: CI runs as root, and root mode is about root.
      throw new Error('this test starts the daemon as root (root mode): run it as root');
    const home = makeHome(
      {
        // fails until its fix has run; prints what it is
        a: `command: ["sh", "-c", "id -u; grep CapEff /proc/self/status; echo procs=$(ls /proc | grep -c '^[0-9]'); test -e work/a/ok"]\n`,
        b: 'command: ["false"]\n',
        // a job of another account: that account, no capability (the two setpriv used are gone)
        c: 'user: daemon\ncwd: /\ncommand: ["sh", "-c", "id -un; grep -E \'^Cap(Prm|Eff|Inh)\' /proc/self/status"]\n',
      },
      'timezone: UTC\ndashboard: { listen: "off" }\n',
    );
    dirs.push(home);
    const wa = join(home, 'work', 'a');
    const wb = join(home, 'work', 'b');
    mkdirSync(wa, { recursive: true });
    mkdirSync(wb, { recursive: true });
    writeFileSync(join(wb, 'data'), 'original\n');
    chownSync(join(wb, 'data'), 1234, 1234);
    chmodSync(join(wb, 'data'), 0o600);
    writeFileSync(
      join(home, 'rules', 'fix-a.yaml'),
      `match: { job: a }\nautonomy: auto\naction: { command: ["sh", "-c", "{ id -u; grep CapEff /proc/self/status; } > ${wa}/fixer; touch ${wa}/ok"], touches: ["work/a/"], timeout: 1m }\n`,
    );
    writeFileSync(
      join(home, 'rules', 'fix-b.yaml'),
      `match: { job: b }\nautonomy: auto\naction: { command: ["sh", "-c", "echo changed > ${wb}/data; touch ${wb}/new"], touches: ["work/b/"], timeout: 1m }\nprobe: { command: ["false"] }\n`,
    );
    const d = await startDaemon(home, { prefix: ['setpriv', '--no-new-privs', '--bounding-set', unitBoundingSet()] });
    daemons.push(d);
    await cli(['--home', home, 'run', 'a']);
    await cli(['--home', home, 'run', 'b']);
    await cli(['--home', home, 'run', 'c']);
    const outcome = (job: string) =>
      query<{ outcome: string | null; detail: string | null }>(
        d.state,
        'SELECT outcome, detail FROM heal_attempts WHERE job = ? ORDER BY id LIMIT 1',
        job,
      ).at(0);
    const settled = (job: string) => {
      const o = outcome(job);
      return o?.outcome ? o : undefined;
    };
    const a = await waitFor(() => settled('a'), 30_000, 'the heal of a');
    const b = await waitFor(() => settled('b'), 30_000, 'the heal of b');

    // the job of root's: uid 0, no capability, alone in its PID namespace
    const firstRun = readFileSync(join(d.state, 'logs', 'a', '1.log'), 'utf8');
    expect(firstRun).toMatch(/^0\nCapEff:\s+0000000000000000\nprocs=\d\n/);
    // the fix: uid 65534, no capability, and verified by the job run again
    expect(a.outcome, a.detail ?? '').toBe('fixed-verified');
    expect(readFileSync(join(wa, 'fixer'), 'utf8')).toMatch(/^65534\nCapEff:\s+0000000000000000\n$/);
    // the rollback: the file of uid 1234 back as it was, with its owner and mode; the new one gone
    expect(b.outcome, b.detail ?? '').toBe('rolled-back');
    expect(readFileSync(join(wb, 'data'), 'utf8')).toBe('original\n');
    const st = statSync(join(wb, 'data'));
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([1234, 1234, 0o600]);
    expect(existsSync(join(wb, 'new'))).toBe(false);
    // the job of user: daemon, under the unit's bounding set
    const cRun = query<{ id: number }>(d.state, "SELECT id FROM runs WHERE job = 'c'")[0]!.id;
    expect(readFileSync(join(d.state, 'logs', 'c', `${cRun}.log`), 'utf8')).toMatch(
      /^daemon\nCapInh:\s+0000000000000000\nCapPrm:\s+0000000000000000\nCapEff:\s+0000000000000000\n$/,
    );
  }, 90_000);
});
