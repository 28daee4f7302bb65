// deploy/install.sh without --root: the real install, as root, on this machine's paths — but inside a
// private mount namespace in which /etc is a copy and /opt, /usr/local/bin, /var/lib and
// /var/backups are empty folders, so that nothing outside changes (this machine keeps its accounts,
// /opt and commands). There is no systemd as PID 1 here: the script says so and starts nothing.
// What only this shows: the account made by useradd, the home readable by that account
// (validate runs as it, with runuser), and the command /usr/local/bin/nightshift actually working.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, ROOT, tempDir } from '../support/helpers.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) cleanup(d);
}, 120_000);

describe('deploy/install.sh on the real paths (in a private mount namespace)', () => {
  it('creates the account with useradd, keeps an existing home file, and installs a command that runs as the account', () => {
    if (process.getuid?.() !== 0)
      // Deliberately a failure, not a skip: CI runs as root; only root can make the account.
      throw new Error('this test runs deploy/install.sh as root in a private mount namespace: run it as root');
    const t = tempDir('ns-system-');
    dirs.push(t);
    const etc = join(t, 'etc');
    const copy = spawnSync('cp', ['-a', '/etc/.', `${etc}/`], { encoding: 'utf8' });
    expect(existsSync(join(etc, 'passwd')), copy.stderr).toBe(true);
    expect(readFileSync(join(etc, 'passwd'), 'utf8')).not.toMatch(/^nightshift:/m); // this machine has none
    // an operator's policy, there before the install: kept as it is
    mkdirSync(join(etc, 'nightshift', 'protected'), { recursive: true });
    writeFileSync(join(etc, 'nightshift', 'protected', 'policy.yaml'), 'timezone: UTC\n# mine\n');
    const empty = ['opt', 'usr-local-bin', 'var-lib', 'var-backups'].map((n) => {
      mkdirSync(join(t, n));
      return join(t, n);
    });
    const script = `set -e
mount --bind ${etc} /etc
mount --bind ${empty[0]} /opt
mount --bind ${empty[1]} /usr/local/bin
mount --bind ${empty[2]} /var/lib
mount --bind ${empty[3]} /var/backups
set +e
bash ${join(ROOT, 'deploy', 'install.sh')}; echo "install: exit $?"
nightshift validate; echo "wrapper validate: exit $?"
runuser -u nightshift -- cat /etc/nightshift/protected/policy.yaml >/dev/null; echo "account reads the policy: exit $?"
runuser -u nightshift -- touch /etc/nightshift/jobs/x.yaml 2>/dev/null; echo "account writes jobs/: exit $?"
setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/local/bin/nightshift status; echo "wrapper as nobody: exit $?"
`;
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', script], { encoding: 'utf8', timeout: 120_000 });
    const out = `${r.stdout}${r.stderr}`;
    expect(r.status, out).toBe(0);
    expect(out).toContain('install: exit 0');
    expect(out).toMatch(/install\.sh: account nightshift created/);
    expect(out).toContain('systemd is not running here');
    // useradd's entry, in the copy of /etc
    expect(readFileSync(join(etc, 'passwd'), 'utf8')).toMatch(/^nightshift:x:\d+:\d+:[^:]*:\/var\/lib\/nightshift:\/usr\/sbin\/nologin$/m);
    // the existing home file, untouched; the missing folders made, readable by the account only
    expect(readFileSync(join(etc, 'nightshift', 'protected', 'policy.yaml'), 'utf8')).toBe('timezone: UTC\n# mine\n');
    expect(out).toContain('protected/policy.yaml exists: kept as it is');
    expect(statSync(join(etc, 'nightshift', 'jobs')).mode & 0o777).toBe(0o750);
    expect(out).toContain('account reads the policy: exit 0');
    expect(out).toContain('account writes jobs/: exit 1'); // the leash: specs are root's
    // the operator's command works, as the account, on the service's home
    expect(out).toMatch(/ok: 0 job\(s\), 0 rule\(s\), policy valid\nwrapper validate: exit 0/);
    expect(out).toContain('nightshift: run it as root (sudo nightshift status)');
    expect(out).toContain('wrapper as nobody: exit 2');
    // and the program and the unit landed on the real paths (here: the folders mounted there)
    expect(existsSync(join(empty[0]!, 'nightshift', 'dist', 'cli.js'))).toBe(true);
    expect(readFileSync(join(etc, 'systemd', 'system', 'nightshift.service'), 'utf8')).toBe(
      readFileSync(join(ROOT, 'deploy', 'nightshift.service'), 'utf8'),
    );
    expect(existsSync(join(empty[1]!, 'nightshift'))).toBe(true);
  }, 120_000);
});
