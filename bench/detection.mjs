#!/usr/bin/env node
// Detection latency of the watchdog, in a real daemon:
//  - missed: N external every-2s jobs ping once and then stop; each is alerted at its deadline
//    (next 2 s instant after the ping + grace). Graces differ per job, so the deadlines are spread
//    over time instead of all landing in one tick. Figure: alert opened_at - deadline.
//  - hung: N managed jobs with a 1 s timeout that sleep for 30 s, started together; figure:
//    alert opened_at - (started_at + timeout).
//   node bench/detection.mjs [--trials N] [--quick]
import Database from 'better-sqlite3';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { figure, flags, isMsg, machineInfo, printFigures, printMachine, runMain, sleep, startDaemon, stats, table, tempDir, writeResult, postControl } from './lib.mjs';


const values = flags({ trials: { type: 'string' } });
const trials = Number(values.trials ?? (values.quick ? 20 : 50));

await runMain(values, async () => {
  const machine = machineInfo(values);
  printMachine(machine);
  const home = tempDir('detect');
  const state = join(home, 'state');
  mkdirSync(join(home, 'jobs'), { recursive: true });
  for (let i = 0; i < trials; i++) {
    writeFileSync(join(home, 'jobs', `ext-${i}.yaml`), `every: 2s\nheartbeat: { grace: ${300 + i * 37}ms }\n`);
    writeFileSync(join(home, 'jobs', `hang-${i}.yaml`), 'command: ["sleep", "30"]\ntimeout: 1s\nkillGrace: 1s\nconcurrency: allow\n');
  }
  const daemon = startDaemon(values, { home, state });
  await daemon.waitFor(isMsg('nightshift started'), { timeoutMs: 60_000, what: 'start' });

  const sock = join(state, 'nightshift.sock');
  // missed: one ping each, then silence
  for (let i = 0; i < trials; i++) await postControl(sock, `/ping/ext-${i}`);
  // hung: start them all (the replies come when the runs end)
  const runs = Array.from({ length: trials }, (_, i) => postControl(sock, `/run/hang-${i}`));
  await Promise.all(runs);
  await sleep(4000);
  await daemon.stop();

  const db = new Database(join(state, 'nightshift.db'), { readonly: true });
  const missed = [];
  for (let i = 0; i < trials; i++) {
    const ping = db.prepare("SELECT at FROM heartbeats WHERE job = ? AND kind = 'success' ORDER BY id LIMIT 1").get(`ext-${i}`);
    const alert = ping && db.prepare("SELECT opened_at FROM alerts WHERE job = ? AND kind = 'missed' AND opened_at > ? ORDER BY id LIMIT 1").get(`ext-${i}`, ping.at);
    if (!ping || !alert) continue;
    const deadline = (Math.floor(ping.at / 2000) + 1) * 2000 + 300 + i * 37;
    missed.push(alert.opened_at - deadline);
  }
  const hung = [];
  for (let i = 0; i < trials; i++) {
    const run = db.prepare('SELECT id, started_at FROM runs WHERE job = ? ORDER BY id LIMIT 1').get(`hang-${i}`);
    const alert = db.prepare("SELECT opened_at FROM alerts WHERE job = ? AND kind = 'hung' ORDER BY id LIMIT 1").get(`hang-${i}`);
    if (!run || !alert) continue;
    hung.push(alert.opened_at - (run.started_at + 1000));
  }
  db.close();
  const m = stats(missed, 1);
  const h = stats(hung, 1);
  console.log(`\n${trials} trials each (ms after the deadline / after the timeout):`);
  console.log(table([{ what: 'missed (every-2s job stops pinging)', ...m }, { what: 'hung (run passes its 1 s timeout)', ...h }]));
  const figs = [figure('missed: alert after deadline, p99', m.p99, 'ms', 1000), figure('hung: alert after timeout, p99', h.p99, 'ms', 1000)];
  printFigures(figs);
  writeResult('detection', { bench: 'detection', command: `node bench/detection.mjs --trials ${trials}`, machine, trials, missed: m, hung: h, figures: figs });
});
