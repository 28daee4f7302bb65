// Issue 16: a job moved from cron that may not write its folder under the service's sandbox fails
// on its first night; its run's reason (and so status, the digest and the alert) says what to do.
import { describe, expect, it } from 'vitest';
import { denialSentence, findDenial } from '../../../src/run/denied.js';
import type { Leash } from '../../../src/run/launch.js';

const leash: Leash = { home: '/etc/nightshift', hiddenDirs: ['/var/lib/nightshift'], hiddenFiles: [], readOnly: ['/etc/nightshift/jobs'] };

describe('findDenial', () => {
  // What the usual tools print when a write meets a read-only file system or a denied folder.
  it.each([
    ['sh: 1: cannot create /var/backups/shop.sql.gz: Read-only file system', 'read-only', '/var/backups/shop.sql.gz'],
    ["touch: cannot touch '/var/backups/x': Read-only file system", 'read-only', '/var/backups/x'],
    ["cp: cannot create regular file '/srv/share/orders.csv': Read-only file system", 'read-only', '/srv/share/orders.csv'],
    ['tar: /var/backups/etc.tar: Cannot open: Read-only file system', 'read-only', '/var/backups/etc.tar'],
    ["OSError: [Errno 30] Read-only file system: '/var/reports/day.pdf'", 'read-only', '/var/reports/day.pdf'],
    ['mkdir: cannot create directory ‘/opt/app/cache’: Read-only file system', 'read-only', '/opt/app/cache'],
    ["PermissionError: [Errno 13] Permission denied: '/home/shop/out.csv'", 'permission', '/home/shop/out.csv'],
    // dash speaks first with its own path; the file is relative to where the job ran
    ['/bin/sh: 1: cannot create ./out.txt: Permission denied', 'permission', '/srv/shop/out.txt'],
    ['sh: 1: cannot create out.txt: Read-only file system', 'read-only', '/srv/shop/out.txt'],
    ["PermissionError: [Errno 13] Permission denied: 'report.csv'", 'permission', '/srv/shop/report.csv'],
    ['/usr/local/bin/report.sh: line 3: /var/log/report.log: Permission denied', 'permission', '/var/log/report.log'],
  ])('%s', (line, kind, path) => {
    expect(findDenial(`starting\n${line}\n`, '/srv/shop')).toEqual({ kind, path });
  });

  it('takes the last denial (the one the run died of) and ignores output without one', () => {
    expect(findDenial('touch: cannot touch /a/b: Read-only file system\nrm: /c/d: Permission denied\n', '/')).toEqual({
      kind: 'permission',
      path: '/c/d',
    });
    expect(findDenial('exported 12 orders\nall done\n', '/')).toBeNull();
    expect(findDenial('Permission denied (publickey).\n', '/')).toBeNull();
    expect(findDenial('ssh: connect: Permission denied\n', '/')).toBeNull();
  });
});

describe('denialSentence', () => {
  it('under systemd: names the folder to add to ReadWritePaths and where to read more', () => {
    const s = denialSentence({ kind: 'read-only', path: '/var/backups/shop.sql.gz' }, { leash, systemd: true, account: 'root' });
    expect(s).toBe(
      'The service may not write /var/backups/shop.sql.gz (read-only file system): add /var/backups to ReadWritePaths= with `systemctl edit nightshift`, then restart nightshift; see deploy/README.md.',
    );
  });

  it("a path of nightshift's own is not to be opened: it says to write elsewhere", () => {
    const s = denialSentence({ kind: 'read-only', path: '/etc/nightshift/jobs/x.yaml' }, { leash, systemd: true, account: 'root' });
    expect(s).toMatch(/nightshift keeps \/etc\/nightshift\/jobs out of every job's reach/);
    expect(s).not.toMatch(/ReadWritePaths/);
  });

  it('permission denied: the account, or the hidden home folders under systemd', () => {
    expect(denialSentence({ kind: 'permission', path: '/srv/x' }, { leash, systemd: true, account: 'backup' })).toMatch(
      /it runs as backup; give that account access/,
    );
    expect(denialSentence({ kind: 'permission', path: '/home/shop/x' }, { leash, systemd: true, account: 'shop' })).toMatch(
      /hides \/home from jobs \(ProtectHome=\)/,
    );
    expect(denialSentence({ kind: 'read-only', path: '/mnt/cd/x' }, { leash, systemd: false, account: 'me' })).toBe(
      '/mnt/cd/x is on a read-only file system.',
    );
  });
});
