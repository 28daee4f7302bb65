// deploy/install.sh, run for real into a temporary root (--root DIR): the account, the program, the
// unit, the home, the polkit rule and the command it installs; an upgrade over an install that has
// state, specs and a drop-in; and what it refuses. (--root never calls systemctl: the CI machine
// runs as root in a container without systemd as PID 1.)
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, ROOT, tempDir, tree, waitFor } from '../support/helpers.js';

const INSTALL = join(ROOT, 'deploy', 'install.sh');
const AS_ROOT = process.getuid?.() === 0;
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const dirs: string[] = [];
// Each test leaves a few installed trees behind; removing them is not what a test measures (on a
// busy disk, more than the default 30 s hook limit).
afterEach(() => {
  for (const d of dirs.splice(0)) cleanup(d);
}, 120_000);
function temp(prefix: string): string {
  const d = tempDir(prefix);
  dirs.push(d);
  return d;
}

function install(args: string[], opts: { env?: NodeJS.ProcessEnv; asNobody?: boolean } = {}): { status: number | null; output: string } {
  const argv = ['bash', INSTALL, ...args];
  const [file, ...rest] = opts.asNobody ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', ...argv] : argv;
  const r = spawnSync(file!, rest, { encoding: 'utf8', timeout: 120_000, env: opts.env ?? process.env });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const paths = (root: string) => ({
  opt: join(root, 'opt', 'nightshift'),
  previous: join(root, 'opt', 'nightshift.previous'),
  home: join(root, 'etc', 'nightshift'),
  state: join(root, 'var', 'lib', 'nightshift'),
  unit: join(root, 'etc', 'systemd', 'system', 'nightshift.service'),
  dropIns: join(root, 'etc', 'systemd', 'system', 'nightshift.service.d'),
  polkit: join(root, 'etc', 'polkit-1', 'rules.d', '50-nightshift-restart.rules'),
  wrapper: join(root, 'usr', 'local', 'bin', 'nightshift'),
  backups: join(root, 'var', 'backups', 'nightshift'),
});

/**
 * A built clone of another version: this one's build with a marker in its version and at the end of
 * dist/cli.js. Its node_modules/ are the production packages of an install, hard-linked (what
 * `npm ci --omit=dev` would leave; npm ls --omit=dev accepts it).
 */
function cloneWithVersion(version: string, nodeModules: string): string {
  const from = temp('ns-clone-');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(from, 'package.json'), `${JSON.stringify({ ...pkg, version }, null, 2)}\n`);
  cpSync(join(ROOT, 'package-lock.json'), join(from, 'package-lock.json'));
  for (const d of ['dist', 'deploy', 'docs']) cpSync(join(ROOT, d), join(from, d), { recursive: true });
  appendFileSync(join(from, 'dist', 'cli.js'), `\n// ${version}\n`);
  const r = spawnSync('cp', ['-al', nodeModules, join(from, 'node_modules')], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return from;
}

describe('deploy/install.sh --root DIR', () => {
  it('installs the account, the program, the unit (verified), the home, the polkit rule and the command, and says what to type next', async () => {
    const root = temp('ns-root-');
    const p = paths(root);
    const r = install(['--root', root]);
    expect(r.status, r.output).toBe(0);

    // the account: a system account without a login or a home directory of its own
    const passwd = readFileSync(join(root, 'etc', 'passwd'), 'utf8');
    const entry = /^nightshift:x:(\d+):(\d+):[^:]*:\/var\/lib\/nightshift:\/usr\/sbin\/nologin$/m.exec(passwd);
    expect(entry, passwd).not.toBeNull();
    expect(Number(entry?.[1])).toBeLessThan(1000);
    expect(readFileSync(join(root, 'etc', 'group'), 'utf8')).toMatch(new RegExp(`^nightshift:x:${entry?.[2]}:`, 'm'));

    // the program: the build and the production packages only, owned by root and read-only to others
    expect(JSON.parse(readFileSync(join(p.opt, 'package.json'), 'utf8'))).toMatchObject({ name: 'nightshift', version: VERSION });
    expect(readFileSync(join(p.opt, 'INSTALLED'), 'utf8')).toContain(`version=${VERSION}\n`);
    for (const f of ['dist/cli.js', 'deploy/verify.sh', 'docs/reference.md', 'node_modules/better-sqlite3', 'node_modules/zod'])
      expect(existsSync(join(p.opt, f)), f).toBe(true);
    for (const dev of ['vitest', 'typescript', 'eslint', 'playwright-core'])
      expect(existsSync(join(p.opt, 'node_modules', dev)), dev).toBe(false);
    const cliStat = statSync(join(p.opt, 'dist', 'cli.js'));
    expect(cliStat.mode & 0o022).toBe(0);
    if (AS_ROOT) expect(cliStat.uid).toBe(0);
    expect(readdirSync(join(root, 'opt'))).toEqual(['nightshift']); // no staging left, no .previous yet

    // the plain unit, byte for byte, checked by verify.sh before anything was switched
    expect(readFileSync(p.unit, 'utf8')).toBe(readFileSync(join(ROOT, 'deploy', 'nightshift.service'), 'utf8'));
    expect(r.output).toContain('verify.sh: nightshift.service OK');
    expect(r.output.indexOf('verify.sh: nightshift.service OK')).toBeLessThan(r.output.indexOf('/opt/nightshift is'));

    // the home, from which the installed program starts, and which `validate` accepts
    for (const d of ['jobs', 'rules', 'protected']) expect(statSync(join(p.home, d)).isDirectory(), d).toBe(true);
    expect(readFileSync(join(p.home, 'protected', 'policy.yaml'), 'utf8')).toMatch(/^autonomy: gated$/m);
    if (AS_ROOT) {
      const st = statSync(join(p.home, 'protected', 'policy.yaml'));
      expect([st.uid, st.gid, st.mode & 0o777]).toEqual([0, Number(entry?.[2]), 0o640]);
    }
    const v = await execa('node', [join(p.opt, 'dist', 'cli.js'), '--home', p.home, 'validate'], { reject: false });
    expect(v.exitCode, `${v.stdout}${v.stderr}`).toBe(0);
    expect(v.stdout).toContain('policy valid');

    // state is systemd's to create (StateDirectory=): the script leaves it alone
    expect(existsSync(p.state)).toBe(false);

    // the polkit rule as shipped, except that it grants nothing until UNITS is filled in
    const shipped = readFileSync(join(ROOT, 'deploy', '50-nightshift-restart.rules'), 'utf8');
    const rule = readFileSync(p.polkit, 'utf8');
    expect(rule).toMatch(/^ {2}var UNITS = \[\];/m);
    expect(rule.replace(/^ {2}var UNITS = .*$/m, '')).toBe(shipped.replace(/^ {2}var UNITS = .*$/m, ''));

    // the operator's command: the service's home and state, as its account
    const wrapper = readFileSync(p.wrapper, 'utf8');
    expect(statSync(p.wrapper).mode & 0o111).toBe(0o111);
    expect(wrapper).toContain('--home /etc/nightshift --state /var/lib/nightshift');
    expect(wrapper).toContain('exec runuser -u "$run_as" -- /usr/bin/node "$cli"');
    expect(wrapper).toMatch(/^run_as=nightshift$/m);
    expect(spawnSync('sh', ['-n', p.wrapper]).status).toBe(0);

    // what to type next, with the command the wrapper provides
    expect(r.output).toContain(`nightshift ${VERSION} is installed (plain unit: the daemon runs as nightshift)`);
    expect(r.output).toContain('crontab -l -u USER | nightshift import crontab -');
    expect(r.output).toMatch(/^ {2}nightshift status$/m);
  }, 120_000);

  it('an upgrade keeps state, specs and drop-ins, replaces /opt/nightshift and keeps the old one as .previous', async () => {
    const root = temp('ns-root-');
    const p = paths(root);
    const first = install(['--root', root]);
    expect(first.status, first.output).toBe(0);
    const oldCli = join(p.opt, 'dist', 'cli.js');

    // What an operator and the daemon leave behind: a job, an edited policy, a drop-in, state.
    writeFileSync(join(p.home, 'jobs', 'hello.yaml'), 'command: ["sh", "-c", "echo hello"]\nexpect: { outputMatches: hello }\n');
    writeFileSync(join(p.home, 'protected', 'policy.yaml'), 'timezone: UTC\nautonomy: shadow\ndashboard: { listen: "off" }\n');
    mkdirSync(p.dropIns, { recursive: true });
    writeFileSync(join(p.dropIns, 'override.conf'), '[Service]\nReadWritePaths=/srv/shop\n');
    const daemon = execa('node', [oldCli, '--home', p.home, '--state', p.state, 'start'], {
      reject: false,
      stdin: 'ignore',
      buffer: false,
      forceKillAfterDelay: false,
    });
    let said = '';
    daemon.stdout?.on('data', (c: Buffer) => (said += c.toString()));
    daemon.stderr?.on('data', (c: Buffer) => (said += c.toString()));
    try {
      await waitFor(() => said.includes('nightshift started'), 30_000, 'the installed daemon to start');
      const run = await execa('node', [oldCli, '--home', p.home, '--state', p.state, 'run', 'hello'], { reject: false });
      expect(run.exitCode, `${run.stdout}${run.stderr}`).toBe(0);
    } finally {
      daemon.kill('SIGTERM');
      await daemon;
    }
    expect(existsSync(join(p.state, 'nightshift.db'))).toBe(true);
    expect(readdirSync(join(p.state, 'logs', 'hello'))).toHaveLength(1);
    const stateBefore = tree(p.state);
    const homeBefore = tree(p.home);
    const dropInsBefore = tree(p.dropIns);
    const dbBefore = readFileSync(join(p.state, 'nightshift.db'));

    const next = `${VERSION}-upgrade.2`;
    const r = install(['--root', root, '--from', cloneWithVersion(next, join(p.opt, 'node_modules'))]);
    expect(r.status, r.output).toBe(0);

    expect(tree(p.state)).toEqual(stateBefore);
    expect(tree(p.home)).toEqual(homeBefore);
    expect(tree(p.dropIns)).toEqual(dropInsBefore);
    expect(r.output).toContain('drop-ins kept: override.conf');
    expect(JSON.parse(readFileSync(join(p.opt, 'package.json'), 'utf8'))).toMatchObject({ version: next });
    expect(readFileSync(join(p.opt, 'dist', 'cli.js'), 'utf8')).toMatch(new RegExp(`// ${next.replace(/\./g, '\\.')}\n$`));
    expect(readFileSync(join(p.previous, 'dist', 'cli.js'), 'utf8')).not.toContain(next);
    expect(JSON.parse(readFileSync(join(p.previous, 'package.json'), 'utf8'))).toMatchObject({ version: VERSION });
    expect(r.output).toContain(`the previous one (${VERSION}) is /opt/nightshift.previous`);
    // the database as the old version left it, aside for a roll back
    expect(readFileSync(join(p.backups, 'nightshift.db')).equals(dbBefore)).toBe(true);
    expect(readFileSync(join(p.backups, 'README'), 'utf8')).toContain(`nightshift ${VERSION}, copied before the upgrade to ${next}`);
    expect(statSync(p.backups).mode & 0o777).toBe(0o700);

    // the new program reads the old state and the kept specs
    const newCli = join(p.opt, 'dist', 'cli.js');
    const v = await execa('node', [newCli, '--home', p.home, '--state', p.state, 'validate'], { reject: false });
    expect(v.exitCode, `${v.stdout}${v.stderr}`).toBe(0);
    expect(v.stdout).toContain('1 job(s)');
    const h = await execa('node', [newCli, '--home', p.home, '--state', p.state, 'history', 'hello', '--json'], { reject: false });
    expect(h.exitCode, h.stderr).toBe(0);
    expect(h.stdout).toContain('"ok"');
  }, 120_000);

  it('run again with --root-mode over a plain install: the root-mode unit, the command as root, and nothing of the account or home changed', () => {
    const root = temp('ns-root-');
    const p = paths(root);
    const plain = install(['--root', root]);
    expect(plain.status, plain.output).toBe(0);
    const passwd = readFileSync(join(root, 'etc', 'passwd'), 'utf8');
    const homeBefore = tree(p.home);
    const polkitBefore = readFileSync(p.polkit, 'utf8');

    const r = install(['--root', root, '--root-mode']);
    expect(r.status, r.output).toBe(0);
    // installed under the same name, so drop-ins, `systemctl status nightshift` and the docs still apply
    expect(readFileSync(p.unit, 'utf8')).toBe(readFileSync(join(ROOT, 'deploy', 'nightshift-root.service'), 'utf8'));
    expect(r.output).toContain('verify.sh: nightshift-root.service OK');
    expect(r.output).toContain('replacing');
    expect(readFileSync(p.wrapper, 'utf8')).toMatch(/^run_as=root$/m);
    expect(readFileSync(join(p.opt, 'INSTALLED'), 'utf8')).toContain('mode=root\n');
    expect(r.output).toContain('nightshift import crontab /etc/crontab --system');
    expect(r.output).toContain('(root-mode unit: the daemon runs as root)');
    // idempotent: the account, the home and the polkit rule as they were; the first install kept
    expect(readFileSync(join(root, 'etc', 'passwd'), 'utf8')).toBe(passwd);
    expect(tree(p.home)).toEqual(homeBefore);
    expect(r.output).toContain('protected/policy.yaml exists: kept as it is');
    expect(readFileSync(p.polkit, 'utf8')).toBe(polkitBefore);
    expect(readdirSync(join(root, 'opt')).sort()).toEqual(['nightshift', 'nightshift.previous']);
  }, 120_000);
});

describe('deploy/install.sh refuses', () => {
  it('to overwrite a file of an existing home, or a command at /usr/local/bin/nightshift that is not its own', () => {
    const root = temp('ns-root-');
    const p = paths(root);
    mkdirSync(join(p.home, 'protected'), { recursive: true });
    writeFileSync(join(p.home, 'protected', 'policy.yaml'), 'timezone: UTC\n# mine\n');
    mkdirSync(dirname(p.wrapper), { recursive: true });
    writeFileSync(p.wrapper, '#!/bin/sh\necho another program\n');

    const refused = install(['--root', root]);
    expect(refused.status, refused.output).toBe(1);
    expect(refused.output).toContain("exists and is not nightshift's command wrapper: move it away");
    expect(readFileSync(p.wrapper, 'utf8')).toBe('#!/bin/sh\necho another program\n');
    expect(existsSync(join(root, 'opt'))).toBe(false); // refused before anything was staged

    cleanup(p.wrapper);
    const r = install(['--root', root]);
    expect(r.status, r.output).toBe(0);
    expect(readFileSync(join(p.home, 'protected', 'policy.yaml'), 'utf8')).toBe('timezone: UTC\n# mine\n');
    expect(r.output).toContain('protected/policy.yaml exists: kept as it is');
    for (const d of ['jobs', 'rules']) expect(existsSync(join(p.home, d)), d).toBe(true);
  }, 120_000);

  it('to install into the real system when not root', () => {
    const r = AS_ROOT ? install([], { asNobody: true }) : install([]);
    expect(r.status, r.output).toBe(1);
    expect(r.output).toContain('install.sh: must run as root');
  });

  it('without bubblewrap or with a Node.js older than 20, saying what to install; and unknown arguments', () => {
    // A PATH with every program of this machine but bwrap.
    const bin = temp('ns-bin-');
    const skip = new Set(['bwrap']);
    for (const dir of [dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin'])
      for (const n of existsSync(dir) ? readdirSync(dir) : [])
        if (!skip.has(n) && !existsSync(join(bin, n))) symlinkSync(join(dir, n), join(bin, n));
    const root = temp('ns-root-');
    const noBwrap = install(['--root', root], { env: { ...process.env, PATH: bin } });
    expect(noBwrap.status, noBwrap.output).toBe(1);
    expect(noBwrap.output).toContain('bubblewrap (bwrap) is missing');
    expect(noBwrap.output).toContain('apt-get install bubblewrap');

    const oldNode = temp('ns-oldnode-');
    writeFileSync(join(oldNode, 'node'), '#!/bin/sh\ncase "$*" in *--version*) echo v18.19.0 ;; *) echo 18 ;; esac\n');
    chmodSync(join(oldNode, 'node'), 0o755);
    const old = install(['--root', root], { env: { ...process.env, PATH: `${oldNode}:${process.env.PATH}` } });
    expect(old.status, old.output).toBe(1);
    expect(old.output).toContain('is Node.js v18.19.0; nightshift needs 20 or newer');
    expect(readdirSync(root)).toEqual([]); // nothing written

    const unknown = install(['--root', root, '--frobnicate']);
    expect(unknown.status, unknown.output).toBe(2);
    expect(unknown.output).toContain('unknown argument: --frobnicate');
  });
});

describe("the README's first screen, on a temporary root", () => {
  // clone → install (root mode) → import root's crontab with --write → the daemon runs an imported
  // job. `crontab -l -u root` is the crontab below, given as a file (the machine's own is not ours).
  it('takes a crontab to jobs that the installed daemon runs', async () => {
    const root = temp('ns-readme-');
    const p = paths(root);
    const r = install(['--root', root, '--root-mode']);
    expect(r.status, r.output).toBe(0);
    const work = temp('ns-readme-work-');
    chmodSync(work, 0o755);
    const crontab = join(work, 'crontab');
    writeFileSync(
      crontab,
      [
        'MAILTO=ops@shop.example',
        'PATH=/usr/local/bin:/usr/bin:/bin',
        '# the nightly export',
        `30 2 * * * cd ${work} && echo exported > orders.csv && echo "exported 3 orders"`,
        '@reboot echo warmed',
        '',
      ].join('\n'),
    );
    const cliJs = join(p.opt, 'dist', 'cli.js');
    const ns = (...args: string[]) => execa('node', [cliJs, '--home', p.home, '--state', p.state, ...args], { reject: false });
    const preview = await ns('import', 'crontab', crontab, '--user', 'root');
    expect(preview.exitCode, preview.stderr).toBe(0);
    expect(readdirSync(join(p.home, 'jobs'))).toEqual([]);
    const write = await ns('import', 'crontab', crontab, '--user', 'root', '--write');
    expect(write.exitCode, write.stdout + write.stderr).toBe(0);
    expect(write.stdout).toMatch(/ok: 2 job file\(s\) written and valid/);
    const jobs = readdirSync(join(p.home, 'jobs')).map((f) => f.replace(/\.yaml$/, ''));
    expect(jobs).toHaveLength(2);
    expect((await ns('validate')).exitCode).toBe(0);

    const daemon = execa('node', [cliJs, '--home', p.home, '--state', p.state, 'start'], { reject: false, buffer: false, stdin: 'ignore' });
    try {
      await waitFor(() => existsSync(join(p.state, 'nightshift.sock')) || undefined, 60_000, 'the daemon');
      const exportJob = jobs.find((j) => j !== 'echo' && !readFileSync(join(p.home, 'jobs', `${j}.yaml`), 'utf8').includes('@reboot'))!;
      const run = await ns('run', exportJob);
      expect(run.exitCode, run.stdout + run.stderr).toBe(0);
      expect(readFileSync(join(work, 'orders.csv'), 'utf8')).toBe('exported\n');
      const status = await ns('status');
      expect(status.stdout).toMatch(new RegExp(`Jobs run as other accounts: .*${exportJob} as root`));
    } finally {
      daemon.kill('SIGTERM');
      await daemon;
    }
  }, 180_000);
});
