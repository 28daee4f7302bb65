// The README's first screen, followed as written: its "first job" block on a copy of the example
// home with the daemon running — the file validates, `run` gives ok (the expectations hold), and
// status shows the job. A README whose first steps fail would be the first thing a user stops
// believing.
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, ROOT, startDaemon, tempDir, trackDaemons } from '../support/helpers.js';

const { daemons, dirs } = trackDaemons();

describe("the README's first job", () => {
  it('validates, runs ok with its expectations met, and shows in status', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const block = /cat > jobs\/hello\.yaml <<'YAML'\n([\s\S]*?)\nYAML\n([\s\S]*?)```/.exec(readme);
    expect(block, 'the first-job block of README.md').not.toBeNull();
    const [, spec, steps] = block as unknown as [string, string, string];
    // The commands the README has the user type after writing the file.
    expect(steps).toContain('node dist/cli.js validate');
    expect(steps).toContain('node dist/cli.js run hello');
    expect(steps).toContain('node dist/cli.js status');

    const home = tempDir('ns-first-');
    dirs.push(home);
    for (const f of ['jobs', 'rules', 'protected']) cpSync(join(ROOT, f), join(home, f), { recursive: true });
    const d = await startDaemon(home);
    daemons.push(d);
    writeFileSync(join(home, 'jobs', 'hello.yaml'), `${spec}\n`);
    const ns = (...args: string[]) => cli(['--home', home, ...args]);
    const v = await ns('validate');
    expect(v.stdout).not.toMatch(/hello\.yaml:\d+/);
    expect(v.exitCode).toBe(0);
    await d.waitLog((l) => l.msg === 'job added' && l.job === 'hello', 30_000, 'the daemon picking up hello');
    const r = await ns('run', 'hello');
    expect(r.stdout).toContain('ok');
    expect(r.exitCode).toBe(0);
    expect(readFileSync(join(home, 'work', 'hello.txt'), 'utf8')).not.toBe('');
    const status = await ns('status');
    expect(status.stdout).toMatch(/^hello +\S+ +ok /m);
  }, 120_000);
});
