#!/usr/bin/env node
// Throughput (issue 5, item 4): runs per second that nightshift records — the run's row committed
// in SQLite and its log file written — with 1, 10 and 100 runs in flight, next to bare execa
// spawning the same command with the same concurrency in a plain node process (the ceiling).
//
// How the daemon is driven at full speed: k client loops in this process POST /run/JOB to the
// daemon's control socket (what `nightshift run JOB` does, without a CLI process per run); the
// daemon answers when the run has finished and its row is committed, and the loop sends the next
// request at once. So the daemon is measured — HTTP on a unix socket, insert row, spawn (detached
// group), capped log file, finish row, log prune check — not the CLI's start-up. The jobs are
// `command: ["true"]` with no schedule (manual only), `concurrency: allow`. Runs are spread over
// enough jobs that no job passes 100 runs (nightshift keeps the last 100 log files per job and
// deletes older ones), so afterwards every row must have its own log file on disk.
//
// Per level: a fresh daemon and state; a warm-up of 20 runs (not timed, but counted in the checks);
// N timed runs; runs/s = N / wall time from the first request to the last reply. The daemon's CPU
// time over the window comes from /proc (utime+stime of the daemon, and of its reaped children).
// After the daemon stops: rows in SQLite (all ok, each with a log_path) = runs sent = .log files in
// state/logs/. The ceiling: `node bench/throughput.mjs --baseline K N` runs K loops of
// `await execa('true', { reject: false })` in a separate node process (same warm-up).
//
//   node bench/throughput.mjs [--quick] [--levels 1,10,100] [--runs N] [--keep] [--dist DIR]
//                             [--skip-ceiling] (no bare execa runs)   [--json] (see lib.mjs's flags)
//   full: 2,000 runs per level; --quick: 300.
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { drawChart, RESULTS_DIR, writeCsv } from './chart.mjs';
import { clockTicks, figure, flags, isMsg, jsonMode, machineInfo, printFigures, printMachine, readStat, REPO, round, runMain, startDaemon, stats, table, tempDir, writeResult } from './lib.mjs';

const SELF = fileURLToPath(import.meta.url);
const WARMUP = 20;

// ---------------------------------------------------------------- the ceiling (own process)

if (process.argv[2] === '--baseline') {
  const k = Number(process.argv[3]);
  const n = Number(process.argv[4]);
  const { execa } = await import(join(REPO, 'node_modules', 'execa', 'index.js'));
  const drive = async (count) => {
    let left = count;
    let failed = 0;
    await Promise.all(
      Array.from({ length: Math.min(k, count) }, async () => {
        while (left > 0) {
          left--;
          const r = await execa('true', { reject: false });
          if (r.exitCode !== 0) failed++;
        }
      }),
    );
    return failed;
  };
  await drive(WARMUP);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const failed = await drive(n);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(`${JSON.stringify({ k, n, wallMs, failed, cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
  process.exit(0);
}

// ---------------------------------------------------------------- nightshift

/** POST /run/NAME; resolves with the finished run row from the reply. */
function runOnce(socketPath, name) {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: `/run/${name}`, method: 'POST' }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function drive(sock, jobs, k, count, cursor) {
  let left = count;
  const outcomes = {};
  let errors = 0;
  await Promise.all(
    Array.from({ length: Math.min(k, count) }, async () => {
      while (left > 0) {
        left--;
        const job = jobs[cursor.i++ % jobs.length];
        try {
          const r = await runOnce(sock, job);
          const o = r.status === 200 ? r.body.run.outcome : `http ${r.status}`;
          outcomes[o] = (outcomes[o] ?? 0) + 1;
        } catch {
          errors++;
        }
      }
    }),
  );
  return { outcomes, errors };
}

function countLogFiles(logsDir) {
  let n = 0;
  if (!existsSync(logsDir)) return 0;
  for (const d of readdirSync(logsDir, { withFileTypes: true })) {
    if (!d.isDirectory()) continue;
    n += readdirSync(join(logsDir, d.name)).filter((f) => f.endsWith('.log')).length;
  }
  return n;
}

async function level(values, k, n) {
  const total = n + WARMUP;
  const nJobs = Math.max(k, Math.ceil(total / 90));
  const home = tempDir(`thr-${k}`);
  const state = join(home, 'state');
  for (const d of ['jobs', 'rules', 'protected']) mkdirSync(join(home, d), { recursive: true });
  writeFileSync(join(home, 'protected', 'policy.yaml'), 'timezone: UTC\n');
  const jobs = [];
  for (let i = 0; i < nJobs; i++) {
    const name = `t-${String(i).padStart(3, '0')}`;
    jobs.push(name);
    writeFileSync(join(home, 'jobs', `${name}.yaml`), 'command: ["true"]\nconcurrency: allow\ntimeout: 30s\n');
  }
  // Log level info, as deployed: two JSON lines per run go to the pipe (journald on a server).
  const daemon = startDaemon(values, { home, state, label: `daemon (k=${k})` });
  await daemon.waitFor(isMsg('nightshift started'), { timeoutMs: 60_000, what: 'start' });
  const sock = join(state, 'nightshift.sock');
  const cursor = { i: 0 };
  await drive(sock, jobs, k, WARMUP, cursor);
  const s0 = readStat(daemon.pid);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const res = await drive(sock, jobs, k, n, cursor);
  const wallMs = performance.now() - t0;
  const s1 = readStat(daemon.pid);
  const driverCpu = process.cpuUsage(cpu0);
  await daemon.stop();
  const tick = 1000 / clockTicks();

  const db = new Database(join(state, 'nightshift.db'), { readonly: true });
  const rows = db.prepare('SELECT count(*) AS n, sum(outcome = ?) AS ok, sum(log_path IS NOT NULL) AS withLog FROM runs').get('ok');
  const paths = db.prepare('SELECT log_path FROM runs WHERE log_path IS NOT NULL').all();
  db.close();
  const onDisk = paths.filter((p) => existsSync(p.log_path)).length;
  const logFiles = countLogFiles(join(state, 'logs'));
  const check = { sent: total, rows: rows.n, ok: rows.ok, rowsWithLog: rows.withLog, logPathsOnDisk: onDisk, logFiles };
  const match = rows.n === total && rows.ok === total && rows.withLog === total && onDisk === total && logFiles === total;
  return {
    k,
    runs: n,
    jobs: nJobs,
    wallMs: round(wallMs, 1),
    perSecond: round((n * 1000) / wallMs, 1),
    outcomes: res.outcomes,
    errors: res.errors,
    daemonCpuMs: round((s1.utime + s1.stime - s0.utime - s0.stime) * tick, 0),
    childrenCpuMs: round((s1.cutime + s1.cstime - s0.cutime - s0.cstime) * tick, 0),
    daemonCpuMsPerRun: round(((s1.utime + s1.stime - s0.utime - s0.stime) * tick) / n, 2),
    driverCpuMs: round((driverCpu.user + driverCpu.system) / 1000, 0),
    check,
    match,
  };
}

function baseline(k, n) {
  const out = execFileSync(process.execPath, [SELF, '--baseline', String(k), String(n)], { encoding: 'utf8', maxBuffer: 1 << 20, timeout: 600_000 });
  const r = JSON.parse(out.trim().split('\n').pop());
  return { k, runs: n, wallMs: round(r.wallMs, 1), perSecond: round((n * 1000) / r.wallMs, 1), failed: r.failed, cpuMs: round(r.cpuMs, 0), cpuMsPerRun: round(r.cpuMs / n, 2) };
}

const values = flags({ levels: { type: 'string' }, runs: { type: 'string' }, 'skip-ceiling': { type: 'boolean', default: false } });
const levels = (values.levels ?? '1,10,100').split(',').map(Number);
const runs = Number(values.runs ?? (values.quick ? 300 : 2000));

await runMain(values, async () => {
  const machine = machineInfo(values);
  console.log(`== throughput: ${runs} runs of \`true\` per level, ${levels.join(' / ')} in flight (+${WARMUP} warm-up runs each)`);
  printMachine(machine);
  const results = [];
  for (const k of levels) {
    const ns = await level(values, k, runs);
    const base = values['skip-ceiling'] ? { perSecond: null, wallMs: null, cpuMsPerRun: null } : baseline(k, runs);
    console.log(
      `  k=${k}: nightshift ${ns.perSecond} runs/s (${ns.wallMs} ms; daemon CPU ${ns.daemonCpuMsPerRun} ms/run, children ${ns.childrenCpuMs} ms; driver ${ns.driverCpuMs} ms)` +
        ` — bare execa ${base.perSecond} runs/s (${base.wallMs} ms, CPU ${base.cpuMsPerRun} ms/run) — rows/logs ${ns.match ? 'match' : `DO NOT MATCH ${JSON.stringify(ns.check)}`}`,
    );
    results.push({ k, nightshift: ns, execa: base, ratio: base.perSecond === null ? null : round(ns.perSecond / base.perSecond, 2) });
  }
  console.log('');
  console.log(
    table(
      results.map((r) => ({
        'in flight': r.k,
        'nightshift runs/s': r.nightshift.perSecond,
        'bare execa runs/s': r.execa.perSecond,
        'nightshift / execa': r.ratio,
        'daemon CPU ms/run': r.nightshift.daemonCpuMsPerRun,
        'execa CPU ms/run': r.execa.cpuMsPerRun,
        'rows = logs = sent': r.nightshift.match ? `yes (${r.nightshift.check.rows})` : `NO ${JSON.stringify(r.nightshift.check)}`,
        outcomes: JSON.stringify(r.nightshift.outcomes),
      })),
    ),
  );
  const figs = results.map((r) => figure(`throughput[${r.k}]: nightshift runs/s`, r.nightshift.perSecond, 'runs/s', undefined, 'higher'));
  figs.push(figure('throughput: runs without row or log file', results.reduce((a, r) => a + (r.nightshift.match ? 0 : 1), 0), 'levels', 0));
  printFigures(figs);

  if (jsonMode()) {
    writeResult('throughput', { bench: 'throughput', command: `node bench/throughput.mjs ${process.argv.slice(2).join(' ')}`.trim(), machine, params: { levels, runs, warmup: WARMUP }, results, figures: figs });
    return;
  }
  const csvPath = join(RESULTS_DIR, 'throughput.csv');
  writeCsv(
    csvPath,
    {
      title: 'Throughput: runs of `true` recorded per second (row + log file)',
      subtitle: `${machine.nproc} CPU, ${round(machine.memTotalMB / 1024, 1)} GB, ${machine.date.slice(0, 16).replace('T', ' ')} UTC, load ${machine.loadavg[0]} at start; ${runs} runs per level`,
      notes: [
        'nightshift: k loops POST /run/JOB to the control socket, next request when the run is recorded',
        'bare execa: k loops of await execa("true") in a plain node process (the ceiling)',
      ],
    },
    ['in flight', 'nightshift [runs/s]', 'bare execa [runs/s]'],
    results.map((r) => [`${r.k} concurrent`, r.nightshift.perSecond, r.execa.perSecond]),
  );
  console.log(`\nCSV written to ${csvPath}, chart to ${drawChart(csvPath)}`);
  writeResult('throughput', { bench: 'throughput', command: `node bench/throughput.mjs ${process.argv.slice(2).join(' ')}`.trim(), machine, params: { levels, runs, warmup: WARMUP }, results, figures: figs });
});
