// `nightshift history`: recent runs, newest first
import { renderRuns } from '../../report/status.js';
import { EXIT, type Command, json, loadHomeAsRun, openStore, positiveInt, jobName, zoneOf } from '../context.js';

export const historyCommand: Command = {
  summary: 'recent runs, newest first',
  usage: 'nightshift [--home DIR] history [JOB] [--limit N] [--json]',
  help: 'Reads SQLite directly; works with the daemon down.',
  options: { limit: { type: 'string' }, json: { type: 'boolean' } },
  run: (ctx) => {
    const name = jobName(ctx, false);
    const limit = positiveInt(ctx.values.limit, '--limit', 20);
    const store = openStore(ctx);
    try {
      const rows = store ? store.runs.history(name ?? null, limit) : [];
      if (ctx.values.json) ctx.io.out(json(rows));
      else ctx.io.out(renderRuns(rows, zoneOf(loadHomeAsRun(ctx, store))));
      return EXIT.ok;
    } finally {
      store?.close();
    }
  },
};
