// The install checked (issue 10, point 2; row 2 of issue 9's table: a fix once appended code to
// the install's node_modules/, which nothing hashed). Each test runs a private copy of the build
// whose node_modules/ is its own folder (of links to the shared packages), so that changing it
// touches no other test's daemon.
import { execa, type ResultPromise } from 'execa';
import {
  chmodSync,
  cpSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { cleanup, cli, makeHome, pageCapture, query, ROOT, tempDir, waitFor } from '../support/helpers.js';

const AS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
const MODES = AS_ROOT
  ? [
      { name: 'daemon as root', asNobody: false },
      { name: 'daemon as nobody', asNobody: true },
    ]
  : [{ name: 'daemon as this user', asNobody: false }];

const dirs: string[] = [];
const daemons: ResultPromise[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) {
    d.kill('SIGTERM');
    await d;
  }
});
afterAll(() => {
  for (const d of dirs) cleanup(d);
});

function chownTree(p: string): void {
  lchownSync(p, 65534, 65534);
  if (lstatSync(p).isDirectory()) for (const n of readdirSync(p)) chownTree(join(p, n));
}

function privateInstall(): string {
  const inst = tempDir('ns-install-');
  dirs.push(inst);
  chmodSync(inst, 0o755);
  cpSync(join(ROOT, 'dist'), join(inst, 'dist'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(inst, 'package.json'));
  mkdirSync(join(inst, 'node_modules'));
  for (const n of readdirSync(join(ROOT, 'node_modules'))) symlinkSync(join(ROOT, 'node_modules', n), join(inst, 'node_modules', n));
  return inst;
}

async function start(inst: string, home: string, asNobody: boolean): Promise<{ proc: ResultPromise; said: () => string }> {
  const argv = ['node', join(inst, 'dist', 'cli.js'), '--home', home, 'start'];
  const [file, ...args] = asNobody ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', ...argv] : argv;
  const proc = execa(file!, args, { reject: false, stdin: 'ignore', buffer: false, forceKillAfterDelay: false });
  daemons.push(proc);
  let said = '';
  proc.stdout?.on('data', (c: Buffer) => (said += c.toString()));
  proc.stderr?.on('data', (c: Buffer) => (said += c.toString()));
  await waitFor(() => said.includes('nightshift started'), 60_000, 'daemon start');
  return { proc, said: () => said };
}

async function stop(d: { proc: ResultPromise }): Promise<void> {
  d.proc.kill('SIGTERM');
  await d.proc;
  void daemons.splice(daemons.indexOf(d.proc), 1);
}

describe.each(MODES)('the install ($name)', ({ asNobody }) => {
  it("row 2: a fix cannot write the install's node_modules/; a change to it during a heal is the protected-zone emergency", async () => {
    const inst = privateInstall();
    const home = makeHome({ broken: 'command: ["false"]\n' }, 'timezone: UTC\n');
    dirs.push(home);
    const w = join(home, 'work');
    mkdirSync(w);
    writeFileSync(join(w, 'target'), 'original\n');
    writeFileSync(
      join(home, 'fix.sh'),
      `{ echo 'process.exit(7)' >> ${inst}/node_modules/zod/index.js; } 2> ${w}/nm.err; echo "exit $?" >> ${w}/nm.err
touch ${w}/started; while [ ! -e ${w}/go ]; do sleep 0.05; done; echo fixed > ${w}/target\n`,
    );
    writeFileSync(
      join(home, 'rules', 'fix.yaml'),
      `match: { job: broken }\nautonomy: auto\naction: { command: ["sh", "${join(home, 'fix.sh')}"], touches: ["work/"], timeout: 1m }\nprobe: { command: ["grep", "-q", "fixed", "${join(w, 'target')}"] }\n`,
    );
    if (asNobody) {
      chownTree(home);
      chownTree(inst);
    }
    await start(inst, home, asNobody);
    await cli(['--home', home, 'run', 'broken']);
    await waitFor(() => existsSync(join(w, 'started')), 20_000, 'the fix under way');
    // The fix met a hidden install (nothing there to append to).
    expect(readFileSync(join(w, 'nm.err'), 'utf8')).toMatch(/exit [1-9]/);
    // Something else changes the install while the fix runs: an emergency, named, not restorable.
    writeFileSync(join(inst, 'node_modules', 'planted.js'), 'process.exit(7)\n');
    writeFileSync(join(w, 'go'), '');
    const a = await waitFor(
      () =>
        query<{ outcome: string; detail: string }>(
          join(home, 'state'),
          'SELECT outcome, detail FROM heal_attempts WHERE outcome IS NOT NULL',
        ).at(0),
      30_000,
      'the verdict',
    );
    expect(a.outcome).toBe('rolled-back');
    expect(a.detail).toMatch(
      /EMERGENCY: the protected zone changed \(.*node_modules\/planted\.js \(the nightshift install; not restorable/,
    );
    expect(readFileSync(join(w, 'target'), 'utf8')).toBe('original\n');
    expect(query<{ level: string }>(join(home, 'state'), "SELECT level FROM rule_ladder WHERE rule = 'fix'")).toEqual([
      { level: 'shadow' },
    ]);
  });

  it('an upgrade of the install between two starts is recorded once, as information, and pages no one', async () => {
    const inst = privateInstall();
    const capture = tempDir('ns-pages-');
    dirs.push(capture);
    const pages = pageCapture(capture);
    const home = makeHome(
      { ok: 'command: ["true"]\n' },
      `timezone: UTC\npage:\n  command: ["${pages.command}"]\n  allow: [protected-zone, install, daemon-restart-loop]\n`,
    );
    dirs.push(home);
    if (asNobody) {
      chownTree(home);
      chownTree(inst);
      chmodSync(capture, 0o777);
    }
    const state = join(home, 'state');
    const installEvents = () => query<{ message: string }>(state, "SELECT message FROM events WHERE kind = 'install' ORDER BY id");
    await stop(await start(inst, home, asNobody));
    expect(installEvents().map((e) => e.message)).toEqual(['first start of this nightshift install']);
    await stop(await start(inst, home, asNobody));
    expect(installEvents()).toHaveLength(1); // unchanged: nothing new
    // An upgrade: a package changes while nightshift is down.
    writeFileSync(join(inst, 'node_modules', 'new-package.js'), '// upgraded\n');
    await stop(await start(inst, home, asNobody));
    expect(installEvents().map((e) => e.message)).toEqual([
      'first start of this nightshift install',
      'nightshift was upgraded or changed since its last start (its node_modules/ differ)',
    ]);
    // A rebuild: only dist/ changes.
    writeFileSync(join(inst, 'dist', 'cli.js'), `${readFileSync(join(inst, 'dist', 'cli.js'), 'utf8')}\n// rebuilt\n`);
    await stop(await start(inst, home, asNobody));
    expect(installEvents()).toHaveLength(3);
    expect(query(state, 'SELECT id FROM pages')).toEqual([]);
    expect(pages.pages()).toEqual([]);
  });

  it('an upgrade while a heal was cut short (kill -9) is not an emergency at the next start, and is left as it is', async () => {
    const inst = privateInstall();
    const home = makeHome({ broken: 'command: ["false"]\n' }, 'timezone: UTC\n');
    dirs.push(home);
    const w = join(home, 'work');
    mkdirSync(w);
    writeFileSync(join(home, 'fix.sh'), `touch ${w}/started; while [ ! -e ${w}/go ]; do sleep 0.05; done\n`);
    writeFileSync(
      join(home, 'rules', 'fix.yaml'),
      `match: { job: broken }\nautonomy: auto\naction: { command: ["sh", "${join(home, 'fix.sh')}"], touches: ["work/"], timeout: 5m }\nprobe: { command: ["test", "-e", "${join(w, 'go')}"] }\n`,
    );
    if (asNobody) {
      chownTree(home);
      chownTree(inst);
    }
    const d = await start(inst, home, asNobody);
    await cli(['--home', home, 'run', 'broken']);
    await waitFor(() => existsSync(join(w, 'started')), 20_000, 'the fix under way');
    d.proc.kill('SIGKILL');
    await d.proc;
    void daemons.splice(daemons.indexOf(d.proc), 1);
    // The upgrade, while nightshift is down.
    const cliJs = join(inst, 'dist', 'cli.js');
    writeFileSync(cliJs, `${readFileSync(cliJs, 'utf8')}\n// upgraded\n`);
    await start(inst, home, asNobody);
    const state = join(home, 'state');
    const a = await waitFor(
      () => query<{ outcome: string; detail: string }>(state, 'SELECT outcome, detail FROM heal_attempts WHERE outcome IS NOT NULL').at(0),
      30_000,
      'the recovery',
    );
    expect(a.outcome).toBe('interrupted-rolled-back');
    expect(a.detail).toMatch(/upgraded or changed meanwhile/);
    expect(a.detail).not.toMatch(/EMERGENCY/);
    expect(readFileSync(cliJs, 'utf8')).toMatch(/\/\/ upgraded\n$/);
    expect(query(state, "SELECT level FROM rule_ladder WHERE level = 'shadow'")).toEqual([]);
    expect(query(state, 'SELECT id FROM pages')).toEqual([]);
  });
});
