// `nightshift logs` as an operator meets it: a real daemon runs real jobs (sh scripts printing to
// stdout and stderr, escape sequences, megabytes), and logs prints what they printed, as data.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LOG_CAP } from '../../src/run/logcap.js';
import { readableTime } from '../../src/schedule/instants.js';
import { cli, FIXTURES, makeHome, query, startDaemon, trackDaemons, type DaemonProc } from '../support/helpers.js';

const LIMIT = 90_000;
const { daemons, dirs } = trackDaemons();

interface Run {
  id: number;
  job: string;
  ended_at: number;
  log_path: string | null;
  output_bytes: number;
}
const runOf = (d: DaemonProc, id: number): Run => query<Run>(d.state, 'SELECT * FROM runs WHERE id = ?', id)[0]!;

/**
 * A home whose `talk` job prints to both streams, names its run (so that which run is shown can be
 * told apart), prints what a terminal would obey, and fails; `quiet` prints nothing and succeeds.
 */
async function daemon(extraJobs: Record<string, string> = {}): Promise<DaemonProc> {
  const home = makeHome();
  dirs.push(home);
  writeFileSync(
    join(home, 'talk.sh'),
    [
      'echo "out: this is run $NIGHTSHIFT_RUN_ID"',
      'echo "err: this is run $NIGHTSHIFT_RUN_ID" >&2',
      // CSI colour, an OSC title write ended by BEL, a bare BEL, a right-to-left override, a NUL.
      "printf 'csi:\\033[31mred\\033[0m osc:\\033]0;pwned\\007 bel:\\007 rlo:\\342\\200\\256 nul:\\000 end\\n'",
      'exit 3',
    ].join('\n'),
  );
  const jobs: Record<string, string> = {
    talk: `timezone: Europe/Zurich\ncommand: ["sh", "${join(home, 'talk.sh')}"]\n`,
    quiet: 'command: ["true"]\n',
    ...extraJobs,
  };
  for (const [name, text] of Object.entries(jobs)) writeFileSync(join(home, 'jobs', `${name}.yaml`), text);
  const d = await startDaemon(home);
  daemons.push(d);
  return d;
}

const ns = (d: DaemonProc, ...args: string[]) => cli(['--home', d.home, '--state', d.state, ...args]);

/** Runs a job now and returns its run number. */
async function runJob(d: DaemonProc, job: string): Promise<number> {
  const r = await ns(d, 'run', job, '--json');
  expect(r.stdout, r.stderr).not.toBe('');
  return (JSON.parse(r.stdout) as { id: number }).id;
}

describe('nightshift logs', () => {
  it(
    "prints a run's stdout and stderr with a one-line header: the latest finished run by default, or the run asked for (37 or #37)",
    async () => {
      const d = await daemon();
      const first = await runJob(d, 'talk');
      const second = await runJob(d, 'talk');
      expect(second).toBeGreaterThan(first);

      const latest = await ns(d, 'logs', 'talk');
      expect(latest.exitCode, latest.stderr).toBe(0);
      const lines = latest.stdout.split('\n');
      const ended = runOf(d, second).ended_at;
      // The job's own zone, to the minute, with its offset.
      expect(lines[0]).toMatch(
        new RegExp(
          `^run #${second} of talk: failed, ended ${readableTime(ended, 'Europe/Zurich').replace(/\+/g, '\\+')} after \\S+ \\(trigger manual\\)$`,
        ),
      );
      expect(lines).toContain(`out: this is run ${second}`);
      expect(lines).toContain(`err: this is run ${second}`);
      expect(latest.stdout).not.toContain(`this is run ${first}`);

      for (const asked of [String(first), `#${first}`]) {
        const r = await ns(d, 'logs', 'talk', asked);
        expect(r.exitCode, r.stderr).toBe(0);
        expect(r.stdout.split('\n')[0]).toContain(`run #${first} of talk: failed`);
        expect(r.stdout).toContain(`out: this is run ${first}`);
        expect(r.stdout).not.toContain(`this is run ${second}`);
      }

      // What a terminal would obey is shown as symbols: nothing of it gets through raw.
      expect(latest.stdout).toContain('csi:␛[31mred␛[0m osc:␛]0;pwned␇ bel:␇ rlo:� nul:␀ end');
      // eslint-disable-next-line no-control-regex -- the control characters are what must not get through
      expect(latest.stdout).not.toMatch(/[\u0000\u0007\u001b\u009b\u202e]/);

      // JSON keeps the output as it was (escaped by JSON, inert on a terminal), and says it is whole.
      const j = await ns(d, 'logs', 'talk', String(first), '--json');
      expect(j.exitCode, j.stderr).toBe(0);
      // eslint-disable-next-line no-control-regex -- as above: the JSON text itself carries none
      expect(j.stdout).not.toMatch(/[\u0000\u0007\u001b\u202e]/);
      const o = JSON.parse(j.stdout);
      expect(o.run).toMatchObject({ id: first, job: 'talk', outcome: 'failed', exitCode: 3, trigger: 'manual' });
      expect(o.source).toBe('log');
      expect(o.note).toBeNull();
      expect(o.omittedBytes).toBeNull();
      expect(o.logPath).toBe(runOf(d, first).log_path);
      expect(o.output).toContain('csi:\u001b[31mred\u001b[0m osc:\u001b]0;pwned\u0007 bel:\u0007 rlo:\u202e nul:\u0000 end\n');
      expect(o.printedBytes).toBe(Buffer.byteLength(o.output));

      // A run that printed nothing says so, rather than showing a bare header.
      const q = await runJob(d, 'quiet');
      const quiet = await ns(d, 'logs', 'quiet');
      expect(quiet.stdout.split('\n')).toEqual([
        expect.stringMatching(new RegExp(`^run #${q} of quiet: ok, ended `)),
        '(the run printed nothing)',
      ]);

      // history says where the output is.
      const h = await ns(d, 'history', 'talk');
      expect(h.stdout.trimEnd().split('\n').at(-1)).toBe('Output of a run: nightshift logs talk [RUN]');
      const all = await ns(d, 'history');
      expect(all.stdout.trimEnd().split('\n').at(-1)).toBe('Output of a run: nightshift logs JOB [RUN]');
      const hj = JSON.parse((await ns(d, 'history', 'talk', '--json')).stdout) as Array<{
        id: number;
        record: string;
        output_source: string;
      }>;
      expect(hj.map((r) => [r.id, r.output_source])).toEqual([
        [second, 'log'],
        [first, 'log'],
      ]);
    },
    LIMIT,
  );

  it(
    'a large output is cut in the middle: logs shows its head and its end and says how much was left out',
    async () => {
      const home = makeHome();
      dirs.push(home);
      // The job first prints a line that looks like nightshift's own marker: the count logs
      // reports must be the real one, not the job's.
      const fake = '[nightshift: 7 bytes of output left out here; the log keeps the first and last 9 bytes]';
      writeFileSync(join(home, 'flood.sh'), `printf '${fake}\\n'\nexec node ${join(FIXTURES, 'flood.js')} 3000000\n`);
      writeFileSync(join(home, 'jobs', 'flood.yaml'), `command: ["sh", "${join(home, 'flood.sh')}"]\n`);
      const d = await startDaemon(home);
      daemons.push(d);
      const id = await runJob(d, 'flood');
      const printed = runOf(d, id).output_bytes;
      expect(printed).toBe(fake.length + 1 + 3_000_000 + '\nEND-MARKER\n'.length);
      const omitted = printed - DEFAULT_LOG_CAP;

      const r = await ns(d, 'logs', 'flood');
      expect(r.exitCode, r.stderr).toBe(0);
      const lines = r.stdout.split('\n');
      expect(lines[0]).toMatch(new RegExp(`^run #${id} of flood: ok, ended `));
      expect(lines[1]).toBe(
        `(the output was cut: the job printed 2.9 MiB; the log keeps the first and last 512.0 KiB, and the 1.9 MiB in between are left out where the line "[nightshift: ${omitted} bytes of output left out here …]" stands)`,
      );
      expect(lines[2]).toBe(fake);
      expect(lines[3]).toMatch(/^HEAD-MARKER/);
      expect(lines).toContain(
        `[nightshift: ${omitted} bytes of output left out here; the log keeps the first and last ${DEFAULT_LOG_CAP / 2} bytes]`,
      );
      expect(lines.at(-1)).toBe('END-MARKER');

      const o = JSON.parse((await ns(d, 'logs', 'flood', '--json')).stdout);
      expect(o).toMatchObject({ source: 'log', printedBytes: printed, omittedBytes: omitted });
      expect(o.output.length).toBeLessThan(DEFAULT_LOG_CAP + 200);
    },
    LIMIT,
  );

  it(
    'when the log file is gone, the end of the output kept with the run is shown, and the note says so',
    async () => {
      const d = await daemon();
      const id = await runJob(d, 'talk');
      rmSync(runOf(d, id).log_path!);
      const r = await ns(d, 'logs', 'talk', String(id));
      expect(r.exitCode, r.stderr).toBe(0);
      const lines = r.stdout.split('\n');
      expect(lines[1]).toBe(
        `(its log file ${runOf(d, id).log_path} is gone (removed outside nightshift, or never written: the run's reason says if the disk was full); its whole output was short enough to be kept with the run)`,
      );
      expect(lines).toContain(`out: this is run ${id}`);
      expect(lines).toContain(`err: this is run ${id}`);
      const hj = JSON.parse((await ns(d, 'history', 'talk', '--json')).stdout) as Array<{ output_source: string }>;
      expect(hj[0]!.output_source).toBe('tail');
    },
    LIMIT,
  );

  it(
    'errors say what is wrong and what to type: unknown job, a run of another job, no such run, no runs yet (daemon stopped)',
    async () => {
      const d = await daemon({
        yearly: 'schedule: "0 0 1 1 *"\ncommand: ["true"]\n',
        ext: 'schedule: "0 6 * * 1-5"\n',
      });
      const talk = await runJob(d, 'talk');
      const quiet = await runJob(d, 'quiet');
      await d.stop();

      const unknown = await ns(d, 'logs', 'tlak');
      expect(unknown.exitCode).toBe(2);
      expect(unknown.stderr).toContain('no job named "tlak" (did you mean "talk"?)');
      const other = await ns(d, 'logs', 'talk', String(quiet));
      expect(other.exitCode).toBe(2);
      expect(other.stderr).toContain(`run #${quiet} is a run of quiet, not of talk: nightshift logs quiet ${quiet}`);
      const missing = await ns(d, 'logs', 'talk', '#9999');
      expect(missing.exitCode).toBe(2);
      expect(missing.stderr).toContain('there is no run #9999');
      const never = await ns(d, 'logs', 'yearly');
      expect(never.exitCode).toBe(1);
      expect(never.stderr).toContain('yearly has no runs yet');
      const external = await ns(d, 'logs', 'ext');
      expect(external.exitCode).toBe(2);
      expect(external.stderr).toContain('ext is an external job');
      const word = await ns(d, 'logs', 'talk', 'latest');
      expect(word.exitCode).toBe(2);
      expect(word.stderr).toContain('"latest" is not a run number');
      const none = await ns(d, 'logs');
      expect(none.exitCode).toBe(2);
      expect(none.stderr).toContain('which job?');
      // And with the daemon down, a run is still read.
      const ok = await ns(d, 'logs', 'talk');
      expect(ok.exitCode, ok.stderr).toBe(0);
      expect(ok.stdout).toContain(`out: this is run ${talk}`);
    },
    LIMIT,
  );
});
