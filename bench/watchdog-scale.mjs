#!/usr/bin/env node
// Watchdog cost per deadline as the number of watched jobs grows (100 / 1,000 / 10,000): each
// heartbeat records a row and re-arms the job's deadline in one heap shared by all jobs, so the
// cost should grow like log n, not n. Also checks that no timer fires while nothing is due.
//   node bench/watchdog-scale.mjs [--quick]
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  figure,
  flags,
  machineInfo,
  printFigures,
  printMachine,
  runMain,
  sleep,
  stats,
  table,
  tempDir,
  writeResult,
  distDir,
} from './lib.mjs';

const values = flags();
const dist = distDir(values);
const { Store } = await import(join(dist, 'store/store.js'));
const { Watchdog } = await import(join(dist, 'watch/watchdog.js'));
const { DeadlineTimer } = await import(join(dist, 'schedule/timer.js'));
const { compileJob, DEFAULT_POLICY } = await import(join(dist, 'config/home.js'));
const { JobSpecSchema } = await import(join(dist, 'config/schema.js'));
const { silentLogger } = await import(join(dist, 'log.js'));

const sizes = values.quick ? [100, 1000] : [100, 1000, 10_000];
const beats = values.quick ? 2000 : 5000;

await runMain(values, async () => {
  const machine = machineInfo(values);
  printMachine(machine);
  const rows = [];
  for (const n of sizes) {
    const dir = tempDir(`wd-${n}`);
    mkdirSync(dir, { recursive: true });
    const store = Store.open(join(dir, 'nightshift.db'));
    const jobs = new Map();
    const spec = JobSpecSchema.parse({ schedule: '0 3 * * *', heartbeat: { grace: '1h' } });
    for (let i = 0; i < n; i++) jobs.set(`ext-${i}`, compileJob(`ext-${i}`, join(dir, `ext-${i}.yaml`), dir, spec, DEFAULT_POLICY, 'h'));
    let fired = 0;
    const wd = new Watchdog({ store, clock: { now: () => Date.now() }, log: silentLogger, getJob: (name) => jobs.get(name) });
    wd.events.on('alert', () => fired++);
    const t0 = performance.now();
    wd.start(jobs.values());
    const startMs = performance.now() - t0;
    // heartbeats of random jobs: each one is a row plus a re-armed deadline
    const per = [];
    for (let k = 0; k < beats; k++) {
      const job = jobs.get(`ext-${Math.floor(Math.random() * n)}`);
      const a = performance.now();
      wd.heartbeat(job, 'success', 'bench');
      per.push((performance.now() - a) * 1000);
    }
    // and the heap alone (no SQLite): set() of a random key to a new deadline
    const timer = new DeadlineTimer(() => fired++);
    timer.start();
    for (let i = 0; i < n; i++) timer.set(i, Date.now() + 3_600_000 + i);
    const heap = [];
    for (let k = 0; k < 20_000; k++) {
      const a = performance.now();
      timer.set(Math.floor(Math.random() * n), Date.now() + 3_600_000 + k);
      heap.push((performance.now() - a) * 1000);
    }
    // nothing is due for an hour: nothing may fire in the next second
    await sleep(values.quick ? 500 : 1000);
    timer.stop();
    wd.stop();
    store.close();
    const s = stats(per, 1);
    const h = stats(heap, 3);
    rows.push({
      jobs: n,
      'start (ms)': Math.round(startMs),
      'heartbeat p50 (µs)': s.p50,
      'heartbeat p99 (µs)': s.p99,
      'heap set p50 (µs)': h.p50,
      'heap set p99 (µs)': h.p99,
      'fired while idle': fired,
    });
  }
  console.log(`\n${beats} heartbeats per size (row + re-armed deadline), 20,000 heap updates per size:`);
  console.log(table(rows));
  const small = rows[0];
  const big = rows[rows.length - 1];
  const figs = [
    figure(
      `heartbeat p50 ratio ${big.jobs}/${small.jobs} jobs`,
      Math.round((big['heartbeat p50 (µs)'] / small['heartbeat p50 (µs)']) * 100) / 100,
      'x',
      undefined,
    ),
    figure(
      `heap set p50 ratio ${big.jobs}/${small.jobs} jobs`,
      Math.round((big['heap set p50 (µs)'] / small['heap set p50 (µs)']) * 100) / 100,
      'x',
      undefined,
    ),
    figure(
      'timer fires while nothing is due',
      rows.reduce((a, r) => a + r['fired while idle'], 0),
      'fires',
      0,
    ),
  ];
  printFigures(figs);
  writeResult('watchdog-scale', {
    bench: 'watchdog-scale',
    command: `node bench/watchdog-scale.mjs${values.quick ? ' --quick' : ''}`,
    machine,
    rows,
    figures: figs,
  });
});
