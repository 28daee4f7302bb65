#!/usr/bin/env node
// Live pages: 20 dashboard pages open (server-sent event streams, each fetching its page again
// when told, at most once a second, as /live.js does) on a daemon whose job runs every second —
// beside the same daemon with no page open, sampled at the same instants. Figures: how long after
// a run's row is written its event reaches each page (the row's ended_at to the event's arrival;
// same machine, same clock), and the daemon's RSS over the window (flat: the spread after the first
// minute), with pages and without.
//
//   node bench/live.mjs [--minutes 10] [--pages 20] [--keep] [--dist DIR]
import { request } from 'node:http';
import { appendFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  figure,
  flags,
  isMsg,
  machineInfo,
  MB,
  percentile,
  printFigures,
  printMachine,
  readStatus,
  round,
  runCli,
  runMain,
  sleep,
  startDaemon,
  table,
  tempDir,
  writeResult,
  freePort,
} from './lib.mjs';

const values = flags({ minutes: { type: 'string' }, pages: { type: 'string' } });
const minutes = Number(values.minutes ?? (values.quick ? 2 : 10));
const nPages = Number(values.pages ?? 20);
const WARMUP_MS = 60_000;

function http(port, method, path, headers = {}, body) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Logs in as a person would: the CLI's link, the form with a label; returns the cookie. */
async function logIn(home, state, port) {
  const r = await runCli(values, ['login', '--json'], { home, state });
  if (r.code !== 0) throw new Error(`nightshift login failed: ${r.stderr}`);
  const path = new URL(JSON.parse(r.stdout).url).pathname;
  const res = await http(port, 'POST', path, { 'content-type': 'application/x-www-form-urlencoded', origin: `http://127.0.0.1:${port}` }, 'label=bench');
  const cookie = String(res.headers['set-cookie'] ?? '').split(';')[0];
  if (res.status !== 303 || !cookie) throw new Error(`login answered ${res.status}`);
  return cookie;
}

/** One open page: its event stream, and a fetch of the page when an event concerns it (≤ 1/s). */
function openPage(port, cookie, path, job) {
  const page = { arrivals: [], fetches: 0, fetchMs: [], errors: 0, res: null };
  let last = 0;
  let timer = null;
  let busy = false;
  const refetch = async () => {
    if (busy) return;
    busy = true;
    last = Date.now();
    const t = performance.now();
    try {
      const r = await http(port, 'GET', path, { cookie, 'x-nightshift-live': '1' });
      if (r.status !== 200) page.errors++;
      page.fetches++;
      page.fetchMs.push(performance.now() - t);
    } catch {
      page.errors++;
    } finally {
      busy = false;
    }
  };
  const req = request({ host: '127.0.0.1', port, path: '/events', headers: { cookie, accept: 'text/event-stream' } }, (res) => {
    page.res = res;
    if (res.statusCode !== 200) throw new Error(`/events answered ${res.statusCode}`);
    res.setEncoding('utf8');
    let buf = '';
    res.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const msg = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = msg.split('\n').find((l) => l.startsWith('data: '));
        if (!msg.includes('event: change') || !data) continue;
        const at = Date.now();
        const list = JSON.parse(data.slice(6));
        if (list.some((c) => c.what === 'run' && c.job === 'tick')) page.arrivals.push(at);
        if (job === null || list.some((c) => c.job === null || c.job === job)) {
          timer ??= setTimeout(() => {
            timer = null;
            void refetch();
          }, Math.max(0, last + 1000 - Date.now()));
        }
      }
    });
  });
  req.on('error', () => page.errors++);
  req.end();
  page.close = () => {
    clearTimeout(timer);
    req.destroy();
  };
  return page;
}

await runMain(values, async () => {
  console.log(`== live: ${nPages} pages open for ${minutes} min on a daemon with a job every second, beside one with none open`);
  printMachine(machineInfo(values));
  const home = tempDir('live');
  const { writeFileSync, mkdirSync } = await import('node:fs');
  for (const d of ['jobs', 'rules', 'protected']) mkdirSync(join(home, d), { recursive: true });
  writeFileSync(join(home, 'jobs', 'tick.yaml'), 'command: ["true"]\nevery: 1s\n');
  // Some other jobs, so the overview is not empty (they do not run in the window).
  for (let i = 0; i < 20; i++) writeFileSync(join(home, 'jobs', `idle-${i}.yaml`), 'command: ["true"]\nschedule: "0 3 1 1 *"\n');
  writeFileSync(join(home, 'protected', 'policy.yaml'), 'timezone: UTC\n');
  const homeB = tempDir('live-none');
  cpSync(home, homeB, { recursive: true });
  const [port, portB] = [await freePort(), await freePort()];
  appendFileSync(join(home, 'protected', 'policy.yaml'), `dashboard: { listen: "127.0.0.1:${port}" }\n`);
  appendFileSync(join(homeB, 'protected', 'policy.yaml'), `dashboard: { listen: "127.0.0.1:${portB}" }\n`);
  const state = join(tempDir('live-state'), 'state');
  const stateB = join(tempDir('live-none-state'), 'state');
  const daemon = startDaemon(values, { home, state, label: 'daemon, pages open' });
  const none = startDaemon(values, { home: homeB, state: stateB, label: 'daemon, no page' });
  await daemon.waitFor(isMsg('dashboard listening'), { timeoutMs: 60_000, what: 'dashboard listening' });
  await none.waitFor(isMsg('dashboard listening'), { timeoutMs: 60_000, what: 'dashboard listening (no page)' });
  const pages = [];
  for (let i = 0; i < nPages; i++) {
    // Each page its own device (session); half follow everything (the overview), half the job's own page.
    const cookie = await logIn(home, state, port);
    pages.push(i % 2 === 0 ? openPage(port, cookie, '/', null) : openPage(port, cookie, '/jobs/tick', 'tick'));
  }
  const t0 = Date.now();
  const rss = [];
  const end = t0 + minutes * 60_000;
  while (Date.now() < end) {
    await sleep(Math.min(10_000, end - Date.now()));
    rss.push({ s: Math.round((Date.now() - t0) / 1000), pagesKB: readStatus(daemon.pid).VmRSS, noneKB: readStatus(none.pid).VmRSS });
  }
  for (const p of pages) p.close();
  await daemon.stop();
  await none.stop();

  // Each run that ended after the warm-up (and a few seconds before the end): when did each page hear of it?
  const db = new Database(join(state, 'nightshift.db'), { readonly: true });
  const ends = db
    .prepare("SELECT ended_at FROM runs WHERE job = 'tick' AND ended_at BETWEEN ? AND ? ORDER BY ended_at")
    .all(t0 + WARMUP_MS, end - 5000)
    .map((r) => r.ended_at);
  const runsAll = db.prepare("SELECT count(*) AS n FROM runs WHERE job = 'tick'").get().n;
  db.close();
  const lat = [];
  let missed = 0;
  for (const p of pages) {
    let j = 0;
    for (const e of ends) {
      while (j < p.arrivals.length && p.arrivals[j] < e) j++;
      if (j === p.arrivals.length) {
        missed++;
        continue;
      }
      lat.push(p.arrivals[j] - e);
    }
  }
  lat.sort((a, b) => a - b);
  const after = rss.filter((r) => r.s * 1000 >= WARMUP_MS);
  const spread = (k) => (after.length ? MB(Math.max(...after.map((r) => r[k])) - Math.min(...after.map((r) => r[k]))) : null);
  const drift = (k) => (after.length ? MB(after.at(-1)[k] - after[0][k]) : null);
  const fetchMs = pages.flatMap((p) => p.fetchMs).sort((a, b) => a - b);
  // A job every second makes the heap breathe by several MB either way; what "flat" asks is that
  // nothing grows: the median of each minute, the second minute against the last.
  const minuteMedian = (k, m) => {
    const xs = rss.filter((r) => r.s > m * 60 && r.s <= (m + 1) * 60).map((r) => r[k]).sort((a, b) => a - b);
    return xs.length ? xs[Math.floor(xs.length / 2)] : null;
  };
  const lastMinute = Math.ceil(rss.at(-1).s / 60) - 1;
  const growth = (k) => (lastMinute >= 1 ? MB(minuteMedian(k, lastMinute) - minuteMedian(k, 1)) : null);

  console.log(`\nruns of the job: ${runsAll}; measured (after the first minute): ${ends.length} × ${nPages} pages; page fetches ${fetchMs.length}, errors ${pages.reduce((n, p) => n + p.errors, 0)}`);
  console.log(table(rss.filter((_, i) => i % 3 === 0 || i === rss.length - 1).map((r) => ({ s: r.s, 'RSS, 20 pages open (MB)': MB(r.pagesKB), 'RSS, no page (MB)': MB(r.noneKB) })), ['s', 'RSS, 20 pages open (MB)', 'RSS, no page (MB)']));
  const figs = [
    figure('event after the row is written, p50', round(percentile(lat, 50), 1), 'ms'),
    figure('event after the row is written, p95', round(percentile(lat, 95), 1), 'ms', 200),
    figure('event after the row is written, max', round(lat.at(-1) ?? NaN, 1), 'ms'),
    figure('run ends no page heard of', missed, 'count', 0),
    figure('page fetch (server + loopback), p95', round(percentile(fetchMs, 95), 1), 'ms'),
    figure('RSS spread after the first minute, pages open', spread('pagesKB'), 'MB'),
    figure('RSS drift first→last after the first minute, pages open', drift('pagesKB'), 'MB'),
    figure('RSS spread after the first minute, no page', spread('noneKB'), 'MB'),
    // ±3 MB either way: a shrinking heap is not flat either.
    { ...figure('RSS growth, median of the last minute − of the second, pages open', growth('pagesKB'), 'MB', 3), within: Math.abs(growth('pagesKB')) <= 3 },
    figure('RSS growth, median of the last minute − of the second, no page', growth('noneKB'), 'MB'),
    figure('RSS end, pages open − no page', MB(rss.at(-1).pagesKB - rss.at(-1).noneKB), 'MB'),
  ];
  printFigures(figs);
  writeResult('live', { minutes, pages: nPages, figures: figs, rss, latencyMs: { n: lat.length, p50: percentile(lat, 50), p95: percentile(lat, 95) } });
});
