// `nightshift heals`: heal attempts, newest first, with every step, its timing and outcome
import { demotionLines, hasHeals, healViews, renderHeals, ruleEvidence } from '../../report/healview.js';
import { wallNow } from '../../clock.js';
import { EXIT, type Command, json, openStore, positiveInt, jobName, zoneOf, loadHomeAsRun } from '../context.js';

export const healsCommand: Command = {
  summary: 'heal attempts, newest first, with every step, its timing and outcome',
  usage: 'nightshift [--home DIR] heals [JOB] [--limit N] [--json]',
  help:
    'Reads SQLite directly; works with the daemon down. Each attempt shows the rule, the autonomy level in\n' +
    'force, every step (kill-switch, containment, pre-check, rule, cap, autonomy, guard, snapshot, fix, probe,\n' +
    'verdict, rollback) with how long it took, and the outcome. A fix that ran lists the files it changed, created\n' +
    'or removed under its touches (its snapshot against the tree right after it; "rolled back" once undone).\n' +
    'Proposals and approval requests are printed in full.\n' +
    'Exit 1 when an approval is waiting or an incident is blocked.',
  options: { limit: { type: 'string' }, json: { type: 'boolean' } },
  run: (ctx) => {
    const name = jobName(ctx, false);
    const limit = positiveInt(ctx.values.limit, '--limit', 20);
    const store = openStore(ctx);
    try {
      const rows = store ? healViews(store, limit, name) : [];
      // For one job: only the rules that acted on it.
      const ofJob = new Set(rows.map((r) => r.rule).filter((r) => r !== null));
      const evidence = store ? ruleEvidence(store).filter((e) => name === undefined || ofJob.has(e.rule)) : [];
      const waiting = store && hasHeals(store) ? store.heals.pendingApprovals().length : 0;
      if (ctx.values.json) ctx.io.out(json({ attempts: rows, rules: evidence }));
      else {
        const home = loadHomeAsRun(ctx, store);
        ctx.io.out(renderHeals(rows, wallNow(), zoneOf(home)));
        const rules = home.rules;
        const demoted = store
          ? demotionLines(store, (rule) => (name === undefined || ofJob.has(rule) ? rules.get(rule)?.hash : undefined))
          : [];
        if (demoted.length) ctx.io.out(`\n${demoted.join('\n')}`);
        if (evidence.length) {
          ctx.io.out('\nEvidence per rule (for promotion reviews):');
          for (const e of evidence)
            ctx.io.out(
              `  ${e.rule}: ${e.cases} case(s); ${Object.entries(e.outcomes)
                .map(([o, n]) => `${n} ${o}`)
                .join(', ')}`,
            );
        }
      }
      const blocked = rows.some((r) => r.outcome === 'blocked' || r.outcome === 'rollback-failed');
      return waiting > 0 || blocked ? EXIT.unhealthy : EXIT.ok;
    } finally {
      store?.close();
    }
  },
};
