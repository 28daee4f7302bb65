#!/usr/bin/env node
// The cost of containment, before and after side by side in one run: the start latency of runs
// (bench/latency.mjs) and the heal loop's own time (bench/heal.mjs), each run alternately with the
// build of a commit from before containment and with this checkout's build, on the same machine,
// a few rounds each, so that a slow patch of the machine hits both.
//
//   node bench/containment.mjs [--before REF] [--rounds N] [--runs N] [--trials N]
//
// REF (default 565d69a, the last commit without the launcher) is checked out into a temporary git
// worktree and built there (its dist/ uses this checkout's node_modules). The figures:
//   latency  instant -> spawn p99     (the daemon's own path to the spawn call; the target ≤ 25 ms)
//   latency  instant -> first instruction p50 / p99   (includes bubblewrap's sandbox set-up: the real cost)
//   heal     alert -> fixed-verified p50, overhead p95 (bench/heal.mjs's definitions)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const REPO = resolve(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    before: { type: 'string', default: '565d69a' },
    rounds: { type: 'string', default: '2' },
    runs: { type: 'string', default: '100' },
    trials: { type: 'string', default: '10' },
  },
});
const rounds = Number(values.rounds);

function build(ref) {
  const dir = mkdtempSync(join(tmpdir(), 'ns-before-'));
  execFileSync('git', ['-C', REPO, 'worktree', 'add', '--detach', dir, ref], { stdio: 'ignore' });
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: dir, stdio: 'inherit' });
  return dir;
}

function runBench(script, args, dist) {
  execFileSync('node', [join(REPO, 'bench', script), ...args, '--dist', dist], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
  const name = script.replace('.mjs', '');
  return JSON.parse(readFileSync(join(REPO, 'bench', 'out', `${name}.json`), 'utf8'));
}

const fig = (r, name) => r.figures.find((f) => f.name === name)?.value ?? null;

if (!existsSync(join(REPO, 'dist', 'cli.js'))) throw new Error('run "npm run build" first');
console.log(`== containment cost: ${values.before} (before) vs this checkout (after), ${rounds} round(s)`);
const beforeDir = build(values.before);
try {
  const builds = [
    { label: `before (${values.before})`, dist: join(beforeDir, 'dist') },
    { label: 'after (this checkout)', dist: join(REPO, 'dist') },
  ];
  const rows = [];
  for (let round = 1; round <= rounds; round++) {
    for (const b of round % 2 ? builds : [...builds].reverse()) {
      const lat = runBench('latency.mjs', ['--runs', values.runs, '--probe', 'node'], b.dist);
      const heal = runBench('heal.mjs', ['--trials', values.trials], b.dist);
      rows.push({
        round,
        build: b.label,
        'spawn p99 ms': fig(lat, 'latency[node]: instant->spawn p99'),
        'first instr. p50 / p99 ms': fig(lat, 'latency[node]: instant->first instruction p50 / p99'),
        'heal alert->fixed p50 ms': fig(heal, 'heal: alert → fixed-verified, p50'),
        'heal overhead p95 ms': fig(heal, 'heal: overhead beyond fix, probe and the hung run, p95'),
        'heals not fixed': fig(heal, 'heal: trials not fixed-verified'),
      });
    }
  }
  console.table(rows);
} finally {
  execFileSync('git', ['-C', REPO, 'worktree', 'remove', '--force', beforeDir], { stdio: 'ignore' });
  rmSync(beforeDir, { recursive: true, force: true });
}
