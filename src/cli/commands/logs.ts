// `nightshift logs`: a run's captured output, the latest finished run's by default
import { closestName, NAME_PATTERN } from '../../names.js';
import { readRunOutput, renderRunOutput } from '../../report/output.js';
import { DEFAULT_LOG_CAP } from '../../run/logcap.js';
import { LOGS_KEPT_PER_JOB } from '../../run/supervisor.js';
import { formatBytes, type RunRow } from '../../store/store.js';
import { EXIT, UsageError, type Command, json, loadHomeAsRun, openStore, zoneOf } from '../context.js';
import { isJobFileOf } from '../../config/home.js';

/** "37" or "#37", as history shows it; null when the word is no run number. */
function runNumber(word: string): number | null {
  const m = /^#?([1-9][0-9]{0,14})$/.exec(word);
  return m ? Number(m[1]) : null;
}

export const logsCommand: Command = {
  summary: "a run's captured output (the latest finished run of the job by default)",
  usage: 'nightshift [--home DIR] logs JOB [RUN] [--json]',
  help:
    'RUN is the run number history shows: 37 or "#37" (quote it: to the shell a word starting with # is a comment,\n' +
    'and the latest run would be shown). Prints a line saying which run it is, how it ended and when, then its\n' +
    'output: stdout and stderr together, as they came, with control characters shown as symbols (␛ ␇ ␀) so that\n' +
    'nothing a job printed can move the cursor, recolour or retitle the terminal. The log of a run keeps the first\n' +
    `and last ${formatBytes(DEFAULT_LOG_CAP / 2)} of its output; a note says how much was left out in between, and when the log file is gone\n` +
    `(the newest ${LOGS_KEPT_PER_JOB} runs of each job keep theirs) the end of the output kept with the run is shown instead.\n` +
    'Reads the files and SQLite directly; works with the daemon down. Exit 0 when the run is found (whatever its\n' +
    'outcome), 1 when the job has no finished run yet, 2 for an unknown job or run, or a run of another job.',
  options: { json: { type: 'boolean' } },
  run: (ctx) => {
    const [name, runWord, extra] = ctx.positionals;
    if (name === undefined) throw new UsageError('which job? give its name (nightshift status lists them)');
    if (!NAME_PATTERN.test(name)) throw new UsageError(`"${name}" is not a valid job name (lower-case letters, digits, "-" and "_")`);
    if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
    const id = runWord === undefined ? null : runNumber(runWord);
    if (runWord !== undefined && id === null)
      throw new UsageError(`"${runWord}" is not a run number: give it as history shows it, e.g. 37 or "#37"`);

    const store = openStore(ctx);
    try {
      const home = loadHomeAsRun(ctx, store);
      const job = home.jobs.get(name);
      // A job removed from jobs/ keeps its recorded runs: they can still be read.
      if (!job && (store === null || store.runs.count(name) === 0)) {
        const near = closestName(name, home.jobs.keys());
        const invalid = home.problems.some((p) => isJobFileOf(ctx.paths.jobsDir, p.file, name));
        ctx.io.err(
          `nightshift logs: no job named "${name}"${near ? ` (did you mean "${near}"?)` : ''}` +
            (invalid
              ? ' (its spec has errors and it has never been valid: run nightshift validate)'
              : '; nightshift status lists the jobs'),
        );
        return EXIT.usage;
      }
      if (job && !job.managed) {
        ctx.io.err(
          `nightshift logs: ${name} is an external job: nightshift does not run it, so it keeps no output of it; its pings: nightshift history ${name}`,
        );
        return EXIT.usage;
      }
      let row: RunRow | undefined;
      if (id !== null) {
        row = store?.runs.get(id);
        if (!row) {
          ctx.io.err(
            `nightshift logs: there is no run #${id} (runs older than the policy's retention are removed); nightshift history ${name} lists the runs of ${name}`,
          );
          return EXIT.usage;
        }
        if (row.job !== name) {
          ctx.io.err(`nightshift logs: run #${id} is a run of ${row.job}, not of ${name}: nightshift logs ${row.job} ${id}`);
          return EXIT.usage;
        }
      } else {
        row = store?.runs.newestEnded(name);
        if (!row) {
          const going = store?.runs.open().find((r) => r.job === name);
          ctx.io.err(
            going
              ? `nightshift logs: ${name} has no finished run yet; run #${going.id} is going now (its output so far: nightshift logs ${name} ${going.id})`
              : `nightshift logs: ${name} has no runs yet; nightshift next ${name} says when it runs, nightshift run ${name} runs it now`,
          );
          return EXIT.unhealthy;
        }
      }
      const out = readRunOutput(row, ctx.paths.logs);
      if (ctx.values.json)
        ctx.io.out(
          json({
            run: {
              id: row.id,
              job: row.job,
              trigger: row.trigger,
              outcome: row.outcome,
              startedAt: row.started_at,
              endedAt: row.ended_at,
              durationMs: row.duration_ms,
              exitCode: row.exit_code,
              signal: row.signal,
              reason: row.reason,
            },
            ...out,
          }),
        );
      else ctx.io.out(renderRunOutput(row, out, zoneOf(home)(row.job)));
      return EXIT.ok;
    } finally {
      store?.close();
    }
  },
};
