// `nightshift status`: one line per job: state, last run, next run, last success; problems
import { buildStatus, renderStatus } from '../../report/status.js';
import { hasHeals, healStatusLines } from '../../report/healview.js';
import { wallNow } from '../../clock.js';
import { systemTimeZone } from '../../schedule/timezone.js';
import { EXIT, type Command, json, loadHomeAsRun, openStore, liveInfo, killOf, zoneOf } from '../context.js';

export const statusCommand: Command = {
  summary: 'one line per job: state, last run, next run, last success; problems',
  usage: 'nightshift [--home DIR] status [--json]',
  help:
    'Works with or without a running daemon. Exit 1 when a job needs you or the configuration has problems. A job\n' +
    'needs you when it has an open alert of its own (not one held up by a failing job it depends on), or when its\n' +
    'last run failed with no alert open and no run under way; --json lists them as needsYou. The digest counts the same.',
  options: { json: { type: 'boolean' } },
  run: async (ctx) => {
    const store = openStore(ctx);
    try {
      const home = loadHomeAsRun(ctx, store);
      const now = wallNow();
      const report = buildStatus(home, store, await liveInfo(ctx), now, killOf(home));
      const ruleHash = (rule: string): string | undefined => home.rules.get(rule)?.hash;
      const approvals = store && hasHeals(store) ? store.heals.pendingApprovals().filter((a) => (a.expires_at ?? 0) > now) : [];
      report.pendingApprovals = approvals.length;
      const demotedRules = store && hasHeals(store) ? store.ladder.all().filter((l) => ruleHash(l.rule) === l.rule_hash) : [];
      if (ctx.values.json) ctx.io.out(json({ ...report, approvals, demotedRules }));
      else {
        const extra = store ? healStatusLines(store, now, ruleHash, zoneOf(home)) : [];
        ctx.io.out([renderStatus(report, home.policy.timezone ?? systemTimeZone()), ...(extra.length ? ['', ...extra] : [])].join('\n'));
      }
      return report.healthy ? EXIT.ok : EXIT.unhealthy;
    } finally {
      store?.close();
    }
  },
};
