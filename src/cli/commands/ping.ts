// `nightshift ping`: heartbeat for an external job: success (default), --start or --fail
import { EXIT, UsageError, type Command, json, jobName, act } from '../context.js';

export const pingCommand: Command = {
  summary: 'heartbeat for an external job: success (default), --start or --fail',
  usage: 'nightshift [--home DIR] ping JOB [--start|--fail] [--json]',
  help:
    'Needs the daemon. --start then a later ping records the duration; a start with no end within the\n' +
    "job's timeout raises a hung alert. The same works with curl:\n" +
    '  curl --unix-socket STATE/nightshift.sock http://x/ping/JOB[/start|/fail]\n' +
    "From another host, over the dashboard's port: nightshift ping-url JOB prints an address with a secret key.\n" +
    'An unknown job is refused (exit 2) and nothing is recorded.',
  options: { start: { type: 'boolean' }, fail: { type: 'boolean' }, json: { type: 'boolean' } },
  run: async (ctx) => {
    const name = jobName(ctx)!;
    if (ctx.values.start && ctx.values.fail) throw new UsageError('give --start or --fail, not both');
    const suffix = ctx.values.start ? '/start' : ctx.values.fail ? '/fail' : '';
    const r = await act(ctx, 'POST', `/ping/${name}${suffix}`);
    if (r.status !== 200) {
      ctx.io.err(`nightshift ping: ${String(r.body.error)}`);
      return r.status === 404 || r.status === 400 ? EXIT.usage : EXIT.unhealthy;
    }
    if (ctx.values.json) ctx.io.out(json(r.body));
    else
      ctx.io.out(
        `${name}: ${String(r.body.kind)} recorded${typeof r.body.durationMs === 'number' ? ` (ran ${r.body.durationMs} ms since its start ping)` : ''}`,
      );
    return EXIT.ok;
  },
};
