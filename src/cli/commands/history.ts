// `nightshift history`: recent runs, newest first
import { existsSync } from 'node:fs';
import { loadHome } from '../../config/home.js';
import { renderRuns } from '../../report/status.js';
import { outputSource } from '../../report/output.js';
import { EXIT, type Command, json, openStore, positiveInt, jobName } from '../context.js';

export const historyCommand: Command = {
  summary: 'recent runs, newest first',
  usage: 'nightshift [--home DIR] history [JOB] [--limit N] [--json]',
  help:
    "Reads SQLite directly; works with the daemon down. A run's output: nightshift logs JOB [RUN].\n" +
    'With --json, each run\'s "output_source" says where nightshift logs finds its output ("log": its log file,\n' +
    '"tail": only its end, kept with the run, "none").',
  options: { limit: { type: 'string' }, json: { type: 'boolean' } },
  run: (ctx) => {
    const name = jobName(ctx, false);
    const limit = positiveInt(ctx.values.limit, '--limit', 20);
    const store = openStore(ctx);
    const rows = store ? store.runs.history(name ?? null, limit) : [];
    store?.close();
    if (ctx.values.json) ctx.io.out(json(rows.map((r) => ({ ...r, output_source: outputSource(r, existsSync) }))));
    else {
      const home = existsSync(ctx.paths.home) ? loadHome(ctx.paths) : null;
      ctx.io.out(renderRuns(rows, (j) => home?.jobs.get(j)?.timezone ?? 'UTC'));
      if (rows.length) ctx.io.out(`\nOutput of a run: nightshift logs ${name ?? 'JOB'} [RUN]`);
    }
    return EXIT.ok;
  },
};
