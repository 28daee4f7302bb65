// status and the digest say the same thing about who needs a person, on the same state. The case
// a review found them disagreeing on: a heal's pre-check finds the problem gone (the rule's probe
// already passes) and closes the alert, while the job's last run did fail. Both must say the job
// needs you (its last run failed and nothing has succeeded since), with the same exit code.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, makeHome, query, startDaemon, tempDir, trackDaemons, waitFor } from '../support/helpers.js';

const { daemons, dirs } = trackDaemons();

describe('who needs you', () => {
  it('a failed run whose alert a heal closed as gone: status and the digest both count the job, and exit 1', async () => {
    const work = tempDir('ns-attention-');
    dirs.push(work);
    mkdirSync(join(work, 'fine'));
    const home = makeHome({ flaky: 'command: ["sh", "-c", "exit 1"]\n', steady: 'command: ["true"]\n' });
    dirs.push(home);
    // The probe passes before any fix: the heal's pre-check calls the alert self-recovered.
    writeFileSync(
      join(home, 'rules', 'gone.yaml'),
      `match: { job: flaky }\nautonomy: auto\naction: { command: ["touch", "${work}/fixed"], touches: ["${work}"] }\nprobe: { command: ["test", "-d", "${work}/fine"] }\n`,
    );
    const d = await startDaemon(home);
    daemons.push(d);
    const ns = (...args: string[]) => cli(['--home', home, '--state', d.state, ...args]);
    await ns('run', 'steady');
    await ns('run', 'flaky');
    await waitFor(
      () => query(d.state, "SELECT id FROM alerts WHERE job = 'flaky' AND resolution = 'self-recovered'").length === 1,
      60_000,
      'the alert closed by the heal',
    );
    expect(query(d.state, 'SELECT id FROM alerts WHERE resolved_at IS NULL')).toEqual([]);

    const status = await ns('status');
    expect(status.stdout).toMatch(/^nightshift — 1 job\(s\) failing: flaky\.$/m);
    expect(status.exitCode).toBe(1);
    const json = JSON.parse((await ns('status', '--json')).stdout) as { needsYou: string[]; healthy: boolean };
    expect(json).toMatchObject({ needsYou: ['flaky'], healthy: false });

    const digest = await ns('digest', '--json');
    const d1 = JSON.parse(digest.stdout) as { verdict: string; needsYou: number; text: string };
    expect(d1.verdict).toBe('1 job needs you');
    expect(d1.needsYou).toBe(1);
    expect(d1.text).toMatch(/\n- flaky: its last run \(#\d+\) failed at [^\n]*: exited with code 1; no alert is open for it/);
    expect(digest.exitCode).toBe(1);

    // A run under way (as a retry, or a heal's restart of a long-running job) will tell: while it
    // runs, neither counts the failed run before it. When it succeeds, it is cleared in both.
    const release = join(work, 'release');
    writeFileSync(join(home, 'jobs', 'flaky.yaml'), `command: ["sh", "-c", "while [ ! -e '${release}' ]; do sleep 0.1; done"]\n`);
    await d.waitLog((l) => l.msg === 'job changed' && l.job === 'flaky', 30_000, 'the edit seen');
    const run = ns('run', 'flaky');
    await waitFor(
      () => query(d.state, "SELECT id FROM runs WHERE job = 'flaky' AND started_at IS NOT NULL AND ended_at IS NULL").length === 1,
      30_000,
      'the new run of flaky under way',
    );
    const during = await ns('status', '--json');
    expect(JSON.parse(during.stdout)).toMatchObject({ needsYou: [], healthy: true });
    expect(during.exitCode).toBe(0);
    expect((JSON.parse((await ns('digest', '--json')).stdout) as { verdict: string }).verdict).toBe(
      'Nothing needs you: all 2 jobs healthy',
    );
    writeFileSync(release, '');
    expect((await run).exitCode).toBe(0);
    expect((await ns('status')).exitCode).toBe(0);
    const after = JSON.parse((await ns('digest', '--json')).stdout) as { verdict: string };
    expect(after.verdict).toBe('Nothing needs you: all 2 jobs healthy');
  }, 120_000);
});
