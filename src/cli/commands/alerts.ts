// `nightshift alerts`: open alerts (or --all), with what happened in plain words
import { renderAlerts } from '../../report/status.js';
import { wallNow } from '../../clock.js';
import { EXIT, UsageError, type Command, json, loadHomeAsRun, openStore, positiveInt, zoneOf } from '../context.js';

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
    try {
      ctx.io.out(
        ctx.values.json
          ? json(rows)
          : rows.length
            ? renderAlerts(rows, wallNow(), zoneOf(loadHomeAsRun(ctx, store)))
            : ctx.values.all
              ? 'No alerts yet.'
              : 'No open alerts.',
      );
    } finally {
      store?.close();
    }
    return open > 0 ? EXIT.unhealthy : EXIT.ok;
  },
};
