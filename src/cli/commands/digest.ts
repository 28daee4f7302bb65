// `nightshift digest`: print (and --send) the daily digest for a day
import { composeDigest, digestDate, digestFacts, digestWindow, digestZone } from '../../report/digest.js';
import { DigestService } from '../../notify/digester.js';
import { containment } from '../../run/launch.js';
import { createLogger } from '../../log.js';
import { Store } from '../../store/store.js';
import { healLines } from '../../report/healview.js';
import { systemClock, wallNow } from '../../clock.js';
import { EXIT, UsageError, type Command, json, readHomeAsRun, openStore, killOf } from '../context.js';

export const digestCommand: Command = {
  summary: 'print (and --send) the daily digest for a day',
  usage: 'nightshift [--home DIR] digest [--date YYYY-MM-DD] [--send] [--json]',
  help:
    'The digest covers the 24 hours that end at policy.digest.at on that day (policy time zone); the\n' +
    'default day is today. --send also writes STATE/digests/DAY.md, stores it and e-mails it now.\n' +
    'Exit 1 when something needs you, as the headline counts it (the rule status counts failing jobs by: a job\n' +
    'with an open alert of its own, or whose last run failed with no alert open and no run under way; a spec\n' +
    'file with errors), or when the mail could not be sent.',
  options: { date: { type: 'string' }, send: { type: 'boolean' }, json: { type: 'boolean' } },
  run: async (ctx) => {
    if (ctx.positionals.length) throw new UsageError(`unexpected argument "${ctx.positionals[0]}"`);
    const home = readHomeAsRun(ctx);
    const config = { problems: home.problems, lastGood: [...home.lastGood.values()] };
    const date = typeof ctx.values.date === 'string' ? ctx.values.date : digestDate(digestZone(home.policy), wallNow());
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`))) {
      throw new UsageError(`--date "${date}" is not a day like 2026-11-22`);
    }
    const kill = killOf(home);
    if (ctx.values.send) {
      const store = Store.open(ctx.paths.db);
      try {
        const service = new DigestService({
          store,
          paths: ctx.paths,
          getJobs: () => home.jobs,
          getPolicy: () => home.policy,
          getKill: () => kill,
          clock: systemClock,
          log: createLogger({ level: 'silent' }),
          getHeals: (w) => healLines(store, w.from, w.to),
          getConfig: () => config,
        });
        const r = await service.runFor(date, { send: true });
        if (ctx.values.json) ctx.io.out(json(r));
        else {
          ctx.io.out(r.text);
          ctx.io.out(r.sent ? `\n(sent; saved as ${r.file ?? 'a row in SQLite'})` : `\n(NOT sent: ${r.error ?? 'unknown reason'})`);
        }
        return r.sent && r.needsYou === 0 ? EXIT.ok : EXIT.unhealthy;
      } finally {
        store.close();
      }
    }
    const store = openStore(ctx);
    if (!store) {
      ctx.io.out('No records yet: nightshift has not run with this state folder.');
      return EXIT.ok;
    }
    try {
      const window = digestWindow(home.policy, date);
      const d = composeDigest({
        facts: digestFacts(store, window, home.jobs.keys()),
        jobs: home.jobs,
        policy: home.policy,
        kill,
        date,
        window,
        now: wallNow(),
        heals: healLines(store, window.from, window.to),
        containment: containment(),
        config,
      });
      ctx.io.out(ctx.values.json ? json({ date, ...d }) : d.text);
      return d.needsYou > 0 ? EXIT.unhealthy : EXIT.ok;
    } finally {
      store.close();
    }
  },
};
