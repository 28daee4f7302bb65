#!/usr/bin/env node
// Two builds side by side in one run: idle RSS and CPU (idle.mjs), start latency (latency.mjs),
// runs per second (throughput.mjs) and 10,000 specs (scale.mjs: validate, daemon start, reload).
// Each round runs every bench once against each build, one right after the other, so both
// builds meet the same machine load; the order within a round alternates (before first in odd
// rounds, after first in even ones) so that neither always runs second. Both builds are driven
// by this checkout's bench code (`--dist BUILD/dist --json`); a build needs only its dist/ and
// node_modules/. Prints one table: figure | before | after | change (medians over the rounds).
//
//   node bench/ab.mjs --before DIR --after DIR [--rounds 3] [--only idle,latency,throughput,scale]
//                     [--quick] [--jobs 10000]
// DIR is a checkout with a built dist/ (or a dist/ folder itself). Each bench's full output is
// kept in bench/out/ab/ (ROUND-BENCH-BUILD.log), all samples in bench/out/ab.json.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_DIR, OUT_DIR, machineInfo, printMachine, round, table } from './lib.mjs';

const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    after: { type: 'string' },
    rounds: { type: 'string' },
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    jobs: { type: 'string' },
  },
  strict: true,
});
if (!values.before || !values.after) {
  console.error(
    'usage: node bench/ab.mjs --before DIR --after DIR [--rounds 3] [--only idle,latency,throughput,scale] [--quick] [--jobs 10000]',
  );
  process.exit(2);
}
const quick = values.quick;
const rounds = Number(values.rounds ?? (quick ? 1 : 3));
const scaleJobs = Number(values.jobs ?? 10_000);
const kJobs = scaleJobs >= 1000 ? `${scaleJobs / 1000}k` : String(scaleJobs);

/** A checkout root with dist/cli.js, or a dist/ folder itself. */
function buildOf(label, dir) {
  const d = resolve(dir);
  const dist = existsSync(join(d, 'dist', 'cli.js')) ? join(d, 'dist') : existsSync(join(d, 'cli.js')) ? d : null;
  if (!dist)
    throw new Error(
      `--${label} ${dir}: neither ${join(d, 'dist', 'cli.js')} nor ${join(d, 'cli.js')} exists (npm ci && npm run build there first)`,
    );
  const root = basename(dist) === 'dist' ? resolve(dist, '..') : d;
  if (!existsSync(join(root, 'node_modules'))) console.log(`WARNING: ${root} has no node_modules/: its dist/ may not start`);
  let head = null;
  try {
    head = execFileSync('git', ['log', '-1', '--format=%h %s'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .trim()
      .slice(0, 90);
  } catch {
    // not a git checkout
  }
  return { label, dist, root, head };
}

// ---------------------------------------------------------------- what each bench runs and reads

const num = (x) => (typeof x === 'number' && !Number.isNaN(x) ? x : null);
const mb = (kB) => (num(kB) === null ? null : kB / 1024);

/**
 * Per bench: its arguments (besides --dist and --json), and the figures read from its JSON
 * result. A figure's value is a number or an array of numbers (samples pooled over rounds).
 * higher: true when a larger value is better. check: a problem with the run, or null.
 */
const BENCHES = {
  idle: {
    args: quick ? ['--seconds', '8', '--settle', '2'] : ['--seconds', '25', '--settle', '5'],
    figures: (r) => {
      const s = r.params.seconds;
      return [
        ['idle: daemon RSS at end (MB)', mb(r.daemon.rssEndKB)],
        ['idle: daemon RSS - bare node RSS (MB)', mb(r.daemon.rssEndKB) - mb(r.bare.rssEndKB)],
        ['idle: daemon peak RSS, VmHWM (MB)', mb(r.daemon.hwmKB)],
        [`idle: daemon CPU over ${s} s, schedstat (ms)`, r.daemon.cpuNsMs],
        [`idle: daemon ctx switches over ${s} s, all threads`, r.daemon.ctxAll],
        [`idle: daemon start, ${r.params.jobs} jobs (ms)`, r.startMs],
      ];
    },
    check: (r) => (r.window.runs ? `${r.window.runs} runs during the idle window` : null),
  },
  latency: {
    args: ['--probe', 'sh', '--runs', quick ? '10' : '30'],
    figures: (r) => {
      const p = r.results[0];
      return [
        ['latency: instant -> spawn p50 (ms)', p.spawn.p50],
        ['latency: instant -> spawn p99 (ms)', p.spawn.p99],
        ['latency: instant -> first instruction p50 (ms)', p.first.p50],
        ['latency: instant -> first instruction p99 (ms)', p.first.p99],
        ['latency: daemon CPU per run (ms)', p.daemon.cpuMsPerRun],
        ['latency: reference timer lateness p99 (ms, machine noise)', p.reference.p99],
      ];
    },
    check: (r) => {
      const p = r.results[0];
      const bad = Object.entries(p.outcomes).filter(([o]) => o !== 'ok');
      return bad.length || p.skippedInstants || p.missingFirstInstruction
        ? `outcomes ${JSON.stringify(p.outcomes)}, ${p.skippedInstants} instants skipped, ${p.missingFirstInstruction} first instructions missing`
        : null;
    },
  },
  throughput: {
    args: ['--levels', '1,10,100', '--runs', quick ? '100' : '300', '--skip-ceiling'],
    figures: (r) =>
      r.results.flatMap((x) => [
        [`throughput: ${x.k} in flight, runs/s`, x.nightshift.perSecond, true],
        [`throughput: ${x.k} in flight, daemon CPU per run (ms)`, x.nightshift.daemonCpuMsPerRun],
      ]),
    check: (r) => {
      const bad = r.results.filter((x) => !x.nightshift.match || x.nightshift.errors);
      return bad.length
        ? bad.map((x) => `k=${x.k}: rows/logs ${JSON.stringify(x.nightshift.check)}, ${x.nightshift.errors} errors`).join('; ')
        : null;
    },
  },
  scale: {
    args: ['--sizes', String(scaleJobs), '--validations', quick ? '1' : '2', '--reloads', quick ? '1' : '3'],
    figures: (r) => {
      const x = r.results[0];
      return [
        [`scale[${kJobs}]: validate wall (ms)`, x.validate.runs.map((v) => v.wallMs)],
        [`scale[${kJobs}]: validate CPU (ms)`, x.validate.runs.map((v) => v.cpuMs)],
        [`scale[${kJobs}]: validate peak RSS (MB)`, x.validate.runs.map((v) => mb(v.peakKB))],
        [`scale[${kJobs}]: daemon start, fresh state (ms)`, x.startFresh.ms],
        [`scale[${kJobs}]: daemon start, existing state (ms)`, x.startExisting.ms],
        [`scale[${kJobs}]: daemon RSS 1 s after start (MB)`, x.startFresh.rssMB],
        [`scale[${kJobs}]: daemon peak RSS (MB)`, Math.max(x.startFresh.hwmMB, x.startExisting.hwmMB)],
        [`scale[${kJobs}]: reload one file, write (ms)`, x.reloadWrite.each.map((e) => e.ms)],
        [`scale[${kJobs}]: reload one file, rename (ms)`, x.reloadRename.each.map((e) => e.ms)],
        [`scale[${kJobs}]: daemon stop (ms)`, x.startFresh.stop.stopMs],
      ];
    },
    check: (x0) => {
      const x = x0.results[0];
      const bad = [];
      if (!x.validate.ok) bad.push('validate not ok');
      if (x.startFresh.problems) bad.push(`${x.startFresh.problems} spec problems`);
      if (x.reloadWrite.failed || x.reloadRename.failed) bad.push(`${x.reloadWrite.failed + x.reloadRename.failed} reloads not seen`);
      if (x.runsDuringBench) bad.push(`${x.runsDuringBench} runs during the bench`);
      return bad.length ? bad.join(', ') : null;
    },
  },
};

const only = values.only ? values.only.split(',') : Object.keys(BENCHES);
for (const b of only) if (!BENCHES[b]) throw new Error(`--only: unknown bench ${b} (known: ${Object.keys(BENCHES).join(', ')})`);

// ---------------------------------------------------------------- running one bench

const LOG_DIR = join(OUT_DIR, 'ab');
let current = null;
let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    // The bench stops its own daemons on SIGTERM; pass it on and let it finish.
    stopping = true;
    if (current) current.kill('SIGTERM');
    else process.exit(130);
  });
}

/** Runs `node bench/NAME.mjs --dist DIST --json ARGS`; resolves with its JSON result (the last line of stdout). */
function runBench(name, build, logFile) {
  const args = [join(BENCH_DIR, `${name}.mjs`), '--dist', build.dist, '--json', ...BENCHES[name].args];
  return new Promise((resolvePromise) => {
    const t0 = performance.now();
    let out = '';
    let err = '';
    current = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    current.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    current.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    current.once('close', (code, signal) => {
      current = null;
      const seconds = (performance.now() - t0) / 1000;
      writeFileSync(
        logFile,
        `$ node ${args.map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}\n${out}${err ? `\n--- stderr\n${err}` : ''}\nexit ${code ?? signal}, ${round(seconds, 1)} s\n`,
      );
      let result = null;
      const last = out.trimEnd().split('\n').pop() ?? '';
      try {
        if (last.startsWith('{')) result = JSON.parse(last);
      } catch {
        // reported below
      }
      const error =
        code !== 0 || !result
          ? `exit ${code ?? signal}${result ? '' : ', no JSON result'}: ${(err || out).trim().split('\n').slice(-3).join(' | ')}`
          : null;
      resolvePromise({ result, error, seconds });
    });
  });
}

// ---------------------------------------------------------------- main

const builds = { before: buildOf('before', values.before), after: buildOf('after', values.after) };
const machine = machineInfo({ dist: builds.after.dist });
console.log(`== ab: ${only.join(', ')}; ${rounds} round(s), each bench once per build per round, alternating${quick ? ' (--quick)' : ''}`);
printMachine(machine);
for (const b of Object.values(builds)) console.log(`${b.label.padEnd(6)}: ${b.dist}  (${b.head ?? 'not a git checkout'})`);
for (const name of only) console.log(`  ${name}: node bench/${name}.mjs --dist DIST --json ${BENCHES[name].args.join(' ')}`);

rmSync(LOG_DIR, { recursive: true, force: true });
mkdirSync(LOG_DIR, { recursive: true });
const samples = { before: new Map(), after: new Map() }; // figure -> numbers
const higherBetter = new Set();
const order = []; // figure names in first-seen order
const problems = [];
const tStart = performance.now();

for (let r = 1; r <= rounds && !stopping; r++) {
  for (const name of only) {
    const seq = r % 2 === 1 ? ['before', 'after'] : ['after', 'before'];
    for (const k of seq) {
      if (stopping) break;
      const logFile = join(LOG_DIR, `${r}-${name}-${k}.log`);
      const res = await runBench(name, builds[k], logFile);
      let note = '';
      if (res.error) {
        problems.push(`round ${r} ${name} ${k}: ${res.error} (${logFile})`);
        note = `FAILED: ${res.error}`;
      } else {
        for (const [fig, v, higher] of BENCHES[name].figures(res.result)) {
          if (!samples.before.has(fig)) {
            samples.before.set(fig, []);
            samples.after.set(fig, []);
            order.push(fig);
          }
          if (higher) higherBetter.add(fig);
          for (const x of [v].flat()) if (num(x) !== null) samples[k].get(fig).push(x);
        }
        const c = BENCHES[name].check(res.result);
        if (c) {
          problems.push(`round ${r} ${name} ${k}: ${c} (${logFile})`);
          note = `CHECK: ${c}`;
        }
      }
      console.log(`[round ${r}/${rounds}] ${name.padEnd(10)} ${k.padEnd(6)} ${round(res.seconds, 1)} s${note ? `  ${note}` : ''}`);
    }
  }
}
const totalS = (performance.now() - tStart) / 1000;

// ---------------------------------------------------------------- the table

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return null;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const digits = (x) => (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2);
const fmt = (x) => (x === null ? 'n/a' : round(x, digits(x)).toFixed(digits(x)));
const cell = (xs) => {
  if (!xs.length) return 'n/a';
  const m = median(xs);
  return xs.length > 1 ? `${fmt(m)} (${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))})` : fmt(m);
};
const rows = order.map((fig) => {
  const b = samples.before.get(fig);
  const a = samples.after.get(fig);
  const mb0 = median(b);
  const ma = median(a);
  let change = 'n/a';
  if (mb0 !== null && ma !== null) {
    change =
      mb0 === 0 ? (ma === 0 ? '0%' : `+${fmt(ma)}`) : `${ma >= mb0 ? '+' : ''}${round((100 * (ma - mb0)) / Math.abs(mb0), 1).toFixed(1)}%`;
    // Every sample of one build beyond every sample of the other: say which way.
    const higher = higherBetter.has(fig);
    if (b.length > 1 && a.length > 1) {
      if (Math.min(...a) > Math.max(...b)) change += higher ? ' better' : ' worse';
      else if (Math.max(...a) < Math.min(...b)) change += higher ? ' worse' : ' better';
    }
  }
  return { figure: `${fig}${higherBetter.has(fig) ? ' [higher is better]' : ''}`, before: cell(b), after: cell(a), change };
});

console.log(`\nbefore: ${builds.before.dist}  (${builds.before.head ?? '?'})`);
console.log(`after:  ${builds.after.dist}  (${builds.after.head ?? '?'})`);
console.log(
  `medians over ${rounds} round(s), (min-max) of the samples; "worse"/"better": every sample of one build beyond every sample of the other`,
);
console.log(`(validate and reload figures pool every sample of every round)\n`);
console.log(table(rows, ['figure', 'before', 'after', 'change']));
console.log(
  `\ntotal ${round(totalS / 60, 1)} min; load average at the end ${machineInfo({ dist: builds.after.dist }).loadavg.join(' ')}; logs in ${LOG_DIR}`,
);
if (problems.length) console.log(`\nPROBLEMS:\n  ${problems.join('\n  ')}`);

const path = join(OUT_DIR, 'ab.json');
writeFileSync(
  path,
  `${JSON.stringify(
    {
      bench: 'ab',
      command: `node bench/ab.mjs ${process.argv.slice(2).join(' ')}`,
      machine,
      builds,
      rounds,
      args: Object.fromEntries(only.map((n) => [n, BENCHES[n].args])),
      totalS: round(totalS, 1),
      figures: order.map((fig) => ({
        figure: fig,
        higherBetter: higherBetter.has(fig),
        before: samples.before.get(fig),
        after: samples.after.get(fig),
      })),
      table: rows,
      problems,
    },
    null,
    2,
  )}\n`,
);
console.log(`all samples written to ${path}`);
process.exitCode = problems.length ? 1 : 0;
