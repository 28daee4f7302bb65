#!/usr/bin/env node
// Pings over HTTP under load: a real daemon on a temp home with 20 scheduled jobs (6-field cron,
// staggered so that one starts every second) and one external job, which is sent 1,000 pings a
// minute over HTTP (fetch, keep-alive, to /ping/KEY on the dashboard's port; one in ten a POST with
// a 2 KB body, one in fifty a /start before its success) for N minutes. Minutes with pings and
// minutes without alternate (off, on, off, on, ...), so both meet the same machine load; the
// scheduled jobs' start precision (started_at - scheduled_for, from the runs table) is reported
// for each side, with the pings recorded (heartbeats rows) against those sent and the daemon's
// RSS at start, after each minute and at the end.
//
//   node bench/pings.mjs [--minutes N (default 3, --quick 1)] [--rate PINGS_PER_MINUTE (1000)] [--jobs N (20)]
//                        [--keep] [--dist DIR] [--json]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  figure,
  flags,
  round,
  isMsg,
  machineInfo,
  MB,
  printFigures,
  printMachine,
  readStat,
  readStatus,
  clockTicks,
  runCli,
  runMain,
  sleep,
  startDaemon,
  stats,
  table,
  tempDir,
  toYaml,
  writeResult,
  freePort,
} from './lib.mjs';

const values = flags({ minutes: { type: 'string' }, rate: { type: 'string' }, jobs: { type: 'string' } });
const minutes = Number(values.minutes ?? (values.quick ? 1 : 3));
const rate = Number(values.rate ?? 1000);
const nJobs = Number(values.jobs ?? 20);
const MINUTE = 60_000;
const SETTLE_MS = 5_000;

const rssMB = (pid) => MB(readStatus(pid).VmRSS ?? null);
/** The daemon's own CPU time so far (user + system, s); its jobs' time is not in it until reaped, and not at all here (cutime is separate). */
const cpuS = (pid) => {
  const st = readStat(pid);
  return (st.utime + st.stime) / clockTicks();
};

/** Sends `rate` pings a minute at a steady pace until `until` (performance.now()); counts the answers. */
async function sendPings(url, until, counts) {
  const every = MINUTE / rate;
  const t0 = performance.now();
  const body = 'x'.repeat(2048);
  const inFlight = new Set();
  for (let i = 0; ; i++) {
    const at = t0 + i * every;
    if (at >= until) break;
    const wait = at - performance.now();
    if (wait > 0) await sleep(wait);
    const kind = i % 50 === 0 ? 'start' : i % 10 === 5 ? 'post' : 'get';
    counts.sent++;
    const p = fetch(kind === 'start' ? `${url}/start` : url, kind === 'post' ? { method: 'POST', body } : undefined)
      .then(async (r) => {
        await r.arrayBuffer();
        counts[r.status] = (counts[r.status] ?? 0) + 1;
      })
      .catch((err) => {
        counts.errors++;
        counts.lastError = String(err?.cause?.code ?? err);
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
}

async function main() {
  const machine = machineInfo(values);
  printMachine(machine);
  const home = tempDir('pings');
  const state = join(tempDir('pings-state'), 'state');
  const port = await freePort();
  mkdirSync(join(home, 'jobs'), { recursive: true });
  mkdirSync(join(home, 'protected'), { recursive: true });
  writeFileSync(join(home, 'protected', 'policy.yaml'), `timezone: UTC\ndashboard: { listen: "127.0.0.1:${port}" }\n`);
  // One start a second: job i at seconds i, i+20, i+40 of every minute (20 jobs).
  for (let i = 0; i < nJobs; i++) {
    const secs = [i % 60, (i + 20) % 60, (i + 40) % 60].sort((a, b) => a - b).join(',');
    writeFileSync(join(home, 'jobs', `tick-${String(i).padStart(2, '0')}.yaml`), toYaml({ schedule: `${secs} * * * * *`, command: ['true'], timeout: '30s' }));
  }
  writeFileSync(join(home, 'jobs', 'ext.yaml'), toYaml({ description: 'pinged over HTTP', schedule: '*/5 * * * *' }));

  const daemon = startDaemon(values, { home, state });
  await daemon.waitFor(isMsg('nightshift started'), { timeoutMs: 60_000, what: '"nightshift started"' });
  await daemon.waitFor(isMsg('dashboard listening'), { timeoutMs: 60_000, what: '"dashboard listening"' });
  const pu = await runCli(values, ['ping-url', 'ext'], { home, state });
  if (pu.code !== 0) throw new Error(`ping-url failed: ${pu.stderr}`);
  const url = pu.stdout.trim();
  console.log(`${nJobs} scheduled jobs (one start a second), ping address ${url.replace(/[^/]+$/, 'KEY')}, ${rate} pings a minute in ${minutes} minute(s) of ${minutes * 2}`);
  await sleep(SETTLE_MS);

  const rss = [{ at: 'start', pings: '', MB: rssMB(daemon.pid), 'daemon CPU s': '' }];
  let cpu = cpuS(daemon.pid);
  const phases = [];
  const counts = { sent: 0, errors: 0, lastError: null };
  const begin = Date.now();
  for (let m = 0; m < minutes * 2; m++) {
    const on = m % 2 === 1;
    const from = Date.now();
    const until = performance.now() + MINUTE;
    if (on) await sendPings(url, until, counts);
    else await sleep(MINUTE);
    const to = Date.now();
    phases.push({ on, from, to });
    const cpuNow = cpuS(daemon.pid);
    rss.push({ at: `minute ${m + 1}`, pings: on ? 'on' : 'off', MB: rssMB(daemon.pid), 'daemon CPU s': round(cpuNow - cpu, 2) });
    cpu = cpuNow;
    process.stdout.write(`  minute ${m + 1}/${minutes * 2} (pings ${on ? 'on' : 'off'}): RSS ${rss.at(-1).MB} MB, sent so far ${counts.sent}\n`);
  }
  await sleep(2000); // the last runs finish
  rss.push({ at: 'end', pings: '', MB: rssMB(daemon.pid), 'daemon CPU s': '' });
  await daemon.stop();

  const db = new Database(join(state, 'nightshift.db'), { readonly: true });
  const runs = db
    .prepare("SELECT scheduled_for, started_at, outcome FROM runs WHERE trigger = 'schedule' AND scheduled_for >= ? ORDER BY scheduled_for")
    .all(begin);
  const recorded = db.prepare("SELECT count(*) AS n, sum(output IS NOT NULL) AS withOutput FROM heartbeats WHERE job = 'ext' AND source = 'http'").get();
  const alerts = db.prepare("SELECT fingerprint, message FROM alerts WHERE job LIKE 'tick-%' OR job = 'ext'").all();
  db.close();

  const lateness = { off: [], on: [] };
  const notStarted = { off: 0, on: 0 };
  for (const r of runs) {
    const ph = phases.find((p) => r.scheduled_for >= p.from && r.scheduled_for < p.to);
    if (!ph) continue;
    const side = ph.on ? 'on' : 'off';
    if (r.started_at === null) notStarted[side]++;
    else lateness[side].push(r.started_at - r.scheduled_for);
  }
  const off = stats(lateness.off, 1);
  const on = stats(lateness.on, 1);
  console.log('\nstart precision of the scheduled jobs (started_at - scheduled_for, ms):');
  console.log(
    table([
      { pings: 'off', runs: off.n, 'not started': notStarted.off, p50: off.p50, p95: off.p95, p99: off.p99, max: off.max },
      { pings: `on (${rate}/min)`, runs: on.n, 'not started': notStarted.on, p50: on.p50, p95: on.p95, p99: on.p99, max: on.max },
    ]),
  );
  const ok = counts[200] ?? 0;
  console.log(
    `\npings: sent ${counts.sent}, answered 200 ${ok}, 429 ${counts[429] ?? 0}, other ${counts.sent - ok - (counts[429] ?? 0) - counts.errors}, errors ${counts.errors}${counts.lastError ? ` (${counts.lastError})` : ''}; recorded ${recorded.n} (${recorded.withOutput ?? 0} still with their output: only the last 100 outputs of a job are kept)`,
  );
  console.log('\ndaemon RSS, and its own CPU time in each minute:');
  console.log(table(rss));
  if (alerts.length) console.log(`\nalerts raised meanwhile: ${alerts.map((a) => a.fingerprint).join(', ')}`);

  const figures = [
    figure('pings recorded / sent', `${recorded.n} / ${counts.sent}`, ''),
    figure('start lateness p50, pings off', off.p50, 'ms'),
    figure('start lateness p50, pings on', on.p50, 'ms'),
    figure('start lateness p95, pings off', off.p95, 'ms'),
    figure('start lateness p95, pings on', on.p95, 'ms'),
    figure('start lateness max, pings off', off.max, 'ms'),
    figure('start lateness max, pings on', on.max, 'ms'),
    figure('daemon RSS start', rss[0].MB, 'MB'),
    figure('daemon RSS end', rss.at(-1).MB, 'MB'),
    figure('daemon RSS max', Math.max(...rss.map((r) => r.MB)), 'MB'),
    figure('daemon CPU a minute, pings off', round(rss.filter((r) => r.pings === 'off').reduce((a, r) => a + r['daemon CPU s'], 0) / minutes, 2), 's'),
    figure('daemon CPU a minute, pings on', round(rss.filter((r) => r.pings === 'on').reduce((a, r) => a + r['daemon CPU s'], 0) / minutes, 2), 's'),
  ];
  console.log('');
  printFigures(figures);
  writeResult('pings', { machine, minutes, rate, jobs: nJobs, counts, recorded, lateness: { off, on }, notStarted, rss, alerts, figures });
  if (recorded.n !== ok) console.log(`WARNING: ${ok} pings were answered 200 but ${recorded.n} are recorded`);

}

await runMain(values, main);
