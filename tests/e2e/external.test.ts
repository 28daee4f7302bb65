// An external job as its operator sees it: nightshift does not run it, it pings. status shows when
// the next ping is expected by, next lists those deadlines, history lists the pings it sent.
import { describe, expect, it } from 'vitest';
import { formatInstant, readableTime } from '../../src/schedule/instants.js';
import { cli, makeHome, query, startDaemon, trackDaemons } from '../support/helpers.js';

const LIMIT = 90_000;
const { daemons, dirs } = trackDaemons();
const ZONE = 'Europe/Zurich';
const FIVE_MIN = 5 * 60_000;
const GRACE = 3 * 60_000;

/**
 * The oracle, by arithmetic rather than by nightshift's schedule code: the first 5-minute mark
 * strictly after `t` (Zurich's offsets are whole hours, so its marks are UTC's), plus the grace.
 */
const deadlineAfter = (t: number): number => Math.floor(t / FIVE_MIN) * FIVE_MIN + FIVE_MIN + GRACE;

describe('an external job', () => {
  it(
    'status shows when its ping is expected by, next lists the deadlines, history lists its pings (text and JSON)',
    async () => {
      const home = makeHome({
        ext: `schedule: "*/5 * * * *"\ntimezone: ${ZONE}\nheartbeat: { grace: 3m }\n`,
        inner: 'command: ["true"]\n',
        off: 'schedule: "*/5 * * * *"\nenabled: false\n',
      });
      dirs.push(home);
      const d = await startDaemon(home);
      daemons.push(d);
      const ns = (...args: string[]) => cli(['--home', home, '--state', d.state, ...args]);

      const before = await ns('history', 'ext');
      expect(before.stdout).toBe(
        'No pings recorded yet: ext is external (nightshift does not run it) and proves life with nightshift ping ext.',
      );

      expect((await ns('ping', 'ext')).exitCode).toBe(0);
      const failed = await ns('ping', 'ext', '--fail');
      expect(failed.exitCode, failed.stderr).toBe(0);
      expect((await ns('run', 'inner')).exitCode).toBe(0);
      const pings = query<{ kind: string; at: number }>(d.state, "SELECT kind, at FROM heartbeats WHERE job = 'ext' ORDER BY id");
      expect(pings.map((p) => p.kind)).toEqual(['success', 'fail']);
      // A failure ping is no success: the deadline counts from the success.
      const deadline = deadlineAfter(pings[0]!.at);

      // status: the NEXT RUN column reads "ping expected by …", in the job's zone.
      const st = await ns('status');
      const row = st.stdout.split('\n').find((l) => l.startsWith('ext '));
      expect(row).toContain(`ping expected by ${readableTime(deadline, ZONE)} (in `);
      expect(row).not.toContain('*/5');
      const sj = JSON.parse((await ns('status', '--json')).stdout) as { jobs: Array<{ name: string; pingExpectedBy: number | null }> };
      expect(sj.jobs.find((j) => j.name === 'ext')!.pingExpectedBy).toBe(deadline);
      expect(sj.jobs.find((j) => j.name === 'inner')!.pingExpectedBy).toBeNull();

      // next: the deadlines, each its instant plus the grace.
      const nx = await ns('next', 'ext', '--count', '3');
      expect(nx.exitCode, nx.stderr).toBe(0);
      const nl = nx.stdout.trim().split('\n');
      expect(nl[0]).toContain(
        'ext is external: nightshift does not run it. A success ping (nightshift ping ext) is expected by each of these times',
      );
      expect(nl[0]).toContain('a grace of 3m');
      expect(nl.slice(1)).toEqual(
        [0, 1, 2].map(
          (k) => `${readableTime(deadline + k * FIVE_MIN, ZONE)}  (for ${readableTime(deadline + k * FIVE_MIN - GRACE, ZONE)})`,
        ),
      );
      const nj = JSON.parse((await ns('next', 'ext', '--count', '2', '--json')).stdout);
      expect(nj).toEqual({
        job: 'ext',
        timezone: ZONE,
        instants: [deadline - GRACE, deadline - GRACE + FIVE_MIN].map((t) => formatInstant(t, ZONE)),
        lastGoodVersionFrom: null,
        external: true,
        watched: true,
        graceMs: GRACE,
        pingExpectedBy: [deadline, deadline + FIVE_MIN].map((t) => formatInstant(t, ZONE)),
      });

      // history ext: its pings, newest first, not "no runs".
      const h = await ns('history', 'ext');
      expect(h.stdout.split('\n')).toEqual([
        'ext is external: nightshift does not run it. The pings it sent, newest first:',
        'AT                       JOB   PING   FROM            NOTE',
        `${readableTime(pings[1]!.at, ZONE)}  ext   fail   ping`,
        `${readableTime(pings[0]!.at, ZONE)}  ext   ok     ping`,
      ]);
      const hj = JSON.parse((await ns('history', 'ext', '--json')).stdout) as Array<Record<string, unknown>>;
      expect(hj.map((e) => [e.record, e.kind, e.at, e.source])).toEqual([
        ['ping', 'fail', pings[1]!.at, 'ping'],
        ['ping', 'success', pings[0]!.at, 'ping'],
      ]);

      // history without JOB: the runs, then the pings of external jobs.
      const all = await ns('history');
      const lines = all.stdout.split('\n');
      expect(lines[1]).toMatch(/^#\d+\s+inner\s+manual/);
      const at = lines.indexOf('Pings of external jobs (nightshift does not run them), newest first:');
      expect(at).toBeGreaterThan(1);
      expect(lines.slice(at + 2)).toEqual([
        `${readableTime(pings[1]!.at, ZONE)}  ext   fail   ping`,
        `${readableTime(pings[0]!.at, ZONE)}  ext   ok     ping`,
      ]);
      const allj = JSON.parse((await ns('history', '--json')).stdout) as Array<Record<string, unknown>>;
      // Without JOB the JSON is the list of runs it always was (pings are in history EXT --json).
      expect(allj.map((e) => [e.record, e.job])).toEqual([['run', 'inner']]);

      // Paused, it is not watched (the watchdog arms nothing): next lists no deadline as if one were.
      expect((await ns('pause', 'ext')).exitCode).toBe(0);
      const np = await ns('next', 'ext');
      expect(np.stdout.trim()).toBe(
        'ext is external and not watched now: it is paused (nightshift resume ext watches it again). No ping is expected meanwhile and none is missed.',
      );
      expect(JSON.parse((await ns('next', 'ext', '--json')).stdout)).toMatchObject({ watched: false, pingExpectedBy: [] });
      expect((await ns('resume', 'ext')).exitCode).toBe(0);
      const off = await ns('next', 'off');
      expect(off.stdout.trim()).toBe(
        'off is external and not watched now: it is turned off in its file (enabled: false). No ping is expected meanwhile and none is missed.',
      );

      // With the daemon down, nothing watches: status shows the deadline a start now would set.
      await d.stop();
      const t0 = Date.now();
      const down = JSON.parse((await ns('status', '--json')).stdout) as { jobs: Array<{ name: string; pingExpectedBy: number | null }> };
      const t1 = Date.now();
      expect([deadlineAfter(t0), deadlineAfter(t1)]).toContain(down.jobs.find((j) => j.name === 'ext')!.pingExpectedBy);
    },
    LIMIT,
  );
});
