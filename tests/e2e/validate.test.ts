// `nightshift validate` as a new user meets it: a job whose program is not there is valid YAML
// and a sure failure at its first run. It is a warning (the program may be installed before
// then), with its file and line, and validate still exits 0.
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, makeHome, trackDaemons } from '../support/helpers.js';

const { dirs } = trackDaemons();

describe('validate', () => {
  it('warns, with file and line, when a command or pre-check program is missing or not executable, and exits 0', async () => {
    const home = makeHome({
      gone: 'schedule: "0 3 * * *"\ncommand: ["/usr/local/bin/nope-nightshift-test"]\n',
      unknown: 'every: 1h\ncommand: ["nope-nightshift-test", "--day", "yesterday"]\n',
      relative: 'every: 1h\nprecheck: ["./check.sh"]\ncommand: ["true"]\n',
      fine: 'every: 1h\ncommand: ["sh", "-c", "exit 0"]\nprecheck: ["true"]\n',
    });
    dirs.push(home);
    writeFileSync(join(home, 'check.sh'), '#!/bin/sh\necho IDLE\n');
    chmodSync(join(home, 'check.sh'), 0o644);
    const r = await cli(['--home', home, 'validate']);
    expect(r.exitCode).toBe(0);
    const warnings = r.stdout.split('\n').filter((l) => l.startsWith('warning: ') && !l.includes('containment'));
    expect(warnings).toEqual([
      `warning: ${join(home, 'jobs', 'gone.yaml')}:2: command: /usr/local/bin/nope-nightshift-test does not exist: every run would fail to start`,
      `warning: ${join(home, 'jobs', 'relative.yaml')}:2: precheck: ./check.sh is not executable: every run would fail to start`,
      expect.stringMatching(
        new RegExp(
          `^warning: ${join(home, 'jobs', 'unknown.yaml')}:2: command: nope-nightshift-test is not found on the job's PATH \\(.+\\): every run would fail to start$`,
        ),
      ),
    ]);
    expect(r.stdout).toContain('ok: 4 job(s)');
    // Once it is there and executable, the warning goes.
    chmodSync(join(home, 'check.sh'), 0o755);
    expect((await cli(['--home', home, 'validate'])).stdout).not.toContain('relative.yaml');
  });
});
