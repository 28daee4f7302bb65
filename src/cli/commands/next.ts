// `nightshift next`: the next N scheduled instants of a job
import { formatInstant, nextInstants } from '../../schedule/instants.js';
import { wallNow } from '../../clock.js';
import { lastGoodSentence } from '../../report/status.js';
import { EXIT, UsageError, type Command, json, readHomeAsRun, positiveInt, jobName } from '../context.js';

export const nextCommand: Command = {
  summary: 'the next N scheduled instants of a job',
  usage: 'nightshift [--home DIR] next JOB [--from ISO] [--count N] [--json]',
  help: "Prints instants as ISO 8601 with the offset of the job's time zone, daylight-saving changes included.",
  options: { from: { type: 'string' }, count: { type: 'string' }, json: { type: 'boolean' } },
  run: (ctx) => {
    const name = jobName(ctx)!;
    const home = readHomeAsRun(ctx);
    const job = home.jobs.get(name);
    if (!job)
      throw new UsageError(
        `no valid job named "${name}"${home.problems.some((p) => p.file.includes(`/${name}.`)) ? ' (its spec has errors and it has never been valid: run nightshift validate)' : ''}`,
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
    const instants = job.schedule ? nextInstants(job.schedule, from, count) : [];
    if (ctx.values.json) {
      ctx.io.out(
        json({
          job: name,
          timezone: job.timezone,
          instants: instants.map((i) => formatInstant(i, job.timezone)),
          lastGoodVersionFrom: stale ? formatInstant(stale.savedAt, job.timezone) : null,
        }),
      );
      return EXIT.ok;
    }
    if (staleNote) ctx.io.err(staleNote);
    if (!job.schedule) {
      ctx.io.out(
        `${name} has no schedule: it runs only when asked (nightshift run ${name})${job.managed ? '' : ' or when something pings it'}`,
      );
    } else {
      for (const i of instants) ctx.io.out(formatInstant(i, job.timezone));
    }
    return EXIT.ok;
  },
};
