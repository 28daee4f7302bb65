// Fault suite: malformed specs. Valid job, rule and policy files are mutated at random (a fixed
// seed, so a failure is reproducible); every result must be either a valid spec or FILE:LINE
// problems that name the file — never an exception — and a running daemon fed a stream of broken
// versions of a job keeps running the last good one.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_POLICY, loadJobFile, loadPolicyFile, loadRuleFile } from '../../src/home.js';
import { cleanup, cli, makeHome, query, startDaemon, tempDir, waitFor, type DaemonProc } from '../helpers.js';
import { mulberry32 } from '../random-cron.js';

const VALID = {
  job: [
    'description: Export the orders',
    'schedule: "0 3 * * *"',
    'timezone: Europe/Zurich',
    'command: ["python3", "export.py", "--day", "yesterday"]',
    'env: { EXPORT_DIR: /srv/share }',
    'timeout: 15m',
    'killGrace: 10s',
    'concurrency: forbid',
    'catchUp: true',
    'retries: { count: 1, delay: 30s }',
    'expect:',
    '  files:',
    '    - { path: /srv/share/orders.csv, maxAge: 2h, minBytes: 100 }',
    '  outputMatches: "exported [1-9][0-9]* orders"',
    'heartbeat:',
    '  grace: 10m',
    '',
  ].join('\n'),
  rule: [
    'description: A hung export holds a stale lock',
    'match:',
    '  job: nightly-export',
    '  kind: [hung, failed]',
    '  exitCode: [1, 75]',
    '  output: "lock .* held"',
    'autonomy: gated',
    'action:',
    '  command: ["rm", "-f", "/srv/shop/state/export.lock"]',
    '  touches: ["/srv/shop/state/"]',
    '  timeout: 2m',
    'probe:',
    '  rerun: true',
    '',
  ].join('\n'),
  policy: [
    'timezone: Europe/Zurich',
    'autonomy: auto',
    'maxAttempts: 2',
    'protect: ["/etc/nginx/**"]',
    'brain: { maxRunsPerDay: 12, wallclock: 20m }',
    'digest:',
    '  at: "07:00"',
    '  to: ["kevin@example.com"]',
    'page:',
    '  allow: [protected-zone, heal-blocked]',
    '',
  ].join('\n'),
};

const rng = mulberry32;

const NOISE = [':', '{', '}', '[', ']', '"', "'", '-', '#', '\t', '\n', ' ', 'x', '9', '*', '&', '!', '%', '@', '|', '>', '\\', '\u0000', 'é'];
const WRONG_VALUES = ['[]', '{}', '-1', '0', 'yes', 'null', '"', '1e309', '99999999999999999999', '"2h2h"', '[1, 2]', '*anchor', '!!binary x'];

/** One random edit of a valid text: characters, lines, values, truncation, indentation. */
function mutate(text: string, r: () => number): string {
  const lines = text.split('\n');
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const i = Math.floor(r() * lines.length);
  switch (Math.floor(r() * 8)) {
    case 0: {
      const p = Math.floor(r() * text.length);
      return text.slice(0, p) + text.slice(p + 1);
    }
    case 1: {
      const p = Math.floor(r() * text.length);
      return text.slice(0, p) + pick(NOISE) + text.slice(p);
    }
    case 2:
      lines.splice(i, 0, lines[i] ?? '');
      return lines.join('\n');
    case 3:
      lines.splice(i, 1);
      return lines.join('\n');
    case 4: {
      const l = lines[i] ?? '';
      const colon = l.indexOf(':');
      if (colon >= 0) lines[i] = `${l.slice(0, colon + 1)} ${pick(WRONG_VALUES)}`;
      return lines.join('\n');
    }
    case 5:
      return text.slice(0, Math.floor(r() * text.length));
    case 6:
      lines[i] = ` ${lines[i] ?? ''}`;
      return lines.join('\n');
    default: {
      const l = lines[i] ?? '';
      lines[i] = l.replace(/[a-zA-Z]+/, (w) => `${w}${pick(['x', 'Typo', '_'])}`);
      return lines.join('\n');
    }
  }
}

const daemons: DaemonProc[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
  for (const h of dirs.splice(0)) cleanup(h);
});

describe('fuzzed specs', () => {
  it('200 mutated job, rule and policy files: each is valid or refused with FILE:LINE problems naming the file, never an exception', () => {
    const dir = tempDir('ns-fuzz-');
    dirs.push(dir);
    const r = rng(20261201);
    const load = { job: (f: string) => loadJobFile(f, dir, DEFAULT_POLICY), rule: loadRuleFile, policy: loadPolicyFile };
    let refused = 0;
    for (let n = 0; n < 200; n++) {
      const kind = (['job', 'rule', 'policy'] as const)[n % 3]!;
      let text = VALID[kind];
      for (let k = 1 + Math.floor(r() * 3); k > 0; k--) text = mutate(text, r);
      const file = join(dir, `${kind}${n}.yaml`);
      writeFileSync(file, text);
      let result: ReturnType<typeof loadRuleFile> | ReturnType<typeof loadPolicyFile> | ReturnType<typeof loadJobFile>;
      try {
        result = load[kind](file);
      } catch (err) {
        throw new Error(`case ${n} (${kind}) threw ${String(err)} for:\n${text}`);
      }
      if (result.ok) continue;
      refused++;
      const lineCount = text.split('\n').length;
      for (const p of result.problems) {
        const where = `case ${n} (${kind}): ${JSON.stringify(p)} for:\n${text}`;
        expect(p.file, where).toBe(file);
        expect(p.line, where).toBeGreaterThanOrEqual(1);
        expect(p.line, where).toBeLessThanOrEqual(lineCount + 1);
        expect(p.message.length, where).toBeGreaterThan(0);
        expect(p.message, where).not.toMatch(/\n\s+at /); // no stack trace
      }
    }
    // the mutations must really break things (most of them), or this test proves little
    expect(refused).toBeGreaterThan(120);
  });

  it('a running daemon fed 20 broken versions of a job keeps running the last good one and names each problem', async () => {
    const home = makeHome({ beat: 'every: 1s\ncommand: ["true"]\n' });
    dirs.push(home);
    const d = await startDaemon(home);
    daemons.push(d);
    await waitFor(() => query(d.state, "SELECT id FROM runs WHERE job = 'beat'").length >= 1, 5000, 'first run');
    const r = rng(7);
    const good = 'every: 1s\ncommand: ["true"]\ntimeout: 10s\n';
    for (let n = 0; n < 20; n++) {
      let text = good;
      do text = mutate(text, r);
      while (text === good);
      writeFileSync(join(home, 'jobs', 'beat.yaml'), text);
      await sleep(150);
    }
    writeFileSync(join(home, 'jobs', 'beat.yaml'), 'every: 1s\ncommand: ["sh", "-c", "exit 0"]\n  bad indentation: [\n');
    await sleep(1500);
    const before = query(d.state, "SELECT id FROM runs WHERE job = 'beat'").length;
    await sleep(2500);
    expect(d.proc.exitCode).toBeNull(); // still running
    expect(query(d.state, "SELECT id FROM runs WHERE job = 'beat'").length).toBeGreaterThan(before); // still scheduling
    const status = await cli(['--home', home, 'status']);
    expect(status.stdout + status.stderr).toContain('beat.yaml');
    const v = await cli(['--home', home, 'validate']);
    expect(v.exitCode).toBe(2);
    expect(v.stdout + v.stderr).toMatch(/beat\.yaml:\d+/);
  });
});
