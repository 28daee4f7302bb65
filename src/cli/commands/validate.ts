// `nightshift validate`: check every job, rule and the policy; errors as FILE:LINE: field: message
import { containment } from '../../run/launch.js';
import { formatProblem } from '../../config/parse.js';
import { dirname } from 'node:path';
import { lastGoodSentence } from '../../report/status.js';
import { EXIT, type Command, json, loadHomeAsRun, openStore } from '../context.js';

export const validateCommand: Command = {
  summary: 'check every job, rule and the policy; errors as FILE:LINE: field: message',
  usage: 'nightshift [--home DIR] validate [--json]',
  help: 'Exit 0 when everything is valid, 2 on any error. Warnings do not fail.',
  options: { json: { type: 'boolean' } },
  run: (ctx) => {
    const store = openStore(ctx);
    let home;
    try {
      home = loadHomeAsRun(ctx, store);
    } finally {
      store?.close();
    }
    const problems = home.problems.map(formatProblem);
    // What runs meanwhile, per invalid job file: its last good version, or nothing.
    const jobFiles = [...new Set(home.problems.map((p) => p.file))].filter((f) => dirname(f) === home.paths.jobsDir);
    const meanwhile = jobFiles.map((file) => {
      const g = [...home.lastGood.values()].find((x) => x.file === file);
      const job = g ? home.jobs.get(g.job) : undefined;
      return g && job
        ? { file, job: g.job, lastGoodVersionFrom: g.savedAt, text: `${lastGoodSentence(g.job, file, g.savedAt, job.timezone)}.` }
        : { file, job: null, lastGoodVersionFrom: null, text: `${file} has never been valid: its job is not running.` };
    });
    const warnings = home.warnings.map(formatProblem);
    if (ctx.values.json) {
      ctx.io.out(
        json({
          ok: problems.length === 0,
          jobs: home.jobs.size,
          rules: home.rules.size,
          problems: home.problems,
          meanwhile: meanwhile.map(({ text: _text, ...m }) => m),
          warnings: home.warnings,
          containment: containment(),
        }),
      );
    } else {
      for (const p of problems) ctx.io.out(p);
      for (const m of meanwhile) ctx.io.out(`meanwhile: ${m.text}`);
      for (const w of warnings) ctx.io.out(`warning: ${w}`);
      const c = containment();
      if (!c.ok)
        ctx.io.out(
          `warning: containment unavailable: jobs will run uncontained and no fix, brain or probe will run (heal outcome uncontained): ${c.reason}`,
        );
      ctx.io.out(
        problems.length === 0
          ? `ok: ${home.jobs.size} job(s), ${home.rules.size} rule(s), policy ${home.policyMissing ? 'not present (defaults)' : 'valid'}`
          : `${problems.length} problem(s); fix them — the daemon keeps the last good version of each file meanwhile`,
      );
    }
    return problems.length ? EXIT.usage : EXIT.ok;
  },
};
