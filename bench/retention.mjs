#!/usr/bin/env node
// Retention over a simulated year: 100 jobs every minute (144,000 runs a day) written into a real
// state database day after day, with the default policy's retention pass after each day. Prints
// the database size month by month (it must level off, not grow with time), the rows kept, how
// long the longest batch held the database (the most a run's start can wait for it), and the
// latency of a run's start (one insertRun) measured between batches.
//
//   npm run build && node bench/retention.mjs [--days 365] [--jobs 100] [--dist DIR]
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { distDir, flags, machineInfo, printMachine, round, tempDir, writeResult } from './lib.mjs';

const values = flags({ days: { type: 'string' }, jobs: { type: 'string' } });
const days = Number(values.days ?? (values.quick ? 60 : 365));
const nJobs = Number(values.jobs ?? 100);
const dist = distDir(values);
const { Store } = await import(join(dist, 'store/store.js'));
const { planRuns, pruneBatch } = await import(join(dist, 'store/retention.js'));
const { PolicySchema } = await import(join(dist, 'config/schema.js'));

printMachine(machineInfo(values));
const r = PolicySchema.parse({}).retention;
const limits = { runsMs: r.runs, runsPerJob: r.runsPerJob, heartbeatsMs: r.heartbeats, alertsMs: r.alerts, eventsMs: r.events, digestsMs: r.digests };
console.log(`== retention: ${nJobs} jobs every minute for ${days} days, default retention (runs ${r.runs / 86_400_000} d / ${r.runsPerJob} per job)`);

const dir = tempDir('retention');
const path = join(dir, 'nightshift.db');
const store = Store.open(path);
const insert = store.db.prepare(
  `INSERT INTO runs (job, trigger, scheduled_for, created_at, started_at, ended_at, outcome, exit_code, duration_ms, reason, log_path, attempt)
   VALUES (?, 'schedule', ?, ?, ?, ?, 'ok', 0, 900, 'exit 0', NULL, 1) ON CONFLICT DO NOTHING`,
);
const size = () => ['', '-wal'].reduce((n, s) => n + (statSync(path + s, { throwIfNoEntry: false })?.size ?? 0), 0);
const DAY = 86_400_000;
const t0 = Date.UTC(2026, 0, 1);
const jobs = Array.from({ length: nJobs }, (_, i) => `job-${String(i).padStart(3, '0')}`);
const batchMs = [];
const startMs = [];
let maxSize = 0;
const monthly = [];
const wall = performance.now();
for (let d = 0; d < days; d++) {
  const dayStart = t0 + d * DAY;
  // The day's runs as the daemon writes them, finished; in one statement per row here, since what is
  // measured is retention (the store's own write path is measured by throughput.mjs).
  store.batch(() => {
    for (let m = 0; m < 1440; m++) {
      const at = dayStart + m * 60_000;
      for (const job of jobs) insert.run(job, at, at, at, at + 900);
    }
    store.journal.record(dayStart, 'daemon-start', null, 'a day');
  });
  // The pass, batch by batch; between two batches a run starts (one row, its own transaction).
  const now = dayStart + DAY;
  const plan = planRuns(store, limits, now);
  for (;;) {
    const b = performance.now();
    const { more } = pruneBatch(store, limits, now, 500, plan);
    batchMs.push(performance.now() - b);
    const s = performance.now();
    // Recorded complete (as a skipped run is), so that it too is subject to retention.
    store.runs.insert({ job: 'probe-start', trigger: 'manual', now, outcome: 'ok', reason: 'probe' });
    startMs.push(performance.now() - s);
    if (!more) break;
  }
  store.db.pragma('wal_checkpoint(TRUNCATE)');
  maxSize = Math.max(maxSize, size());
  if ((d + 1) % 30 === 0 || d === days - 1) {
    const rows = store.db.prepare('SELECT count(*) FROM runs').pluck().get();
    monthly.push({ day: d + 1, sizeMB: round(size() / 1e6, 1), runs: rows });
    console.log(`  day ${String(d + 1).padStart(3)}: database ${round(size() / 1e6, 1)} MB, ${rows} runs kept`);
  }
}
store.close();
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];
const out = {
  days,
  jobs: nJobs,
  runsWritten: days * 1440 * nJobs,
  finalMB: round(size() / 1e6, 1),
  maxMB: round(maxSize / 1e6, 1),
  batches: batchMs.length,
  batchP50ms: round(pct(batchMs, 50), 2),
  batchP99ms: round(pct(batchMs, 99), 2),
  batchMaxMs: round(Math.max(...batchMs), 2),
  startP99ms: round(pct(startMs, 99), 3),
  startMaxMs: round(Math.max(...startMs), 3),
  wallS: round((performance.now() - wall) / 1000, 1),
  monthly,
};
console.log(
  `runs written ${out.runsWritten.toLocaleString('en')}; database at the end ${out.finalMB} MB, largest ${out.maxMB} MB; ` +
    `${out.batches} batches: p50 ${out.batchP50ms} ms, p99 ${out.batchP99ms} ms, max ${out.batchMaxMs} ms (the most a run's start waits); ` +
    `a run's start between batches: p99 ${out.startP99ms} ms, max ${out.startMaxMs} ms; ${out.wallS} s`,
);
writeResult('retention', out);
