#!/usr/bin/env node
// The dashboard's pages with a year of history: 100 jobs and 1,000,000 finished runs spread over
// 365 days, written straight into a real state database (one transaction, through the build's own
// Store so the schema is the build's migrations). The real daemon serves the dashboard on a free
// loopback port; the bench logs in as a person does (`nightshift login`, then the form's POST,
// keeping the cookie) and requests `/` and `/jobs/NAME` N times each, one request at a time.
//
// What is measured: the time from sending a request to having read the whole answer, in this
// client, over loopback with a kept-alive connection — the server's time plus a loopback round
// trip (well under a millisecond here). Target: p95 ≤ 50 ms for each page.
//
// With --before DIST the same database (a copy of it) is served by that build too, and both are
// printed side by side: before first, then after (this checkout's dist/ or --dist).
//
//   npm run build && node bench/pages.mjs [--before /tmp/before/dist] [--runs 1000000] [--jobs 100] [--requests 200]
//
// The policy keeps every run (retention: runs 400d, runsPerJob 20000): the default (90 days) would
// start pruning a minute after the start, which is another bench (retention.mjs).
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import {
  clockTicks,
  distDir,
  figure,
  flags,
  isMsg,
  machineInfo,
  printMachine,
  readStat,
  rng,
  round,
  runCli,
  runMain,
  startDaemon,
  stats,
  table,
  tempDir,
  writeResult,
  freePort,
} from './lib.mjs';

const values = flags({
  before: { type: 'string' },
  runs: { type: 'string' },
  jobs: { type: 'string' },
  requests: { type: 'string' },
});
const nRuns = Number(values.runs ?? (values.quick ? 100_000 : 1_000_000));
const nJobs = Number(values.jobs ?? 100);
const nRequests = Number(values.requests ?? (values.quick ? 50 : 200));
const TARGET_P95_MS = 50;
const DAY = 86_400_000;

const jobName = (i) => `job-${String(i).padStart(3, '0')}`;

/** The home: nJobs jobs whose schedule cannot fire during the bench (03:00 on 1 January). */
function writeHomeFiles(home, port) {
  mkdirSync(join(home, 'jobs'), { recursive: true });
  mkdirSync(join(home, 'rules'), { recursive: true });
  mkdirSync(join(home, 'protected'), { recursive: true });
  for (let i = 0; i < nJobs; i++) {
    writeFileSync(
      join(home, 'jobs', `${jobName(i)}.yaml`),
      `description: bench job ${i}\nschedule: "0 3 1 1 *"\ntimeout: ${i % 2 ? '5m' : '2m'}\ncommand: ["true"]\n`,
    );
  }
  writeFileSync(
    join(home, 'protected', 'policy.yaml'),
    `timezone: Europe/Zurich\ndashboard: { listen: "127.0.0.1:${port}" }\nretention: { runs: 400d, runsPerJob: 20000 }\n`,
  );
}

/** nRuns finished runs over the year before `now`, round-robin over the jobs, in one transaction. */
async function writeRuns(dist, dbPath, now) {
  const { Store } = await import(join(dist, 'store/store.js'));
  const store = Store.open(dbPath);
  const rand = rng(11);
  const insert = store.db.prepare(
    `INSERT INTO runs (job, trigger, scheduled_for, created_at, started_at, ended_at, outcome, exit_code, duration_ms, output_tail, output_bytes, reason, attempt)
     VALUES (?, 'schedule', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
  );
  const perJob = Math.ceil(nRuns / nJobs);
  const step = Math.floor((365 * DAY) / perJob);
  const t0 = performance.now();
  store.batch(() => {
    let n = 0;
    for (let k = 0; k < perJob && n < nRuns; k++) {
      for (let i = 0; i < nJobs && n < nRuns; i++, n++) {
        const at = now - 365 * DAY + k * step + i * 1000;
        const base = 2000 + (i % 10) * 4000;
        const dur = Math.round(base * (0.7 + rand() * 0.6));
        const x = rand();
        const outcome = x < 0.95 ? 'ok' : x < 0.97 ? 'failed' : x < 0.985 ? 'wrong' : 'timeout';
        const code = outcome === 'ok' || outcome === 'wrong' ? 0 : outcome === 'failed' ? 1 : null;
        const reason = outcome === 'ok' ? null : outcome === 'failed' ? 'exited with code 1' : outcome === 'wrong' ? 'expect failed: output had no "rows"' : 'passed its timeout';
        const tail = `started\nprocessed ${Math.round(rand() * 5000)} rows\n${outcome === 'ok' ? 'done' : 'error: something broke'}\n`;
        insert.run(jobName(i), at, at, at, at + dur, outcome, code, dur, tail, tail.length, reason);
      }
    }
  });
  const count = store.db.prepare('SELECT count(*) FROM runs').pluck().get();
  store.close();
  return { count, ms: performance.now() - t0 };
}

async function measure(label, dist, stateSrc, home, port) {
  const state = tempDir(`pages-state-${label}`);
  copyFileSync(stateSrc, join(state, 'nightshift.db'));
  const v = { ...values, dist };
  const d = startDaemon(v, { home, state, label: `daemon (${label})` });
  await d.waitFor(isMsg('dashboard listening'), { timeoutMs: 120_000, what: 'dashboard listening' });
  const base = `http://127.0.0.1:${port}`;
  const login = await runCli(v, ['login', '--json'], { home, state });
  if (login.code !== 0) throw new Error(`nightshift login failed: ${login.stderr}`);
  const link = JSON.parse(login.stdout).url;
  const post = await fetch(link, {
    method: 'POST',
    body: 'label=bench',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
  });
  const setCookie = post.headers.get('set-cookie');
  if (post.status !== 303 || !setCookie) throw new Error(`login POST answered ${post.status} without a cookie`);
  const cookie = setCookie.split(';')[0];
  const get = async (path) => {
    const t = performance.now();
    const res = await fetch(`${base}${path}`, { headers: { cookie } });
    const body = await res.text();
    const ms = performance.now() - t;
    if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${body.slice(0, 300)}`);
    return { ms, bytes: body.length, body };
  };
  // Warm up (statement cache, JIT, page cache), then measure each page in its own series.
  for (let i = 0; i < 5; i++) {
    await get('/');
    await get(`/jobs/${jobName(i)}`);
  }
  // One page after the other, so that the daemon's CPU time (utime + stime from /proc) can be
  // given per request: a figure the machine's load changes far less than the wall time.
  const series = async (path) => {
    const ms = [];
    let bytes = 0;
    const cpu0 = readStat(d.pid);
    for (let i = 0; i < nRequests; i++) {
      const r = await get(path(i));
      ms.push(r.ms);
      bytes = r.bytes;
    }
    const cpu1 = readStat(d.pid);
    const cpuMs = ((cpu1.utime + cpu1.stime - cpu0.utime - cpu0.stime) * 1000) / clockTicks() / nRequests;
    return { ...stats(ms), cpuMs: round(cpuMs, 2), bytes };
  };
  const overview = await series(() => '/');
  const job = await series((i) => `/jobs/${jobName(i % nJobs)}`);
  await d.stop();
  return { overview, job, sizes: { overview: overview.bytes, job: job.bytes } };
}

await runMain(values, async () => {
  const m = machineInfo(values);
  printMachine(m);
  const after = distDir(values);
  const before = values.before ? resolve(values.before) : null;
  console.log(
    `== dashboard pages: ${nJobs} jobs, ${nRuns.toLocaleString('en')} runs over 365 days; ${nRequests} requests of / and of /jobs/NAME each`,
  );
  const home = tempDir('pages-home');
  const port = await freePort();
  writeHomeFiles(home, port);
  const seed = tempDir('pages-seed');
  const dbPath = join(seed, 'nightshift.db');
  // The schema of the older build when there is one: the newer one migrates it at its start, as an upgrade does.
  const w = await writeRuns(before ?? after, dbPath, Date.now() - 60_000);
  console.log(`wrote ${w.count.toLocaleString('en')} runs in ${round(w.ms / 1000, 1)} s`);

  const results = {};
  for (const [label, dist] of [...(before ? [['before', before]] : []), ['after', after]]) {
    console.log(`-- ${label}: ${dist}`);
    results[label] = await measure(label, dist, dbPath, home, port);
    const r = results[label];
    console.log(
      `   /          p50 ${r.overview.p50} ms  p95 ${r.overview.p95} ms  max ${r.overview.max} ms  CPU ${r.overview.cpuMs} ms/request  (${r.sizes.overview} bytes)\n` +
        `   /jobs/NAME p50 ${r.job.p50} ms  p95 ${r.job.p95} ms  max ${r.job.max} ms  CPU ${r.job.cpuMs} ms/request  (${r.sizes.job} bytes)`,
    );
  }
  const rows = [];
  for (const [page, key] of [
    ['/', 'overview'],
    ['/jobs/NAME', 'job'],
  ]) {
    for (const f of ['p50', 'p95', 'max', 'cpuMs']) {
      const row = { page, figure: f === 'cpuMs' ? 'daemon CPU ms/request' : `${f} ms` };
      if (before) row.before = results.before[key][f];
      row.after = results.after[key][f];
      row.target = f === 'p95' ? `≤ ${TARGET_P95_MS}` : '';
      rows.push(row);
    }
  }
  console.log(
    `\nclient-measured time per request on loopback (request sent → whole body read; kept-alive connection); the daemon's CPU time per request from /proc; load average now ${os.loadavg().map((x) => round(x, 1)).join(' ')}`,
  );
  console.log(table(rows));
  const a = results.after;
  const figures = [
    figure('overview p95 (client, loopback)', a.overview.p95, 'ms', TARGET_P95_MS),
    figure('job page p95 (client, loopback)', a.job.p95, 'ms', TARGET_P95_MS),
    figure('overview: daemon CPU per request', a.overview.cpuMs, 'ms'),
    figure('job page: daemon CPU per request', a.job.cpuMs, 'ms'),
  ];
  writeResult('pages', { machine: m, runs: nRuns, jobs: nJobs, requests: nRequests, results, figures });
});
