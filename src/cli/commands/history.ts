// `nightshift history`: recent runs, newest first
import { existsSync } from 'node:fs';
import { loadHome } from '../../config/home.js';
import { renderRuns } from '../../report/status.js';
import { EXIT, type Command, json, openStore, positiveInt, jobName, zoneOf } from '../context.js';

export const historyCommand: Command = {
  summary: 'recent runs, newest first',
  usage: 'nightshift [--home DIR] history [JOB] [--limit N] [--json]',
  help: 'Reads SQLite directly; works with the daemon down.',
  options: { limit: { type: 'string' }, json: { type: 'boolean' } },
  run: (ctx) => {
    const name = jobName(ctx, false);
    const limit = positiveInt(ctx.values.limit, '--limit', 20);
    const store = openStore(ctx);
    const rows = store ? store.runs.history(name ?? null, limit) : [];
    store?.close();
    if (ctx.values.json) ctx.io.out(json(rows));
    else {
      const home = existsSync(ctx.paths.home) ? loadHome(ctx.paths) : null;
      ctx.io.out(renderRuns(rows, zoneOf(home)));
    }
    return EXIT.ok;
  },
};
