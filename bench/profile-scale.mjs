#!/usr/bin/env node
// Investigation tool (not part of run.mjs): where the daemon's time goes with many jobs.
// Starts a daemon on a home of N jobs under `node --cpu-prof`, waits for "nightshift started",
// rewrites a few job files one at a time (waiting for each "job changed"), stops it, then reads
// the profile and prints, per phase (start; each reload), the top functions by inclusive and by
// self time and the time per package (node_modules/<pkg>, dist/<file>, node:<module>, GC).
//
//   node bench/profile-scale.mjs [--jobs 10000] [--reloads 3] [--top 20] [--existing] [--keep] [--dist DIR]
//   (--existing: start once unprofiled first, so the profiled start finds its state rows in place)
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { flags, isMsg, machineInfo, printMachine, round, runMain, safeCron, rng, sleep, startDaemon, table, tempDir, toYaml, writeHome, writeResult } from './lib.mjs';

const values = flags({ jobs: { type: 'string' }, reloads: { type: 'string' }, top: { type: 'string' }, existing: { type: 'boolean', default: false } });
const nJobs = Number(values.jobs ?? 10000);
const nReloads = Number(values.reloads ?? 3);
const top = Number(values.top ?? 20);
const monoUs = () => Number(process.hrtime.bigint() / 1000n); // same clock as V8's profile timestamps (CLOCK_MONOTONIC)

function frameKey(cf) {
  const url = cf.url || '';
  const file = url.includes('/node_modules/') ? url.slice(url.lastIndexOf('/node_modules/') + 14) : url.includes('/dist/') ? `dist/${basename(url)}` : url;
  return `${cf.functionName || '(anonymous)'} ${file ? `${file}:${cf.lineNumber + 1}` : ''}`.trim();
}

function category(cf) {
  const url = cf.url || '';
  if (!url) return cf.functionName.startsWith('(') ? cf.functionName : '(native)';
  if (url.includes('/node_modules/')) {
    const rest = url.slice(url.lastIndexOf('/node_modules/') + 14).split('/');
    return `pkg ${rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (url.includes('/dist/')) return `dist/${basename(url)}`;
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  return url;
}

/** Aggregates samples with from <= t < to (µs, profile clock). */
function analyse(prof, from, to) {
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map();
  const incl = new Map();
  const cats = new Map();
  let t = prof.startTime;
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i];
    if (t < from || t >= to) continue;
    const dt = (prof.timeDeltas[i + 1] ?? 1000) / 1000; // ms this sample stands for
    const node = byId.get(prof.samples[i]);
    if (node.callFrame.functionName === '(idle)') continue;
    total += dt;
    const k = frameKey(node.callFrame);
    self.set(k, (self.get(k) ?? 0) + dt);
    const c = category(node.callFrame);
    cats.set(c, (cats.get(c) ?? 0) + dt);
    const seen = new Set();
    for (let id = node.id; id !== undefined; id = parent.get(id)) {
      const key = frameKey(byId.get(id).callFrame);
      if (seen.has(key)) continue;
      seen.add(key);
      incl.set(key, (incl.get(key) ?? 0) + dt);
    }
  }
  const sort = (m) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return {
    busyMs: round(total, 1),
    inclusive: sort(incl).filter(([k]) => !k.startsWith('(root)')).slice(0, top).map(([k, v]) => ({ function: k, ms: round(v, 1) })),
    self: sort(self).slice(0, top).map(([k, v]) => ({ function: k, ms: round(v, 1) })),
    categories: sort(cats).slice(0, 12).map(([k, v]) => ({ where: k, ms: round(v, 1) })),
  };
}

await runMain(values, async () => {
  const machine = machineInfo(values);
  console.log(`== profile: daemon with ${nJobs} jobs under --cpu-prof: start${values.existing ? ' (existing state)' : ' (fresh state)'}, then ${nReloads} reloads`);
  printMachine(machine);
  const home = tempDir('prof');
  const state = join(tempDir('prof-state'), 'state');
  const profDir = tempDir('prof-out');
  const now = Date.now();
  const window = { from: now - 120_000, to: now + 3_600_000 };
  const jobs = writeHome(home, nJobs, window, { seed: nJobs, everyShare: 0.3 });
  if (values.existing) {
    const d0 = startDaemon(values, { home, state, label: 'daemon (unprofiled)' });
    await d0.waitFor(isMsg('nightshift started'), { timeoutMs: 300_000 });
    await d0.stop(60_000);
  }

  const marks = { spawn: monoUs() };
  const daemon = startDaemon(values, { home, state, nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir] });
  const started = await daemon.waitFor(isMsg('nightshift started'), { timeoutMs: 300_000, what: '"nightshift started"' });
  marks.started = monoUs() - Math.round((performance.now() - started.t) * 1000);
  console.log(`started in ${round(started.t - daemon.spawnedAt, 1)} ms`);
  await sleep(1500);
  const r = rng(3);
  const reloads = [];
  for (let i = 0; i < nReloads; i++) {
    const job = jobs[Math.floor(((i + 0.5) * jobs.length) / nReloads)];
    let schedule;
    do schedule = safeCron(r, job.tz, window, 'daily');
    while (schedule === job.spec.schedule);
    job.spec = { ...job.spec, every: undefined, schedule };
    const from = daemon.mark();
    const t0 = monoUs();
    const p0 = performance.now();
    writeFileSync(job.file, toYaml(job.spec));
    const line = await daemon.waitFor((e) => e.obj?.job === job.name && e.obj.msg === 'job changed', { from, timeoutMs: 10_000 });
    reloads.push({ job: job.name, from: t0, to: t0 + Math.round((line.t - p0) * 1000) + 20_000, ms: round(line.t - p0, 1) });
    await sleep(700);
  }
  const t0 = performance.now();
  marks.stop = monoUs();
  await daemon.stop(60_000);
  const stopMs = round(performance.now() - t0, 1);

  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile written in ${profDir}`);
  const prof = JSON.parse(readFileSync(join(profDir, file), 'utf8'));
  // If the clocks do not match, fall back to "the profile starts when the daemon was spawned".
  const offset = marks.spawn >= prof.startTime - 5_000_000 && marks.spawn <= prof.endTime ? 0 : prof.startTime - marks.spawn;
  if (offset) console.log('(profile clock differs from ours; phases are placed relative to the spawn)');
  const phases = [
    { phase: 'start', from: prof.startTime, to: marks.started + offset },
    ...reloads.map((x, i) => ({ phase: `reload ${i + 1} (${x.job}, ${x.ms} ms)`, from: x.from + offset, to: x.to + offset })),
    { phase: 'stop', from: marks.stop + offset, to: prof.endTime + 1 },
  ];
  const out = [];
  for (const ph of phases) {
    const a = analyse(prof, ph.from, ph.to);
    out.push({ ...ph, ...a });
    console.log(`\n---- ${ph.phase}: ${round((ph.to - ph.from) / 1000, 1)} ms wall, ${a.busyMs} ms on the CPU (sampled)`);
    console.log(table(a.categories));
    console.log(`\ninclusive (top ${top}):\n${table(a.inclusive)}`);
    console.log(`\nself (top ${top}):\n${table(a.self)}`);
  }
  console.log(`\nstop took ${stopMs} ms; profile: ${join(profDir, file)}${values.keep ? '' : ' (deleted; --keep to keep it, e.g. for Chrome DevTools)'}`);
  writeResult('profile-scale', { bench: 'profile-scale', machine, params: { jobs: nJobs, reloads: nReloads, existing: values.existing }, startedMs: round(started.t - daemon.spawnedAt, 1), reloads, stopMs, phases: out });
});
