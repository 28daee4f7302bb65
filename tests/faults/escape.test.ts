// The escape suite: fixes (and one job) written to cheat, in the shape of the example rules, each
// one a row of the attacker's review that broke nightshift before containment. Every attack
// proves it ran (a marker in its touches) and, where it leaves something behind, that the
// something is gone (it holds an flock that is released only when it dies): a positive proof,
// never "nothing happened within a fixed sleep".
//
// As root (as CI runs) the whole suite runs twice: with the daemon as root, and as the unprivileged
// user nobody — root drops capabilities and maps a uid, an ordinary user gets a user namespace:
// two different code paths of the same sandbox.
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import {
  chmodSync,
  existsSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CLI,
  cli,
  flockFree,
  makeHome,
  pidAlive,
  query,
  startDaemon,
  tempDir,
  waitFor,
  trackDaemons,
  type DaemonProc,
} from '../support/helpers.js';

const AS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
const MODES: Array<{ name: string; asNobody: boolean }> = AS_ROOT
  ? [
      { name: 'daemon as root', asNobody: false },
      { name: 'daemon as nobody', asNobody: true },
    ]
  : [{ name: `daemon as ${process.env.USER ?? 'this user'}`, asNobody: false }];

const { daemons, dirs: homes } = trackDaemons({ dirs: 'after-all' });

const VICTIM = 'every: 1h\ncommand: ["true"]\n';
const BROKEN = 'shell: "echo broken; exit 3"\ntimeout: 30s\n';

interface Home {
  home: string;
  state: string;
  work: string;
  outside: string;
}

function sha(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function chownTree(p: string, uid: number, gid: number): void {
  lchownSync(p, uid, gid);
  if (lstatSync(p).isDirectory()) for (const n of readdirSync(p)) chownTree(join(p, n), uid, gid);
}

/** A home with the victim and broken jobs and one rule `attack` whose fix is `script` (sh), touching work/. */
function attackHome(
  asNobody: boolean,
  script: string,
  opts: { probe?: string; touches?: string[]; jobs?: Record<string, string> } = {},
): Home {
  const home = makeHome({ victim: VICTIM, broken: BROKEN, ...(opts.jobs ?? {}) }, 'page:\n  allow: [protected-zone, heal-blocked]\n');
  homes.push(home);
  const work = join(home, 'work');
  const outside = join(home, 'outside');
  mkdirSync(work);
  mkdirSync(outside);
  writeFileSync(join(work, 'target'), 'original\n');
  mkdirSync(join(home, 'rules'), { recursive: true });
  writeFileSync(join(home, 'attack.sh'), `#!/bin/sh\nset +e\nexport W=${work} O=${outside} H=${home}\n${script}\n`);
  chmodSync(join(home, 'attack.sh'), 0o755);
  const touches = opts.touches ?? ['work/'];
  writeFileSync(
    join(home, 'rules', 'attack.yaml'),
    `match:\n  job: broken\n  kind: [failed]\nautonomy: auto\naction:\n  command: ["${join(home, 'attack.sh')}"]\n  touches: ${JSON.stringify(touches)}\n  timeout: 20s\nprobe:\n  ${opts.probe ?? `command: ["grep", "-q", "fixed", "${join(work, 'target')}"]`}\n  timeout: 30s\n`,
  );
  if (asNobody) chownTree(home, 65534, 65534);
  return { home, state: join(home, 'state'), work, outside };
}

async function daemonFor(h: Home, asNobody: boolean): Promise<DaemonProc> {
  const d = await startDaemon(h.home, { asNobody });
  daemons.push(d);
  return d;
}

async function breakJob(h: Home): Promise<void> {
  const r = await cli(['--home', h.home, '--state', h.state, 'run', 'broken']);
  expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(1);
}

interface Attempt {
  id: number;
  outcome: string | null;
  detail: string | null;
  step: string;
}

async function finishedAttempt(h: Home, timeoutMs = 20_000): Promise<Attempt> {
  return waitFor(
    () =>
      query<Attempt>(
        h.state,
        "SELECT id, outcome, detail, step FROM heal_attempts WHERE job = 'broken' AND outcome IS NOT NULL AND outcome NOT IN ('self-recovered') ORDER BY id",
      ).at(0),
    timeoutMs,
    'a finished heal attempt',
  );
}

function read(p: string): string {
  return existsSync(p) ? readFileSync(p, 'utf8') : '';
}

describe.each(MODES)('escape suite ($name)', ({ asNobody }) => {
  it('row 1: a background writer a fix leaves (&, setsid, nohup) dies with the fix; jobs/ is read-only anyway', async () => {
    const h = attackHome(
      asNobody,
      `{ echo hijacked: true > $H/jobs/victim.yaml; } 2> $W/direct.err
( flock $W/bg.lock sh -c 'echo up > $W/bg.up; sleep 2; echo "command: [\\"sh\\", \\"-c\\", \\"touch $O/pwned\\"]" > $H/jobs/victim.yaml' ) &
setsid flock $W/setsid.lock sh -c 'echo up > $W/setsid.up; sleep 2; echo x >> $H/jobs/victim.yaml' &
nohup flock $W/nohup.lock sh -c 'echo up > $W/nohup.up; sleep 2; echo x >> $H/jobs/victim.yaml' > /dev/null 2>&1 &
while [ ! -e $W/bg.up ] || [ ! -e $W/setsid.up ] || [ ! -e $W/nohup.up ]; do sleep 0.05; done
echo fixed > $W/target`,
    );
    const before = sha(join(h.home, 'jobs', 'victim.yaml'));
    await daemonFor(h, asNobody);
    await breakJob(h);
    const a = await finishedAttempt(h);
    for (const w of ['bg', 'setsid', 'nohup']) expect(read(join(h.work, `${w}.up`)), `${w} writer started`).toBe('up\n');
    // The writers are gone the moment the attempt is recorded: their locks are free.
    for (const w of ['bg', 'setsid', 'nohup']) expect(flockFree(join(h.work, `${w}.lock`)), `${w} writer gone`).toBe(true);
    expect(read(join(h.work, 'direct.err'))).toMatch(/Read-only file system/);
    expect(sha(join(h.home, 'jobs', 'victim.yaml'))).toBe(before);
    expect(a.outcome).toBe('fixed-verified'); // the fix itself did its declared job; nothing else stuck
    expect(existsSync(join(h.outside, 'pwned'))).toBe(false);
  });

  it('row 3: a fix cannot see the state folder, so a loop deleting state/KILL never reaches it; the switch stays on', async () => {
    const h = attackHome(
      asNobody,
      `ls -A $NIGHTSHIFT_STATE > $W/state-listing 2>&1; echo "exit $?" >> $W/state-listing
setsid flock $W/killer.lock sh -c 'echo up > $W/killer.up; while :; do rm -f $NIGHTSHIFT_STATE/KILL 2>> $W/rm.err; sleep 0.05; done' &
while [ ! -e $W/killer.up ]; do sleep 0.05; done
echo fixed > $W/target`,
    );
    await daemonFor(h, asNobody);
    await breakJob(h);
    await finishedAttempt(h);
    expect(read(join(h.work, 'killer.up'))).toBe('up\n');
    expect(flockFree(join(h.work, 'killer.lock'))).toBe(true);
    // The state folder is an empty mount inside the sandbox: no database, no socket, no KILL.
    expect(read(join(h.work, 'state-listing'))).toBe('exit 0\n');
    const on = await cli(['--home', h.home, '--state', h.state, 'kill', 'on']);
    expect(on.exitCode).toBe(0);
    expect(existsSync(join(h.state, 'KILL'))).toBe(true);
    const st = await cli(['--home', h.home, '--state', h.state, 'kill', 'status']);
    expect(String(st.stdout)).toMatch(/on/i);
  });

  it('row 4: neither a fix nor a job can approve a gated heal: not by the CLI, the socket path, nor /proc/<daemon>/root', async () => {
    // A gated rule for `broken` waits for a person. Then a job (`approver`) and an auto fix (rule
    // `attack`, for `trigger`) each try every way they can reach to approve attempts 1..5.
    const approveJs = `const http = require('http'), fs = require('fs'), cp = require('child_process');
const [state, home, cli, out] = process.argv.slice(2);
const tried = [];
const paths = [state + '/nightshift.sock'];
try { for (const p of fs.readdirSync('/proc')) if (/^\\d+$/.test(p)) paths.push('/proc/' + p + '/root' + state + '/nightshift.sock'); } catch (e) { tried.push('proc: ' + e.code); }
let pending = 0;
const done = () => { if (--pending === 0) { fs.appendFileSync(out, tried.join('\\\\n') + '\\\\n'); process.exit(0); } };
for (const socketPath of paths) for (let id = 1; id <= 5; id++) {
  pending++;
  const req = http.request({ socketPath, method: 'POST', path: '/approve/' + id }, (res) => { tried.push('APPROVE ' + id + ' via ' + socketPath + ': HTTP ' + res.statusCode); res.resume(); res.on('end', done); });
  req.on('error', (e) => { tried.push('approve ' + id + ' via ' + socketPath + ': ' + e.code); done(); });
  req.end();
}
for (let id = 1; id <= 5; id++) {
  const r = cp.spawnSync(process.execPath, [cli, '--home', home, '--state', state, 'approve', String(id)], { encoding: 'utf8' });
  tried.push('cli approve ' + id + ': exit ' + r.status + ' ' + String(r.stderr).trim().split('\\\\n')[0]);
}
`;
    const h = attackHome(asNobody, `${process.execPath} $O/approve.js "$NIGHTSHIFT_STATE" $H ${CLI} $W/fix-tried\necho fixed > $W/target`, {
      jobs: {
        trigger: 'shell: "exit 3"\n',
        approver: `command: ["${process.execPath}", "APPROVE_JS", "STATE", "HOME", "${CLI}", "OUT"]\n`,
      },
    });
    writeFileSync(join(h.outside, 'approve.js'), approveJs);
    // The gated rule (rules are tried in file-name order: 00- before attack).
    writeFileSync(
      join(h.home, 'rules', '00-gated.yaml'),
      `match:\n  job: broken\nautonomy: gated\naction:\n  command: ["sh", "-c", "echo approved-fix-ran > ${join(h.work, 'target')}"]\n  touches: ["work/"]\nprobe:\n  command: ["grep", "-q", "approved-fix-ran", "${join(h.work, 'target')}"]\n`,
    );
    const attack = join(h.home, 'rules', 'attack.yaml');
    writeFileSync(attack, readFileSync(attack, 'utf8').replace('job: broken', 'job: trigger'));
    const spec = join(h.home, 'jobs', 'approver.yaml');
    writeFileSync(
      spec,
      readFileSync(spec, 'utf8')
        .replace('APPROVE_JS', join(h.outside, 'approve.js'))
        .replace('STATE', h.state)
        .replace('HOME', h.home)
        .replace('OUT', join(h.outside, 'job-tried')),
    );
    if (asNobody) chownTree(h.home, 65534, 65534);
    await daemonFor(h, asNobody);
    await breakJob(h);
    const gated = await waitFor(
      () =>
        query<Attempt>(
          h.state,
          "SELECT id, outcome, detail, step FROM heal_attempts WHERE job = 'broken' AND outcome = 'awaiting-approval'",
        ).at(0),
      20_000,
      'the gated attempt',
    );
    await cli(['--home', h.home, '--state', h.state, 'run', 'approver']);
    await cli(['--home', h.home, '--state', h.state, 'run', 'trigger']);
    await waitFor(
      () => query(h.state, "SELECT id FROM heal_attempts WHERE job = 'trigger' AND outcome IS NOT NULL").length > 0,
      20_000,
      'the attacking fix',
    );
    const jobTried = read(join(h.outside, 'job-tried'));
    const fixTried = read(join(h.work, 'fix-tried'));
    // Each tried (a positive proof), and nothing got through.
    expect(jobTried).toMatch(/cli approve 5: exit/);
    expect(fixTried).toMatch(/cli approve 5: exit/);
    // It looked through /proc/<pid>/root too (only its own sandbox's processes are there).
    expect(jobTried).toMatch(/approve 1 via \/proc\/\d+\/root/);
    expect(fixTried).toMatch(/approve 1 via \/proc\/\d+\/root/);
    expect(jobTried + fixTried).not.toMatch(/APPROVE/);
    expect(jobTried + fixTried).not.toMatch(/cli approve \d: exit 0/);
    const after = query<Attempt>(h.state, 'SELECT id, outcome, detail, step FROM heal_attempts WHERE id = ?', gated.id)[0]!;
    expect(after.outcome).toBe('awaiting-approval');
    expect(read(join(h.work, 'target'))).not.toMatch(/approved-fix-ran/);
  });

  it('row 5: a fix cannot write nightshift.db: its alert stays open, the rollback demotes the rule', async () => {
    const h = attackHome(
      asNobody,
      `{ echo garbage >> $NIGHTSHIFT_STATE/nightshift.db; } 2>&1; echo "db write: exit $?"
echo fixed > $W/target
exit 1`,
      { probe: 'rerun: true' },
    );
    await daemonFor(h, asNobody);
    await breakJob(h);
    const a = await finishedAttempt(h);
    // Its own words reach the attempt's record: the write was refused.
    expect(a.detail).toMatch(/Read-only file system.*db write: exit [1-9]/);
    expect(a.outcome).toBe('rolled-back');
    expect(read(join(h.work, 'target'))).toBe('original\n');
    const open = query<{ n: number }>(
      h.state,
      "SELECT count(*) AS n FROM alerts WHERE fingerprint = 'broken:failed' AND resolved_at IS NULL",
    )[0]!;
    expect(open.n).toBe(1);
    const ladder = query<{ level: string }>(h.state, "SELECT level FROM rule_ladder WHERE rule = 'attack'");
    expect(ladder).toEqual([{ level: 'gated' }]);
  });

  it('row 6: a writer escaped with setsid env -i does not outlive a kill -9 of the daemon during the probe; the restore stands', async () => {
    const h = attackHome(
      asNobody,
      `echo fixed > $W/target
setsid env -i /bin/sh -c "flock $W/esc.lock sh -c 'echo up > $W/esc.up; sleep 30; echo hijacked > $W/target'" &
while [ ! -e $W/esc.up ]; do sleep 0.05; done`,
      // Fails fast before the fix (the pre-check), hangs after it: the daemon dies during the probe.
      { probe: `command: ["sh", "-c", "grep -q fixed ${'$'}0 && sleep 60", "TARGET"]` },
    );
    writeFileSync(
      join(h.home, 'rules', 'attack.yaml'),
      readFileSync(join(h.home, 'rules', 'attack.yaml'), 'utf8').replace('"TARGET"', JSON.stringify(join(h.work, 'target'))),
    );
    const d = await daemonFor(h, asNobody);
    await breakJob(h);
    await waitFor(
      () => query(h.state, "SELECT id FROM heal_attempts WHERE step = 'probe' AND outcome IS NULL").length > 0,
      20_000,
      'the probe step',
    );
    expect(read(join(h.work, 'esc.up'))).toBe('up\n');
    d.proc.kill('SIGKILL');
    await d.proc;
    // With the daemon gone, so is the escaped writer (and the probe): before any restart.
    await waitFor(() => flockFree(join(h.work, 'esc.lock')), 5000, 'the escaped writer gone with the daemon');
    await daemonFor(h, asNobody);
    const a = await waitFor(
      () => query<Attempt>(h.state, "SELECT id, outcome, detail, step FROM heal_attempts WHERE outcome = 'interrupted-rolled-back'").at(0),
      20_000,
      'the rollback at restart',
    );
    expect(a.detail).toMatch(/rolled back/);
    expect(read(join(h.work, 'target'))).toBe('original\n');
  });

  it('row 7: a fix cannot write outside its touches: outside the home it meets a read-only file system; beside a touched file its new file is removed and the attempt rolled back', async () => {
    const h = attackHome(
      asNobody,
      `{ echo escaped > $O/outside.txt; } 2> $W/outside.err; echo "exit $?" >> $W/outside.err
echo fixed > $W/target`,
    );
    await daemonFor(h, asNobody);
    await breakJob(h);
    const a = await finishedAttempt(h);
    expect(read(join(h.work, 'outside.err'))).toMatch(/Read-only file system[\s\S]*exit [1-9]/);
    expect(existsSync(join(h.outside, 'outside.txt'))).toBe(false);
    expect(a.outcome).toBe('fixed-verified');

    // A touched file: its folder is writable for it alone.
    const h2 = attackHome(
      asNobody,
      `echo fixed > $W/target
echo sibling > $W/other 2> /dev/null
echo new > $W/stray.txt`,
      { touches: ['work/target'] },
    );
    writeFileSync(join(h2.work, 'other'), 'untouched\n');
    if (asNobody) chownTree(h2.work, 65534, 65534);
    await daemonFor(h2, asNobody);
    await breakJob(h2);
    const b = await finishedAttempt(h2);
    expect(b.outcome).toBe('rolled-back');
    expect(b.detail).toMatch(/wrote outside its touches/);
    expect(read(join(h2.work, 'other'))).toBe('untouched\n');
    expect(existsSync(join(h2.work, 'stray.txt'))).toBe(false);
    expect(read(join(h2.work, 'target'))).toBe('original\n');
  });

  it('row 8: a probe command running when the daemon is killed -9 dies with it', async () => {
    const h = attackHome(asNobody, 'echo fixed > $W/target', { probe: `command: ["flock", "${'$'}{LOCK}", "sleep", "60"]` });
    // The probe holds an flock on a file the test made (a probe writes nothing; flock opens it read-only).
    const lock = join(h.outside, 'probe.lock');
    writeFileSync(lock, '');
    const rule = readFileSync(join(h.home, 'rules', 'attack.yaml'), 'utf8').replace('${LOCK}', lock);
    writeFileSync(join(h.home, 'rules', 'attack.yaml'), rule);
    if (asNobody) chownTree(h.home, 65534, 65534);
    const d = await daemonFor(h, asNobody);
    await breakJob(h);
    await waitFor(() => !flockFree(lock), 20_000, 'the probe holding its lock');
    d.proc.kill('SIGKILL');
    await d.proc;
    await waitFor(() => flockFree(lock), 5000, 'the probe gone with the daemon');
  });

  it('row 9: a job that escapes with setsid -f does not survive its timeout', async () => {
    const h = attackHome(asNobody, 'true', {
      jobs: { escaper: `shell: "setsid -f flock ${'$'}{LOCK} sleep 305; echo > ${'$'}{UP}; sleep 60"\ntimeout: 2s\nkillGrace: 1s\n` },
    });
    const lock = join(h.work, 'escaper.lock');
    const up = join(h.work, 'escaper.up');
    writeFileSync(
      join(h.home, 'jobs', 'escaper.yaml'),
      readFileSync(join(h.home, 'jobs', 'escaper.yaml'), 'utf8')
        .replace('${LOCK}', lock)
        .replace('${UP}', up),
    );
    if (asNobody) chownTree(h.home, 65534, 65534);
    await daemonFor(h, asNobody);
    const r = await cli(['--home', h.home, '--state', h.state, 'run', 'escaper']);
    expect(r.exitCode).toBe(1);
    expect(existsSync(up)).toBe(true);
    const row = query<{ outcome: string }>(h.state, "SELECT outcome FROM runs WHERE job = 'escaper'")[0]!;
    expect(row.outcome).toBe('timeout');
    expect(flockFree(lock)).toBe(true);
  });

  it('row 10: a fix sees no process outside its sandbox and cannot signal the daemon or a running job', async () => {
    const h = attackHome(
      asNobody,
      `ps -eo pid,args > $W/ps.txt 2>&1
kill -9 -1 2> /dev/null
pkill -9 -f cli.js 2> /dev/null
pkill -9 flock 2> /dev/null
echo fixed > $W/target`,
      { jobs: { sleeper: `shell: "flock ${'$'}{LOCK} sleep 120"\ntimeout: 5m\n` } },
    );
    const lock = join(h.outside, 'sleeper.lock');
    writeFileSync(
      join(h.home, 'jobs', 'sleeper.yaml'),
      readFileSync(join(h.home, 'jobs', 'sleeper.yaml'), 'utf8').replace('${LOCK}', lock),
    );
    if (asNobody) chownTree(h.home, 65534, 65534);
    const d = await daemonFor(h, asNobody);
    const sleeper = cli(['--home', h.home, '--state', h.state, 'run', 'sleeper']);
    await waitFor(() => existsSync(lock) && !flockFree(lock), 10_000, 'the sleeper job running');
    await breakJob(h);
    const a = await finishedAttempt(h);
    expect(a.outcome).toBe('fixed-verified');
    const ps = read(join(h.work, 'ps.txt'));
    expect(ps).toMatch(/ps -eo/); // it did look
    expect(ps).not.toMatch(/cli\.js/);
    expect(ps).not.toMatch(/sleep 120/);
    expect(pidAlive(d.proc.pid!)).toBe(true);
    expect(flockFree(lock)).toBe(false); // the other job still runs
    void sleeper;
  });

  it('kernel settings stay read-only: a fix, a probe and a job cannot write a sysctl (as root, uid 0 to the kernel)', async () => {
    // Writing the value it already has: harmless to the machine even if the write went through.
    const sysctl = 'cat /proc/sys/kernel/hostname > /tmp/h; { cat /tmp/h > /proc/sys/kernel/hostname; } 2>&1; echo "sysctl: exit $?"';
    const h = attackHome(asNobody, `${sysctl} > $W/fix-sysctl\necho fixed > $W/target`, {
      jobs: { writer: `shell: "${sysctl.replace(/"/g, '\\"').replace('/tmp/h', '/tmp/hj')} > ${'$'}{OUT}"\n` },
    });
    const out = join(h.outside, 'job-sysctl');
    writeFileSync(join(h.home, 'jobs', 'writer.yaml'), readFileSync(join(h.home, 'jobs', 'writer.yaml'), 'utf8').replace('${OUT}', out));
    if (asNobody) chownTree(h.home, 65534, 65534);
    await daemonFor(h, asNobody);
    await cli(['--home', h.home, '--state', h.state, 'run', 'writer']);
    expect(read(out)).toMatch(/sysctl: exit [1-9]/);
    await breakJob(h);
    await finishedAttempt(h);
    expect(read(join(h.work, 'fix-sysctl'))).toMatch(/sysctl: exit [1-9]/);
  });

  it('a link beside a touched file (planted by a job) neither shows the state folder nor can be changed for good', async () => {
    const h = attackHome(
      asNobody,
      `ls -A $W/lnk/ > $W/through-link 2>&1; ls -A $NIGHTSHIFT_STATE >> $W/through-link 2>&1
ln -sfn /etc/passwd $W/rel
echo fixed > $W/target`,
      { touches: ['work/target'] },
    );
    symlinkSync('../state', join(h.work, 'lnk'));
    symlinkSync('target', join(h.work, 'rel'));
    if (asNobody) chownTree(h.home, 65534, 65534);
    await daemonFor(h, asNobody);
    await breakJob(h);
    const a = await finishedAttempt(h);
    // The fix's listing went nowhere (it could not even write it: only target is writable), and
    // the link it replaced is back as it was; the attempt is rolled back as a write outside its touches.
    expect(a.outcome).toBe('rolled-back');
    expect(a.detail).toMatch(/wrote outside its touches/);
    expect(readlinkSync(join(h.work, 'rel'))).toBe('target');
    expect(readlinkSync(join(h.work, 'lnk'))).toBe('../state');
    expect(existsSync(join(h.work, 'through-link'))).toBe(false);
  });

  it('a hard link a job planted in the touches is refused: the fix would change a file outside them', async () => {
    const h = attackHome(asNobody, 'echo changed >> $W/hl\necho fixed > $W/target');
    writeFileSync(join(h.outside, 'notes.txt'), 'notes\n');
    linkSync(join(h.outside, 'notes.txt'), join(h.work, 'hl'));
    if (asNobody) chownTree(h.home, 65534, 65534);
    await daemonFor(h, asNobody);
    await breakJob(h);
    const a = await finishedAttempt(h);
    expect(a.outcome).toBe('rolled-back');
    expect(a.detail).toMatch(/hard link/);
    expect(read(join(h.outside, 'notes.txt'))).toBe('notes\n');
    expect(read(join(h.work, 'target'))).toBe('original\n');
  });

  it('the alert file is handed in from the state folder, out of reach of every job', async () => {
    const h = attackHome(
      asNobody,
      'cat "$NIGHTSHIFT_ALERT_FILE" > $W/alert.copy\ntouch $W/started\nwhile [ ! -e $W/go ]; do sleep 0.05; done\necho fixed > $W/target',
    );
    await daemonFor(h, asNobody);
    await breakJob(h);
    await waitFor(() => existsSync(join(h.work, 'started')), 20_000, 'the fix under way');
    expect(readdirSync(join(h.state, 'heal-alerts'))).toHaveLength(1);
    expect(JSON.parse(read(join(h.work, 'alert.copy'))).fingerprint).toBe('broken:failed');
    writeFileSync(join(h.work, 'go'), '');
    await finishedAttempt(h);
    expect(readdirSync(join(h.state, 'heal-alerts'))).toEqual([]);
  });

  it("a fix and a probe cannot talk to a local service over a unix socket only the daemon's user may use (docker, D-Bus, systemd)", async () => {
    // A socket on a read-only mount can still be connected to; file permissions would let the fix
    // in (as root it is uid 0 to the kernel; as an ordinary user it is that user). The service
    // counts connections: none may arrive. The probe exits 1 if it gets through, so
    // `fixed-verified` also proves the probe ran and was refused.
    const connectJs = (onOk: string, onErr: string): string =>
      `require('net').connect(process.argv[1]).on('connect',()=>{${onOk}}).on('error',(e)=>{${onErr}})`;
    const node = process.execPath;
    const fixJs = connectJs(
      "require('fs').writeFileSync(process.env.W+'/connected','yes');process.exit(0)",
      "require('fs').writeFileSync(process.env.W+'/connect.err',String(e.code));process.exit(1)",
    );
    const probeJs = connectJs('process.exit(1)', 'process.exit(0)');
    const h = attackHome(asNobody, `${node} -e "${fixJs}" $O/svc.sock\necho fixed > $W/target`, {
      probe: `command: ["sh", "-c", ${JSON.stringify(`${node} -e "${probeJs}" ${'$'}SOCK && grep -q fixed ${'$'}TARGET`)}]`,
    });
    const sock = join(h.outside, 'svc.sock');
    const rule = join(h.home, 'rules', 'attack.yaml');
    writeFileSync(rule, readFileSync(rule, 'utf8').replace('$SOCK', sock).replace('$TARGET', join(h.work, 'target')));
    let connections = 0;
    const server = createServer((c) => {
      connections++;
      c.destroy();
    });
    await new Promise<void>((res) => server.listen(sock, res));
    try {
      chmodSync(sock, 0o600);
      if (asNobody) chownTree(h.home, 65534, 65534);
      await daemonFor(h, asNobody);
      await breakJob(h);
      const a = await finishedAttempt(h);
      expect(read(join(h.work, 'connect.err')), 'the fix tried and was refused').toMatch(/^E[A-Z]+$/);
      expect(existsSync(join(h.work, 'connected'))).toBe(false);
      expect(a.outcome, String(a.detail)).toBe('fixed-verified');
      expect(connections).toBe(0);
    } finally {
      await new Promise<void>((res) => server.close(() => res()));
    }
  });

  it('a job that swaps a folder of the touches for a link into the state folder while the rollback runs does not make the rollback write there', async () => {
    // The rollback walks the touches by path. A job (jobs run beside it) waits for the rollback's
    // first temporary file in work/m, then turns work/z (walked after m) into a link to the state
    // folder, which no job can see itself: a rollback run by the daemon, outside any sandbox,
    // would list the state folder as the content of work/z and remove it. The fix deleted 20,000
    // small files of work/m, so the rollback spends a good while putting them back before it
    // reaches work/z: far more than the job needs to make its swap, on any machine.
    const h = attackHome(asNobody, 'find $W/m -type f -delete\nexit 1', {
      jobs: { racer: `command: ["${process.execPath}", "RACER"]\ntimeout: 5m\n` },
    });
    mkdirSync(join(h.work, 'm'));
    mkdirSync(join(h.work, 'z'));
    writeFileSync(join(h.work, 'z', 'keep'), 'keep\n');
    for (let i = 0; i < 20_000; i++) writeFileSync(join(h.work, 'm', `f${String(i).padStart(5, '0')}`), `${i}\n`);
    const racer = join(h.outside, 'racer.js');
    writeFileSync(
      racer,
      `const fs = require('fs');
const [m, z, state, out] = ${JSON.stringify([join(h.work, 'm'), join(h.work, 'z'), h.state, h.outside])};
const w = fs.watch(m, (ev, name) => {
  if (!name || !name.startsWith('.nightshift-restore-')) return;
  w.close();
  try { fs.renameSync(z, z + '.old'); fs.symlinkSync(state, z); fs.writeFileSync(out + '/swapped', 'swapped'); }
  catch (e) { fs.writeFileSync(out + '/swapped', 'error ' + e.message); }
  process.exit(0);
});
fs.writeFileSync(out + '/racer.up', 'up');
setTimeout(() => process.exit(2), 120000);
`,
    );
    const spec = join(h.home, 'jobs', 'racer.yaml');
    writeFileSync(spec, readFileSync(spec, 'utf8').replace('RACER', racer));
    mkdirSync(h.state, { recursive: true });
    writeFileSync(join(h.state, 'canary'), 'canary\n');
    if (asNobody) chownTree(h.home, 65534, 65534);
    await daemonFor(h, asNobody);
    void cli(['--home', h.home, '--state', h.state, 'run', 'racer']);
    await waitFor(() => existsSync(join(h.outside, 'racer.up')), 10_000, 'the racing job watching');
    await breakJob(h);
    const a = await finishedAttempt(h, 60_000);
    expect(read(join(h.outside, 'swapped')), 'the job made its swap during the rollback').toBe('swapped');
    expect(read(join(h.state, 'canary'))).toBe('canary\n');
    expect(existsSync(join(h.state, 'nightshift.db'))).toBe(true);
    // Nothing it could trust to have put back: the rollback is reported as failed, for a person.
    expect(a.outcome, String(a.detail)).toBe('rollback-failed');
  }, 120_000);

  it('a job that moves the home away (and a later job that would move it back) gets nothing: nightshift starts no process, runs no fix and stops with exit code 4', async () => {
    // The kill switch is on. A job (it may write the folder holding the home) renames the home and
    // makes an empty one at the same path; a daemon that went on by path would find no kill switch
    // there, and compute the leash of the next job from paths that no longer name the real state
    // folder: `swapper` (every second) would see it whole, remove KILL and move the home back.
    // Found by an attacker helper (two-step form).
    const flagDir = tempDir('ns-flag-');
    const flag = join(flagDir, 'armed');
    const h = attackHome(asNobody, 'echo fixed > $W/target', {
      jobs: {
        broken: `shell: "test -e ${flag} && exit 3; exit 0"\nevery: 1s\n`,
        mover: 'shell: "mv $H $H.moved && mkdir -p $H/state && touch FLAG"\n',
        swapper:
          'every: 1s\nshell: "test -e FLAG || exit 0; ls -A $H.moved/state > FLAGDIR/seen 2>&1; rm -f $H.moved/state/KILL; mv $H $H.fake && mv $H.moved $H && touch FLAGDIR/swapped"\n',
      },
    });
    homes.push(`${h.home}.moved`, `${h.home}.fake`, flagDir);
    for (const j of ['mover', 'swapper']) {
      const spec = join(h.home, 'jobs', `${j}.yaml`);
      writeFileSync(spec, readFileSync(spec, 'utf8').replaceAll('$H', h.home).replaceAll('FLAGDIR', flagDir).replaceAll('FLAG', flag));
    }
    if (asNobody) {
      chownTree(h.home, 65534, 65534);
      chownTree(flagDir, 65534, 65534);
    }
    const d = await daemonFor(h, asNobody);
    expect((await cli(['--home', h.home, '--state', h.state, 'kill', 'on'])).exitCode).toBe(0);
    const moved = await cli(['--home', h.home, '--state', h.state, 'run', 'mover']);
    expect(existsSync(flag), String(moved.stdout) + String(moved.stderr)).toBe(true);
    const end = await d.proc;
    expect(end.exitCode).toBe(4);
    const movedState = join(`${h.home}.moved`, 'state');
    const event = query<{ message: string }>(movedState, "SELECT message FROM events WHERE kind = 'home-moved'");
    expect(event[0]?.message).toMatch(/no longer the folder nightshift started with.*database is now at .*\.moved\/state\/nightshift\.db/);
    expect(existsSync(join(flagDir, 'seen')), 'the swapper never ran').toBe(false);
    expect(existsSync(join(movedState, 'KILL'))).toBe(true);
    expect(query(movedState, "SELECT id FROM heal_attempts WHERE job = 'broken' AND outcome NOT IN ('halted')")).toEqual([]);
    expect(read(join(`${h.home}.moved`, 'work', 'target'))).toBe('original\n');
  });

  it('a fix cannot reach a unix datagram service through socketpair(AF_UNIX, SOCK_DGRAM) and sendto or connect', async () => {
    // Found by an attacker helper: socket(AF_UNIX) was refused, but one end of a datagram pair can
    // be aimed at any socket path (journald, /dev/log, systemd's notify socket).
    const client = `use Socket; $| = 1;
my $path = $ARGV[0];
if (socket(my $t, AF_UNIX, SOCK_DGRAM, 0)) { print "socket: ok\\n" } else { print "socket: $!\\n" }
if (socketpair(my $a, my $b, AF_UNIX, SOCK_DGRAM, 0)) {
  print "socketpair: ok\\n";
  my $r = send($a, "via sendto", 0, pack_sockaddr_un($path));
  print defined $r ? "sendto: ok\\n" : "sendto: $!\\n";
  if (connect($b, pack_sockaddr_un($path))) { print "connect: ok\\n"; send($b, "via connect", 0) } else { print "connect: $!\\n" }
} else { print "socketpair: $!\\n" }
if (socketpair(my $c, my $e, AF_UNIX, SOCK_STREAM, 0)) { print "stream pair: ok\\n" } else { print "stream pair: $!\\n" }
`;
    const h = attackHome(asNobody, 'perl $O/client.pl $O/svc.dgram > $W/client.out 2>&1\necho fixed > $W/target');
    writeFileSync(join(h.outside, 'client.pl'), client);
    const sock = join(h.outside, 'svc.dgram');
    const server = execa(
      'perl',
      [
        '-MSocket',
        '-e',
        'socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die; bind($s, pack_sockaddr_un($ARGV[0])) or die; chmod 0600, $ARGV[0]; $| = 1; print "ready\n"; while (defined(recv($s, my $b, 4096, 0))) { print "got: $b\n" }',
        sock,
      ],
      { reject: false, stdin: 'ignore', buffer: false },
    );
    let got = '';
    server.stdout?.on('data', (c: Buffer) => (got += c.toString()));
    try {
      await waitFor(() => got.includes('ready'), 5000, 'the datagram service');
      if (asNobody) {
        chownTree(h.home, 65534, 65534);
        lchownSync(sock, 65534, 65534);
      }
      await daemonFor(h, asNobody);
      await breakJob(h);
      const a = await finishedAttempt(h);
      const out = read(join(h.work, 'client.out'));
      expect(out).toMatch(/socket: Permission denied/);
      expect(out).toMatch(/socketpair: Permission denied/);
      expect(out, 'stream pairs (pipes) still work').toMatch(/stream pair: ok/);
      expect(a.outcome).toBe('fixed-verified');
      expect(got).not.toMatch(/got:/);
    } finally {
      server.kill('SIGTERM');
      await server;
    }
  });

  it('a fix that tries mount -o remount,rw before writing stays read-only', async () => {
    const h = attackHome(
      asNobody,
      `mount -o remount,rw / 2>> $W/mount.err; echo "exit $?" >> $W/mount.err
mount -o remount,rw $H/jobs 2>> $W/mount.err; echo "exit $?" >> $W/mount.err
umount $NIGHTSHIFT_STATE 2>> $W/mount.err; echo "exit $?" >> $W/mount.err
unshare -Urm sh -c "mount -o remount,rw $H/jobs && echo remounted" >> $W/mount.err 2>&1; echo "exit $?" >> $W/mount.err
echo hijacked: true > $H/jobs/victim.yaml 2>> $W/mount.err
echo fixed > $W/target`,
    );
    const before = sha(join(h.home, 'jobs', 'victim.yaml'));
    await daemonFor(h, asNobody);
    await breakJob(h);
    await finishedAttempt(h);
    const err = read(join(h.work, 'mount.err'));
    expect(err.match(/exit [1-9]/g)?.length).toBe(4);
    expect(err).not.toMatch(/remounted/);
    expect(sha(join(h.home, 'jobs', 'victim.yaml'))).toBe(before);
  });
});

describe('file descriptors the daemon inherited', () => {
  it('reach no job and no fix: those without close-on-exec are closed at start', async () => {
    // The shell or supervisor that starts nightshift may leave a descriptor open without
    // close-on-exec (here: a shell's redirection, fd 60; node itself marks the lowest few
    // close-on-exec, not these); every process nightshift starts would
    // inherit it, through every sandbox — a unix socket among them is a way out. Found by an
    // attacker helper.
    const h = attackHome(false, 'ls /proc/self/fd > $W/fix-fds\necho fixed > $W/target', {
      jobs: { lister: 'shell: "ls /proc/self/fd > OUT"\n' },
    });
    const out = join(h.outside, 'job-fds');
    const spec = join(h.home, 'jobs', 'lister.yaml');
    writeFileSync(spec, readFileSync(spec, 'utf8').replace('OUT', out));
    const held = join(h.outside, 'held');
    writeFileSync(held, 'an open file\n');
    const proc = execa('bash', ['-c', `exec node "$0" --home "$1" --state "$2" start 60<"$3"`, CLI, h.home, h.state, held], {
      reject: false,
      stdin: 'ignore',
      buffer: false,
      forceKillAfterDelay: false,
    });
    let said = '';
    proc.stdout?.on('data', (c: Buffer) => (said += c.toString()));
    try {
      await waitFor(() => said.includes('nightshift started'), 60_000, 'daemon start');
      const closed = JSON.parse(said.split('\n').find((l) => l.includes('closed file descriptors'))!) as { fds: number[] };
      expect(closed.fds).toContain(60);
      await cli(['--home', h.home, '--state', h.state, 'run', 'lister']);
      await breakJob(h);
      await finishedAttempt(h);
      // 0, 1, 2 and the folder ls itself opens to list them (3): nothing else.
      expect(read(out).trim().split('\n')).toEqual(['0', '1', '2', '3']);
      expect(read(join(h.work, 'fix-fds')).trim().split('\n')).toEqual(['0', '1', '2', '3']);
    } finally {
      proc.kill('SIGTERM');
      await proc;
    }
  });
});

describe('where no sandbox can be set up', () => {
  it('jobs still run (fail open to work), no fix runs (fail closed to action), and status, validate and the digest say why and what to change', async () => {
    const h = attackHome(false, 'echo fixed > $W/target; echo ran > $W/fix-ran');
    const env = { NIGHTSHIFT_BWRAP: join(h.home, 'no-such-bwrap') };
    const d = await startDaemon(h.home, { env });
    daemons.push(d);
    const ok = await cli(['--home', h.home, '--state', h.state, 'run', 'victim'], { env });
    expect(ok.exitCode, String(ok.stdout)).toBe(0);
    await breakJob(h);
    const a = await finishedAttempt(h);
    expect(a.outcome).toBe('uncontained');
    expect(a.detail).toMatch(/bubblewrap .* is not installed: install it \(Debian\/Ubuntu: apt-get install bubblewrap\)/);
    expect(existsSync(join(h.work, 'fix-ran'))).toBe(false);
    expect(read(join(h.work, 'target'))).toBe('original\n');
    const status = await cli(['--home', h.home, '--state', h.state, 'status'], { env });
    expect(String(status.stdout)).toMatch(
      /Containment: UNAVAILABLE — jobs run uncontained and no fix, brain or probe runs .*apt-get install bubblewrap/,
    );
    const validate = await cli(['--home', h.home, 'validate'], { env });
    expect(validate.exitCode).toBe(0);
    expect(String(validate.stdout)).toMatch(/warning: containment unavailable: .*apt-get install bubblewrap/);
    const digest = await cli(['--home', h.home, '--state', h.state, 'digest'], { env });
    expect(String(digest.stdout)).toMatch(/no fix can run \(no sandbox\)/);
    expect(String(digest.stdout)).toMatch(
      /Nothing can be run in a sandbox on this machine: jobs run without one, and no fix or check runs — .*bubblewrap/,
    );
    // With bubblewrap there, status says so.
    const on = await cli(['--home', h.home, '--state', h.state, 'status']);
    expect(String(on.stdout)).toMatch(/Containment: on — every job, fix and probe runs in its own sandbox/);
  });
});

describe('a sandbox a dead daemon left behind', () => {
  it('is killed at the next start, before anything is recorded or restored', async () => {
    const h = attackHome(false, 'true');
    mkdirSync(h.state, { recursive: true });
    // As a daemon that died without taking its sandbox along would leave it: bwrap, tagged with the
    // state folder (the tag its launcher puts on every sandbox), holding a lock.
    const lock = join(h.outside, 'orphan.lock');
    writeFileSync(lock, '');
    const orphan = execa(
      'bwrap',
      ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--unshare-pid', '--', 'flock', lock, 'sleep', '300'],
      {
        env: { NIGHTSHIFT_SANDBOX: realpathSync(h.state) },
        detached: true,
        reject: false,
        stdio: 'ignore',
      },
    );
    await waitFor(() => existsSync(lock) && !flockFree(lock), 5000, 'the orphan holding its lock');
    const d = await startDaemon(h.home);
    daemons.push(d);
    expect(flockFree(lock), JSON.stringify(d.lines().slice(0, 6))).toBe(true);
    expect(d.lines().some((l) => typeof l.msg === 'string' && /1 sandbox\(es\) left by the previous daemon were killed/.test(l.msg))).toBe(
      true,
    );
    await orphan;
  });
});
