// A job whose file was broken keeps running its last good version; every surface must say so.
// Found in a new user's first hour: the job vanished from `status` while it kept running, and
// `next` said "no valid job". Now status, next, validate and the digest name the job, its problem
// and the version that runs — with the daemon up, and from the files and SQLite with it down.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, makeHome, query, startDaemon, trackDaemons, waitFor, writeJob } from '../support/helpers.js';

const { daemons, dirs } = trackDaemons();
const WAIT_MS = 30_000;

describe('a job whose file is broken', () => {
  it('is shown with its problem and the time of the version that runs, in status, next, validate and the digest', async () => {
    const home = makeHome({}, 'timezone: Europe/Zurich\n');
    dirs.push(home);
    const out = join(home, 'ticks.txt');
    writeJob(home, 'tick', `schedule: "*/1 * * * * *"\ntimezone: UTC\nshell: "echo v1 >> ${out}"\n`);
    writeJob(home, 'fresh', 'schedule: "0 3 * * *"\ncommand: ["true"]\n');
    const d = await startDaemon(home);
    daemons.push(d);
    const ns = (...args: string[]) => cli(['--home', home, '--state', d.state, ...args]);
    const count = () => readFileSync(out, 'utf8').trim().split('\n').length;
    await waitFor(() => query(d.state, "SELECT 1 FROM runs WHERE job = 'tick' AND outcome = 'ok'").length > 0, WAIT_MS, 'a run of tick');
    const saved = query<{ saved_at: number }>(d.state, "SELECT saved_at FROM spec_cache WHERE name = 'tick'")[0]!.saved_at;
    // The version's time as the job's zone shows it (UTC here): "2026-12-05 13:20 UTC".
    const iso = new Date(saved).toISOString();
    const savedText = `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;

    // Broken on purpose; and a new job that has never been valid.
    writeJob(home, 'tick', `schedule: "*/1 * * * * *"\ntimezone: UTC\ntimeout: soon\nshell: "echo v2 >> ${out}"\n`);
    writeJob(home, 'newjob', 'every: often\ncommand: ["true"]\n');
    await d.waitLog(
      (l) => String(l.msg).includes('tick.yaml:3') && String(l.msg).includes('the last good version keeps running'),
      WAIT_MS,
      'the broken file logged',
    );
    await d.waitLog((l) => String(l.msg).includes('newjob.yaml'), WAIT_MS, 'the never-valid file logged');
    // It still runs: the old version, not the new one.
    const n = count();
    await waitFor(() => count() >= n + 2, WAIT_MS, 'two more runs of tick');
    expect(readFileSync(out, 'utf8').trim().split('\n').slice(n)).not.toContain('v2');

    const sentence = `tick keeps running its last good version, from ${savedText}, until ${join(home, 'jobs', 'tick.yaml')} is fixed`;
    for (const phase of ['daemon running', 'daemon stopped'] as const) {
      if (phase === 'daemon stopped') await d.stop();
      const status = await ns('status');
      expect(status.exitCode, phase).toBe(1);
      // The job has its row, and the sections below say what is wrong and what runs meanwhile.
      expect(status.stdout, phase).toMatch(/^tick +\S+.*its file is invalid \(below\)$/m);
      expect(status.stdout, phase).toContain(`${sentence}.`);
      expect(status.stdout, phase).toContain(`${join(home, 'jobs', 'newjob.yaml')} has never been valid: its job is not running.`);
      expect(status.stdout, phase).toContain('tick.yaml:3: timeout:');
      const json = JSON.parse((await ns('status', '--json')).stdout) as {
        jobs: Array<{ name: string; lastGood: { savedAt: number } | null }>;
      };
      expect(json.jobs.find((j) => j.name === 'tick')?.lastGood?.savedAt, phase).toBe(saved);
      expect(json.jobs.find((j) => j.name === 'fresh')?.lastGood, phase).toBeNull();
      // Its runs keep its own zone (UTC), not the policy's (Europe/Zurich): history sees the job as it runs.
      const history = (await ns('history', 'tick', '--limit', '3')).stdout;
      expect(history, phase).toMatch(/^#\d+ +tick +schedule +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC /m);
      expect(history, phase).not.toContain('+01:00');

      const next = await ns('next', 'tick', '--from', '2026-01-01T00:00:00Z', '--count', '2');
      expect(next.exitCode, phase).toBe(0);
      expect(next.stdout.split('\n'), phase).toEqual(['2026-01-01T00:00:01+00:00', '2026-01-01T00:00:02+00:00']);
      expect(next.stderr, phase).toContain(sentence);
      const never = await ns('next', 'newjob');
      expect(never.exitCode).toBe(2);
      expect(never.stderr).toContain('has never been valid');

      const validate = await ns('validate');
      expect(validate.exitCode, phase).toBe(2);
      expect(validate.stdout, phase).toContain(`meanwhile: ${sentence}.`);
      expect(validate.stdout, phase).toContain(
        `meanwhile: ${join(home, 'jobs', 'newjob.yaml')} has never been valid: its job is not running.`,
      );

      const digest = await ns('digest');
      expect(digest.stdout.split('\n')[0], phase).toContain('2 spec files with errors');
      expect(digest.stdout, phase).toContain(
        `- ${join(home, 'jobs', 'tick.yaml')} has errors; fix it, then check it with: nightshift validate\n`,
      );
      expect(digest.stdout, phase).toContain(
        `- ${join(home, 'jobs', 'newjob.yaml')} has errors; fix it, then check it with: nightshift validate\n`,
      );
      expect(digest.stdout, phase).toContain(`${sentence}.`);
    }

    // Fixed: every surface is clear again, and the new version runs.
    writeFileSync(join(home, 'jobs', 'tick.yaml'), `schedule: "*/1 * * * * *"\ntimezone: UTC\nshell: "echo v2 >> ${out}"\n`);
    writeJob(home, 'newjob', 'every: 1h\ncommand: ["true"]\n');
    const validate = await ns('validate');
    expect(validate.exitCode).toBe(0);
    expect(validate.stdout).not.toContain('meanwhile');
    const status = await ns('status');
    expect(status.stdout).not.toContain('its file is invalid');
    expect(status.stdout).not.toContain('keeps running its last good version');
    expect((await ns('digest')).stdout).not.toContain('has errors; fix it');
  }, 180_000);
});
