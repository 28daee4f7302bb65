// `nightshift alerts`: open alerts (or --all), with what happened in plain words
import { renderAlerts } from '../../report/status.js';
import { wallNow } from '../../clock.js';
import { existsSync } from 'node:fs';
import { loadHome } from '../../config/home.js';
import { EXIT, UsageError, type Command, json, openStore, positiveInt, zoneOf } from '../context.js';

export const alertsCommand: Command = {
  summary: 'open alerts (or --all), with what happened in plain words',
  usage: 'nightshift [--home DIR] alerts [--all] [--limit N] [--json]',
  help: 'Reads SQLite directly; works with the daemon down. Exit 1 when an alert is open.',
  options: { all: { type: 'boolean' }, limit: { type: 'string' }, json: { type: 'boolean' } },
  run: (ctx) => {
    if (ctx.positionals.length) throw new UsageError(`unexpected argument "${ctx.positionals[0]}"`);
    const limit = positiveInt(ctx.values.limit, '--limit', 100);
    const store = openStore(ctx);
    const rows = store ? (ctx.values.all ? store.alerts.recent(limit) : store.alerts.open().slice(0, limit)) : [];
    const open = store ? store.alerts.open().length : 0;
    store?.close();
    ctx.io.out(
      ctx.values.json
        ? json(rows)
        : rows.length
          ? renderAlerts(rows, wallNow(), zoneOf(existsSync(ctx.paths.home) ? loadHome(ctx.paths) : null))
          : ctx.values.all
            ? 'No alerts yet.'
            : 'No open alerts.',
    );
    return open > 0 ? EXIT.unhealthy : EXIT.ok;
  },
};
