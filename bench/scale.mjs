#!/usr/bin/env node
// Scale: homes of 100, 1,000 and 10,000 valid job specs (mixed cron/every, several zones, none due
// during the measurement). For each size:
//   (a) `nightshift validate`: wall time and peak RSS (/usr/bin/time -v, else polling /proc);
//   (b) daemon start until the "nightshift started" log line, on a fresh state folder (first
//       start: every job gets its state row) and again on the existing state (a restart);
//       RSS 1 s after start and peak RSS (VmHWM); time from SIGTERM to exit;
//   (c) reload latency of one changed file while the daemon runs: rewrite one job's file with a
//       new schedule and time from the write to the daemon's "job changed" line for that job —
//       both an in-place write (truncate+write) and an atomic replace (write temp, rename).
//
//   node bench/scale.mjs [--sizes 100,1000,10000] [--reloads 10] [--validations 3] [--quick] [--keep] [--dist DIR] [--json]
import { renameSync, writeFileSync } from 'node:fs';
import { RESULTS_DIR, writeCsv } from './chart.mjs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { figure, flags, isMsg, jsonMode, machineInfo, MB, printFigures, printMachine, readStatus, rng, round, runCli, runMain, safeCron, sleep, startDaemon, deployedNodeFlags, stats, table, tempDir, toYaml, writeHome, writeResult } from './lib.mjs';

const values = flags({ sizes: { type: 'string' }, reloads: { type: 'string' }, validations: { type: 'string' }, 'node-args': { type: 'string' } });
// Extra node flags for the daemon (e.g. those of deploy/nightshift.service), to compare.
const nodeArgs = values['node-args'] !== undefined ? values['node-args'].split(' ').filter(Boolean) : deployedNodeFlags();
const sizes = (values.sizes ?? '100,1000,10000').split(',').map(Number);
const nReloads = Number(values.reloads ?? (values.quick ? 5 : 10));
const nValidate = Number(values.validations ?? (values.quick ? 1 : 3));

async function startAndMeasure(home, state, label) {
  const daemon = startDaemon(values, { home, state, label, nodeArgs });
  const started = await daemon.waitFor(isMsg('nightshift started'), { timeoutMs: 300_000, what: '"nightshift started"' });
  const startMs = started.t - daemon.spawnedAt;
  await sleep(1000);
  const st = readStatus(daemon.pid);
  return { daemon, startMs: round(startMs, 1), jobs: started.obj.jobs, problems: started.obj.problems, rssKB: st.VmRSS, hwmKB: st.VmHWM, threads: st.Threads };
}

async function stopMeasured(daemon) {
  const t0 = performance.now();
  const info = await daemon.stop(60_000);
  return { stopMs: round(performance.now() - t0, 1), code: info.code, signal: info.signal };
}

async function reloads(daemon, jobs, mode, count, r, window) {
  const out = [];
  for (let i = 0; i < count; i++) {
    // Spread over the home; each file is changed once per mode.
    const job = jobs[Math.floor(((i + 0.5) * jobs.length) / count + (mode === 'rename' ? 1 : 0)) % jobs.length];
    let schedule;
    do schedule = safeCron(r, job.tz, window, 'daily');
    while (schedule === job.spec.schedule);
    const spec = { ...job.spec, every: undefined, schedule, timezone: job.spec.timezone };
    job.spec = spec;
    const text = toYaml(spec);
    const from = daemon.mark();
    const wall = Date.now();
    const t0 = performance.now();
    if (mode === 'rename') {
      const tmp = join(job.file, '..', `.${job.name}.yaml.tmp`);
      writeFileSync(tmp, text);
      renameSync(tmp, job.file);
    } else writeFileSync(job.file, text);
    let res;
    try {
      const line = await daemon.waitFor((e) => e.obj?.job === job.name && (e.obj.msg === 'job changed' || e.obj.level === 'error' || e.obj.level === 50), {
        from,
        timeoutMs: 10_000,
        what: `"job changed" for ${job.name}`,
      });
      res = { job: job.name, mode, ms: round(line.t - t0, 2), logTimeMs: line.obj.time ? Date.parse(line.obj.time) - wall : null, msg: line.obj.msg };
    } catch (err) {
      res = { job: job.name, mode, ms: null, error: err.message };
    }
    out.push(res);
    await sleep(250);
  }
  return out;
}

await runMain(values, async () => {
  const machine = machineInfo(values);
  console.log(`== scale: homes of ${sizes.join(', ')} jobs; validate x${nValidate}, reloads x${nReloads} per mode`);
  printMachine(machine);
  const results = [];
  for (const n of sizes) {
    const home = tempDir(`scale-${n}`);
    const state = join(tempDir(`scale-${n}-state`), 'state');
    const now = Date.now();
    // Nothing may fire while this size is measured (a generous hour).
    const window = { from: now - 2 * 60_000, to: now + 60 * 60_000 };
    const tGen = performance.now();
    const jobs = writeHome(home, n, window, { seed: n, everyShare: 0.3 });
    const genS = round((performance.now() - tGen) / 1000, 1);
    console.log(`\n-- ${n} jobs: home ${home} written in ${genS} s (${jobs.filter((j) => j.spec.schedule).length} cron, ${jobs.filter((j) => j.spec.every).length} every)`);

    // (a) validate
    const validations = [];
    for (let i = 0; i < nValidate; i++) {
      const v = await runCli(values, ['validate'], { home, wrapTime: true, timeoutMs: 300_000 });
      const ok = v.code === 0 && v.stdout.includes(`ok: ${n} job(s)`);
      if (!ok) console.log(`validate exit ${v.code}: ${v.stdout.slice(-500)} ${v.stderr.slice(0, 500)}`);
      validations.push({ wallMs: round(v.wallMs, 1), timeWallMs: v.timeWallMs, peakKB: v.peakKB, cpuMs: v.cpuMs === null ? null : round(v.cpuMs, 0), ok, measuredWith: v.measuredWith });
      console.log(`  validate #${i + 1}: ${round(v.wallMs)} ms wall, peak RSS ${MB(v.peakKB)} MB, CPU ${v.cpuMs === null ? "?" : round(v.cpuMs, 0)} ms, ${ok ? 'ok' : 'NOT OK'}`);
    }

    // (b) start on a fresh state, then (c) reloads, then restart on the existing state
    const cold = await startAndMeasure(home, state, `daemon ${n} (fresh state)`);
    console.log(`  start (fresh state): ${cold.startMs} ms to "nightshift started" (${cold.jobs} jobs, ${cold.problems} problems), RSS ${MB(cold.rssKB)} MB, peak ${MB(cold.hwmKB)} MB`);
    const r = rng(n + 1);
    const inPlace = await reloads(cold.daemon, jobs, 'write', nReloads, r, window);
    const atomic = await reloads(cold.daemon, jobs, 'rename', nReloads, r, window);
    const rssAfterReloads = readStatus(cold.daemon.pid).VmRSS;
    const coldStop = await stopMeasured(cold.daemon);
    const warm = await startAndMeasure(home, state, `daemon ${n} (existing state)`);
    console.log(`  start (existing state): ${warm.startMs} ms, RSS ${MB(warm.rssKB)} MB, peak ${MB(warm.hwmKB)} MB`);
    const warmStop = await stopMeasured(warm.daemon);

    const db = new Database(join(state, 'nightshift.db'), { readonly: true });
    const runs = db.prepare('SELECT count(*) AS n FROM runs').get().n;
    db.close();
    const rs = (list) => {
      const ok = list.filter((x) => x.ms !== null);
      const s = stats(ok.map((x) => x.ms));
      return { n: ok.length, failed: list.length - ok.length, median: s.p50, max: s.max, min: s.min, mean: s.mean, logTimeMedian: stats(ok.map((x) => x.logTimeMs)).p50 };
    };
    const res = {
      jobs: n,
      generateS: genS,
      validate: { runs: validations, wallMedianMs: stats(validations.map((v) => v.wallMs)).p50, peakMaxMB: MB(Math.max(...validations.map((v) => v.peakKB ?? 0))), ok: validations.every((v) => v.ok) },
      startFresh: { ms: cold.startMs, rssMB: MB(cold.rssKB), hwmMB: MB(cold.hwmKB), threads: cold.threads, jobs: cold.jobs, problems: cold.problems, stop: coldStop, rssAfterReloadsMB: MB(rssAfterReloads) },
      startExisting: { ms: warm.startMs, rssMB: MB(warm.rssKB), hwmMB: MB(warm.hwmKB), stop: warmStop },
      reloadWrite: { ...rs(inPlace), each: inPlace },
      reloadRename: { ...rs(atomic), each: atomic },
      runsDuringBench: runs,
    };
    console.log(`  reload, in-place write: median ${res.reloadWrite.median} ms, max ${res.reloadWrite.max} ms (${res.reloadWrite.failed} not seen)`);
    console.log(`  reload, atomic rename:  median ${res.reloadRename.median} ms, max ${res.reloadRename.max} ms (${res.reloadRename.failed} not seen)`);
    for (const x of [...inPlace, ...atomic].filter((x) => x.ms === null || x.msg !== 'job changed')) console.log(`    ${x.mode} ${x.job}: ${x.error ?? x.msg}`);
    if (runs) console.log(`  WARNING: ${runs} runs were recorded during the benchmark`);
    results.push(res);
  }

  console.log('');
  console.log(
    table(
      results.map((x) => ({
        jobs: x.jobs,
        'validate ms': x.validate.wallMedianMs,
        'validate peak MB': x.validate.peakMaxMB,
        'start ms (fresh)': x.startFresh.ms,
        'start ms (restart)': x.startExisting.ms,
        'RSS MB': x.startFresh.rssMB,
        'peak MB': Math.max(x.startFresh.hwmMB, x.startExisting.hwmMB),
        'stop ms': x.startFresh.stop.stopMs,
        'reload ms med/max (write)': `${x.reloadWrite.median}/${x.reloadWrite.max}`,
        'reload ms med/max (rename)': `${x.reloadRename.median}/${x.reloadRename.max}`,
        runs: x.runsDuringBench,
      })),
    ),
  );
  const big = results.find((x) => x.jobs === Math.max(...sizes));
  const figs = [];
  if (big) {
    const k = big.jobs >= 1000 ? `${big.jobs / 1000}k` : String(big.jobs);
    figs.push(figure(`scale[${k}]: validate wall`, big.validate.wallMedianMs, 'ms', 3000));
    figs.push(figure(`scale[${k}]: validate peak RSS`, big.validate.peakMaxMB, 'MB', 200));
    figs.push(figure(`scale[${k}]: daemon start (fresh state)`, big.startFresh.ms, 'ms', 3000));
    figs.push(figure(`scale[${k}]: daemon start (existing state)`, big.startExisting.ms, 'ms', 3000));
    figs.push(figure(`scale[${k}]: daemon RSS after start`, big.startFresh.rssMB, 'MB', 200));
    figs.push(figure(`scale[${k}]: daemon peak RSS`, Math.max(big.startFresh.hwmMB, big.startExisting.hwmMB), 'MB', 200));
    figs.push(figure(`scale[${k}]: reload one file (write) median`, big.reloadWrite.median, 'ms', 100));
    figs.push(figure(`scale[${k}]: reload one file (write) max`, big.reloadWrite.max, 'ms', 100));
    figs.push(figure(`scale[${k}]: reload one file (rename) max`, big.reloadRename.max, 'ms', 100));
  }
  console.log('');
  printFigures(figs);
  writeResult('scale', { bench: 'scale', command: `node bench/scale.mjs ${process.argv.slice(2).join(' ')}`.trim(), machine, params: { sizes, reloads: nReloads, validations: nValidate }, results, figures: figs });
  if (!jsonMode()) writeScaleCsv(machine, results);
});

/** bench/results/scale.csv for bench/chart.mjs: one row per home size; log axes (10 ms next to 10 s). */
function writeScaleCsv(machine, results) {
  const path = join(RESULTS_DIR, 'scale.csv');
  writeCsv(
    path,
    {
      title: 'Scale: load time, memory and reload of one file for 100 / 1,000 / 10,000 jobs',
      subtitle: `${machine.nproc} CPU, ${Math.round(machine.memTotalMB / 102.4) / 10} GB, ${machine.date.slice(0, 16).replace('T', ' ')} UTC, load ${machine.loadavg[0]} at start`,
      scale: 'log',
      notes: [`median of ${nValidate} validations and of ${nReloads} reloads per mode; start = spawn to "nightshift started"`],
    },
    ['jobs', 'validate [ms]', 'start, fresh state [ms]', 'start, existing state [ms]', 'reload one file, write [ms]', 'reload one file, rename [ms]', 'daemon RSS [MB]', 'daemon peak RSS [MB]', 'validate peak RSS [MB]'],
    results.map((x) => [
      `${x.jobs.toLocaleString('en-US')} jobs`,
      x.validate.wallMedianMs,
      x.startFresh.ms,
      x.startExisting.ms,
      x.reloadWrite.median,
      x.reloadRename.median,
      x.startFresh.rssMB,
      Math.max(x.startFresh.hwmMB, x.startExisting.hwmMB),
      x.validate.peakMaxMB,
    ]),
  );
  console.log(`CSV written to ${path} (node bench/chart.mjs draws it)`);
}
