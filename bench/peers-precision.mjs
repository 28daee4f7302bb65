#!/usr/bin/env node
// Start precision next to the tools users already know: latency from a job's scheduled instant
// to its first instruction, for nightshift, node-cron alone and Debian cron, one after the other
// (never overlapping) in one invocation; p50/p99/max per tool over a fixed number of runs.
//
//   node bench/peers-precision.mjs [--runs 200] [--cron-minutes M] [--only nightshift,node-cron,cron] [--quick] [--keep] [--dist DIR]
//   (--quick: 30 runs per tool)
//
// Decisions:
// - The job is the same command for every tool, run as `/bin/bash -c SCRIPT` with
//   SCRIPT = echo "$EPOCHREALTIME ${NIGHTSHIFT_RUN_ID:-} ${SCHEDULED_MS:-}" >> "$OUT"
//   Its first instruction writes bash's microsecond wall clock. nightshift: argv command (its
//   NIGHTSHIFT_RUN_ID finds the run's scheduled_for in SQLite); node-cron: the runner spawns
//   /bin/bash -c SCRIPT with SCHEDULED_MS = node-cron's ctx.date (the matched slot); cron:
//   SHELL=/bin/bash and OUT in the cron.d file, so cron execs bash -c SCRIPT itself.
// - Schedules: nightshift and node-cron use the same every-second expression `* * * * * *` (UTC);
//   latency = first instruction − scheduled instant. One warm-up run per tool is not counted.
// - nightshift runs as the benches start it (lib.mjs startDaemon: node flags of
//   deploy/nightshift.service). node-cron alone = a tiny node script with node-cron 4 (the
//   project's dependency, same node) and child_process.spawn.
// - cron has minute granularity: K identical `* * * * *` lines for M minutes with K×M = the run
//   count (full: 4 minutes × 50 lines, quick: 2 × 15); latency relative to the minute boundary.
//   cron starts the K jobs of a minute one after the other, so its spread includes that queue,
//   and Vixie cron wakes about one second after the minute on purpose (its sleep adds 1 s).
//   Minutes only count from the first boundary at least 2 s after cron started.
// - cron runs as `cron -f` in a private mount namespace with only our cron.d file (peers-lib.mjs);
//   when cron cannot be installed it is printed as skipped and left empty in the CSV.
// Writes bench/out/peers-precision.json and bench/results/peers-precision.csv (+ .svg).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { drawChart, RESULTS_DIR, writeCsv } from './chart.mjs';
import { Child, deployedNodeFlags, figure, flags, isMsg, machineInfo, printFigures, printMachine, REPO, round, runMain, sleep, startDaemon, stats, table, tempDir, toYaml, writeResult } from './lib.mjs';
import { ensureCron, onCleanup, runCleanups, startCron, waitCronUp } from './peers-lib.mjs';

const values = flags({ runs: { type: 'string' }, 'cron-minutes': { type: 'string' }, only: { type: 'string' } });
const nRuns = Number(values.runs ?? (values.quick ? 30 : 200));
const cronMinutes = Number(values['cron-minutes'] ?? (values.quick ? 2 : 4));
const cronLines = Math.ceil(nRuns / cronMinutes);
const TOOLS = ['nightshift', 'node-cron', 'cron'];
const only = values.only ? values.only.split(',') : TOOLS;
const WARMUP = 1;
const command = `node bench/peers-precision.mjs ${process.argv.slice(2).join(' ')}`.trim();

const SCRIPT = 'echo "$EPOCHREALTIME ${NIGHTSHIFT_RUN_ID:-} ${SCHEDULED_MS:-}" >> "$OUT"';

/** Lines of the job's output: { t (epoch ms, µs resolution), runId, scheduledMs }. */
function readOut(file) {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [t, a, b] = l.trim().split(/\s+/);
      // ${NIGHTSHIFT_RUN_ID:-} and ${SCHEDULED_MS:-} may both be empty: fields shift, so tell them apart by size
      const nums = [a, b].filter((x) => x !== undefined && x !== '').map(Number);
      const scheduledMs = nums.find((x) => x > 1e12) ?? null;
      const runId = nums.find((x) => x <= 1e12) ?? null;
      return { t: Number(t) * 1000, runId, scheduledMs };
    });
}

async function waitLines(file, want, timeoutMs, label) {
  const until = Date.now() + timeoutMs;
  let last = -1;
  for (;;) {
    const n = readOut(file).length;
    if (n >= want) return n;
    if (Date.now() > until) throw new Error(`${label}: only ${n} of ${want} runs after ${timeoutMs / 1000} s`);
    if (n !== last && n > 0 && n % 50 === 0) console.log(`  ${label}: ${n}/${want}`);
    last = n;
    await sleep(500);
  }
}

async function runNightshift(tmp) {
  const home = join(tmp, 'ns-home');
  const state = join(tmp, 'ns-state');
  const out = join(tmp, 'nightshift.txt');
  for (const d of ['jobs', 'rules', 'protected']) mkdirSync(join(home, d), { recursive: true });
  writeFileSync(join(home, 'protected', 'policy.yaml'), toYaml({ timezone: 'UTC' }));
  writeFileSync(join(home, 'jobs', 'tick.yaml'), toYaml({ description: 'peers-precision probe', schedule: '* * * * * *', timezone: 'UTC', command: ['/bin/bash', '-c', SCRIPT], env: { OUT: out }, timeout: '30s' }));
  writeFileSync(out, '');
  const daemon = startDaemon(values, { home, state });
  try {
    await daemon.waitFor(isMsg('nightshift started'), { timeoutMs: 60_000, what: '"nightshift started"' });
    await waitLines(out, nRuns + WARMUP, (nRuns + 60) * 1000 * 2, 'nightshift');
  } finally {
    await daemon.stop();
  }
  const db = new Database(join(state, 'nightshift.db'), { readonly: true });
  const sched = new Map(db.prepare("SELECT id, scheduled_for FROM runs WHERE job = 'tick' AND trigger = 'schedule'").all().map((r) => [r.id, r.scheduled_for]));
  db.close();
  const lines = readOut(out).sort((x, y) => x.t - y.t);
  return lines.map((l) => ({ t: l.t, scheduled: sched.get(l.runId) ?? null }));
}

async function runNodeCron(tmp) {
  const out = join(tmp, 'node-cron.txt');
  writeFileSync(out, '');
  const nodeCron = createRequire(join(REPO, 'package.json')).resolve('node-cron');
  const runner = join(tmp, 'node-cron-runner.cjs');
  // The smallest faithful use of node-cron: schedule, then spawn the job on each tick.
  writeFileSync(
    runner,
    `const cron = require(${JSON.stringify(nodeCron)});
const { spawn } = require('node:child_process');
cron.schedule('* * * * * *', (ctx) => {
  spawn('/bin/bash', ['-c', ${JSON.stringify(SCRIPT)}], { stdio: 'ignore', env: { ...process.env, SCHEDULED_MS: String(ctx.date.getTime()) } });
}, { timezone: 'UTC' });
`,
  );
  const child = new Child('node-cron', process.execPath, [runner], { env: { ...process.env, OUT: out } });
  try {
    await waitLines(out, nRuns + WARMUP, (nRuns + 60) * 1000 * 2, 'node-cron');
  } finally {
    await child.stop();
  }
  if (child.stderr.trim()) console.log(`node-cron stderr: ${child.stderr.trim().slice(-500)}`);
  return readOut(out)
    .sort((x, y) => x.t - y.t)
    .map((l) => ({ t: l.t, scheduled: l.scheduledMs }));
}

async function runCron(tmp, cronInfo) {
  const out = join(tmp, 'cron.txt');
  writeFileSync(out, '');
  const cron = startCron({
    lines: Array.from({ length: cronLines }, () => `* * * * * root ${SCRIPT}`),
    envLines: ['SHELL=/bin/bash', 'PATH=/usr/local/bin:/usr/bin:/bin', `OUT=${out}`],
    tmp,
    name: 'nsb-peers-precision',
  });
  let firstMinute;
  try {
    await waitCronUp(cron);
    const up = Date.now();
    firstMinute = Math.ceil((up + 2000) / 60_000) * 60_000;
    const end = firstMinute + (cronMinutes - 1) * 60_000;
    console.log(`  cron ${cronInfo.version}: pid ${cron.pid}, ${cronLines} lines × ${cronMinutes} minutes from ${new Date(firstMinute).toISOString()} (${cron.mode}); about ${Math.round((end + 20_000 - Date.now()) / 1000)} s`);
    // Wait for the last counted minute's K runs (at most 60 s after it), then stop.
    const until = end + 60_000;
    while (Date.now() < until) {
      const got = readOut(out).filter((l) => l.t >= firstMinute && l.t < end + 60_000).length;
      if (got >= cronLines * cronMinutes) break;
      await sleep(1000);
    }
  } finally {
    await cron.stop();
  }
  const lines = readOut(out).sort((x, y) => x.t - y.t);
  const counted = lines.filter((l) => l.t >= firstMinute).map((l) => ({ t: l.t, scheduled: Math.floor(l.t / 60_000) * 60_000 }));
  // Whole minutes counted from firstMinute; what cron ran before it is shown, not counted.
  return { runs: counted.slice(0, nRuns), before: lines.length - counted.length, perMinute: countBy(counted.map((c) => new Date(c.scheduled).toISOString().slice(11, 16))) };
}

function countBy(list) {
  const m = {};
  for (const x of list) m[x] = (m[x] ?? 0) + 1;
  return m;
}

await runMain(values, async () => {
  try {
    const machine = machineInfo(values);
    console.log(`== peers-precision: scheduled instant -> the job's first instruction; ${nRuns} runs per tool (+${WARMUP} warm-up for the every-second tools), one tool after the other: ${only.join(', ')}`);
    printMachine(machine);
    const tmp = tempDir('peers-precision');
    // lib.mjs's signal handler exits without its temp cleanup; this one also runs on Ctrl-C.
    onCleanup('remove temp folder', () => values.keep || rmSync(tmp, { recursive: true, force: true }));
    const results = {};
    const skipped = {};
    let cronInfo = null;

    for (const tool of TOOLS.filter((t) => only.includes(t))) {
      const t0 = performance.now();
      try {
        await measureTool(tool);
      } catch (err) {
        // One tool failing (a broken build, a peer that will not start) must not lose the others' figures.
        skipped[tool] = `failed: ${String(err?.message ?? err).split('\n')[0]}`;
        console.log(`-- ${tool}: FAILED — ${err?.stack ?? err}`);
      }
      if (results[tool]) results[tool].wallS = round((performance.now() - t0) / 1000, 1);
    }

    async function measureTool(tool) {
      if (tool === 'nightshift') {
        console.log(`-- nightshift (schedule "* * * * * *", node flags ${deployedNodeFlags().join(' ')}): about ${nRuns + WARMUP + 2} s`);
        const lines = await runNightshift(tmp);
        const lat = lines.map((l) => (l.scheduled === null ? null : l.t - l.scheduled)).filter((x) => x !== null);
        results[tool] = { latencies: lat.slice(WARMUP, WARMUP + nRuns), warmup: lat.slice(0, WARMUP), unmatched: lines.filter((l) => l.scheduled === null).length };
      } else if (tool === 'node-cron') {
        console.log(`-- node-cron ${JSON.parse(readFileSync(join(REPO, 'node_modules', 'node-cron', 'package.json'), 'utf8')).version} alone (schedule "* * * * * *"): about ${nRuns + WARMUP + 1} s`);
        const lines = await runNodeCron(tmp);
        const notWhole = lines.filter((l) => l.scheduled !== null && l.scheduled % 1000 !== 0).length;
        const lat = lines.map((l) => (l.scheduled === null ? null : l.t - l.scheduled)).filter((x) => x !== null);
        results[tool] = { latencies: lat.slice(WARMUP, WARMUP + nRuns), warmup: lat.slice(0, WARMUP), unmatched: lines.filter((l) => l.scheduled === null).length, slotsNotWholeSecond: notWhole };
      } else {
        cronInfo = ensureCron();
        if (!cronInfo.ok) {
          skipped.cron = cronInfo.why;
          console.log(`-- Debian cron: SKIPPED — ${cronInfo.why}`);
          return;
        }
        console.log(`-- Debian cron (minute granularity: ${cronLines} × "* * * * *" for ${cronMinutes} minutes)`);
        try {
          const r = await runCron(tmp, cronInfo);
          results[tool] = { latencies: r.runs.map((l) => l.t - l.scheduled), warmup: [], runsBeforeFirstMinute: r.before, perMinute: r.perMinute, lines: cronLines, minutes: cronMinutes, version: cronInfo.version };
        } catch (err) {
          skipped.cron = String(err.message ?? err);
          console.log(`-- Debian cron: SKIPPED — ${skipped.cron}`);
        }
      }
    }

    const label = { nightshift: 'nightshift', 'node-cron': 'node-cron alone', cron: 'Debian cron (minute)' };
    const rows = [];
    for (const tool of TOOLS.filter((t) => only.includes(t))) {
      const r = results[tool];
      if (!r) {
        rows.push({ tool: label[tool], n: skipped[tool]?.startsWith('failed') ? 'failed' : 'skipped' });
        continue;
      }
      r.stats = stats(r.latencies, 2);
      rows.push({ tool: label[tool], n: r.stats.n, min: r.stats.min, p50: r.stats.p50, p95: r.stats.p95, p99: r.stats.p99, max: r.stats.max, mean: r.stats.mean, 'warm-up': r.warmup.map((x) => round(x, 1)).join(' ') });
      if (r.stats.n < nRuns) console.log(`NOTE: ${tool}: ${r.stats.n} of ${nRuns} runs measured`);
    }
    console.log('\nlatency, scheduled instant -> first instruction (ms):');
    console.log(table(rows, ['tool', 'n', 'min', 'p50', 'p95', 'p99', 'max', 'mean', 'warm-up']));
    if (results.cron) console.log(`cron runs per minute: ${JSON.stringify(results.cron.perMinute)}; runs before the first counted minute: ${results.cron.runsBeforeFirstMinute}`);
    for (const [t, why] of Object.entries(skipped)) console.log(`${t}: skipped — ${why}`);

    const subtitle = `${machine.nproc} CPU, ${round(machine.memTotalMB / 1024, 1)} GB RAM, ${machine.node}, ${machine.date.slice(0, 16).replace('T', ' ')} UTC, ${nRuns} runs per tool`;
    const notes = [
      'Job: /bin/bash -c \'echo "$EPOCHREALTIME ..." >> "$OUT"\' for every tool; latency = that timestamp - the scheduled instant. Log scale.',
      'nightshift and node-cron: every second ("* * * * * *"); Debian cron: minute granularity, ' +
        `${cronLines} identical lines × ${cronMinutes} minutes, relative to the minute (cron sleeps until ~1 s past it).`,
      `Command: ${command}`,
      ...Object.entries(skipped).map(([t, why]) => `${t}: skipped (${why})`),
    ];
    mkdirSync(RESULTS_DIR, { recursive: true });
    const csv = writeCsv(
      join(RESULTS_DIR, 'peers-precision.csv'),
      { title: 'Start latency: scheduled instant to the job\'s first instruction', subtitle, notes, scale: 'log' },
      ['tool', 'p50 [ms]', 'p99 [ms]', 'max [ms]'],
      TOOLS.filter((t) => only.includes(t)).map((t) => (results[t]?.stats?.n ? [label[t], results[t].stats.p50, results[t].stats.p99, results[t].stats.max] : [label[t], '', '', ''])),
    );
    console.log(`\nCSV: ${csv}\nchart: ${drawChart(csv)}`);

    const figs = [];
    for (const t of Object.keys(results)) {
      const s = results[t].stats;
      figs.push(figure(`peers-precision[${t}]: p50 / p99 / max`, `${s.p50} / ${s.p99} / ${s.max}`, 'ms'));
    }
    console.log('');
    printFigures(figs);
    writeResult('peers-precision', {
      bench: 'peers-precision',
      command,
      machine,
      params: { runs: nRuns, warmup: WARMUP, cronLines, cronMinutes, script: SCRIPT, nodeFlags: deployedNodeFlags() },
      peers: { cron: cronInfo },
      skipped,
      results,
      figures: figs,
    });
  } finally {
    runCleanups();
  }
});
