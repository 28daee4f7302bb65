// Issue 16, point 1: `schedule: "@reboot"` runs once per boot of the machine (not once per start
// of nightshift), and `user:` runs a job as another account, as cron runs a user's crontab. A
// test cannot reboot the machine: NIGHTSHIFT_BOOT_ID_FILE stands in for the kernel's boot id.
import { execa } from 'execa';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, makeHome, query, startDaemon, tempDir, trackDaemons, waitFor, writeJob } from '../support/helpers.js';

const { daemons, dirs } = trackDaemons();
const AS_ROOT = process.getuid?.() === 0;

function bootRuns(state: string, job: string): Array<{ id: number; trigger: string; outcome: string | null }> {
  return query(state, "SELECT id, trigger, outcome FROM runs WHERE job = ? AND trigger = 'boot' ORDER BY id", job);
}

/** A home of these jobs and a stand-in boot: `boot(id)` is a boot of the machine, from now on. */
function bootedHome(jobs: Record<string, string>): { home: string; env: Record<string, string>; boot: (id: string) => void } {
  const home = makeHome(jobs, 'timezone: UTC\n');
  dirs.push(home);
  const bootFile = join(home, 'boot_id');
  const boot = (id: string) => writeFileSync(bootFile, `${id}\n`);
  boot('boot-1');
  return { home, env: { ...process.env, NIGHTSHIFT_BOOT_ID_FILE: bootFile }, boot };
}

describe('@reboot', () => {
  it('runs once after a boot: not again when nightshift restarts in the same boot, again after the next boot', async () => {
    const { home, env, boot } = bootedHome({ warm: 'command: ["sh", "-c", "echo warmed"]\nschedule: "@reboot"\n' });

    let d = await startDaemon(home, { env });
    daemons.push(d);
    await waitFor(() => bootRuns(d.state, 'warm').find((r) => r.outcome === 'ok'), 20_000, 'the boot run');
    await d.stop();

    // nightshift restarted (an upgrade, a crash): the machine did not boot.
    d = await startDaemon(home, { env });
    daemons.push(d);
    await d.stop();
    expect(bootRuns(d.state, 'warm')).toHaveLength(1);

    // The machine booted.
    boot('boot-2');
    d = await startDaemon(home, { env });
    daemons.push(d);
    await waitFor(() => (bootRuns(d.state, 'warm').length === 2 ? true : undefined), 20_000, 'the second boot run');
    const st = await cli(['--home', home, '--state', d.state, 'status']);
    expect(String(st.stdout)).toMatch(/warm .*— after the next boot \(@reboot\)/);
    const next = await cli(['--home', home, '--state', d.state, 'next', 'warm']);
    expect(String(next.stdout) + String(next.stderr)).toMatch(/once after each boot of the machine/);
  }, 120_000);

  it('a job that appears during a boot, or is off at the boot, waits for the next boot', async () => {
    const { home, env, boot } = bootedHome({ off: 'command: ["true"]\nschedule: "@reboot"\nenabled: false\n' });

    let d = await startDaemon(home, { env });
    daemons.push(d);
    writeJob(home, 'late', 'command: ["true"]\nschedule: "@reboot"\n');
    writeJob(home, 'off', 'command: ["true"]\nschedule: "@reboot"\n');
    await d.waitLog((l) => l.msg === 'job added' && l.job === 'late', 20_000, 'late added');
    await d.waitLog((l) => l.msg === 'job changed' && l.job === 'off', 20_000, 'off enabled');
    await d.stop();
    d = await startDaemon(home, { env });
    daemons.push(d);
    await d.stop();
    expect(bootRuns(d.state, 'late')).toHaveLength(0);
    expect(bootRuns(d.state, 'off')).toHaveLength(0);

    boot('boot-2');
    d = await startDaemon(home, { env });
    daemons.push(d);
    await waitFor(
      () => (bootRuns(d.state, 'late').length === 1 && bootRuns(d.state, 'off').length === 1 ? true : undefined),
      20_000,
      'both run after the next boot',
    );
  }, 120_000);
});

describe('@reboot, files written after the boot', () => {
  it('a job file renamed, or written while nightshift was stopped, waits for the next boot (cron had this boot)', async () => {
    const { home, env, boot } = bootedHome({ a: 'command: ["true"]\nschedule: "@reboot"\n' });
    let d = await startDaemon(home, { env });
    daemons.push(d);
    await waitFor(() => bootRuns(d.state, 'a')[0], 20_000, 'the boot run of a');
    await d.stop();
    // while it is stopped: a renamed (a new name to the claims) and an imported one
    renameSync(join(home, 'jobs', 'a.yaml'), join(home, 'jobs', 'renamed.yaml'));
    writeJob(home, 'imported', 'command: ["true"]\nschedule: "@reboot"\n');
    d = await startDaemon(home, { env });
    daemons.push(d);
    await d.stop();
    expect(bootRuns(d.state, 'renamed')).toHaveLength(0);
    expect(bootRuns(d.state, 'imported')).toHaveLength(0);
    boot('boot-2');
    d = await startDaemon(home, { env });
    daemons.push(d);
    await waitFor(
      () => (bootRuns(d.state, 'renamed').length === 1 && bootRuns(d.state, 'imported').length === 1 ? true : undefined),
      20_000,
      'both run after the next boot',
    );
  }, 120_000);
});

describe('user:', () => {
  it.runIf(AS_ROOT)(
    'runs the job as the account: uid, gid, groups, HOME, LOGNAME, USER and SHELL as cron sets them',
    async () => {
      // The account's own groups, as initgroups would set them, to compare with what the job saw.
      const want = await execa('id', ['-G', 'daemon']);
      const home = makeHome(
        {
          'as-daemon': `user: daemon\ncwd: /\nshell: 'id -u; id -g; id -G; echo "$HOME $LOGNAME $USER $SHELL"'\n`,
          where: 'user: daemon\ncommand: ["pwd"]\n',
        },
        'timezone: UTC\n',
      );
      dirs.push(home);
      const d = await startDaemon(home);
      daemons.push(d);
      const r = await cli(['--home', home, '--state', d.state, 'run', 'as-daemon']);
      expect({ exit: r.exitCode, out: String(r.stdout) + String(r.stderr) }).toMatchObject({ exit: 0 });
      const logs = await cli(['--home', home, '--state', d.state, 'logs', 'as-daemon']);
      const lines = String(logs.stdout).split('\n');
      const uid = Number((await execa('id', ['-u', 'daemon'])).stdout);
      const gid = Number((await execa('id', ['-g', 'daemon'])).stdout);
      const pw = readFileSync('/etc/passwd', 'utf8')
        .split('\n')
        .find((l) => l.startsWith('daemon:'))!
        .split(':');
      expect(lines).toContain(String(uid));
      expect(lines).toContain(String(gid));
      expect(lines).toContain(want.stdout.trim());
      expect(lines).toContain(`${pw[5]} daemon daemon /bin/sh`);
      const st = await cli(['--home', home, '--state', d.state, 'status']);
      expect(String(st.stdout)).toContain('Jobs run as other accounts: as-daemon as daemon, where as daemon.');
      // without a cwd of its own it starts in the account's HOME, as cron starts it
      await cli(['--home', home, '--state', d.state, 'run', 'where']);
      expect(String((await cli(['--home', home, '--state', d.state, 'logs', 'where'])).stdout).split('\n')).toContain(pw[5]);
    },
    60_000,
  );

  it.runIf(AS_ROOT)(
    'the account gets no way back to root and no way past the leash',
    async () => {
      // The attack: a job of another account tries to become root again, and to reach what is
      // nightshift's own (the state folder is hidden, the home read-only), as any job would.
      const home = makeHome(
        {
          climber: [
            'user: daemon',
            'cwd: /',
            'shell: |',
            '  grep -E "^Cap(Inh|Prm|Eff|Amb)" /proc/self/status',
            '  setpriv --reuid=0 --regid=0 --clear-groups id -u && echo BECAME-ROOT',
            '  ls -A "$STATE_DIR" | grep -q . && echo STATE-VISIBLE',
            '  touch "$HOME_DIR/jobs/planted.yaml" && echo HOME-WRITTEN',
            '  echo done',
            '',
          ].join('\n'),
        },
        'timezone: UTC\n',
      );
      dirs.push(home);
      writeFileSync(
        join(home, 'jobs', 'climber.yaml'),
        readFileSync(join(home, 'jobs', 'climber.yaml'), 'utf8') + `env: { STATE_DIR: ${join(home, 'state')}, HOME_DIR: ${home} }\n`,
      );
      const d = await startDaemon(home);
      daemons.push(d);
      // Open to every account as far as file permissions go: only the sandbox stands in the way.
      await execa('chmod', ['a+rwx', home, join(home, 'jobs'), d.state]);
      await cli(['--home', home, '--state', d.state, 'run', 'climber']);
      const out = String((await cli(['--home', home, '--state', d.state, 'logs', 'climber'])).stdout);
      expect(out).toContain('done');
      for (const cap of ['CapInh', 'CapPrm', 'CapEff', 'CapAmb']) expect(out).toMatch(new RegExp(`${cap}:\\s+0+\\n`));
      expect(out).not.toMatch(/BECAME-ROOT|STATE-VISIBLE|HOME-WRITTEN/);
      expect(existsSync(join(home, 'jobs', 'planted.yaml'))).toBe(false);
    },
    60_000,
  );

  it.runIf(AS_ROOT)(
    "the loader's variables of a job's env reach its command only, not bwrap or setpriv running as root",
    async () => {
      // The attack: a crontab imported with --user carries its owner's LD_PRELOAD into the job's env.
      // Obeyed by bwrap (root, with the daemon's capabilities) or by setpriv (root, before it drops),
      // the owner's library would run as root. A library that does not exist makes every program that
      // tries to load it say so on stderr: the command alone may say it, once.
      const env = 'env: { LD_PRELOAD: /nonexistent/ns-preload-probe.so, GCONV_PATH: /nonexistent/gconv }\n';
      const home = makeHome(
        {
          mine: `user: daemon\ncwd: /\ncommand: ["sh", "-c", "echo LD=$LD_PRELOAD GCONV=$GCONV_PATH"]\n${env}`,
          roots: `cwd: /\ncommand: ["sh", "-c", "echo LD=$LD_PRELOAD"]\n${env}`,
        },
        'timezone: UTC\n',
      );
      dirs.push(home);
      const d = await startDaemon(home);
      daemons.push(d);
      for (const job of ['mine', 'roots']) {
        await cli(['--home', home, '--state', d.state, 'run', job]);
        const out = String((await cli(['--home', home, '--state', d.state, 'logs', job])).stdout);
        expect(out).toContain('LD=/nonexistent/ns-preload-probe.so');
        expect(out.match(/ns-preload-probe\.so' from LD_PRELOAD cannot be preloaded/g)).toHaveLength(1);
      }
    },
    60_000,
  );

  it.runIf(AS_ROOT)(
    "a PATH in the job's env does not choose the bwrap or setpriv that run as root",
    async () => {
      // The attack: the job's PATH (a crontab's PATH= line) puts a folder of the account's first,
      // holding programs named bwrap and setpriv that would run as root if looked up there.
      const planted = tempDir('ns-planted-bin-');
      dirs.push(planted);
      for (const name of ['bwrap', 'setpriv']) {
        writeFileSync(join(planted, name), `#!/bin/sh\ntouch ${planted}/RAN-${name}\nexit 0\n`);
        await execa('chmod', ['755', join(planted, name)]);
      }
      await execa('chmod', ['755', planted]);
      const home = makeHome(
        { mine: `user: daemon\ncwd: /\ncommand: ["sh", "-c", "id -un"]\nenv: { PATH: "${planted}:/usr/bin:/bin" }\n` },
        'timezone: UTC\n',
      );
      dirs.push(home);
      const d = await startDaemon(home);
      daemons.push(d);
      const r = await cli(['--home', home, '--state', d.state, 'run', 'mine']);
      expect(String(r.stdout)).toContain('daemon');
      expect(existsSync(join(planted, 'RAN-bwrap'))).toBe(false);
      expect(existsSync(join(planted, 'RAN-setpriv'))).toBe(false);
    },
    60_000,
  );

  it.runIf(AS_ROOT)('a daemon that is not root refuses the job at validate, saying how to run it', async () => {
    const home = makeHome({ 'as-backup': 'user: backup\ncommand: ["true"]\n' }, 'timezone: UTC\n');
    dirs.push(home);
    await execa('chmod', ['-R', 'a+rX', home]);
    const v = await execa(
      'setpriv',
      ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'node', CLI_PATH, '--home', home, 'validate'],
      {
        reject: false,
      },
    );
    expect(v.exitCode).toBe(2);
    expect(String(v.stdout) + String(v.stderr)).toMatch(
      /as-backup\.yaml:1: user: the job runs as "backup", but nightshift runs as "nobody".*root-mode unit \(deploy\/nightshift-root\.service/,
    );
  });

  it('an account that does not exist is refused with the file and line', async () => {
    const home = makeHome({ ghost: 'description: x\nuser: no-such-account-here\ncommand: ["true"]\n' }, 'timezone: UTC\n');
    dirs.push(home);
    const v = await cli(['--home', home, 'validate']);
    expect(v.exitCode).toBe(2);
    expect(String(v.stdout) + String(v.stderr)).toMatch(
      AS_ROOT
        ? /ghost\.yaml:2: user: there is no account "no-such-account-here"/
        : /ghost\.yaml:2: user: the job runs as "no-such-account-here"/,
    );
  });
});

const CLI_PATH = join(import.meta.dirname, '..', '..', 'dist', 'cli.js');

describe('a job the service may not let write', () => {
  // The unit's ProtectSystem=strict is a read-only bind mount of the whole file system; here one
  // folder is made read-only the same way, for a daemon that believes it runs under systemd.
  it.runIf(AS_ROOT)(
    'fails with a reason that says which folder to add to ReadWritePaths, in status and the digest',
    async () => {
      const backups = tempDir('ns-backups-');
      dirs.push(backups);
      const home = makeHome({ 'db-backup': `shell: 'echo dumping; echo data > ${backups}/shop.sql'\n` }, 'timezone: UTC\n');
      dirs.push(home);
      const mountRo = `mount --bind ${backups} ${backups} && mount -o remount,bind,ro ${backups} && exec "$@"`;
      const d = await startDaemon(home, {
        prefix: ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', mountRo, 'sh'],
        env: { ...process.env, INVOCATION_ID: 'test-invocation' },
      });
      daemons.push(d);
      const r = await cli(['--home', home, '--state', d.state, 'run', 'db-backup']);
      expect(r.exitCode).not.toBe(0);
      const advice = `The service may not write ${backups}/shop.sql (read-only file system): add ${backups} to ReadWritePaths= with \`systemctl edit nightshift\``;
      const status = String((await cli(['--home', home, '--state', d.state, 'status'])).stdout);
      expect(status.replace(/\s+/g, ' ')).toContain(advice);
      const digest = String((await cli(['--home', home, '--state', d.state, 'digest'])).stdout);
      expect(digest.replace(/\s+/g, ' ')).toContain(advice);
    },
    60_000,
  );
});
