#!/usr/bin/env node
// Runs every benchmark, one after the other (never in parallel: they would disturb each other),
// each as its own process, then prints one summary table from bench/out/*.json.
// Figures are printed next to their targets; nothing here fails on a timing.
//
//   node bench/run.mjs [--quick] [--only idle,latency,scale] [--skip flood,detection] [--dist DIR] [--keep]
// Runs idle, latency and scale, then every other bench/*.mjs found (flood, detection, ...).
//   (npm run bench builds first)
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_DIR, machineInfo, OUT_DIR, printMachine, round, table, writeResult } from './lib.mjs';
import { drawAll } from './chart.mjs';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    quick: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    dist: { type: 'string' },
    only: { type: 'string' },
    skip: { type: 'string' },
  },
  strict: true,
});

const passOn = [...(values.quick ? ['--quick'] : []), ...(values.keep ? ['--keep'] : []), ...(values.dist ? ['--dist', values.dist] : [])];
// Ours first, then every other bench/*.mjs (benches others add), except helpers and investigation tools.
const FIRST = ['idle', 'latency', 'scale'];
const NOT_BENCHES = new Set(['lib', 'run', 'profile-scale', 'chart', 'peers-lib', 'ab', 'validate-ab', 'retention']);
const others = readdirSync(BENCH_DIR)
  .filter((f) => f.endsWith('.mjs'))
  .map((f) => f.slice(0, -4))
  .filter((n) => !FIRST.includes(n) && !NOT_BENCHES.has(n))
  .sort();
const BENCHES = [...FIRST, ...others].map((name) => ({
  name,
  // flood.mjs (daemon memory while a job prints a lot) has its own flags and always uses dist/.
  args: name === 'flood' ? (values.quick ? ['--bytes', String(256 * 2 ** 20)] : []) : passOn,
}));

const only = values.only?.split(',');
const skip = values.skip?.split(',') ?? [];
const selected = BENCHES.filter((b) => (!only || only.includes(b.name)) && !skip.includes(b.name) && existsSync(join(BENCH_DIR, `${b.name}.mjs`)));

let current = null;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    // The child stops its own daemons on SIGTERM; pass the signal on and let it finish.
    if (current) current.kill('SIGTERM');
    else process.exit(130);
  });
}

function run(b) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    console.log(`\n################ ${b.name}: node bench/${b.name}.mjs ${b.args.join(' ')}\n`);
    current = spawn(process.execPath, [join(BENCH_DIR, `${b.name}.mjs`), ...b.args], { stdio: 'inherit' });
    current.once('exit', (code, signal) => {
      current = null;
      resolve({ name: b.name, code, signal, seconds: round((performance.now() - t0) / 1000, 1) });
    });
  });
}

const machine = machineInfo(values);
const outcomes = [];
for (const b of selected) {
  rmSync(join(OUT_DIR, `${b.name}.json`), { force: true }); // never summarise a stale result
  outcomes.push(await run(b));
}

const rows = [];
for (const o of outcomes) {
  const path = join(OUT_DIR, `${o.name}.json`);
  if (!existsSync(path)) {
    rows.push({ bench: o.name, figure: `no result (exit ${o.code ?? o.signal})`, value: '', unit: '', target: '', 'within target': '' });
    continue;
  }
  const data = JSON.parse(readFileSync(path, 'utf8'));
  const figures =
    data.figures ??
    (o.name !== 'flood'
      ? [{ name: 'no figures in its JSON', value: '', unit: '', target: null, within: null }]
      : // flood.mjs writes a flat object
    [
      { name: 'flood: daemon RSS growth while a job prints', value: data.growthMB, unit: 'MB', target: null, within: null },
      { name: 'flood: bytes printed / outcome', value: `${data.bytes} / ${data.outcome}`, unit: '', target: null, within: null },
    ]);
  for (const f of figures) {
    rows.push({ bench: o.name, figure: f.name, value: f.value, unit: f.unit, target: f.target ?? '', 'within target': f.within === null || f.within === undefined ? '' : f.within ? 'yes' : 'NO' });
  }
}

console.log(`\n################ summary${values.quick ? ' (quick)' : ''}\n`);
printMachine(machine);
console.log(table(outcomes.map((o) => ({ bench: o.name, exit: o.code ?? o.signal, seconds: o.seconds }))));
console.log('');
console.log(table(rows));
writeResult('summary', { machine, quick: values.quick, benches: outcomes, figures: rows });
// Charts are drawn from every CSV in bench/results/ (those just written and any kept from earlier runs).
for (const p of drawAll()) console.log(`chart: ${p}`);
process.exitCode = outcomes.some((o) => o.code !== 0) ? 1 : 0;
