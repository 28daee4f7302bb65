// `nightshift run`: run a job now (trigger manual), wait, print the outcome
import { oneLine, textAsData } from '../../text.js';
import { type RunRow } from '../../store/store.js';
import { EXIT, type Command, json, jobName, act } from '../context.js';

export const runCommand: Command = {
  summary: 'run a job now (trigger manual), wait, print the outcome',
  usage: 'nightshift [--home DIR] run JOB [--json]',
  help: 'Needs the daemon. Exit 0 when the run is ok, 1 otherwise, 3 when the daemon is not running.',
  options: { json: { type: 'boolean' } },
  run: async (ctx) => {
    const name = jobName(ctx)!;
    const r = await act(ctx, 'POST', `/run/${name}`);
    if (r.status !== 200) {
      ctx.io.err(`nightshift: ${String(r.body.error)}`);
      return r.status === 404 || r.status === 400 ? EXIT.usage : EXIT.unhealthy;
    }
    const row = r.body.run as RunRow;
    if (ctx.values.json) ctx.io.out(json(row));
    else {
      ctx.io.out(`run #${row.id} of ${row.job}: ${row.outcome} — ${oneLine(row.reason ?? '', 2000)}`);
      if (row.output_tail) ctx.io.out(`--- last output ---\n${textAsData(row.output_tail).trimEnd()}`);
      if (row.log_path) ctx.io.out(`(full log: ${row.log_path})`);
    }
    return row.outcome === 'ok' ? EXIT.ok : EXIT.unhealthy;
  },
};
