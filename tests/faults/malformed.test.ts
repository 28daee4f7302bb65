// Fault suite: malformed specs. Valid job, rule and policy files are mutated at random (a fixed
// seed, so a failure is reproducible); every result must be either a valid spec or FILE:LINE
// problems that name the file — never an exception — and a running daemon fed a stream of broken
// versions of a job keeps running the last good one.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY, loadJobFile, loadPolicyFile, loadRuleFile } from '../../src/config/home.js';
import { cli, makeHome, query, startDaemon, tempDir, waitFor, trackDaemons } from '../support/helpers.js';
import { mutate, VALID } from '../support/fuzz-specs.js';
import { mulberry32 as rng } from '../support/random-cron.js';

const { daemons, dirs } = trackDaemons();

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
