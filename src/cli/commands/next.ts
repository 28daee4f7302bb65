// `nightshift next`: the next N scheduled instants of a job
import { formatInstant, nextInstants, readableTime } from '../../schedule/instants.js';
import { wallNow } from '../../clock.js';
import { scheduleInWords } from '../../schedule/words.js';
import { formatDuration } from '../../config/duration.js';
import { lastGoodSentence } from '../../report/status.js';
import { graceOf, successDeadline } from '../../watch/watchdog.js';
import { EXIT, UsageError, type Command, json, readHomeAsRun, positiveInt, jobName, liveInfo, openStore } from '../context.js';
import { isJobFileOf } from '../../config/home.js';

export const nextCommand: Command = {
  summary: 'the next N scheduled instants of a job',
  usage: 'nightshift [--home DIR] next JOB [--from ISO] [--count N] [--json]',
  help:
    "Prints instants as ISO 8601 with the offset of the job's time zone, daylight-saving changes included.\n" +
    'For an external job (one nightshift does not run) it prints the times a success ping is expected by: each\n' +
    "instant plus the job's heartbeat grace; no success by then raises a missed alert. Without --from, the first\n" +
    'is the deadline the watchdog has set now (it counts from the last success ping).',
  options: { from: { type: 'string' }, count: { type: 'string' }, json: { type: 'boolean' } },
  run: async (ctx) => {
    const name = jobName(ctx)!;
    const home = readHomeAsRun(ctx);
    const job = home.jobs.get(name);
    if (!job)
      throw new UsageError(
        `no valid job named "${name}"${home.problems.some((p) => isJobFileOf(ctx.paths.jobsDir, p.file, name)) ? ' (its spec has errors and it has never been valid: run nightshift validate)' : ''}`,
      );
    const stale = home.lastGood.get(name);
    const staleNote = stale
      ? `(${lastGoodSentence(name, job.file, stale.savedAt, job.timezone)}; these are the instants of that version)`
      : null;
    let from = wallNow();
    if (typeof ctx.values.from === 'string') {
      from = Date.parse(ctx.values.from);
      if (Number.isNaN(from)) throw new UsageError(`--from "${ctx.values.from}" is not an ISO date-time, e.g. 2026-03-29T00:00:00+01:00`);
    }
    const count = positiveInt(ctx.values.count, '--count', 5, 10_000);
    let instants = job.schedule ? nextInstants(job.schedule, from, count) : [];
    const grace = graceOf(job);
    // A paused or turned-off external job is not watched (the watchdog arms nothing for it): no
    // ping is expected, so no deadline is listed as if one were.
    let unwatched: string | null = null;
    if (!job.managed && job.schedule) {
      const store = openStore(ctx);
      const paused = store?.jobStates.all().get(name)?.paused === 1;
      store?.close();
      if (!job.spec.enabled) unwatched = `it is turned off in its file (enabled: false)`;
      else if (paused) unwatched = `it is paused (nightshift resume ${name} watches it again)`;
    }
    if (unwatched === null && !job.managed && job.schedule && ctx.values.from === undefined) {
      // The deadline pending now may be of an instant already past (its grace still running):
      // the watchdog's own when it runs, else the one it would set if it started now.
      const live = (await liveInfo(ctx))?.jobs.find((j) => j.name === name)?.successDeadline;
      const first = live != null ? live - grace : successDeadline(job, from)?.expected;
      if (first !== undefined) instants = [first, ...nextInstants(job.schedule, first, count - 1)];
    }
    if (ctx.values.json) {
      ctx.io.out(
        json({
          job: name,
          timezone: job.timezone,
          instants: instants.map((i) => formatInstant(i, job.timezone)),
          lastGoodVersionFrom: stale ? formatInstant(stale.savedAt, job.timezone) : null,
          ...(job.managed
            ? {}
            : {
                external: true,
                // No schedule: no ping is ever expected, so it is never missed.
                watched: unwatched === null && job.schedule !== null,
                graceMs: grace,
                pingExpectedBy: unwatched === null ? instants.map((i) => formatInstant(i + grace, job.timezone)) : [],
              }),
        }),
      );
      return EXIT.ok;
    }
    if (staleNote) ctx.io.err(staleNote);
    if (job.atBoot) {
      ctx.io.out(
        `${name} runs ${scheduleInWords(job, wallNow())} (schedule: "@reboot"), not at each start of nightshift${job.managed ? `; nightshift run ${name} runs it now` : ''}`,
      );
    } else if (!job.schedule) {
      ctx.io.out(
        job.managed
          ? `${name} has no schedule: it runs only when asked (nightshift run ${name})`
          : `${name} is external and has no schedule: no ping is expected at any time, so it is never missed; its pings are recorded (nightshift history ${name})`,
      );
    } else if (!job.managed && unwatched !== null) {
      ctx.io.out(`${name} is external and not watched now: ${unwatched}. No ping is expected meanwhile and none is missed.`);
    } else if (!job.managed) {
      ctx.io.out(
        `${name} is external: nightshift does not run it. A success ping (nightshift ping ${name}${job.spec.heartbeat?.file ? ', or a touch of its heartbeat file' : ''}) is expected by each of these times, ` +
          `its schedule's instant plus a grace of ${formatDuration(grace)}; none by then raises a missed alert:`,
      );
      for (const i of instants) ctx.io.out(`${readableTime(i + grace, job.timezone)}  (for ${readableTime(i, job.timezone)})`);
    } else {
      for (const i of instants) ctx.io.out(formatInstant(i, job.timezone));
    }
    return EXIT.ok;
  },
};
