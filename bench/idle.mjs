#!/usr/bin/env node
// Idle cost: a daemon with 101 loaded jobs (none due) next to a bare idle node process, measured
// side by side over the same window — and beside it the same daemon with its dashboard on (a web
// server listening, no page open), so the dashboard's own cost is the difference of two daemons
// sampled at the same instants. Figures: RSS (end) and peak (VmHWM), CPU time used during the
// window only (utime+stime ticks from /proc/PID/stat; cross-checked with per-thread schedstat ns),
// and context switches during the window (main thread, and all threads).
//
//   node bench/idle.mjs [--seconds 60] [--settle 2] [--jobs 101] [--quick] [--keep] [--dist DIR]
//                       [--node-args="--trace-gc ..."]   (extra node flags for the daemon, to investigate)
import { request } from 'node:http';
import { appendFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  Child,
  diffSamples,
  earliestNextRun,
  figure,
  flags,
  isMsg,
  machineInfo,
  MB,
  printFigures,
  printMachine,
  readStatus,
  round,
  runMain,
  sampleProc,
  sleep,
  startDaemon,
  table,
  tempDir,
  writeHome,
  writeResult,
  deployedNodeFlags,
  freePort,
} from './lib.mjs';

const values = flags({ seconds: { type: 'string' }, settle: { type: 'string' }, jobs: { type: 'string' }, 'node-args': { type: 'string' } });
const seconds = Number(values.seconds ?? (values.quick ? 15 : 60));
const settleMs = Number(values.settle ?? 2) * 1000;
const nJobs = Number(values.jobs ?? 101);
// For investigations only, e.g. --node-args="--trace-gc" or --node-args="--max-semi-space-size=1"
const nodeArgs = values['node-args'] !== undefined ? values['node-args'].split(' ').filter(Boolean) : deployedNodeFlags();

function getJson(socketPath, path) {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

await runMain(values, async () => {
  const machine = machineInfo(values);
  console.log(`== idle: ${nJobs} jobs loaded, idle window ${seconds} s (settle ${settleMs / 1000} s after "nightshift started")`);
  printMachine(machine);

  const home = tempDir('idle');
  const state = join(tempDir('idle-state'), 'state');
  // No schedule may fire from a little before the start until well after the window.
  const now = Date.now();
  const window = { from: now - 2 * 60_000, to: now + seconds * 1000 + settleMs + 10 * 60_000 };
  const jobs = writeHome(home, nJobs, window, { seed: 101, everyShare: 0.1 });
  const kinds = {
    cron: jobs.filter((j) => j.spec.schedule).length,
    every: jobs.filter((j) => j.spec.every).length,
    external: jobs.filter((j) => !j.spec.command && !j.spec.shell).length,
    zones: [...new Set(jobs.filter((j) => j.spec.schedule).map((j) => j.tz))],
  };
  console.log(`home: ${home} — ${jobs.length} jobs: ${kinds.cron} cron, ${kinds.every} every, ${kinds.external} external; zones ${kinds.zones.join(', ')}`);
  const check = await earliestNextRun(values, home, now);
  if (check.earliest) {
    console.log(`scheduler cross-check: earliest next run ${new Date(check.earliest.at).toISOString()} (${check.earliest.job}), ${round((check.earliest.at - now) / 60_000, 1)} min from now`);
    if (check.earliest.at <= window.to) throw new Error('a generated schedule would fire during the measurement; this is a bug in the benchmark');
  } else if (check.error) console.log(`scheduler cross-check skipped (${check.error})`);

  // The same home twice: the dashboard off in one, on (a free loopback port) in the other.
  const homeWeb = tempDir('idle-web');
  cpSync(home, homeWeb, { recursive: true });
  const stateWeb = join(tempDir('idle-web-state'), 'state');
  const port = await freePort();
  appendFileSync(join(home, 'protected', 'policy.yaml'), 'dashboard: { listen: "off" }\n');
  appendFileSync(join(homeWeb, 'protected', 'policy.yaml'), `dashboard: { listen: "127.0.0.1:${port}" }\n`);

  // The three processes start together and are sampled at the same instants.
  const bare = new Child('bare node', process.execPath, ['-e', 'setInterval(()=>{}, 1<<30)']);
  const daemon = startDaemon(values, { home, state, nodeArgs });
  const web = startDaemon(values, { home: homeWeb, state: stateWeb, nodeArgs, label: 'daemon+dashboard' });
  console.log(`daemon node flags: ${nodeArgs.join(' ') || '(none)'}${values['node-args'] === undefined ? ' (as in deploy/nightshift.service)' : ' (--node-args)'}`);
  const started = await daemon.waitFor(isMsg('nightshift started'), { timeoutMs: 60_000, what: '"nightshift started"' });
  await web.waitFor(isMsg('nightshift started'), { timeoutMs: 60_000, what: '"nightshift started" (dashboard on)' });
  if (!web.lines.some((l) => l.obj?.msg === 'dashboard listening')) throw new Error(`the dashboard did not listen on 127.0.0.1:${port}`);
  if (daemon.lines.some((l) => l.obj?.msg === 'dashboard listening')) throw new Error('the daemon with the dashboard off listens');
  const startMs = round(started.t - daemon.spawnedAt, 1);
  console.log(`daemon pid ${daemon.pid} started in ${startMs} ms: ${started.obj.jobs} jobs, ${started.obj.problems} problems; daemon+dashboard pid ${web.pid} (127.0.0.1:${port}); bare node pid ${bare.pid}`);
  if (started.obj.problems) console.log(`WARNING: the daemon reports ${started.obj.problems} spec problems: ${daemon.lines.filter((l) => l.obj?.level === 'error').map((l) => l.obj.msg).slice(0, 5).join(' | ')}`);
  await sleep(settleMs);

  const from = daemon.mark();
  const a = { daemon: sampleProc(daemon.pid), web: sampleProc(web.pid), bare: sampleProc(bare.pid) };
  const rssSeries = [];
  const step = Math.min(5000, seconds * 1000);
  for (let left = seconds * 1000; left > 0; left -= step) {
    await sleep(Math.min(step, left));
    rssSeries.push({
      s: round((performance.now() - a.daemon.at) / 1000, 0),
      daemonKB: readStatus(daemon.pid).VmRSS,
      webKB: readStatus(web.pid).VmRSS,
      bareKB: readStatus(bare.pid).VmRSS,
      daemonCpuMs: round(diffSamples(a.daemon, sampleProc(daemon.pid)).cpuNsMs, 1),
    });
  }
  const b = { daemon: sampleProc(daemon.pid), web: sampleProc(web.pid), bare: sampleProc(bare.pid) };
  const linesInWindow = daemon.lines.slice(from).map((l) => l.raw);

  // After the window: nothing ran, and the daemon's own next deadline is after the window.
  const live = await getJson(join(state, 'nightshift.sock'), '/status').catch((err) => ({ error: String(err) }));
  const nextRuns = (live.jobs ?? []).map((j) => j.nextRun).filter((x) => x !== null);
  const earliestDaemon = nextRuns.length ? Math.min(...nextRuns) : null;
  await daemon.stop();
  await web.stop();
  await bare.stop();
  const db = new Database(join(state, 'nightshift.db'), { readonly: true });
  const runs = db.prepare('SELECT count(*) AS n FROM runs').get().n;
  db.close();

  const d = diffSamples(a.daemon, b.daemon);
  const w = diffSamples(a.web, b.web);
  const n = diffSamples(a.bare, b.bare);
  const perMinute = (ms) => round((ms * 60_000) / d.windowMs, 1);
  const dash = [
    ['RSS at end (MB)', MB(d.rssEndKB), MB(w.rssEndKB), round(MB(w.rssEndKB) - MB(d.rssEndKB), 1)],
    ['peak RSS VmHWM (MB)', MB(d.hwmKB), MB(w.hwmKB), round(MB(w.hwmKB) - MB(d.hwmKB), 1)],
    ['CPU utime+stime a minute (ms)', perMinute(d.cpuMs), perMinute(w.cpuMs), round(perMinute(w.cpuMs) - perMinute(d.cpuMs), 1)],
    ['CPU all threads a minute, schedstat (ms)', perMinute(d.cpuNsMs), perMinute(w.cpuNsMs), round(perMinute(w.cpuNsMs) - perMinute(d.cpuNsMs), 2)],
    ['ctx switches, all threads', d.ctxAll, w.ctxAll, w.ctxAll - d.ctxAll],
    ['threads', d.threads, w.threads, w.threads - d.threads],
  ].map(([metric, off, on, diff]) => ({ metric, 'dashboard off': off, 'dashboard on': on, 'on - off': diff }));
  const rows = [
    ['RSS at end (MB)', MB(d.rssEndKB), MB(n.rssEndKB), round(MB(d.rssEndKB) - MB(n.rssEndKB), 1)],
    ['  of which anon (MB)', MB(d.rssAnonKB), MB(n.rssAnonKB), round(MB(d.rssAnonKB) - MB(n.rssAnonKB), 1)],
    ['  of which file (MB)', MB(d.rssFileKB), MB(n.rssFileKB), round(MB(d.rssFileKB) - MB(n.rssFileKB), 1)],
    ['peak RSS VmHWM (MB)', MB(d.hwmKB), MB(n.hwmKB), round(MB(d.hwmKB) - MB(n.hwmKB), 1)],
    [`CPU utime+stime in window (ms)`, d.cpuMs, n.cpuMs, round(d.cpuMs - n.cpuMs, 1)],
    ['  utime / stime (ms)', `${d.utimeMs} / ${d.stimeMs}`, `${n.utimeMs} / ${n.stimeMs}`, ''],
    ['CPU all threads, schedstat (ms)', d.cpuNsMs, n.cpuNsMs, round(d.cpuNsMs - n.cpuNsMs, 3)],
    ['ctx switches, main thread', d.ctxMain, n.ctxMain, d.ctxMain - n.ctxMain],
    ['  voluntary / involuntary', `${d.ctxMainVoluntary} / ${d.ctxMainInvoluntary}`, `${n.ctxMainVoluntary} / ${n.ctxMainInvoluntary}`, ''],
    ['ctx switches, all threads', d.ctxAll, n.ctxAll, d.ctxAll - n.ctxAll],
    ['minor page faults in window', d.minflt, n.minflt, d.minflt - n.minflt],
    ['threads', d.threads, n.threads, d.threads - n.threads],
  ].map(([metric, daemonV, bareV, diff]) => ({ metric, daemon: daemonV, 'bare node': bareV, 'daemon - bare': diff }));
  console.log(`\nwindow: ${round(d.windowMs / 1000, 2)} s; runs recorded: ${runs}; log lines during the window: ${linesInWindow.length}; daemon's earliest next run: ${earliestDaemon ? new Date(earliestDaemon).toISOString() : 'n/a'}`);
  if (runs > 0) console.log('WARNING: jobs ran during the measurement — the idle figures are not idle');
  console.log(table(rows));
  console.log(`\nthe dashboard's cost, side by side (same jobs, same instants; no page open):\n${table(dash)}`);
  const busy = d.perThread.filter((t) => t.cs || t.cpuMs);
  if (busy.length) console.log(`\ndaemon threads that woke up in the window:\n${table(busy.map((t) => ({ tid: t.tid, thread: t.comm, 'cpu ms': t.cpuMs, 'ctx switches': t.cs })))}`);
  console.log(`\nRSS over the window (MB, daemon/daemon+dashboard/bare): ${rssSeries.map((s) => `${s.s}s ${MB(s.daemonKB)}/${MB(s.webKB)}/${MB(s.bareKB)}`).join("  ")}`);
  console.log(`daemon CPU since the window began (ms, schedstat): ${rssSeries.map((s) => `${s.s}s ${s.daemonCpuMs}`).join('  ')}`);
  const other = linesInWindow.filter((l) => !l.startsWith('{'));
  if (other.length) console.log(`daemon non-JSON output in the window (node flags):\n  ${other.slice(0, 40).join('\n  ')}`);

  const figs = [
    figure('idle: daemon RSS - bare node RSS', round(MB(d.rssEndKB) - MB(n.rssEndKB), 1), 'MB', 30),
    figure('idle: daemon RSS', MB(d.rssEndKB), 'MB'),
    figure('idle: daemon peak RSS (VmHWM)', MB(d.hwmKB), 'MB'),
    figure(`idle: daemon CPU over ${seconds} s`, d.cpuMs, 'ms', round((50 * seconds) / 60, 1)),
    figure(`idle: daemon CPU over ${seconds} s (schedstat)`, d.cpuNsMs, 'ms'),
    figure(`idle: daemon ctx switches over ${seconds} s (all threads)`, d.ctxAll, ''),
    figure('idle: runs during the window', runs, '', 0),
    figure('idle: dashboard on - off, RSS', round(MB(w.rssEndKB) - MB(d.rssEndKB), 1), 'MB', 5),
    figure('idle: dashboard on - off, CPU a minute', round(perMinute(w.cpuNsMs) - perMinute(d.cpuNsMs), 2), 'ms', 5),
  ];
  console.log('');
  printFigures(figs);
  writeResult('idle', {
    bench: 'idle',
    command: `node bench/idle.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    machine,
    params: { jobs: nJobs, seconds, settleMs, kinds, nodeArgs },
    startMs,
    window: { ms: d.windowMs, runs, logLines: linesInWindow, earliestNextRun: earliestDaemon },
    daemon: { ...d, startRssKB: a.daemon.rssKB },
    daemonWithDashboard: { ...w, startRssKB: a.web.rssKB, port },
    bare: n,
    rssSeries,
    figures: figs,
  });
});

