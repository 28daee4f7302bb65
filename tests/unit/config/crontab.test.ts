// `nightshift import crontab`, its reading of a crontab and its mapping to job specs. What Debian's
// cron (3.0pl1-162) does with the tricky lines was observed on a real one: files in /etc/cron.d
// with these lines, `cron -f` run for a few minutes, and what each command wrote to a file (its
// environment, its standard input, whether it ran at all); validity by `crontab -n FILE`. Those
// observations are the constants marked OBSERVED below.
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCrontab, parseEnvLine, splitPercent, cronDNameProblem } from '../../../src/import/crontab.js';
import { planImport, type Account, type ImportOptions, type PlannedJob } from '../../../src/import/plan.js';
import { commandWrites, daemonReason, isPlainWords, nameHint } from '../../../src/import/shell.js';
import { DEFAULT_POLICY, jobFromText } from '../../../src/config/home.js';

const temps: string[] = [];
afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ns-crontab-'));
  temps.push(d);
  return d;
}

const ACCOUNTS: Record<string, Account> = {
  root: { name: 'root', home: '/root' },
  kevin: { name: 'kevin', home: '/home/kevin' },
  backup: { name: 'backup', home: '/var/backups' },
};

function opts(o: Partial<ImportOptions> = {}): ImportOptions {
  return {
    kind: 'user',
    source: 'test crontab',
    owner: ACCOUNTS.kevin!,
    userField: null,
    account: (n) => ACCOUNTS[n] ?? null,
    systemZone: 'Europe/Zurich',
    exists: () => true,
    ...o,
  };
}

function only(text: string, o: Partial<ImportOptions> = {}): PlannedJob {
  const plan = planImport(text, opts(o));
  expect(plan.problems).toEqual([]);
  expect(plan.jobs).toHaveLength(1);
  return plan.jobs[0]!;
}

/** The job file as the daemon loads it (the same function as validate and the daemon). */
function load(j: PlannedJob) {
  const r = jobFromText(`/srv/home/jobs/${j.name}.yaml`, j.yaml, '/srv/home', DEFAULT_POLICY);
  if (!r.ok) throw new Error(r.problems.map((p) => `${p.line}: ${p.field}: ${p.message}`).join('\n'));
  return r.value;
}

describe('variable lines, as env.c reads them', () => {
  // OBSERVED: `env` run by cron under these settings printed exactly these values.
  const observed: Array<[string, string, string]> = [
    ['A1="x y"', 'A1', 'x y'],
    ["A2 = 'quoted with spaces  '  ", 'A2', 'quoted with spaces'],
    ['A3=unquoted value # not a comment', 'A3', 'unquoted value # not a comment'],
    ['A4 =  "it\'s"', 'A4', "it's"],
    ['A5=a"b"', 'A5', 'a"b"'],
    ['A6="\'double\'"', 'A6', 'double'],
    ['A7="  lead"', 'A7', '  lead'],
    ['MAILTO=""', 'MAILTO', ''],
    ['B1=val\r', 'B1', 'val'],
  ];
  it.each(observed)('%j sets %s to %j', (line, name, value) => {
    expect(parseEnvLine(line)).toEqual({ name, value });
  });

  it('takes $VAR literally, and accepts what crontab -n accepts (an empty or quoted name)', () => {
    expect(parseEnvLine('PATH=$HOME/bin:/usr/bin')).toEqual({ name: 'PATH', value: '$HOME/bin:/usr/bin' });
    expect(parseEnvLine('=x')).toEqual({ name: '', value: 'x' });
    expect(parseEnvLine('"A B"=c')).toEqual({ name: 'A B', value: 'c' });
    expect(parseEnvLine('A=b "c')).toEqual({ name: 'A', value: 'b "c' });
  });

  it('is not a setting where crontab -n refuses the line (OBSERVED: "bad minute")', () => {
    expect(parseEnvLine('MAILTO=')).toBeNull();
    expect(parseEnvLine("A='x' y")).toBeNull();
    expect(parseEnvLine('0 3 * * * FOO=bar cmd')).toBeNull();
    const p = parseCrontab('MAILTO=\n* * * * * true\n', { kind: 'user' });
    expect(p.problems).toEqual([{ line: 1, text: 'MAILTO=', message: expect.stringMatching(/^bad minute: .*write MAILTO=""/) }]);
    expect(p.ignoredBecause).toContain('ignores the whole file');
  });
});

describe('"%" and standard input, as do_command.c does them', () => {
  // OBSERVED: `cat > FILE%line1%line2\%kept%a\\b%\x%%end\` — the bytes cat received under cron.
  const STDIN_LINE = '* * * * * cat > OUT%line1%line2\\%kept%a\\\\b%\\x%%end\\';
  const STDIN_BYTES = 'line1\nline2%kept\na\\\\b\n\\x\n\nend\\\n';

  it('splits the command at the first unescaped % and turns the rest into standard input', () => {
    expect(splitPercent('cat > OUT%line1%line2\\%kept%a\\\\b%\\x%%end\\')).toEqual({ command: 'cat > OUT', stdin: STDIN_BYTES });
    // OBSERVED: "cmd%" gives an empty input, "%no newline at end" gets one.
    expect(splitPercent('cat%')).toEqual({ command: 'cat', stdin: null });
    expect(splitPercent('cat%no newline at end')).toEqual({ command: 'cat', stdin: 'no newline at end\n' });
    // OBSERVED: in the command \% is % and \\ is \ (test 'a\\b' = 'a\b' was true under cron); \\% splits.
    expect(splitPercent("date +\\%F; test 'a\\\\b' = 'a\\b'")).toEqual({ command: "date +%F; test 'a\\b' = 'a\\b'", stdin: null });
    expect(splitPercent("test 'q\\\\%r' = x")).toEqual({ command: "test 'q\\", stdin: "r' = x\n" });
    // even inside quotes
    expect(splitPercent("printf '%s'")).toEqual({ command: "printf '", stdin: "s'\n" });
  });

  it('a real run of the imported job receives the bytes cron gave it, through /bin/sh and through another SHELL', async () => {
    const dir = tempDir();
    for (const shell of ['/bin/sh', '/bin/bash']) {
      const out = join(dir, `stdin-${shell.replace(/\//g, '_')}`);
      const j = only(`SHELL=${shell}\n${STDIN_LINE.replace('OUT', out)}\n`);
      expect(j.notes.join('\n')).toContain('standard input');
      const spec = load(j).spec;
      expect(spec.shell).toBeDefined();
      // exactly as the runner starts a shell: job (src/run/runner.ts argvOf)
      const r = await execa('/bin/sh', ['-c', spec.shell!], { env: spec.env, extendEnv: false, cwd: dir, reject: false });
      expect(r.exitCode).toBe(0);
      expect(readFileSync(out, 'utf8')).toBe(STDIN_BYTES);
    }
  });

  it("a run of the imported job sees cron's environment: the crontab's values and cron's defaults", async () => {
    const dir = tempDir();
    const out = join(dir, 'env');
    const text = [
      'A1="x y"',
      "A2 = 'quoted with spaces  '  ",
      'A6="\'double\'"',
      'A7="  lead"',
      'MAILTO=""',
      `* * * * * env > ${out}`,
      '',
    ].join('\n');
    const j = only(text, { owner: { name: 'kevin', home: dir } });
    const spec = load(j).spec;
    expect(j.cwd).toBe(dir);
    await execa('/bin/sh', ['-c', spec.shell!], { env: spec.env, extendEnv: false, cwd: j.cwd });
    const env = Object.fromEntries(
      readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    // OBSERVED under cron (with HOME and LOGNAME of the crontab's owner; PWD is set by sh)
    expect(env).toEqual({
      A1: 'x y',
      A2: 'quoted with spaces',
      A6: 'double',
      A7: '  lead',
      MAILTO: '',
      SHELL: '/bin/sh',
      PATH: '/usr/bin:/bin',
      HOME: dir,
      LOGNAME: 'kevin',
      PWD: dir,
    });
  });
});

describe('lines and files, as load_user and load_entry read them', () => {
  it('skips comments and blank lines; a setting applies to the lines below it only', () => {
    const p = parseCrontab('# c\n\n   # indented\n\t\n0 1 * * * a\nX=1\n0 2 * * * b\nX=2\n0 3 * * * c\n', { kind: 'user' });
    expect(p.jobs.map((j) => [j.line, j.command, j.env])).toEqual([
      [5, 'a', []],
      [7, 'b', [['X', '1']]],
      [9, 'c', [['X', '2']]],
    ]);
  });

  it('reads tabs as blanks', () => {
    const p = parseCrontab('0\t3\t*\t*\t*\t/usr/bin/backup\t--full\n', { kind: 'user' });
    expect(p.jobs[0]).toMatchObject({ command: '/usr/bin/backup\t--full' });
    expect(p.jobs[0]!.when).toMatchObject({ kind: 'cron', schedule: '0 3 * * *' });
  });

  it('ignores the whole file when the last line has no newline (OBSERVED: neither line ran), but not for a last comment', () => {
    const p = parseCrontab('* * * * * touch c1\n* * * * * touch c2', { kind: 'system', userExists: () => true });
    expect(p.ignoredBecause).toContain('no newline');
    expect(p.problems).toEqual([{ line: 2, text: '* * * * * touch c2', message: expect.stringContaining('no newline') }]);
    expect(parseCrontab('0 1 * * * a\n# the end', { kind: 'user' })).toMatchObject({ ignoredBecause: null, problems: [] });
  });

  it('with CRLF line ends: a blank line is refused (crontab -n), a command keeps its \\r (OBSERVED: the file written was named "envb\\r")', () => {
    const p = parseCrontab('B1=val\r\n0 1 * * * echo x > /srv/out\r\n', { kind: 'user' });
    expect(p.problems).toEqual([]);
    expect(p.jobs[0]).toMatchObject({ carriageReturn: true, command: 'echo x > /srv/out\r', env: [['B1', 'val']] });
    const j = only('B1=val\r\n0 1 * * * echo x > /srv/out\r\n');
    expect(load(j).spec.shell).toBe('echo x > /srv/out');
    expect(j.notes.join(' ')).toContain('carriage return');
    const blank = parseCrontab('0 1 * * * a\r\n\r\n0 2 * * * b\r\n', { kind: 'user' });
    expect(blank.problems).toEqual([{ line: 2, text: '\r', message: expect.stringContaining('Windows line ends') }]);
  });

  it('refuses what Debian refuses, each with its reason, and then the file is ignored: its jobs come disabled', () => {
    const text = [
      '0 1 * * * ok-before',
      '@DAILY /bin/a',
      '* * * * * * six-stars',
      '61 * * * * /bin/b',
      '0 0 * * mon-7 /bin/x',
      '0 1',
      `0 1 * * * ${'x'.repeat(999)}`,
      '0 2 * * * ok-after',
      '',
    ].join('\n');
    const plan = planImport(text, opts());
    expect(plan.problems.map((p) => [p.line, p.message])).toEqual([
      [2, expect.stringContaining('bad time specifier "@DAILY" (nicknames are lower case')],
      [3, expect.stringContaining('bad command: it starts with "*"')],
      [4, expect.stringContaining('61 is out of range')],
      [6, expect.stringContaining('bad day-of-month')],
      [7, expect.stringContaining('999')],
    ]);
    // "mon-7" is fine to Debian (7 is Sunday)
    expect(plan.jobs.map((j) => [j.line, j.enabled])).toEqual([
      [1, false],
      [5, false],
      [8, false],
    ]);
    expect(plan.ignoredBecause).toContain('line 2 is refused');
    expect(load(plan.jobs[0]!).spec.enabled).toBe(false);
  });

  it('without --system the sixth word is the command (cron runs "root"), with a hint; with --system it is the user', () => {
    const line = '0 5 * * * root /usr/local/bin/x\n';
    const u = only(line, { exists: () => false });
    expect(u.run).toEqual({ command: ['root', '/usr/local/bin/x'] });
    expect(u.user).toBeNull();
    expect(u.notes.join(' ')).toContain('import it with --system');
    const s = only(line, { kind: 'system', owner: null });
    expect(s.run).toEqual({ command: ['/usr/local/bin/x'] });
    expect(s.user).toBe('root');
    expect(s.env).toContainEqual(['HOME', '/root']);
    expect(s.env).toContainEqual(['LOGNAME', 'root']);
    expect(load(s).spec.user).toBe('root');
    const unknown = planImport('0 5 * * * nobody-here /bin/x\n', opts({ kind: 'system', owner: null }));
    expect(unknown.problems[0]!.message).toContain('bad username "nobody-here"');
  });

  it('names the cron.d files cron skips, and imports their lines disabled', () => {
    expect(cronDNameProblem('e2scrub_all')).toBeNull();
    expect(cronDNameProblem('php.dpkg-old')).toContain('has a dot');
    expect(cronDNameProblem('.hidden')).toContain('starts with a dot');
    expect(cronDNameProblem('a+b')).toContain('other than letters');
    const plan = planImport('0 1 * * * root /bin/true\n', opts({ kind: 'system', owner: null, cronDFile: '/etc/cron.d/shop.conf' }));
    expect(plan.ignoredBecause).toContain('none of its lines ever ran');
    expect(plan.jobs[0]!.enabled).toBe(false);
  });

  it('counts a command as cron does: 998 characters pass, 999 do not; in /etc/crontab the blanks after the user count', () => {
    expect(parseCrontab(`0 1 * * * ${'x'.repeat(998)}\n`, { kind: 'user' }).problems).toEqual([]);
    expect(parseCrontab(`0 1 * * * ${'x'.repeat(999)}\n`, { kind: 'user' }).problems).toHaveLength(1);
    expect(parseCrontab(`0 1 * * * root ${'x'.repeat(998)}\n`, { kind: 'system' }).problems).toEqual([]);
    expect(parseCrontab(`0 1 * * * root  ${'x'.repeat(998)}\n`, { kind: 'system' }).problems).toHaveLength(1);
  });

  it('an empty command is accepted by cron and runs nothing: not imported', () => {
    const p = parseCrontab('0 1 * * *   \n', { kind: 'user' });
    expect(p).toMatchObject({ jobs: [], problems: [], empty: [{ line: 1 }] });
  });
});

describe('mapping to a job', () => {
  it("writes cron's defaults into env, HOME as cwd, the system's zone, and no user: without --user or --system", () => {
    const j = only('0 3 * * * /usr/local/bin/backup\n');
    expect(j.env).toEqual([
      ['SHELL', '/bin/sh'],
      ['PATH', '/usr/bin:/bin'],
      ['HOME', '/home/kevin'],
      ['LOGNAME', 'kevin'],
    ]);
    const job = load(j);
    expect(job.spec).toMatchObject({ command: ['/usr/local/bin/backup'], cwd: '/home/kevin', timezone: 'Europe/Zurich' });
    expect(job.spec.user).toBeUndefined();
    expect(j.yaml).toContain('# from crontab line 1: 0 3 * * * /usr/local/bin/backup');
  });

  it('--user NAME becomes user: NAME; the crontab may set HOME but never LOGNAME (entry.c)', () => {
    const j = only('HOME=/srv/b\nLOGNAME=mallory\n0 3 * * * /bin/true\n', { owner: ACCOUNTS.backup!, userField: 'backup' });
    expect(j.user).toBe('backup');
    expect(Object.fromEntries(j.env)).toMatchObject({ HOME: '/srv/b', LOGNAME: 'backup' });
    expect(j.cwd).toBe('/srv/b');
  });

  it('shell syntax becomes shell:, a plain word list command:, a builtin or NAME=value stays in the shell', () => {
    expect(isPlainWords('/usr/bin/rsync -a /a/ /b/')).toBe(true);
    expect(isPlainWords('cd /srv && make')).toBe(false);
    expect(isPlainWords('echo hi')).toBe(false);
    expect(isPlainWords('FOO=1 /bin/x')).toBe(false);
    expect(isPlainWords('/bin/x "quoted"')).toBe(false);
    expect(isPlainWords('/bin/x $HOME')).toBe(false);
    expect(only('0 1 * * * cd /srv && make > log\n').run).toEqual({ shell: 'cd /srv && make > log' });
  });

  it('SHELL=/bin/bash runs the line with bash -c, as cron did', () => {
    const j = only('SHELL=/bin/bash\n0 1 * * * [[ -d /srv ]] && echo ok\n');
    expect(load(j).spec.command).toEqual(['/bin/bash', '-c', '[[ -d /srv ]] && echo ok']);
  });

  it('keeps @nicknames and @reboot as schedules; their instants are those of the same line in cron', () => {
    const plan = planImport('@daily a\n@hourly b\n@weekly c\n@monthly d\n@yearly e\n@annually f\n@midnight g\n@reboot h\n', opts());
    expect(plan.jobs.map((j) => j.schedule)).toEqual([
      '@daily',
      '@hourly',
      '@weekly',
      '@monthly',
      '@yearly',
      '@annually',
      '@midnight',
      '@reboot',
    ]);
    const reboot = load(plan.jobs[7]!);
    expect(reboot.atBoot).toBe(true);
    expect(reboot.schedule).toBeNull();
    expect(plan.jobs[7]!.timezone).toBeNull();
  });

  it('CRON_TZ becomes timezone:, with a note that Debian ignores it; MAILTO becomes a note about digest.to', () => {
    const j = only('CRON_TZ=America/New_York\nMAILTO=ops@example.com\n30 2 * * * /bin/x\n');
    expect(load(j).timezone).toBe('America/New_York');
    expect(j.notes.join('\n')).toContain("Debian's cron ignores CRON_TZ");
    expect(j.notes.join('\n')).toContain('add ops@example.com to digest.to');
    expect(j.env).toContainEqual(['MAILTO', 'ops@example.com']);
    expect(only('CRON_TZ=Mars/Olympus\n0 1 * * * /bin/x\n').timezone).toBe('Europe/Zurich');
  });

  it('drops a variable whose name nightshift cannot pass on, and says so', () => {
    const j = only('"A B"=c\n0 1 * * * /bin/x\n');
    expect(j.env.map(([k]) => k)).not.toContain('A B');
    expect(j.notes.join(' ')).toContain('"A B"');
  });

  it('names jobs after the script, run-parts folder or program; unique and the same for the same input', () => {
    expect(nameHint('python3 /srv/x/cleanup.py --days 3')).toBe('cleanup');
    expect(nameHint('cd / && run-parts --report /etc/cron.daily')).toBe('cron.daily');
    expect(nameHint('test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.weekly; }')).toBe('cron.weekly');
    expect(nameHint('nice -n 10 ionice -c3 /usr/local/bin/reindex')).toBe('reindex');
    expect(nameHint('timeout 30m flock -n /var/lock/x.lock /usr/local/bin/sync-stock')).toBe('sync-stock');
    const text = '0 1 * * * /bin/backup.sh\n0 2 * * * /opt/backup.sh --verify\n0 3 * * * BACKUP\n0 4 * * * ...\n';
    const names = planImport(text, opts()).jobs.map((j) => j.name);
    expect(names).toEqual(['backup', 'backup-2', 'backup-3', 'line-4']);
    expect(planImport(text, opts()).jobs.map((j) => j.name)).toEqual(names);
  });

  it('a line that starts a daemon becomes a systemd unit, not a job', () => {
    expect(daemonReason('/usr/bin/worker &')).toContain('background');
    expect(daemonReason('/usr/bin/a && /usr/bin/b')).toBeNull();
    expect(daemonReason('/usr/bin/a & /usr/bin/b & wait')).toBeNull();
    expect(daemonReason('echo "a & b" > /srv/x')).toBeNull();
    expect(daemonReason('/usr/bin/a > /dev/null 2>&1')).toBeNull();
    expect(daemonReason('nohup /usr/bin/worker')).toContain('nohup');
    expect(daemonReason('setsid -f /usr/bin/worker')).toContain('setsid');
    expect(daemonReason('screen -dmS irc irssi')).toContain('screen');
    expect(daemonReason('tmux new -d -s w loop')).toContain('tmux');
    expect(daemonReason('start-stop-daemon --start --background --exec /x')).toContain('start-stop-daemon');
    // the & after a % is standard input, not the background
    expect(planImport('@reboot /usr/local/bin/worker%s &\n', opts()).units).toEqual([]);
    const plan = planImport('@reboot /usr/local/bin/worker --port 80 $HOME &%s 100\\%\n', opts());
    expect(plan.jobs).toEqual([]);
    expect(plan.units).toHaveLength(1);
    const unit = plan.units[0]!.unit;
    expect(unit).toContain('User=kevin');
    expect(unit).toContain('WorkingDirectory=/home/kevin');
    // systemd would expand $HOME and %s itself: doubled
    expect(unit).toContain('ExecStart=/bin/sh -c "/usr/local/bin/worker --port 80 $$HOME"');
    expect(unit).toContain('StandardInputText=s 100%%');
    const dollar = planImport('@reboot nohup /bin/w $HOME/x 100%%\n', opts()).units[0]!.unit;
    expect(dollar).toContain('ExecStart=/bin/sh -c "/bin/w $$HOME/x 100"');
  });
});

describe('what the commands write', () => {
  const folders = (command: string, cwd = '/home/kevin', env: Record<string, string> = { HOME: '/home/kevin' }) =>
    commandWrites(command, env, cwd).map((w) => [w.how, w.path]);

  it('finds redirections, tee and the known arguments', () => {
    expect(folders('/bin/x > /var/log/x.log 2>> /var/log/x.err; y &> /srv/both 1>&2')).toEqual([
      ['> redirection', '/var/log/x.log'],
      ['2>> redirection', '/var/log/x.err'],
      ['&> redirection', '/srv/both'],
    ]);
    expect(folders('x | tee -a /srv/a /srv/b')).toEqual([
      ['tee', '/srv/a'],
      ['tee', '/srv/b'],
    ]);
    expect(folders('pg_dump -Fc -f /var/backups/db.dump shop')).toEqual([['pg_dump -f', '/var/backups/db.dump']]);
    expect(folders('pg_dump --file=/var/backups/db.sql shop')).toEqual([['pg_dump -f', '/var/backups/db.sql']]);
    expect(folders('mysqldump --result-file=/b/l.sql legacy')).toEqual([['mysqldump --result-file', '/b/l.sql']]);
    expect(folders('curl -fsS -o /srv/r.json https://x')).toEqual([['curl -o', '/srv/r.json']]);
    expect(folders('curl -fsS --output=/srv/r2.json https://x')).toEqual([['curl -o', '/srv/r2.json']]);
    expect(folders('rsync -a --exclude tmp /a/ backup@nas:/b/')).toEqual([]);
    expect(folders('rsync -a -e ssh /a/ /mnt/b/')).toEqual([['rsync destination', '/mnt/b']]);
    expect(folders('cp -r /a /b /var/www/')).toEqual([['cp destination', '/var/www']]);
    expect(folders('tar -czf /var/backups/site.tgz -C /srv site')).toEqual([['tar archive', '/var/backups/site.tgz']]);
    expect(folders('tar czf /var/backups/old.tgz /srv')).toEqual([['tar archive', '/var/backups/old.tgz']]);
    expect(folders('tar -xzf /in.tgz -C /srv/restore')).toEqual([['tar -x folder', '/srv/restore']]);
    expect(folders("find /var/backups -name '*.gz' -mtime +7 -delete")).toEqual([['find -delete', '/var/backups']]);
    expect(folders('find /srv/cache -type f -exec rm {} +')).toEqual([['find -delete', '/srv/cache']]);
    expect(folders('find /srv/cache -type f')).toEqual([]);
    expect(folders('rm -rf /var/cache/app/*')).toEqual([['rm', '/var/cache/app/*']]);
    expect(folders('gzip -c /a > /b/a.gz')).toEqual([['> redirection', '/b/a.gz']]);
    expect(folders('dd if=/dev/zero of=/srv/blob bs=1M count=1')).toEqual([['dd of=', '/srv/blob']]);
  });

  it('follows cd, ~ and the variables cron sets; what is only known at run time is said so', () => {
    expect(folders('cd /srv/shop && php bin/console >> var/log/w.log')).toEqual([['>> redirection', '/srv/shop/var/log/w.log']]);
    expect(folders('x > out.txt')).toEqual([['> redirection', '/home/kevin/out.txt']]);
    expect(folders('x > ~/out.txt')).toEqual([['> redirection', '/home/kevin/out.txt']]);
    expect(folders('x > "$BACKUPS/r.log"', '/', { BACKUPS: '/var/backups/shop' })).toEqual([['> redirection', '/var/backups/shop/r.log']]);
    expect(folders('x > $UNSET/r.log')).toEqual([['> redirection', null]]);
    expect(folders('cd $(mktemp -d) && x > r.log')).toEqual([['> redirection', null]]);
  });

  it('prints a drop-in: folders deduplicated, none inside another, /tmp and /dev/null left out, "-" for a folder not there', () => {
    const text = [
      '0 1 * * * x > /var/backups/shop/a.log',
      '0 2 * * * x > /var/backups/shop/deep/b.log',
      '0 3 * * * x > /var/backups/c.log',
      '0 4 * * * x > /tmp/t.log 2> /dev/null',
      '0 5 * * * x > /var/tmp/v.log',
      '0 6 * * * x > /srv/new/n.log',
      '0 7 * * * tar -czf /srv/arch/site-$(date +\\%F).tgz /srv',
      '',
    ].join('\n');
    const plan = planImport(text, opts({ exists: (p) => !p.startsWith('/srv/new'), owner: { name: 'svc', home: '/srv/svc' } }));
    expect(plan.readWrite).toEqual([
      { path: '/srv/arch', exists: true, lines: [7] },
      { path: '/srv/new', exists: false, lines: [6] },
      { path: '/var/backups', exists: true, lines: [1, 2, 3] },
    ]);
    expect(plan.dropIn).toBe('[Service]\nReadWritePaths=/srv/arch -/srv/new /var/backups\n');
    expect(plan.jobs[3]!.notes.join(' ')).toContain('PrivateTmp');
  });

  it("never grants the whole file system, a system folder or one of nightshift's own: those are listed as not granted", () => {
    // The attack: one crontab line writing to / (or /etc) would have put ReadWritePaths=/ in the
    // drop-in the operator is told to paste, undoing the unit's protection for every job.
    const text = [
      '0 1 * * * echo x > /x.log',
      '0 2 * * * echo x > /etc/passwd',
      '0 3 * * * echo x > /etc/nightshift/jobs/planted.yaml',
      '0 4 * * * echo x > /opt/nightshift/dist/cli.js',
      '0 5 * * * tar -czf /var/lib/nightshift/x.tgz /srv',
      '0 6 * * * echo x > /usr/local/bin/tool',
      '0 7 * * * echo x > /var/backups/ok.log',
      '',
    ].join('\n');
    const plan = planImport(text, opts({ owner: { name: 'svc', home: '/srv/svc' } }));
    expect(plan.readWrite).toEqual([{ path: '/var/backups', exists: true, lines: [7] }]);
    expect(plan.dropIn).toBe('[Service]\nReadWritePaths=/var/backups\n');
    expect(plan.notGranted.map((n) => [n.path, n.lines])).toEqual([
      ['/', [1]],
      ['/etc', [2]],
      ['/etc/nightshift/jobs', [3]],
      ['/opt/nightshift/dist', [4]],
      ['/usr/local/bin', [6]],
      ['/var/lib/nightshift', [5]],
    ]);
    const why = Object.fromEntries(plan.notGranted.map((n) => [n.path, n.why]));

    expect(why['/']).toMatch(/whole file system/);
    expect(why['/etc']).toMatch(/system folder \(\/etc\)/);
    expect(why['/opt/nightshift/dist']).toMatch(/nightshift's own/);
    expect(why['/var/lib/nightshift']).toMatch(/nightshift's own/);
  });

  it('asks for ProtectHome=read-only when a job works in a home folder (cron starts it in HOME)', () => {
    const plan = planImport('0 1 * * * /bin/true\n', opts());
    expect(plan.dropIn).toBe('[Service]\nProtectHome=read-only\n');
  });
});

describe('attacks on the YAML it writes', () => {
  it('a command cannot smuggle keys, comments or lines into the job file', () => {
    const lines = [
      '0 1 * * * echo "key: value # not a comment" > /srv/y1',
      '0 2 * * * echo \'description: "pwned"\nuser: root\' > /srv/y2',
      '0 3 * * * cat > /srv/y3%first: line%- item%"quoted"%\\%',
      '0 4 * * * /bin/x #: enabled: false',
      '0 5 * * * /bin/y\r',
      '',
    ].join('\n');
    const plan = planImport(lines, opts());
    // the \n in line 2 ends that line: "user: root' > /srv/y2" is refused as a line of its own
    expect(plan.problems.map((p) => p.line)).toEqual([3]);
    for (const j of plan.jobs) {
      const spec = load(j).spec;
      expect(spec.user).toBeUndefined();
      expect(spec.enabled).toBe(false); // the refused line makes cron ignore the file
      expect(Object.keys(spec).sort()).toEqual(expect.arrayContaining(['cwd', 'description', 'env', 'schedule']));
      expect(
        j.yaml
          .split('\n')
          .filter((l) => l.startsWith('#'))
          .every((l) => !l.includes('\r')),
      ).toBe(true);
    }
    const [y1, y2, y3, x, y] = plan.jobs.map((j) => load(j).spec);
    expect(y1!.shell).toBe('echo "key: value # not a comment" > /srv/y1');
    expect(y2!.shell).toBe('echo \'description: "pwned"');
    expect(y3!.shell).toBe(`printf '%s' 'first: line\n- item\n"quoted"\n%\n' | /bin/sh -c 'cat > /srv/y3'`);
    expect(x!.shell).toBe('/bin/x #: enabled: false');
    expect(y!.command).toEqual(['/bin/y']);
  });

  it('quotes and control characters survive the round trip byte for byte', () => {
    const weird = "/bin/echo 'it''s' \"$x\" \\\\ \u0085 \u2028 \u007f \t tab";
    const j = only(`0 1 * * * ${weird}\n`);
    expect(load(j).spec.shell).toBe(weird.replace('\\\\', '\\'));
  });
});
