#!/usr/bin/env node
// validate of one 10,000-spec home by two builds, alternating run by run so that both meet the
// same machine: wall time and CPU of `nightshift validate`, medians of N runs each.
//
//   node bench/validate-ab.mjs --before DIR --after DIR [--jobs 10000] [--runs 5]
// DIR is a build's dist/ folder (e.g. a worktree of the commit before a change, built).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { tempDir, writeHome } from './lib.mjs';

const { values } = parseArgs({ options: { before: { type: 'string' }, after: { type: 'string' }, jobs: { type: 'string' }, runs: { type: 'string' } } });
if (!values.before || !values.after) throw new Error('usage: node bench/validate-ab.mjs --before DIST --after DIST [--jobs N] [--runs N]');
const n = Number(values.jobs ?? 10_000);
const runs = Number(values.runs ?? 5);
const home = tempDir(`validate-ab-${n}`);
const now = Date.now();
writeHome(home, n, { from: now - 120_000, to: now + 3_600_000 }, { seed: n, everyShare: 0.3 });

function once(dist) {
  // /usr/bin/time reports the child's CPU; the wall clock is ours.
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S %M', process.execPath, join(dist, 'cli.js'), '--home', home, 'validate'], { encoding: 'utf8' });
  const wall = performance.now() - t0;
  if (r.status !== 0) throw new Error(`validate by ${dist} failed: ${r.stdout}${r.stderr}`);
  const [user, sys, maxKB] = r.stderr.trim().split('\n').at(-1).split(' ').map(Number);
  return { wall, cpu: (user + sys) * 1000, rssMB: maxKB / 1024 };
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const res = { before: [], after: [] };
for (let i = 0; i < runs; i++) for (const k of ['before', 'after']) res[k].push(once(values[k]));
console.log(`validate of ${n} specs, ${runs} runs each, alternating (node ${process.version})`);
console.log('build    wall ms (median)  CPU ms (median)  peak RSS MB (median)');
for (const k of ['before', 'after']) {
  const r = res[k];
  console.log(`${k.padEnd(8)} ${median(r.map((x) => x.wall)).toFixed(0).padStart(16)}  ${median(r.map((x) => x.cpu)).toFixed(0).padStart(15)}  ${median(r.map((x) => x.rssMB)).toFixed(1).padStart(20)}`);
}
