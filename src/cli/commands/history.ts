// `nightshift history`: recent runs, newest first; for external jobs, the pings they sent
import { existsSync } from 'node:fs';
import { renderRuns } from '../../report/status.js';
import { outputSource } from '../../report/output.js';
import { renderPings } from '../../report/pings.js';
import { EXIT, type Command, json, loadHomeAsRun, openStore, positiveInt, jobName, zoneOf } from '../context.js';

export const historyCommand: Command = {
  summary: 'recent runs, newest first; for external jobs, the pings they sent',
  usage: 'nightshift [--home DIR] history [JOB] [--limit N] [--json]',
  help:
    'Reads SQLite directly; works with the daemon down. An external job (one nightshift does not run) has no runs:\n' +
    'its history is its pings (nightshift ping, and touches of its heartbeat file). Without JOB, the runs of every\n' +
    "job, then the pings of the external ones, up to N of each. A run's output: nightshift logs JOB [RUN].\n" +
    'With --json: the list of runs (newest first), as before pings were shown, or for an external JOB the list of its\n' +
    'pings; "record" says which ("run" or "ping"), and a run\'s "output_source" says where nightshift logs finds its\n' +
    'output ("log": its log file, "tail": only its end, kept with the run, "none").',
  options: { limit: { type: 'string' }, json: { type: 'boolean' } },
  run: (ctx) => {
    const name = jobName(ctx, false);
    const limit = positiveInt(ctx.values.limit, '--limit', 20);
    const store = openStore(ctx);
    let runs, pings, home;
    try {
      // As the daemon runs it: a job whose file is invalid now is still there, in its own zone.
      home = loadHomeAsRun(ctx, store);
      const ofJob = name !== undefined ? home.jobs.get(name) : undefined;
      const isExternal = ofJob !== undefined && !ofJob.managed;
      // Heartbeat-file touches of a job nightshift runs are signs of life during its runs, not its history.
      const managed = [...home.jobs.values()].filter((j) => j.managed).map((j) => j.name);
      runs = store && !isExternal ? store.runs.history(name ?? null, limit) : [];
      pings =
        store && (isExternal || name === undefined) ? store.heartbeats.recent(limit, isExternal ? { job: name } : { except: managed }) : [];
    } finally {
      store?.close();
    }
    const tzOf = zoneOf(home);
    const job = name !== undefined ? home.jobs.get(name) : undefined;
    const external = job !== undefined && !job.managed;
    if (ctx.values.json) {
      ctx.io.out(
        // One kind of record per list, so a script reading .[].outcome of the runs keeps working.
        json(
          external
            ? pings.map((p) => ({ record: 'ping', ...p }))
            : runs.map((r) => ({ record: 'run', ...r, output_source: outputSource(r, ctx.paths.logs, existsSync) })),
        ),
      );
      return EXIT.ok;
    }
    if (job !== undefined && external) {
      ctx.io.out(
        pings.length
          ? [`${name} is external: nightshift does not run it. The pings it sent, newest first:`, ...renderPings(pings, tzOf)].join('\n')
          : `No pings recorded yet: ${name} is external (nightshift does not run it) and proves life with nightshift ping ${name}` +
              `${job.spec.heartbeat?.file ? ' or by touching its heartbeat file' : ''}.`,
      );
      return EXIT.ok;
    }
    const lines = [renderRuns(runs, tzOf)];
    if (runs.length) lines.push('', `Output of a run: nightshift logs ${name ?? 'JOB'} [RUN]`);
    if (pings.length) lines.push('', 'Pings of external jobs (nightshift does not run them), newest first:', ...renderPings(pings, tzOf));
    ctx.io.out(lines.join('\n'));
    return EXIT.ok;
  },
};
