#!/usr/bin/env node
// Start latency of scheduled runs: an `every: 1s` job, N runs after one warm-up run.
//   instant -> timer fired  = created_at - scheduled_for   (runs table; the row is written here)
//   instant -> spawn        = started_at - scheduled_for   (runs table; taken just before the spawn call)
//   instant -> child start  = performance.timeOrigin of the child - scheduled_for   (node probe only)
//   instant -> first instr. = the job's own first clock reading - scheduled_for
// A reference process (bare node, setTimeout to the same whole-second instants) runs alongside:
// its own wake-up lateness shows what the machine itself adds at those instants (host noise).
// Probes: "node" runs `node -e` whose first statement reads the clock; "sh" runs /bin/sh -c with
// `date +%s%N` (sh start + one fork/exec of date).
//
//   node bench/latency.mjs [--runs 200] [--probe node|sh|both] [--quick] [--keep] [--dist DIR]
//                          [--node-args="--trace-gc"]   (extra node flags for the daemon, to investigate)
//                          [--spy]   (preload bench/spawn-spy.cjs into the daemon: splits instant->spawn into
//                                     before spawn(), inside spawn() and after spawn() until started_at)
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  BENCH_DIR,
  Child,
  diffSamples,
  figure,
  flags,
  isMsg,
  machineInfo,
  MB,
  printFigures,
  printMachine,
  round,
  runMain,
  sampleProc,
  startDaemon,
  stats,
  table,
  tempDir,
  toYaml,
  writeResult,
} from './lib.mjs';

const values = flags({ runs: { type: 'string' }, probe: { type: 'string' }, 'node-args': { type: 'string' }, spy: { type: 'boolean', default: false } });
// For investigations only, e.g. --node-args="--trace-gc": GC lines are matched to the slow runs.
const nodeArgs = (values['node-args'] ?? '').split(' ').filter(Boolean);
const nRuns = Number(values.runs ?? (values.quick ? 30 : 200));
const probes = (values.probe ?? 'both') === 'both' ? ['node', 'sh'] : [values.probe];
const WARMUP = 1;

function jobSpec(probe, out) {
  if (probe === 'node') {
    // The first statement reads the clock; everything after it is bookkeeping.
    const script =
      "const t=performance.timeOrigin+performance.now();require('fs').appendFileSync(process.env.OUT,process.env.NIGHTSHIFT_RUN_ID+' '+t+' '+performance.timeOrigin+'\\n')";
    return { description: 'latency probe (node)', every: '1s', command: [process.execPath, '-e', script], env: { OUT: out }, timeout: '30s' };
  }
  return { description: 'latency probe (sh)', every: '1s', command: ['/bin/sh', '-c', 'echo "$NIGHTSHIFT_RUN_ID $(date +%s%N)" >> "$OUT"'], env: { OUT: out }, timeout: '30s' };
}

// Wakes at every whole second, like the job's instants, and notes how late it woke (ms, fractional).
const REFERENCE = `const out=[];let next=Math.ceil(Date.now()/1000)*1000+1000;
function arm(){setTimeout(()=>{const t=performance.timeOrigin+performance.now();out.push([next,t-next]);next+=1000;while(next<=Date.now())next+=1000;arm()},next-Date.now())}
arm();process.on('SIGTERM',()=>process.stdout.write(JSON.stringify(out)+'\\n',()=>process.exit(0)))`;

function cpuSteal() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return { steal: f[7] ?? 0, total: f.reduce((a, b) => a + b, 0) };
}

async function measure(probe) {
  const home = tempDir(`latency-${probe}`);
  const state = join(tempDir(`latency-${probe}-state`), 'state');
  const out = join(home, 'first-instruction.txt');
  mkdirSync(join(home, 'jobs'), { recursive: true });
  writeFileSync(join(home, 'jobs', 'tick.yaml'), toYaml(jobSpec(probe, out)));
  writeFileSync(out, '');

  const spyOut = join(home, 'spawn-spy.txt');
  const spyArgs = values.spy ? ['--require', join(BENCH_DIR, 'spawn-spy.cjs')] : [];
  const reference = new Child('reference timer', process.execPath, ['-e', REFERENCE]);
  const steal0 = cpuSteal();
  const daemon = startDaemon(values, { home, state, nodeArgs: [...nodeArgs, ...spyArgs], env: values.spy ? { SPY_OUT: spyOut } : {}, label: `daemon (${probe})` });
  const daemonStartWall = Date.now() - (performance.now() - daemon.spawnedAt);
  await daemon.waitFor(isMsg('nightshift started'), { timeoutMs: 60_000, what: '"nightshift started"' });
  const s0 = sampleProc(daemon.pid);
  const want = nRuns + WARMUP;
  let finished = 0;
  const t0 = performance.now();
  await daemon.waitFor(
    (e) => {
      if (e.obj?.job === 'tick' && typeof e.obj.msg === 'string' && e.obj.msg.startsWith('run finished')) finished++;
      if (e.obj?.job === 'tick' && e.obj.outcome && e.obj.outcome !== 'ok' && !e.obj.msg?.startsWith('run finished')) finished++; // skipped-*
      if (finished > 0 && finished % 50 === 0 && e.obj?.msg?.startsWith('run finished')) process.stdout.write(`  ${probe}: ${finished}/${want} runs\n`);
      return finished >= want;
    },
    { timeoutMs: (want + 30) * 2000, what: `${want} finished runs` },
  );
  const s1 = sampleProc(daemon.pid);
  const wallS = (performance.now() - t0) / 1000;
  await daemon.stop();
  await reference.stop();
  const steal1 = cpuSteal();
  const refLate = new Map();
  for (const l of reference.lines) if (l.raw.startsWith('[')) for (const [at, late] of JSON.parse(l.raw)) refLate.set(at, late);

  const db = new Database(join(state, 'nightshift.db'), { readonly: true });
  const rows = db.prepare("SELECT id, scheduled_for, created_at, started_at, ended_at, outcome, pgid FROM runs WHERE job = 'tick' AND trigger = 'schedule' ORDER BY scheduled_for").all();
  db.close();
  const childById = new Map();
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const [id, t, origin] = line.trim().split(' ');
    if (!id) continue;
    // sh: date +%s%N is nanoseconds; node: ms with a fraction.
    childById.set(Number(id), probe === 'sh' ? { t: Number(BigInt(t) / 1000n) / 1000 } : { t: Number(t), origin: Number(origin) });
  }
  const spy = new Map();
  if (values.spy && existsSync(spyOut)) {
    for (const line of readFileSync(spyOut, 'utf8').split('\n')) {
      const [pid, called, returned] = line.split(' ').map(Number);
      if (pid) spy.set(pid, { called, returned });
    }
  }
  const measured = rows.filter((r) => r.started_at !== null && r.outcome !== null).slice(WARMUP, WARMUP + nRuns);
  const warm = rows.slice(0, WARMUP);
  const lat = (r) => {
    const c = childById.get(r.id);
    const sp = spy.get(r.pgid);
    return {
      beforeSpawnCall: sp ? sp.called - r.scheduled_for : null,
      insideSpawn: sp ? sp.returned - sp.called : null,
      afterSpawnToStartedAt: sp ? r.started_at - sp.returned : null,
      id: r.id,
      timer: r.created_at - r.scheduled_for,
      spawn: r.started_at - r.scheduled_for,
      childStart: c?.origin ? c.origin - r.scheduled_for : null,
      first: c ? c.t - r.scheduled_for : null,
      reference: refLate.has(r.scheduled_for) ? round(refLate.get(r.scheduled_for), 2) : null,
      duration: r.ended_at - r.started_at,
      outcome: r.outcome,
    };
  };
  const per = measured.map(lat);
  let gaps = 0;
  for (let i = 1; i < rows.length; i++) if (rows[i].scheduled_for - rows[i - 1].scheduled_for !== 1000) gaps += (rows[i].scheduled_for - rows[i - 1].scheduled_for) / 1000 - 1;
  const outcomes = {};
  for (const r of per) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
  // --trace-gc lines ("[pid:0x..]  12345 ms: Scavenge ...", ms since the daemon started) next to each slow run
  const gcs = daemon.lines
    .map((l) => /^\[\d+:0x[0-9a-f]+\]\s+(\d+) ms: (\S+(?: \(reduce\))?)[^,]*?, ([\d.]+) \/ ([\d.]+) ms/.exec(l.raw))
    .filter(Boolean)
    .map((m) => ({ at: daemonStartWall + Number(m[1]), kind: m[2], pauseMs: Number(m[3]) }));
  const slow = [...per].sort((x, y) => y.spawn - x.spawn).slice(0, 8).map((p) => {
    const r = rows.find((x) => x.id === p.id);
    const near = gcs.filter((g) => g.at >= r.scheduled_for - 50 && g.at <= r.started_at + 50);
    return { ...p, gcNear: near.map((g) => `${g.kind} ${g.pauseMs} ms @${Math.round(g.at - r.scheduled_for)}`) };
  });
  const res = {
    probe,
    gcCount: gcs.length,
    slow,
    runs: per.length,
    warmup: warm.map(lat),
    skippedInstants: gaps,
    outcomes,
    missingFirstInstruction: per.filter((p) => p.first === null).length,
    timer: stats(per.map((p) => p.timer)),
    spawn: stats(per.map((p) => p.spawn)),
    childStart: probe === 'node' ? stats(per.map((p) => p.childStart)) : null,
    first: stats(per.map((p) => p.first)),
    beforeSpawnCall: values.spy ? stats(per.map((p) => p.beforeSpawnCall)) : null,
    insideSpawn: values.spy ? stats(per.map((p) => p.insideSpawn)) : null,
    afterSpawnToStartedAt: values.spy ? stats(per.map((p) => p.afterSpawnToStartedAt)) : null,
    reference: stats(per.map((p) => p.reference)),
    stealPct: round((100 * (steal1.steal - steal0.steal)) / Math.max(1, steal1.total - steal0.total), 2),
    spawnToFirst: stats(per.map((p) => (p.first === null ? null : p.first - p.spawn))),
    duration: stats(per.map((p) => p.duration)),
    daemon: { cpuMsPerRun: round(diffSamples(s0, s1).cpuNsMs / Math.max(1, finished), 2), rssEndMB: MB(s1.rssKB), hwmMB: MB(s1.hwmKB), wallS: round(wallS, 1) },
    worst: [...per].sort((a, b) => b.spawn - a.spawn).slice(0, 5),
    raw: per,
  };
  return res;
}

await runMain(values, async () => {
  const machine = machineInfo(values);
  console.log(`== latency: every: 1s job, ${nRuns} runs (+${WARMUP} warm-up) per probe: ${probes.join(', ')}`);
  printMachine(machine);
  const results = [];
  for (const probe of probes) {
    console.log(`-- probe ${probe}: about ${nRuns + WARMUP + 1} s`);
    results.push(await measure(probe));
  }
  for (const r of results) {
    console.log(`\nprobe ${r.probe}: ${r.runs} runs, outcomes ${JSON.stringify(r.outcomes)}, instants skipped ${r.skippedInstants}, missing first-instruction records ${r.missingFirstInstruction}; warm-up run: spawn ${r.warmup[0]?.spawn} ms, first instruction ${round(r.warmup[0]?.first, 1)} ms`);
    const row = (name, s) => (s ? { latency: name, n: s.n, min: s.min, p50: s.p50, p95: s.p95, p99: s.p99, max: s.max, mean: s.mean } : null);
    console.log(
      table(
        [
          row('instant -> timer fired (created_at)', r.timer),
          row('instant -> spawn (started_at)', r.spawn),
          row('  instant -> spawn() called [spy]', r.beforeSpawnCall),
          row('  inside spawn() (fork+exec) [spy]', r.insideSpawn),
          row('  spawn() returned -> started_at [spy]', r.afterSpawnToStartedAt),
          row('instant -> child process start', r.childStart),
          row('instant -> first instruction', r.first),
          row('spawn -> first instruction', r.spawnToFirst),
          row('run duration (started->ended)', r.duration),
          row('reference process: timer lateness', r.reference),
        ].filter(Boolean),
      ),
    );
    console.log(`(ms) daemon: ${r.daemon.cpuMsPerRun} ms CPU per run, RSS ${r.daemon.rssEndMB} MB at end, peak ${r.daemon.hwmMB} MB; worst spawn latencies: ${r.worst.map((w) => `#${w.id} ${w.spawn} ms`).join(', ')}`);
    console.log(`machine: CPU steal during the probe ${r.stealPct}%`);
    for (const s of r.slow) {
      const parts = values.spy ? `; spawn() called @${round(s.beforeSpawnCall, 1)}, took ${round(s.insideSpawn, 1)}, then ${round(s.afterSpawnToStartedAt, 1)} until started_at` : '';
      console.log(`  slow run #${s.id}: timer ${s.timer} ms, spawn ${s.spawn} ms, child start ${round(s.childStart, 1)} ms, first instruction ${round(s.first, 1)} ms, reference process late ${s.reference} ms${parts}${r.gcCount ? `; GC between instant and spawn: ${s.gcNear.join('; ') || 'none'}` : ''}`);
    }
  }
  const figs = [];
  for (const r of results) {
    figs.push(figure(`latency[${r.probe}]: instant->spawn p99`, r.spawn.p99, 'ms', 25));
    figs.push(figure(`latency[${r.probe}]: instant->spawn p50 / max`, `${r.spawn.p50} / ${r.spawn.max}`, 'ms'));
    figs.push(figure(`latency[${r.probe}]: instant->first instruction p50 / p99`, `${r.first.p50} / ${r.first.p99}`, 'ms'));
  }
  console.log('');
  printFigures(figs);
  writeResult('latency', { bench: 'latency', command: `node bench/latency.mjs ${process.argv.slice(2).join(' ')}`.trim(), machine, params: { runs: nRuns, warmup: WARMUP, probes, nodeArgs, spy: values.spy }, results, figures: figs });
});
