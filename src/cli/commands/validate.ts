// `nightshift validate`: check every job, rule and the policy; errors as FILE:LINE: field: message
import { containment, programProblem } from '../../run/launch.js';
import { jobEnv } from '../../run/runner.js';
import type { LoadedHome } from '../../config/home.js';
import { formatProblem, lineOfPath, type SpecProblem } from '../../config/parse.js';
import { dirname } from 'node:path';
import { lastGoodSentence } from '../../report/status.js';
import { EXIT, type Command, json, readHomeAsRun } from '../context.js';

/**
 * A program that is not there (or not executable) is valid YAML and a sure failure at the first
 * run: a warning, not an error, since it may be installed before then. Looked up as the run will
 * (the job's PATH, its cwd); under systemd the daemon's PATH may differ from this shell's.
 */
function programWarnings(home: LoadedHome): SpecProblem[] {
  const out: SpecProblem[] = [];
  for (const job of home.jobs.values()) {
    if (home.lastGood.has(job.name)) continue;
    const env = jobEnv(job, {});
    const text = home.jobTexts.get(job.file) ?? '';
    for (const field of ['command', 'precheck'] as const) {
      const argv = job.spec[field];
      const p = argv ? programProblem(argv[0]!, job.cwd ?? job.home, env) : null;
      if (!p) continue;
      const why =
        p.code === 'EACCES'
          ? 'is not executable'
          : argv![0]!.includes('/')
            ? 'does not exist'
            : `is not found on the job's PATH (${env.PATH ?? ''})`;
      out.push({ file: job.file, line: lineOfPath(text, [field]), field, message: `${argv![0]} ${why}: every run would fail to start` });
    }
  }
  return out;
}

export const validateCommand: Command = {
  summary: 'check every job, rule and the policy; errors as FILE:LINE: field: message',
  usage: 'nightshift [--home DIR] validate [--json]',
  help: 'Exit 0 when everything is valid, 2 on any error. Warnings do not fail.',
  options: { json: { type: 'boolean' } },
  run: (ctx) => {
    const home = readHomeAsRun(ctx);
    const problems = home.problems.map(formatProblem);
    // What runs meanwhile, per invalid job file: its last good version, or nothing.
    // (a job loaded with a problem found after loading, such as dependsOn, runs: it is not among them)
    const loaded = new Set([...home.jobs.values()].filter((j) => !home.lastGood.has(j.name)).map((j) => j.file));
    const jobFiles = [...new Set(home.problems.map((p) => p.file))].filter((f) => dirname(f) === home.paths.jobsDir && !loaded.has(f));
    const meanwhile = jobFiles.map((file) => {
      const g = [...home.lastGood.values()].find((x) => x.file === file);
      const job = g ? home.jobs.get(g.job) : undefined;
      return g && job
        ? { file, job: g.job, lastGoodVersionFrom: g.savedAt, text: `${lastGoodSentence(g.job, file, g.savedAt, job.timezone)}.` }
        : { file, job: null, lastGoodVersionFrom: null, text: `${file} has never been valid: its job is not running.` };
    });
    // Looked up once: each program is a walk of the PATH.
    const warned = [...home.warnings, ...programWarnings(home)];
    const warnings = warned.map(formatProblem);
    if (ctx.values.json) {
      ctx.io.out(
        json({
          ok: problems.length === 0,
          jobs: home.jobs.size,
          rules: home.rules.size,
          problems: home.problems,
          meanwhile: meanwhile.map(({ text: _text, ...m }) => m),
          warnings: warned,
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
