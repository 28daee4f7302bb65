// `nightshift import crontab` as an operator moving from cron meets it: the real program (dist/) in a
// child process, real files in temporary homes, a real `crontab` program replaced by a script on PATH
// where the machine's own crontab would be read.
import { chmodSync, copyFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { CLI, FIXTURES, cli, makeHome, startDaemon, tempDir, trackDaemons } from '../support/helpers.js';

const { daemons, dirs } = trackDaemons();
const AS_ROOT = process.getuid?.() === 0;
const USER_100 = join(FIXTURES, 'crontabs', 'user-100');
const DEBIAN = join(FIXTURES, 'crontabs', 'debian-etc-crontab');

function home(): string {
  const h = makeHome();
  dirs.push(h);
  return h;
}

const jobsOf = (h: string) => readdirSync(join(h, 'jobs')).sort();

describe('import crontab', () => {
  it('--help says what it reads, what it writes and its exit codes', async () => {
    const r = await cli(['import', '--help']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('usage: nightshift [--home DIR] import crontab [FILE|-] [--system] [--user NAME] [--write]');
    for (const words of ['crontab -l', '--system', 'never overwritten', 'comment the', 'ReadWritePaths', 'Exit 0'])
      expect(r.stdout).toContain(words);
  });

  it('previews a 100-line crontab without writing anything: names, schedules, notes, units for daemons, the drop-in', async () => {
    const h = home();
    const r = await cli(['--home', h, 'import', 'crontab', USER_100], { env: { TZ: 'Europe/Zurich' } });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe('');
    expect(jobsOf(h)).toEqual([]);
    const out = r.stdout;
    expect(out).toMatch(
      /^11 +30 2 \* \* \* \(Europe\/Zurich\) +backup-db +- +\/usr\/local\/bin\/backup-db\.sh > \/var\/backups\/shop\/db\.log 2>&1$/m,
    );
    expect(out).toMatch(/^90 +30 2 \* \* \* \(America\/New_York\) +ny-0230 /m);
    expect(out).toMatch(/^32 +@reboot +warm-cache /m);
    expect(out).toContain("CRON_TZ=America/New_York: Debian's cron ignores CRON_TZ");
    expect(out).toContain('add ops@shop.example to digest.to');
    // daemons: a unit each, not a job
    expect(out).toContain('# /etc/systemd/system/shop-worker.service — instead of crontab line 33:');
    expect(out).toContain('ExecStart=/bin/sh -c "/usr/local/bin/shop-worker"');
    expect(out).not.toMatch(/^33 /m);
    // what they write, and the drop-in that grants it
    expect(out).toContain('The drop-in that grants them (systemctl edit nightshift');
    expect(out).toMatch(/^ReadWritePaths=.*-\/var\/backups\/shop( |$)/m);
    expect(out).not.toMatch(/^ReadWritePaths=.*\/tmp/m);
    expect(out).toContain('Run again with --write to create 68 file(s)');
  });

  it('--write creates valid job files saying where they came from, never overwrites, and says which lines to comment out', async () => {
    const h = home();
    writeFileSync(join(h, 'jobs', 'payroll.yaml'), '# mine\nschedule: "0 9 * * *"\ncommand: ["/bin/true"]\n');
    const r = await cli(['--home', h, 'import', 'crontab', USER_100, '--write'], { env: { TZ: 'Europe/Zurich' } });
    expect(r.exitCode).toBe(0);
    expect(jobsOf(h)).toHaveLength(68);
    expect(readFileSync(join(h, 'jobs', 'payroll.yaml'), 'utf8')).toBe('# mine\nschedule: "0 9 * * *"\ncommand: ["/bin/true"]\n');
    expect(r.stdout).toContain(`kept: ${join(h, 'jobs', 'payroll.yaml')} exists and is different; not overwritten`);
    expect(r.stdout).toContain('ok: 67 job file(s) written and valid');
    expect(r.stdout).toMatch(/Now comment out lines 11, 12, .*, 33, .*, 100 of .*user-100 \(put "#" in front; crontab -e\)/);
    const backup = readFileSync(join(h, 'jobs', 'backup-db.yaml'), 'utf8');
    expect(backup).toMatch(
      /^# from crontab line 11: 30 2 \* \* \* +\/usr\/local\/bin\/backup-db\.sh > \/var\/backups\/shop\/db\.log 2>&1$/m,
    );
    expect(backup).toContain('schedule: "30 2 * * *"');
    // its env came from a crontab only its owner could read: not world-readable, in the group of jobs/
    const st = statSync(join(h, 'jobs', 'backup-db.yaml'));
    expect(st.mode & 0o777).toBe(0o640);
    expect(st.gid).toBe(statSync(join(h, 'jobs')).gid);
    expect(backup).toContain('timezone: "Europe/Zurich"');
    const v = await cli(['--home', h, 'validate']);
    expect(v.stdout).toContain('ok: 68 job(s)');
    expect(v.exitCode).toBe(0);
    // the daemon's own reading of a written file: 02:30 on the night clocks skip runs at 03:00
    const next = await cli(['--home', h, 'next', 'zurich-0230', '--from', '2026-03-28T12:00:00Z', '--count', '2'], {
      env: { TZ: 'Europe/Zurich' },
    });
    expect(next.stdout).toContain('2026-03-29T03:00:00+02:00');
    expect(next.stdout).toContain('2026-03-30T02:30:00+02:00');
    // again: the same text is recognised, nothing is written twice
    const again = await cli(['--home', h, 'import', 'crontab', USER_100, '--write'], { env: { TZ: 'Europe/Zurich' } });
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toContain(`already imported: ${join(h, 'jobs', 'backup-db.yaml')} (the same text; kept)`);
    expect(again.stdout).not.toContain('written: ');
    expect(jobsOf(h)).toHaveLength(68);
  });

  it('a job imported from a line with "%" gets, run by the daemon, the standard input cron gave the line', async () => {
    const h = home();
    const dir = tempDir('ns-cron-out-');
    dirs.push(dir);
    // The line and the bytes are those of the real Debian cron run in tests/unit/config/crontab.test.ts.
    const crontab = `GREETING="  hello"\n* * * * * cat > ${dir}/stdin; env > ${dir}/env%line1%line2\\%kept%a\\\\b%\\x%%end\\\n`;
    writeFileSync(join(dir, 'crontab'), crontab);
    const w = await cli(['--home', h, 'import', 'crontab', join(dir, 'crontab'), '--write']);
    expect(w.exitCode).toBe(0);
    expect(jobsOf(h)).toEqual(['cat.yaml']);
    const d = await startDaemon(h);
    daemons.push(d);
    const r = await cli(['--home', h, 'run', 'cat']);
    expect(r.stdout).toContain('ok');
    expect(r.exitCode).toBe(0);
    expect(readFileSync(join(dir, 'stdin'), 'utf8')).toBe('line1\nline2%kept\na\\\\b\n\\x\n\nend\\\n');
    const env = readFileSync(join(dir, 'env'), 'utf8').split('\n');
    expect(env).toContain('GREETING=  hello');
    expect(env).toContain('SHELL=/bin/sh');
    expect(env).toContain('PATH=/usr/bin:/bin');
    await d.stop();
  });

  it('reads standard input with "-"', async () => {
    const h = home();
    const r = await execa('node', [CLI, '--home', h, 'import', 'crontab', '-', '--write'], {
      input: 'MAILTO=""\n*/5 * * * * /usr/local/bin/poll --fast\n',
      reject: false,
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('Importing standard input (a user crontab)');
    expect(jobsOf(h)).toEqual(['poll.yaml']);
    const text = readFileSync(join(h, 'jobs', 'poll.yaml'), 'utf8');
    expect(text).toContain('command: ["/usr/local/bin/poll", "--fast"]');
    expect(text).toContain('"MAILTO": ""');
  });

  it("--system reads the user column of Debian's /etc/crontab: user: root, the PATH it sets, Sunday written 7", async () => {
    const h = home();
    const r = await cli(['--home', h, 'import', 'crontab', DEBIAN, '--system', '--write']);
    const weekly = join(h, 'jobs', 'cron-weekly.yaml');
    if (AS_ROOT) {
      expect(r.exitCode).toBe(0);
      expect(jobsOf(h)).toEqual(['cron-daily.yaml', 'cron-hourly.yaml', 'cron-monthly.yaml', 'cron-weekly.yaml']);
      const text = readFileSync(weekly, 'utf8');
      expect(text).toContain('schedule: "47 6 * * 7"');
      expect(text).toContain('user: "root"');
      expect(text).toContain('"PATH": "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin"');
      expect(text).toContain('shell: "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.weekly; }"');
      expect((await cli(['--home', h, 'validate'])).exitCode).toBe(0);
    } else {
      // a nightshift that is not root cannot run a job as root: not written, and said why
      expect(r.exitCode).toBe(1);
      expect(r.stdout).toContain(`not written: ${weekly} would not be valid here:`);
      expect(jobsOf(h)).toEqual([]);
    }
  });

  it('without FILE reads `crontab -l` (of --user NAME with -l -u NAME), and says so when there is no crontab', async () => {
    const h = home();
    const bin = tempDir('ns-bin-');
    dirs.push(bin);
    const fake = join(bin, 'crontab');
    const argsFile = join(bin, 'args');
    writeFileSync(
      fake,
      `#!/bin/sh\necho "$@" > ${argsFile}\nif [ "$3" = ghost ]; then echo "no crontab for ghost" >&2; exit 1; fi\nprintf '0 4 * * * /usr/local/bin/from-crontab-l\\n'\n`,
    );
    chmodSync(fake, 0o755);
    const env = { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` };
    const mine = await cli(['--home', h, 'import', 'crontab'], { env });
    expect(mine.exitCode).toBe(0);
    expect(readFileSync(argsFile, 'utf8').trim()).toBe('-l');
    expect(mine.stdout).toMatch(/Importing the crontab of .* \(crontab -l\)/);
    expect(mine.stdout).toContain('from-crontab-l');
    // without --user the jobs run as nightshift's own account: the preview says so, and how to keep cron's
    expect(mine.stdout).toMatch(
      /Who runs them: these jobs get no "user:", so they run as the account nightshift runs as .* import with --user \S+ instead/,
    );
    const root = await cli(['--home', h, 'import', 'crontab', '--user', 'root'], { env });
    expect(root.exitCode).toBe(0);
    expect(readFileSync(argsFile, 'utf8').trim()).toBe('-l -u root');
    expect(root.stdout).toMatch(/^\d+ +0 4 \* \* \* .* +from-crontab-l +root +/m);
    expect(root.stdout).not.toContain('Who runs them');
    const asJson = await cli(['--home', h, 'import', 'crontab', '--user', 'root', '--json'], { env });
    const job = (JSON.parse(asJson.stdout) as { jobs: Array<{ yaml: string }> }).jobs[0]!;
    expect(job.yaml).toContain('user: "root"');
    expect(job.yaml).toContain('"LOGNAME": "root"');
    // "ghost" has no account here: refused before crontab is asked
    const ghost = await cli(['--home', h, 'import', 'crontab', '--user', 'ghost'], { env });
    expect(ghost.exitCode).toBe(2);
    expect(ghost.stderr).toContain('no account named "ghost"');
  });

  it('"no crontab for X" is no error: nothing to import', async () => {
    const h = home();
    const bin = tempDir('ns-bin-');
    dirs.push(bin);
    writeFileSync(join(bin, 'crontab'), '#!/bin/sh\necho "no crontab for $(id -un)" >&2\nexit 1\n');
    chmodSync(join(bin, 'crontab'), 0o755);
    const r = await cli(['--home', h, 'import', 'crontab'], { env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` } });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/has no crontab \(no crontab for .*\): nothing to import/);
  });

  it('errors name the file and line; refused lines are skipped and the rest imported disabled; nothing importable is exit 2', async () => {
    const h = home();
    const dir = tempDir('ns-cron-');
    dirs.push(dir);
    const mixed = join(dir, 'mixed');
    writeFileSync(mixed, '0 1 * * * /usr/local/bin/good\n@DAILY /usr/local/bin/bad\nMAILTO=\n');
    const r = await cli(['--home', h, 'import', 'crontab', mixed, '--write']);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain(`${mixed}:2: bad time specifier "@DAILY" (nicknames are lower case to Debian's cron: @daily) — skipped`);
    expect(r.stderr).toContain(`${mixed}:3: bad minute`);
    expect(r.stdout).toContain("Debian's cron ignores the whole file");
    expect(readFileSync(join(h, 'jobs', 'good.yaml'), 'utf8')).toContain('enabled: false');

    const bad = join(dir, 'bad');
    writeFileSync(bad, '61 * * * * /bin/x\n');
    const b = await cli(['--home', h, 'import', 'crontab', bad]);
    expect(b.exitCode).toBe(2);
    expect(b.stderr).toContain(`${bad}:1: minute field "61": 61 is out of range 0-59 — skipped`);

    const latin1 = join(dir, 'latin1');
    writeFileSync(latin1, Buffer.from('# ok\n0 1 * * * echo caf\xe9\n', 'latin1'));
    const l = await cli(['--home', h, 'import', 'crontab', latin1]);
    expect(l.exitCode).toBe(2);
    expect(l.stderr).toContain(`${latin1}:2: byte 23 is not UTF-8 (0xe9)`);

    const missing = await cli(['--home', h, 'import', 'crontab', join(dir, 'nope')]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain(`cannot read ${join(dir, 'nope')} (ENOENT)`);
    expect((await cli(['--home', h, 'import', 'crontab', '--system'])).stderr).toContain('--system needs the file');
    expect((await cli(['--home', h, 'import', 'fstab'])).stderr).toContain('only "crontab" is known');
    expect((await cli(['--home', h, 'import', 'crontab', DEBIAN, '--system', '--user', 'root'])).exitCode).toBe(2);
  });

  it('two lines that want the same name get -2, and the same input gives the same names again', async () => {
    const h = home();
    const dir = tempDir('ns-cron-');
    dirs.push(dir);
    const f = join(dir, 'dups');
    writeFileSync(f, '0 1 * * * /opt/a/backup.sh\n0 2 * * * /opt/b/backup.sh\n0 3 * * * python3 /opt/c/backup.py\n');
    copyFileSync(f, join(dir, 'dups-copy'));
    const one = await cli(['--home', h, 'import', 'crontab', f, '--json']);
    const two = await cli(['--home', h, 'import', 'crontab', join(dir, 'dups-copy'), '--json']);
    const names = (s: string) => (JSON.parse(s) as { jobs: Array<{ name: string }> }).jobs.map((j) => j.name);
    expect(names(one.stdout)).toEqual(['backup', 'backup-2', 'backup-3']);
    expect(names(two.stdout)).toEqual(names(one.stdout));
  });
});
