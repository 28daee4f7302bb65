#!/usr/bin/env node
// The heal loop's own overhead, in a real daemon: a job hangs while a lock file exists (timeout 1 s,
// killGrace 200 ms) and otherwise succeeds at once; an auto rule clears the lock with a command and
// verifies with a rerun probe. Each trial creates the lock, runs the job (control socket, like
// `nightshift run export`), and waits for the attempt's outcome (fixed-verified). From SQLite:
//
//   total     = attempt ended_at - alert opened_at
//   fix own   = the fix command's own run time, measured inside the command: the rule runs a bash
//               script that records $EPOCHREALTIME first and last (so bash's fork+exec+startup is
//               NOT in "fix own": it counts as overhead — an upper bound on the loop's overhead)
//   probe own = the probe run's ended_at - started_at (runs table, trigger 'probe')
//   hung dies = the hung run's ended_at - alert opened_at (waiting out SIGTERM/killGrace: the job's
//               own time, not the loop's)
//   overhead  = total - fix own - probe own - hung dies                           (the figure)
//   critical  = total - |[alert, hung end] ∪ [fix start, fix end] ∪ [probe start, probe end]|
//               (the same, but time the heal spent while the hung run was still dying is not
//               subtracted twice: the heal's snapshot and fix run in parallel with that death)
//
// Per trial it also prints the gap alert → attempt created and each step's duration (heal_steps).
// The build is copied to a private install first (as in heal-fault.mjs) unless --shared-dist.
//   node bench/heal.mjs [--trials N] [--quick] [--keep] [--dist DIR] [--shared-dist]
import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { figure, flags, machineInfo, printFigures, printMachine, round, runMain, sleep, startDaemon, stats, table, tempDir, writeResult, postControl, privateInstall } from './lib.mjs';

const values = flags({ trials: { type: 'string' }, 'shared-dist': { type: 'boolean', default: false } });
const trials = Number(values.trials ?? (values.quick ? 5 : 20));
const TARGET_MS = 200;


/** Length of the union of [a, b] intervals (ms). */
function unionLength(intervals) {
  const s = intervals.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let total = 0;
  let cur = null;
  for (const [a, b] of s) {
    if (!cur || a > cur[1]) {
      if (cur) total += cur[1] - cur[0];
      cur = [a, b];
    } else cur[1] = Math.max(cur[1], b);
  }
  if (cur) total += cur[1] - cur[0];
  return total;
}

const STEPS = ['kill-switch', 'containment', 'pre-check', 'rule', 'cap', 'autonomy', 'guard', 'snapshot', 'fix', 'probe', 'verdict'];

await runMain(values, async () => {
  const machine = machineInfo(values);
  printMachine(machine);
  // A private copy of the build: the protected zone includes the install's dist/, and a rebuild of
  // the shared dist/ during a trial would turn that heal into a protected-zone emergency.
  values.dist = privateInstall(values, 'heal-install');
  const home = tempDir('heal');
  const state = join(home, 'state');
  const work = tempDir('heal-work'); // the rule's touches: outside the home (the protected zone)
  const aside = tempDir('heal-timing'); // the fix script: outside the touches
  // The timing file lies in the touches: a contained fix can write nothing else. It is a few bytes
  // more in each snapshot, and a verified fix keeps it (nothing is rolled back).
  for (const d of ['jobs', 'rules', 'protected']) mkdirSync(join(home, d), { recursive: true });
  writeFileSync(join(home, 'protected', 'policy.yaml'), 'timezone: UTC\n');
  const lock = join(work, 'export.lock');
  const timing = join(work, 'fix-times');
  const fixScript = join(aside, 'clear-lock.sh');
  writeFileSync(
    fixScript,
    `#!/bin/bash\nt0=$EPOCHREALTIME\nrm -f ${lock}\nt1=$EPOCHREALTIME\necho "$NIGHTSHIFT_HEAL_ATTEMPT $t0 $t1" >> ${timing}\n`,
  );
  chmodSync(fixScript, 0o755);
  writeFileSync(
    join(home, 'jobs', 'export.yaml'),
    `command: ["sh", "-c", "if [ -e ${lock} ]; then echo lock held; sleep 30; fi; echo exported 5 orders"]\ntimeout: 1s\nkillGrace: 200ms\nexpect: { outputMatches: "exported [1-9]" }\n`,
  );
  writeFileSync(
    join(home, 'rules', 'clear-lock.yaml'),
    `description: A hung export holds a stale lock; clear it and run again.\nmatch: { job: export, kind: [hung], output: "lock held" }\nautonomy: auto\naction:\n  command: ["${fixScript}"]\n  touches: ["${work}/"]\n  timeout: 10s\nprobe: { rerun: true }\n`,
  );

  const daemon = startDaemon(values, { home, state });
  await daemon.waitFor((e) => e.obj?.msg === 'nightshift started', { timeoutMs: 60_000, what: 'start' });
  const sock = join(state, 'nightshift.sock');
  const db = new Database(join(state, 'nightshift.db'), { readonly: true, fileMustExist: true });
  const q = (sql, ...p) => db.prepare(sql).all(...p);
  const q1 = (sql, ...p) => db.prepare(sql).get(...p);

  const rows = [];
  const problems = [];
  const t0 = performance.now();
  for (let i = 0; i < trials; i++) {
    writeFileSync(lock, `pid ${4000 + i}\n`);
    const from = daemon.mark();
    const reply = postControl(sock, '/run/export');
    const done = await daemon.waitFor((e) => typeof e.obj?.msg === 'string' && e.obj.msg.startsWith('heal ') && e.obj.heal !== undefined && e.obj.outcome !== undefined, {
      from,
      timeoutMs: 30_000,
      what: `trial ${i + 1}: the heal's outcome`,
    });
    await reply;
    // The verdict's log line is written inside its SQLite transaction, a moment before the commit.
    let a = q1('SELECT * FROM heal_attempts WHERE id = ?', done.obj.heal);
    for (let w = 0; a.outcome === null && w < 200; w++) {
      await sleep(10);
      a = q1('SELECT * FROM heal_attempts WHERE id = ?', done.obj.heal);
    }
    const alert = q1('SELECT * FROM alerts WHERE id = ?', a.alert_id);
    const hung = q1('SELECT * FROM runs WHERE id = ?', alert.run_id);
    const probe = q1("SELECT * FROM runs WHERE job = 'export' AND trigger = 'probe' AND created_at >= ? ORDER BY id LIMIT 1", a.created_at);
    const steps = q('SELECT * FROM heal_steps WHERE attempt_id = ? ORDER BY id', a.id);
    const line = existsSync(timing) ? readFileSync(timing, 'utf8').trim().split('\n').find((l) => l.split(' ')[0] === String(a.id)) : undefined;
    if (a.outcome !== 'fixed-verified' || !probe || !line || !hung) {
      problems.push({ trial: i + 1, attempt: a.id, outcome: a.outcome, detail: a.detail, probe: !!probe, fixTiming: !!line });
      console.log(`trial ${i + 1}: attempt #${a.id} ${a.outcome}: ${a.detail}`);
      if (existsSync(lock)) break; // the next trial would not be a fresh incident
      continue;
    }
    const [, s0, s1] = line.split(' ');
    const fixStart = Number(s0) * 1000;
    const fixEnd = Number(s1) * 1000;
    const total = a.ended_at - alert.opened_at;
    const fixOwn = fixEnd - fixStart;
    const probeOwn = probe.ended_at - probe.started_at;
    const hungDies = Math.max(0, hung.ended_at - alert.opened_at);
    const stepMs = Object.fromEntries(steps.map((s) => [s.step, s.ended_at === null ? null : s.ended_at - s.started_at]));
    const union = unionLength([
      [alert.opened_at, Math.min(hung.ended_at, a.ended_at)],
      [Math.max(fixStart, alert.opened_at), Math.min(fixEnd, a.ended_at)],
      [Math.max(probe.started_at, alert.opened_at), Math.min(probe.ended_at, a.ended_at)],
    ]);
    rows.push({
      trial: i + 1,
      attempt: a.id,
      total,
      hungDies,
      fixOwn: round(fixOwn, 2),
      fixStep: stepMs.fix,
      probeOwn,
      probeStep: stepMs.probe,
      overhead: round(total - fixOwn - probeOwn - hungDies, 2),
      critical: round(total - union, 2),
      queue: a.created_at - alert.opened_at,
      ...Object.fromEntries(STEPS.map((s) => [`step:${s}`, stepMs[s] ?? null])),
      steps: steps.map((s) => s.step).join(','),
    });
    await sleep(50); // let the verdict's clean-up (snapshot drop) finish before the next incident
  }
  const wallS = round((performance.now() - t0) / 1000, 1);
  db.close();
  await daemon.stop();

  console.log(`\n${rows.length} trials (ms; "fix own" measured inside the fix command, bash start-up excluded):`);
  console.log(
    table(
      rows.map((r) => ({ trial: r.trial, heal: `#${r.attempt}`, total: r.total, 'hung dies': r.hungDies, 'fix own': r.fixOwn, 'fix step': r.fixStep, 'probe own': r.probeOwn, 'probe step': r.probeStep, queue: r.queue, snapshot: r['step:snapshot'], overhead: r.overhead, critical: r.critical })),
    ),
  );
  const ov = stats(rows.map((r) => r.overhead), 1);
  const cr = stats(rows.map((r) => r.critical), 1);
  const tot = stats(rows.map((r) => r.total), 1);
  // the first heal of a daemon runs cold code (JIT, first use of the snapshot and zone modules)
  const warm = rows.filter((r) => r.trial > 1);
  const ovWarm = stats(warm.map((r) => r.overhead), 1);
  const totWarm = stats(warm.map((r) => r.total), 1);
  const perStep = STEPS.map((s) => ({ step: s, ...stats(rows.map((r) => r[`step:${s}`]), 1) }));
  console.log('\ndefinitions:');
  console.log('  total    = heal_attempts.ended_at - alerts.opened_at');
  console.log("  overhead = total - fix own (inside the script) - probe run (runs.ended_at - started_at) - hung run's death (its ended_at - alert opened_at)");
  console.log('  critical = total - the union of those three intervals (no double subtraction when the fix runs while the hung run is still dying)');
  console.log('\nsummary (ms):');
  console.log(
    table([
      { what: 'overhead', ...ov },
      { what: 'critical-path overhead', ...cr },
      { what: 'total (alert → fixed-verified)', ...tot },
      { what: 'overhead without trial 1 (cold)', ...ovWarm },
      { what: 'total without trial 1 (cold)', ...totWarm },
    ]),
  );
  console.log('\nstep durations from heal_steps (ms; "probe" includes waiting for the hung run to end and the probe run; "fix" includes spawning the script):');
  console.log(table([{ step: 'alert → attempt created', ...stats(rows.map((r) => r.queue), 1) }, ...perStep]));
  if (problems.length) console.log(`\nPROBLEMS: ${JSON.stringify(problems, null, 2)}`);
  const figs = [
    figure('heal: overhead beyond fix, probe and the hung run, p95', ov.p95 ?? null, 'ms', TARGET_MS),
    figure('heal: critical-path overhead, p95', cr.p95 ?? null, 'ms', TARGET_MS),
    figure('heal: alert → fixed-verified, p50', tot.p50 ?? null, 'ms'),
    figure('heal: trials not fixed-verified', problems.length, '', 0),
  ];
  printFigures(figs);
  const loadEnd = os.loadavg().map((x) => round(x, 2));
  console.log(`\n${trials} trials in ${wallS} s; load average at the end ${loadEnd.join(' ')} (at the start ${machine.loadavg.join(' ')}): other work on the machine shows in these figures`);
  writeResult('heal', {
    bench: 'heal',
    command: `node bench/heal.mjs --trials ${trials}`,
    machine,
    trials,
    wallSeconds: wallS,
    overhead: ov,
    critical: cr,
    total: tot,
    withoutFirst: { overhead: ovWarm, total: totWarm },
    loadEnd,
    steps: perStep,
    rows,
    problems,
    figures: figs,
  });
});
