// Restarts the daemon performs (issue 10, point 3): a rule's `restart: UNIT` makes nightshift run
// `systemctl restart UNIT` itself, only for units the policy lists, and the probe decides. These
// machines run no systemd: a stand-in `systemctl` (NIGHTSHIFT_SYSTEMCTL) records what it was asked.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { PolicySchema } from '../../src/config/schema.js';
import { cli, makeHome, query, ROOT, startDaemon, tempDir, waitFor, trackDaemons } from '../support/helpers.js';

const { daemons, dirs } = trackDaemons({ dirs: 'after-all' });

const RULE = (probe: string) =>
  `match: { job: worker-health, kind: [failed] }\nautonomy: auto\naction: { restart: shop-worker.service }\nprobe: { command: ${probe} }\n`;

describe('restart: UNIT', () => {
  it('is refused by validate for a unit the policy does not list, with the line', async () => {
    const home = makeHome({ 'worker-health': 'command: ["false"]\n' }, 'timezone: UTC\nrestartUnits: [other.service]\n');
    dirs.push(home);
    writeFileSync(join(home, 'rules', 'restart.yaml'), RULE('["true"]'));
    const v = await cli(['--home', home, 'validate']);
    expect(v.exitCode).toBe(2);
    expect(String(v.stdout) + String(v.stderr)).toMatch(
      /restart\.yaml:3: action\.restart: "shop-worker\.service" is not in the policy's restartUnits \(other\.service\)/,
    );
    writeFileSync(join(home, 'protected', 'policy.yaml'), 'timezone: UTC\nrestartUnits: [other.service, shop-worker.service]\n');
    expect((await cli(['--home', home, 'validate'])).exitCode).toBe(0);
  });

  it('names a service unit in full: a template needs its instance, nothing can pass for an option', () => {
    const ok = (unit: string): boolean => PolicySchema.safeParse({ restartUnits: [unit] }).success;
    expect(ok('shop-worker.service')).toBe(true);
    expect(ok('worker@1.service')).toBe(true);
    expect(ok('worker@.service')).toBe(false);
    expect(ok('shop-worker')).toBe(false);
    expect(ok('--now.service')).toBe(false);
    expect(ok('a b.service')).toBe(false);
    expect(ok('*.service')).toBe(false);
  });

  it('goes alert → systemctl restart by nightshift → probe → fixed-verified', async () => {
    const bin = tempDir('ns-fake-systemctl-');
    dirs.push(bin);
    const asked = join(bin, 'asked');
    const up = join(bin, 'worker-up');
    // The stand-in: records its arguments; "restarting" the unit brings the worker up.
    writeFileSync(join(bin, 'systemctl'), `#!/bin/sh\necho "$*" >> ${asked}\n[ "$2" = restart ] && touch ${up}\nexit 0\n`);
    chmodSync(join(bin, 'systemctl'), 0o755);
    const home = makeHome(
      { 'worker-health': `command: ["test", "-e", "${up}"]\n` },
      'timezone: UTC\nrestartUnits: [shop-worker.service]\n',
    );
    dirs.push(home);
    writeFileSync(join(home, 'rules', 'restart.yaml'), RULE(`["test", "-e", "${up}"]`));
    // A `systemctl` planted on the daemon's PATH (a job as root may write /usr/local/bin) is never run.
    const planted = tempDir('ns-planted-');
    dirs.push(planted);
    writeFileSync(join(planted, 'systemctl'), `#!/bin/sh\necho planted >> ${asked}\nexit 0\n`);
    chmodSync(join(planted, 'systemctl'), 0o755);
    const d = await startDaemon(home, {
      env: { NIGHTSHIFT_SYSTEMCTL: join(bin, 'systemctl'), PATH: `${planted}:${process.env.PATH ?? '/usr/bin:/bin'}` },
    });
    daemons.push(d);
    const r = await cli(['--home', home, 'run', 'worker-health']);
    expect(r.exitCode).toBe(1);
    const a = await waitFor(
      () =>
        query<{ outcome: string; detail: string; action_kind: string }>(
          d.state,
          'SELECT outcome, detail, action_kind FROM heal_attempts WHERE outcome IS NOT NULL',
        ).at(0),
      30_000,
      'the verdict',
    );
    expect(a.outcome, a.detail).toBe('fixed-verified');
    expect(a.action_kind).toBe('restart');
    expect(readFileSync(asked, 'utf8')).toBe('--no-ask-password restart shop-worker.service\n');
    const alert = query<{ resolution: string }>(d.state, "SELECT resolution FROM alerts WHERE job = 'worker-health'")[0]!;
    expect(alert.resolution).toBe('fixed-verified');
  });

  it('is refused at the heal, before systemctl runs, when the policy stops listing the unit', async () => {
    const bin = tempDir('ns-fake-systemctl-');
    dirs.push(bin);
    const asked = join(bin, 'asked');
    writeFileSync(join(bin, 'systemctl'), `#!/bin/sh\necho "$*" >> ${asked}\nexit 0\n`);
    chmodSync(join(bin, 'systemctl'), 0o755);
    const home = makeHome({ 'worker-health': 'command: ["false"]\n' }, 'timezone: UTC\nrestartUnits: [shop-worker.service]\n');
    dirs.push(home);
    writeFileSync(join(home, 'rules', 'restart.yaml'), RULE('["false"]'));
    const d = await startDaemon(home, { env: { NIGHTSHIFT_SYSTEMCTL: join(bin, 'systemctl') } });
    daemons.push(d);
    // The rule was loaded under the old policy and stays in force; the policy in force now decides.
    writeFileSync(join(home, 'protected', 'policy.yaml'), 'timezone: UTC\nrestartUnits: []\n');
    await waitFor(() => query(d.state, "SELECT 1 FROM events WHERE kind = 'policy-changed'").at(0), 30_000, 'the policy reload');
    expect((await cli(['--home', home, 'run', 'worker-health'])).exitCode).toBe(1);
    const a = await waitFor(
      () =>
        query<{ outcome: string; detail: string }>(d.state, 'SELECT outcome, detail FROM heal_attempts WHERE outcome IS NOT NULL').at(0),
      30_000,
      'the verdict',
    );
    expect(a.outcome).toBe('refused');
    expect(a.detail).toMatch(/shop-worker\.service is not in the policy's restartUnits/);
    expect(existsSync(asked)).toBe(false);
  });
});

describe('the polkit rule in deploy/', () => {
  it('lets the nightshift account restart exactly the listed units, and nothing else', () => {
    const text = readFileSync(join(ROOT, 'deploy', '50-nightshift-restart.rules'), 'utf8');
    let rule: ((action: unknown, subject: unknown) => unknown) | null = null;
    const Result = { YES: 'yes', NO: 'no', NOT_HANDLED: 'not-handled' };
    runInNewContext(text, { polkit: { Result, addRule: (fn: typeof rule) => (rule = fn) } });
    const ask = (id: string, verb: string, unit: string, user: string): unknown =>
      rule!({ id, lookup: (k: string) => ({ verb, unit })[k] }, { user });
    const manage = 'org.freedesktop.systemd1.manage-units';
    expect(ask(manage, 'restart', 'shop-worker.service', 'nightshift')).toBe('yes');
    expect(ask(manage, 'stop', 'shop-worker.service', 'nightshift')).toBe('not-handled');
    expect(ask(manage, 'start', 'shop-worker.service', 'nightshift')).toBe('not-handled');
    expect(ask(manage, 'restart', 'sshd.service', 'nightshift')).toBe('not-handled');
    expect(ask(manage, 'restart', 'shop-worker.service', 'www-data')).toBe('not-handled');
    expect(ask('org.freedesktop.systemd1.manage-unit-files', 'restart', 'shop-worker.service', 'nightshift')).toBe('not-handled');
  });
});
