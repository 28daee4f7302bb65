// The command line as a new user meets it: a job whose program is not there is valid YAML and a
// sure failure at its first run — a warning (it may be installed before then), with its file and
// line; and a command typed in a folder that is not a home says so, instead of "All 0 jobs healthy".
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { CLI, cli, makeHome, tempDir, trackDaemons } from '../support/helpers.js';

const { dirs } = trackDaemons();

describe('validate', () => {
  it('warns, with file and line, when a command or pre-check program is missing or not executable, and exits 0', async () => {
    const home = makeHome({
      gone: 'schedule: "0 3 * * *"\ncommand: ["/usr/local/bin/nope-nightshift-test"]\n',
      unknown: 'every: 1h\ncommand: ["nope-nightshift-test", "--day", "yesterday"]\n',
      relative: 'every: 1h\nprecheck: ["./check.sh"]\ncommand: ["true"]\n',
      fine: 'every: 1h\ncommand: ["sh", "-c", "exit 0"]\nprecheck: ["true"]\n',
    });
    dirs.push(home);
    writeFileSync(join(home, 'check.sh'), '#!/bin/sh\necho IDLE\n');
    chmodSync(join(home, 'check.sh'), 0o644);
    const r = await cli(['--home', home, 'validate']);
    expect(r.exitCode).toBe(0);
    const warnings = r.stdout.split('\n').filter((l) => l.startsWith('warning: ') && !l.includes('containment'));
    expect(warnings).toEqual([
      `warning: ${join(home, 'jobs', 'gone.yaml')}:2: command: /usr/local/bin/nope-nightshift-test does not exist: every run would fail to start`,
      `warning: ${join(home, 'jobs', 'relative.yaml')}:2: precheck: ./check.sh is not executable: every run would fail to start`,
      expect.stringMatching(
        new RegExp(
          `^warning: ${join(home, 'jobs', 'unknown.yaml')}:2: command: nope-nightshift-test is not found on the job's PATH \\(.+\\): every run would fail to start$`,
        ),
      ),
    ]);
    expect(r.stdout).toContain('ok: 4 job(s)');
    // Once it is there and executable, the warning goes.
    chmodSync(join(home, 'check.sh'), 0o755);
    expect((await cli(['--home', home, 'validate'])).stdout).not.toContain('relative.yaml');
  });

  it('warns (and stays valid) when mail is set up without digest.from: the default sender bounces; status says it too', async () => {
    const policy = (from: string) =>
      `timezone: UTC\ndigest:\n  at: "07:00"\n  to: ["ops@example.com"]\n${from}  smtp: { host: 127.0.0.1, port: 25 }\n`;
    const home = makeHome({ fine: 'every: 1h\ncommand: ["true"]\n' }, policy(''));
    dirs.push(home);
    const file = join(home, 'protected', 'policy.yaml');
    const warning = `warning: ${file}:2: digest.from: not set, so the digest is sent from nightshift@${hostname()}, which most mail servers refuse or file as spam; set digest.from in policy.yaml to an address your mail server accepts for this machine (e.g. from: "nightshift@your-domain.example")`;
    const v = await cli(['--home', home, 'validate']);
    expect(v.exitCode).toBe(0);
    expect(v.stdout).toContain('ok: 1 job(s)');
    expect(v.stdout.split('\n')).toContain(warning);
    const json = await cli(['--home', home, 'validate', '--json']);
    expect(json.exitCode).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, warnings: [{ file, field: 'digest.from' }] });
    const status = await cli(['--home', home, 'status']);
    expect(status.stdout).toContain(warning.slice('warning: '.length));
    // sendmail is mail too
    writeFileSync(file, 'digest:\n  to: ["ops@example.com"]\n  sendmail: /usr/sbin/sendmail\n');
    expect((await cli(['--home', home, 'validate'])).stdout).toContain(`warning: ${file}:1: digest.from: not set`);
    // With a sender, or with no way to send, there is nothing to warn about.
    writeFileSync(file, policy('  from: "nightshift@shop.example"\n'));
    const ok = await cli(['--home', home, 'validate']);
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).not.toContain('digest.from');
    writeFileSync(file, 'timezone: UTC\ndigest: { at: "07:00" }\n');
    expect((await cli(['--home', home, 'validate'])).stdout).not.toContain('digest.from');
  });

  it('refuses a folder that is not a home, saying how to point at one; NIGHTSHIFT_HOME and NIGHTSHIFT_STATE do', async () => {
    const elsewhere = tempDir('ns-not-a-home-');
    const home = makeHome({ fine: 'every: 1h\ncommand: ["true"]\n' });
    const state = tempDir('ns-state-');
    dirs.push(elsewhere, home, state);
    const inFolder = (args: string[], env: Record<string, string> = {}) =>
      execa('node', [CLI, ...args], {
        cwd: elsewhere,
        reject: false,
        stdin: 'ignore',
        env: { NIGHTSHIFT_HOME: '', NIGHTSHIFT_STATE: '', ...env },
      });
    for (const args of [['status'], ['history'], ['alerts'], ['kill', 'on'], ['run', 'fine']]) {
      const r = await inFolder(args);
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(`${elsewhere} is not a nightshift home (it has no jobs/, rules/ or protected/ folder)`);
      expect(r.stderr).toContain('--home DIR');
      expect(r.stderr).toContain('NIGHTSHIFT_HOME and NIGHTSHIFT_STATE');
      expect(r.stdout).toBe('');
    }
    // `kill on` made no switch file in the wrong place (a switch nobody's daemon reads)
    expect(existsSync(join(elsewhere, 'state'))).toBe(false);
    // The variables point at a home and its state elsewhere, as the unit's flags do.
    const r = await inFolder(['kill', 'on'], { NIGHTSHIFT_HOME: home, NIGHTSHIFT_STATE: state });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`kill switch ON (${join(state, 'KILL')} exists): autonomous actions and agent jobs are halted`);
    const v = await inFolder(['validate'], { NIGHTSHIFT_HOME: home });
    expect(v.exitCode).toBe(0);
    expect(v.stdout).toContain('ok: 1 job(s)');
  });
});
