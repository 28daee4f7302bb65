// Fault suite: malformed specs. Valid job, rule and policy files are mutated at random (a fixed
// seed, so a failure is reproducible); every result must be either a valid spec or FILE:LINE
// problems that name the file — never an exception — and a running daemon fed a stream of broken
// versions of a job keeps running the last good one.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY, jobFromText, loadJobFile, loadPolicyFile, loadRuleFile } from '../../src/config/home.js';
import { formatProblem, type SpecProblem } from '../../src/config/parse.js';
import { cli, makeHome, query, startDaemon, tempDir, waitFor, trackDaemons } from '../support/helpers.js';
import { mutate, VALID } from '../support/fuzz-specs.js';
import { mulberry32 as rng } from '../support/random-cron.js';

const { daemons, dirs } = trackDaemons();
// How long a test waits for a marker (a log line, a row) is no claim about speed.
const WAIT_MS = 30_000;

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
    const good = 'every: 1s\ncommand: ["echo", "last-good"]\ntimeout: 10s\n';
    const home = makeHome({ beat: good });
    dirs.push(home);
    const file = join(home, 'jobs', 'beat.yaml');
    const d = await startDaemon(home);
    daemons.push(d);
    const beats = () =>
      query<{ outcome: string | null; output_tail: string | null; created_at: number }>(
        d.state,
        "SELECT outcome, output_tail, created_at FROM runs WHERE job = 'beat' ORDER BY id",
      );
    await waitFor(() => beats().some((b) => b.outcome === 'ok'), WAIT_MS, 'a run of the good version');
    // 19 fuzzed versions, each one the loader refuses (a mutation that stays valid would be a new
    // good version, not a broken one), then one whose command differs: were it run, its output
    // would not be the good version's.
    const r = rng(7);
    const versions: string[] = [];
    while (versions.length < 19) {
      let text = good;
      do text = mutate(text, r);
      while (text === good || text === versions.at(-1));
      // Each version's problems differ from the one before: a late report of the previous one
      // cannot pass for this one's.
      const said = (t: string | undefined): string => {
        const res = t === undefined ? null : jobFromText(file, t, home, DEFAULT_POLICY);
        return res && !res.ok ? res.problems.map(formatProblem).join('\n') : '';
      };
      if (!jobFromText(file, text, home, DEFAULT_POLICY).ok && said(text) !== said(versions.at(-1))) versions.push(text);
    }
    versions.push('every: 1s\ncommand: ["sh", "-c", "exit 0"]\n  bad indentation: [\n');
    let problems: SpecProblem[] = [];
    for (const [n, text] of versions.entries()) {
      const result = jobFromText(file, text, home, DEFAULT_POLICY);
      if (result.ok) throw new Error(`version ${n} is valid:\n${text}`);
      problems = result.problems;
      // Each problem the loader finds is named by the daemon, with its file and line, and the
      // daemon says the last good version keeps running; the next version is written only then.
      const from = d.lines().length;
      writeFileSync(file, text);
      const wanted = problems.map((p) => `invalid spec: ${formatProblem(p)}; the last good version keeps running`);
      await waitFor(
        () => {
          const said = new Set(
            d
              .lines()
              .slice(from)
              .map((l) => l.msg),
          );
          return wanted.every((w) => said.has(w));
        },
        WAIT_MS,
        `the daemon naming the problems of version ${n}: ${wanted.join(' | ')}\n${text}`,
      );
    }
    // It kept scheduling: a run that began after the last version was refused...
    const refusedAt = Date.now();
    await waitFor(() => beats().some((b) => b.created_at > refusedAt && b.outcome !== null), WAIT_MS, 'a run after the last version');
    expect(d.proc.exitCode).toBeNull(); // still running
    // ...and every run, before, during and after the 20 versions, was the last good one (an instant
    // skipped because the previous run was slow to start on a loaded machine ran nothing)
    expect(
      beats().filter(
        (b) => b.outcome !== null && !b.outcome.startsWith('skipped-') && (b.outcome !== 'ok' || b.output_tail !== 'last-good\n'),
      ),
    ).toEqual([]);
    expect(beats().filter((b) => b.outcome === 'ok').length).toBeGreaterThan(0);
    // the job was never changed, nor removed and added again, only refused
    expect(d.lines().filter((l) => /^job (changed|added|removed)/.test(String(l.msg)) && l.job === 'beat')).toEqual([]);
    expect(query(d.state, "SELECT kind FROM events WHERE job = 'beat' AND kind IN ('job-changed', 'job-added', 'job-removed')")).toEqual(
      [],
    );
    // status and validate name the problems of the version on disk now, with file and line
    const status = await cli(['--home', home, 'status']);
    const v = await cli(['--home', home, 'validate']);
    expect(v.exitCode).toBe(2);
    for (const p of problems) {
      expect(status.stdout + status.stderr).toContain(`beat.yaml:${p.line}: `);
      expect(v.stdout + v.stderr).toContain(formatProblem(p));
    }
  }, 180_000);
});
