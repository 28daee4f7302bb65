// Fault suite: the real daemon (dist/cli.js, its own process) under a moved system clock. libfaketime
// (Debian's faketime package, preloaded) moves what the daemon reads as wall time when the test
// rewrites a file, and leaves its monotonic clock alone, as NTP or `date -s` would. The in-process
// clock tests (clock.test.ts) move an injected clock; this one proves no reading escapes it.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, makeHome, query, startDaemon, tempDir, waitFor, type DaemonProc, trackDaemons } from '../support/helpers.js';

const LIBFAKETIME = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1'].find(
  (p) => existsSync(p),
);

const { daemons, dirs } = trackDaemons({ dirs: 'after-all' });

/** A daemon whose wall clock is the machine's plus what `offset` (a file) says, e.g. "+3600". */
async function fakedDaemon(jobs: Record<string, string>): Promise<{ d: DaemonProc; home: string; step: (seconds: number) => void }> {
  if (!LIBFAKETIME) throw new Error('libfaketime is missing: apt-get install faketime (.ci/run installs it)');
  const home = makeHome(jobs);
  dirs.push(home);
  const offset = join(tempDir('ns-faketime-'), 'offset');
  dirs.push(offset.slice(0, offset.lastIndexOf('/')));
  writeFileSync(offset, '+0\n');
  const d = await startDaemon(home, {
    env: {
      ...(process.env as Record<string, string>),
      LD_PRELOAD: LIBFAKETIME,
      FAKETIME_TIMESTAMP_FILE: offset,
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    },
  });
  daemons.push(d);
  return { d, home, step: (seconds) => writeFileSync(offset, `${seconds >= 0 ? '+' : ''}${seconds}\n`) };
}

describe('the real daemon under a moved system clock (libfaketime)', { timeout: 60_000 }, () => {
  it('a kill grace is waited in elapsed time: a clock step forward in the middle does not cut it short', async () => {
    const dir = tempDir('ns-grace-');
    dirs.push(dir);
    const term = join(dir, 'term');
    // Ignores SIGTERM, says when it got it; only the SIGKILL after the grace ends it.
    const { d, home, step } = await fakedDaemon({
      stubborn: `timeout: 1s\nkillGrace: 6s\nshell: "trap 'touch ${term}' TERM; while :; do sleep 0.1; done"\n`,
    });
    const run = cli(['--home', home, 'run', 'stubborn']);
    await waitFor(() => existsSync(term), 20_000, 'SIGTERM at the timeout');
    const t0 = performance.now();
    step(3600);
    const r = await run;
    const waited = performance.now() - t0;
    expect(r.exitCode).toBe(1);
    // Killed after the grace (6 s from SIGTERM; the test sees the touch a little later on a busy
    // machine), not at once because the wall clock passed the grace's end (0.14 s before the fix).
    expect(waited).toBeGreaterThan(3000);
    const row = query<{ outcome: string; reason: string }>(d.state, "SELECT outcome, reason FROM runs WHERE job = 'stubborn'")[0]!;
    expect(row.outcome).toBe('timeout');
    expect(row.reason).toMatch(/SIGKILL/);
  });

  it('a step forward of a day under an every-second job: recorded, and the job goes on', async () => {
    const { d, step } = await fakedDaemon({ tick: 'every: 1s\ncommand: ["true"]\n' });
    const runs = (): number => query<{ n: number }>(d.state, "SELECT count(*) AS n FROM runs WHERE job = 'tick' AND outcome = 'ok'")[0]!.n;
    await waitFor(() => runs() >= 2, 20_000, 'two runs before the step');
    step(86_400);
    await waitFor(() => query(d.state, "SELECT 1 FROM events WHERE kind = 'clock-jump'").at(0), 90_000, 'the clock-jump event');
    const after = runs();
    await waitFor(() => runs() >= after + 2, 20_000, 'two runs after the step');
    const jumped = query<{ data: string }>(d.state, "SELECT data FROM events WHERE kind = 'missed-by-clock-jump' AND job = 'tick'");
    expect(jumped.length).toBe(1);
    // A day of seconds, counted up to the scan limit (said as "1000+").
    expect((JSON.parse(jumped[0]!.data) as { count: number }).count).toBe(1000);
  });
});
