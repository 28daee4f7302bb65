// Hostile input and output (issue 10, point 5): what a careless or malicious file does to the
// commands and the daemon. Nothing may crash, and every refusal names the file and the line.
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, cli, makeHome, query, startDaemon, waitFor, trackDaemons } from '../support/helpers.js';

const { daemons, dirs: homes } = trackDaemons({ dirs: 'after-all' });

function home(jobs: Record<string, string> = {}): string {
  const h = makeHome(jobs, 'timezone: UTC\n');
  homes.push(h);
  return h;
}

describe('a job file of 10 MB', () => {
  it('is refused by validate with its file and line, leaves status and history working, and a daemon restarted on it keeps the last good version', async () => {
    const h = home({ big: 'every: 1h\ncommand: ["true"]\n' });
    const d = await startDaemon(h);
    daemons.push(d);
    await d.stop();
    daemons.pop();
    // One value of 10 MB: it used to overflow the YAML reader's stack.
    writeFileSync(join(h, 'jobs', 'big.yaml'), `every: 1h\ncommand: ["echo", "${'x'.repeat(10 * 1024 * 1024)}"]\n`);
    const v = await cli(['--home', h, 'validate']);
    expect(v.exitCode).toBe(2);
    expect(String(v.stdout) + String(v.stderr)).toMatch(/big\.yaml:1: .*a spec may be at most 262144 bytes/);
    expect(String(v.stderr)).not.toMatch(/Maximum call stack|\n\s+at /);
    for (const cmd of ['status', 'history']) {
      const r = await cli(['--home', h, cmd]);
      expect(String(r.stderr), cmd).not.toMatch(/Maximum call stack|\n\s+at /);
      expect([0, 1, 2], `${cmd} exit code`).toContain(r.exitCode);
    }
    const d2 = await startDaemon(h);
    daemons.push(d2);
    // It starts, says what is wrong, and runs the version that was valid.
    expect(d2.lines().some((l) => typeof l.msg === 'string' && l.msg.includes('a spec may be at most'))).toBe(true);
    expect(d2.lines().some((l) => l.job === 'big' && typeof l.msg === 'string' && l.msg.includes('running its last good version'))).toBe(
      true,
    );
    const ran = await cli(['--home', h, 'run', 'big']);
    expect(String(ran.stdout)).toMatch(/ok/);
  });

  it('a value just under the limit is read without trouble', async () => {
    const h = home({ long: `every: 1h\ncommand: ["echo", "${'y'.repeat(250 * 1024)}"]\n` });
    const v = await cli(['--home', h, 'validate']);
    expect(String(v.stderr)).toBe('');
    expect(v.exitCode).toBe(0);
  });
});

describe('a job file that is not a file', () => {
  it('a named pipe or a link to /dev/zero is refused at once (reading either would block or never end)', async () => {
    const h = home({ fine: 'every: 1h\ncommand: ["true"]\n' });
    await execa('mkfifo', [join(h, 'jobs', 'pipe.yaml')]);
    symlinkSync('/dev/zero', join(h, 'jobs', 'zero.yaml'));
    const v = await cli(['--home', h, 'validate']);
    expect(v.exitCode).toBe(2);
    const said = String(v.stdout) + String(v.stderr);
    expect(said).toMatch(/pipe\.yaml:1: .*not a regular file/);
    expect(said).toMatch(/zero\.yaml:1: .*not a regular file/);
    const d = await startDaemon(h);
    daemons.push(d);
    expect((await cli(['--home', h, 'run', 'fine'])).exitCode).toBe(0);
  });
});

describe('invalid UTF-8 in a job file', () => {
  it('is refused with the line it is on (it would have become U+FFFD in the argv)', async () => {
    const h = home();
    writeFileSync(
      join(h, 'jobs', 'latin.yaml'),
      Buffer.concat([Buffer.from('every: 1h\n# fine\ncommand: ["echo", "caf'), Buffer.from([0xe9]), Buffer.from('"]\n')]),
    );
    const v = await cli(['--home', h, 'validate']);
    expect(v.exitCode).toBe(2);
    expect(String(v.stdout) + String(v.stderr)).toMatch(/latin\.yaml:3: .*not valid UTF-8 \(0xe9\)/);
    // Well-formed UTF-8 of every length passes.
    writeFileSync(join(h, 'jobs', 'latin.yaml'), 'every: 1h\ncommand: ["echo", "café ✓ 𝄞"]\n');
    expect((await cli(['--home', h, 'validate'])).exitCode).toBe(0);
  });
});

describe('a command piped into head', () => {
  it('ends quietly when head has read what it wanted (no EPIPE stack trace)', async () => {
    const h = home({ often: 'every: 1s\ncommand: ["true"]\n' });
    const errFile = join(h, 'stderr');
    const r = await execa('sh', ['-c', `node "$0" --home "$1" next often --count 10000 2> "$2" | head -n 1`, CLI, h, errFile], {
      reject: false,
    });
    expect(r.stdout).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect(readFileSync(errFile, 'utf8')).toBe('');
  });
});

describe('a halt during the probe', () => {
  it('is recorded as during step probe, not fix', async () => {
    const h = home({ broken: 'command: ["false"]\n' });
    const work = join(h, 'work');
    mkdirSync(work);
    writeFileSync(
      join(h, 'rules', 'fix.yaml'),
      `match: { job: broken }\nautonomy: auto\naction: { command: ["touch", "${join(work, 'fixed')}"], touches: ["work/"] }\nprobe:\n  command: ["sh", "-c", "test -e ${join(work, 'fixed')} || exit 1; sleep 60"]\n  timeout: 2m\n`,
    );
    const d = await startDaemon(h);
    daemons.push(d);
    await cli(['--home', h, 'run', 'broken']);
    await waitFor(
      () => query(d.state, "SELECT id FROM heal_attempts WHERE step = 'probe' AND outcome IS NULL").length > 0,
      20_000,
      'the probe step',
    );
    expect((await cli(['--home', h, 'kill', 'on'])).exitCode).toBe(0);
    const a = await waitFor(
      () =>
        query<{ outcome: string; detail: string }>(d.state, 'SELECT outcome, detail FROM heal_attempts WHERE outcome IS NOT NULL').at(0),
      20_000,
      'the halted attempt',
    );
    expect(a.outcome).toBe('halted');
    expect(a.detail).toMatch(/during step probe: the probe was stopped/);
    expect(existsSync(join(work, 'fixed'))).toBe(false); // rolled back
  });
});

describe('hostile output', () => {
  it('reaches no terminal raw: run, status, alerts, heals, history and the digest show ESC, OSC, BEL, NUL, C1 and U+202E as inert text', async () => {
    const h = home();
    const evil = String.raw`printf '\033[2J\033]0;pwned\007\033]52;c;ZXZpbA==\007 nul:\000 rlo:\342\200\256 csi:\302\233 end\n'`;
    writeFileSync(join(h, 'evil.sh'), `${evil}\nexit 1\n`);
    writeFileSync(join(h, 'fix.sh'), `${evil} >&2\nexit 1\n`);
    writeFileSync(join(h, 'jobs', 'evil.yaml'), `command: ["sh", "${join(h, 'evil.sh')}"]\n`);
    // No rule for this one: its proposal for a person quotes its output (heals shows it).
    writeFileSync(join(h, 'jobs', 'orphan.yaml'), `command: ["sh", "${join(h, 'evil.sh')}"]\n`);
    // A spec whose own text is hostile: validate and status quote it in their problems.
    writeFileSync(join(h, 'jobs', 'quoted.yaml'), 'command: ["true"]\n"\u001b]0;pwned\u0007key": 1\n');
    mkdirSync(join(h, 'work'));
    writeFileSync(
      join(h, 'rules', 'fix.yaml'),
      `match: { job: evil }\nautonomy: auto\naction: { command: ["sh", "${join(h, 'fix.sh')}"], touches: ["work/"] }\nprobe: { command: ["false"] }\n`,
    );
    const d = await startDaemon(h);
    daemons.push(d);
    const run = await cli(['--home', h, 'run', 'evil']);
    await cli(['--home', h, 'run', 'orphan']);
    await waitFor(() => query(d.state, 'SELECT id FROM heal_attempts WHERE outcome IS NOT NULL').length >= 2, 20_000, 'both heal attempts');
    const shown: Record<string, string> = { run: String(run.stdout) };
    for (const cmd of ['status', 'alerts', 'heals', 'history', 'digest', 'validate']) {
      const r = await cli(['--home', h, cmd]);
      shown[cmd] = String(r.stdout) + String(r.stderr);
    }
    // Each surface did show the job's words (a positive proof), and nothing of them raw.
    expect(shown.run).toMatch(/nul:␀ rlo:� csi:� end/);
    expect(shown.heals).toMatch(/needs-human/);
    expect(shown.heals).toMatch(/\| .*end/); // the proposal's quote of the output
    expect(shown.validate).toMatch(/quoted\.yaml/);
    for (const [cmd, out] of Object.entries(shown)) {
      // eslint-disable-next-line no-control-regex -- the control characters are what must not get through
      expect(out, cmd).not.toMatch(/[\u0000\u0007\u001b\u009b\u202e]/);
    }
    // A daemon, two runs, two heals and seven commands: more than the default 30 s on a slow machine.
  }, 120_000);
});
