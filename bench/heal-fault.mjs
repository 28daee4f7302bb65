#!/usr/bin/env node
// Fault run of the heal loop: many heals, the daemon killed with SIGKILL at random moments.
//
// A job fails (exit 1) until a marker file says the tree is fixed. An auto rule's fix is a script
// that changes a 20-file tree in steps with short sleeps between (rewrites and appends, deletions,
// a deleted folder, new files in new folders, a chmod of a file and of a folder, a link retargeted,
// a rename) and writes the marker LAST; its probe checks the marker (so it fails at pre-check and
// passes after a complete fix). Each trial resets the tree to its pre-fix state, runs the job
// through the control socket, and (in most trials) sleeps a random time within the heal's window
// and kills the daemon with SIGKILL; then starts it again and waits until nothing is in flight.
// It checks:
//   - the tree is exactly the pre-fix or exactly the post-fix state (path → type, mode, sha256 or
//     link target; walked here, independent of src/heal/snapshot.ts) — never a mix;
//   - it agrees with the record: alert resolved fixed-verified ⇔ post-fix state;
//   - every heal attempt seen in SQLite before the kill (read just before and just after it) still
//     exists after the restart, with a final outcome, and a final outcome never changes later;
//     at the end of each state folder, `nightshift heals --json --limit 100000` lists the same ids;
//   - no fix process is left running and no snapshot is left behind;
//   - a run recorded as failed always gets its alert (also when the kill came right after the run);
//   - the fix of an attempt cut by the kill (it runs in its own process group, so it outlives the
//     daemon) never writes after the restarted daemon recorded that attempt's rollback. The fix
//     logs each step with a time to a file outside the tree; a share of trials (--slow-share) use
//     a fix that sleeps 0.5 s between steps, longer than a restart, so that the restarted daemon
//     meets a fix still running and must stop it before it restores the tree.
// The pre-fix and post-fix hashes are computed up front (the fix script applied once to a copy).
//
// The build is copied to a private install (dist/, package.json, node_modules as a link) unless
// --shared-dist: the protected zone includes the install's dist/, and someone rebuilding the
// shared dist/ during the run would (rightly) turn heals into protected-zone emergencies.
//
//   node bench/heal-fault.mjs [--trials N] [--seed S] [--no-kill-share F] [--slow-share F] [--window MS] [--slow-window MS]
//                             [--quick] [--keep] [--dist DIR] [--shared-dist]
// (--window / --slow-window: the kill delay ranges; by default calibrated by trials 1 and 2, which are never killed)
import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { figure, flags, machineInfo, printFigures, printMachine, rng, round, runCli, runMain, sleep, startDaemon, stats, table, tempDir, writeResult, postControl, hashOf, privateInstall, treeMap } from './lib.mjs';

const values = flags({
  trials: { type: 'string' },
  seed: { type: 'string' },
  'no-kill-share': { type: 'string' },
  'slow-share': { type: 'string' },
  window: { type: 'string' },
  'slow-window': { type: 'string' },
  'shared-dist': { type: 'boolean', default: false },
});
const trials = Number(values.trials ?? (values.quick ? 20 : 200));
const seed = Number(values.seed ?? 20240607);
const noKillShare = Number(values['no-kill-share'] ?? 0.1);
/** Share of trials whose fix sleeps SLOW_SLEEP between steps (longer than a daemon restart). */
const slowShare = Number(values['slow-share'] ?? 0.2);
const FAST_SLEEP = '0.03';
const SLOW_SLEEP = '0.5';
const SETTLE_TIMEOUT_MS = 30_000;
/** Outcomes after which an incident waits for a person (src/heal/healer.ts WAITING): nothing more happens by itself. */
const WAITING = new Set(['needs-human', 'proposed', 'awaiting-approval', 'blocked', 'denied', 'expired', 'refused', 'rollback-failed']);

/** Never rejects: a daemon killed mid-request is part of the experiment. */
const call = (socketPath, path) => postControl(socketPath, path).catch((e) => `error ${e.code ?? e.message}`);

// ---------------------------------------------------------------- the tree

/** The pre-fix tree: 20 files in a/, b/, c/, c/sub/, one executable, one 0640, one relative link. */
function writePreTree(root) {
  rmSync(root, { recursive: true, force: true });
  for (const d of ['a', 'b', 'c/sub']) mkdirSync(join(root, d), { recursive: true });
  chmodSync(root, 0o755);
  for (const d of ['a', 'b', 'c', 'c/sub']) chmodSync(join(root, d), 0o755);
  const files = [
    ...Array.from({ length: 7 }, (_, i) => `a/f${String(i + 1).padStart(2, '0')}`),
    ...Array.from({ length: 6 }, (_, i) => `b/f${String(i + 8).padStart(2, '0')}`),
    ...Array.from({ length: 4 }, (_, i) => `c/sub/f${String(i + 14).padStart(2, '0')}`),
    'c/f18',
    'c/f19',
  ];
  for (const [i, f] of files.entries()) {
    const p = join(root, f);
    writeFileSync(p, `${f}: original content ${i}\n${'x'.repeat(i * 37)}\n`);
    chmodSync(p, 0o644);
  }
  writeFileSync(join(root, 'b', 'run.sh'), '#!/bin/sh\necho original\n');
  chmodSync(join(root, 'b', 'run.sh'), 0o755);
  chmodSync(join(root, 'c', 'f18'), 0o640);
  symlinkSync('sub/f14', join(root, 'c', 'latest'));
}

/**
 * The fix, in steps with sleeps between; the marker comes last. Argument: the tree. The sleep
 * between steps is read from a file outside the tree (fast or slow trials); each step appends
 * "ATTEMPT STEP TIME" to a progress file outside the tree, so that a fix left running by a killed
 * daemon can be seen to have been stopped (or not) before the restarted daemon rolled it back.
 */
const fixScript = (speedFile, progressFile) => `#!/bin/bash
set -e
T="$1"
S=$(cat "${speedFile}" 2>/dev/null || echo 0.03)
step() { echo "\${NIGHTSHIFT_HEAL_ATTEMPT:-none} $1 $EPOCHREALTIME" >> "${progressFile}"; }
step 0
printf 'fixed content 1\\n' > "$T/a/f01"
printf 'appended by the fix\\n' >> "$T/a/f02"
step 1; sleep "$S"
rm -f "$T/b/f08" "$T/b/f09"
rm -rf "$T/c/sub"
step 2; sleep "$S"
mkdir -p "$T/d/e"
printf 'new 1\\n' > "$T/d/new1"
printf 'new 2\\n' > "$T/d/e/new2"
step 3; sleep "$S"
chmod 600 "$T/a/f03"
chmod 700 "$T/b"
ln -sfn ../a/f01 "$T/c/latest"
step 4; sleep "$S"
mv "$T/b/f10" "$T/b/f10.renamed"
printf '#!/bin/sh\\necho fixed\\n' > "$T/b/run.sh"
printf 'rewritten\\n' > "$T/c/f19"
step 5; sleep "$S"
printf 'fixed\\n' > "$T/.fixed"
step 6
`;
const LAST_STEP = 6;


function diffMaps(a, b) {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => a[k] !== b[k]).map((k) => ({ path: k, expected: a[k] ?? '(absent)', found: b[k] ?? '(absent)' }));
}

// ---------------------------------------------------------------- processes

/** Processes (other than us) whose command line mentions the fix script. */
function fixProcesses(fixPath) {
  const found = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes(fixPath)) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') continue;
      found.push({ pid: Number(pid), cmd: cmd.split('\0').join(' ').trim() });
    } catch {
      // gone
    }
  }
  return found;
}

// ---------------------------------------------------------------- SQLite (read-only, opened per read)

function readDb(state, fn) {
  const path = join(state, 'nightshift.db');
  if (!existsSync(path)) return null;
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

const readAttempts = (state) => readDb(state, (db) => db.prepare('SELECT id, alert_id, attempt, step, outcome, detail, created_at, ended_at FROM heal_attempts ORDER BY id').all()) ?? [];

// ---------------------------------------------------------------- main

await runMain(values, async () => {
  const machine = machineInfo(values);
  printMachine(machine);
  const r = rng(seed);

  // a private install, so that a rebuild of the shared dist/ cannot touch the protected zone mid-run
  values.dist = privateInstall(values, 'heal-fault-install');
  console.log(`build for the run: ${values.dist} (copy of ${machine.dist} unless --shared-dist)`);

  const home = tempDir('heal-fault');
  const work = tempDir('heal-fault-work');
  const tree = join(work, 'tree');
  const fixPath = join(work, 'fix-tree.sh');
  const speedFile = join(work, 'fix-sleep');
  const progressFile = join(work, 'fix-progress');
  writeFileSync(speedFile, FAST_SLEEP);
  writeFileSync(fixPath, fixScript(speedFile, progressFile));
  chmodSync(fixPath, 0o755);
  for (const d of ['jobs', 'rules', 'protected']) mkdirSync(join(home, d), { recursive: true });
  writeFileSync(join(home, 'protected', 'policy.yaml'), 'timezone: UTC\n');
  writeFileSync(join(home, 'jobs', 'sync.yaml'), `command: ["sh", "-c", "test -e ${tree}/.fixed || { echo tree not fixed; exit 1; }; echo synced"]\ntimeout: 30s\n`);
  writeFileSync(
    join(home, 'rules', 'fix-tree.yaml'),
    `description: The tree is broken; rewrite it.\nmatch: { job: sync, kind: [failed] }\nautonomy: auto\naction:\n  command: ["${fixPath}", "${tree}"]\n  touches: ["${tree}/"]\n  timeout: 30s\nprobe: { command: ["test", "-e", "${tree}/.fixed"] }\n`,
  );

  // the two legal states
  writePreTree(tree);
  const PRE = treeMap(tree);
  const preHash = hashOf(PRE);
  const scratch = join(work, 'post-copy');
  writePreTree(scratch);
  execFileSync(fixPath, [scratch]);
  const POST = treeMap(scratch);
  const postHash = hashOf(POST);
  rmSync(scratch, { recursive: true, force: true });
  console.log(`tree: ${Object.keys(PRE).length} paths before the fix, ${Object.keys(POST).length} after; pre ${preHash.slice(0, 12)}, post ${postHash.slice(0, 12)}`);

  // ---- daemon handling
  let stateN = 0;
  let state = null;
  let daemon = null;
  let starts = 0;
  const startMs = [];
  const errorLines = [];
  const newState = () => {
    state = join(home, `state-${++stateN}`);
    return state;
  };
  const start = async () => {
    const t = performance.now();
    daemon = startDaemon(values, { home, state, label: `daemon (${state})` });
    starts++;
    const d = daemon;
    await d.waitFor((e) => e.obj?.msg === 'nightshift started', { timeoutMs: 60_000, what: 'nightshift started' });
    startMs.push(performance.now() - t);
  };
  const collectErrors = (d) => {
    for (const l of d.lines) if (l.obj && (l.obj.level === 'error' || l.obj.level === 'fatal')) errorLines.push({ state, line: l.raw.slice(0, 600) });
  };
  const stop = async () => {
    if (!daemon) return;
    await daemon.stop();
    collectErrors(daemon);
    daemon = null;
  };

  /** Every attempt id ever seen in this state folder, with the final outcome once it had one. */
  let seen = new Map();
  const lost = [];
  const changedOutcomes = [];
  const healsCheck = [];
  const checkSeen = (final, trial) => {
    const byId = new Map(final.map((a) => [a.id, a]));
    for (const [id, prev] of seen) {
      const now = byId.get(id);
      if (!now) lost.push({ trial, state, id, before: prev });
      else if (prev.outcome !== null && now.outcome !== prev.outcome) changedOutcomes.push({ trial, state, id, before: prev.outcome, after: now.outcome });
    }
    for (const a of final) seen.set(a.id, a);
  };
  const note = (list) => {
    for (const a of list) if (!seen.has(a.id) || seen.get(a.id).outcome === null) seen.set(a.id, a);
  };

  /** `nightshift heals --json --limit 100000` must list exactly the ids SQLite holds. */
  const cliCrossCheck = async (trial) => {
    const res = await runCli(values, ['heals', '--json', '--limit', '100000'], { home, state });
    let ids = null;
    try {
      ids = JSON.parse(res.stdout).attempts.map((a) => a.id);
    } catch (err) {
      healsCheck.push({ trial, state, ok: false, why: `heals --json exit ${res.code}: ${String(err)}; ${res.stderr.slice(0, 300)}` });
      return;
    }
    const db = readAttempts(state).map((a) => a.id);
    const missing = [...seen.keys()].filter((id) => !ids.includes(id));
    const ok = missing.length === 0 && ids.length === db.length;
    healsCheck.push({ trial, state, ok, cliIds: ids.length, dbIds: db.length, seen: seen.size, missing });
  };

  /** After a restart (or without a kill): until nothing is in flight and nothing more will happen by itself. */
  const settle = async (tTrig, killed) => {
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    let stableSince = null;
    for (;;) {
      const s = readDb(state, (db) => {
        const inflight = db.prepare('SELECT count(*) AS n FROM heal_attempts WHERE outcome IS NULL').get().n;
        const run = db.prepare("SELECT id, ended_at, outcome FROM runs WHERE job = 'sync' AND trigger = 'manual' AND created_at >= ? ORDER BY id DESC LIMIT 1").get(tTrig - 5);
        const alert = db.prepare("SELECT id FROM alerts WHERE fingerprint = 'sync:failed' AND resolved_at IS NULL").get();
        const last = alert ? db.prepare('SELECT outcome FROM heal_attempts WHERE alert_id = ? ORDER BY id DESC LIMIT 1').get(alert.id) : null;
        return { inflight, run, alert, last };
      });
      const runDone = s.run ? s.run.ended_at !== null : killed; // a kill before the run was recorded: no run
      const alertDone = !s.alert || (s.last && s.last.outcome !== null && WAITING.has(s.last.outcome));
      const quiet = s.inflight === 0 && runDone && alertDone;
      if (quiet) {
        stableSince ??= Date.now();
        if (Date.now() - stableSince >= 150) return { ok: true, ...s };
      } else stableSince = null;
      if (Date.now() > deadline) return { ok: false, ...s };
      await sleep(25);
    }
  };

  // ---- trials
  newState();
  await start();
  const windows = { fast: values.window ? Number(values.window) : null, slow: values['slow-window'] ? Number(values['slow-window']) : null };
  const rows = [];
  const mixes = [];
  const disagreements = [];
  const stuck = [];
  const leftovers = [];
  const snapLeft = [];
  const lateWrites = [];
  const unalerted = [];
  const outcomes = {};
  const killedAt = {};
  const trialKinds = {};
  const orphanKinds = {};
  const t0 = performance.now();
  let kills = 0;
  let resets = 0;

  const progress = () => {
    if (!existsSync(progressFile)) return [];
    return readFileSync(progressFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => {
      const [id, step, at] = l.split(' ');
      return { id, step: Number(step), at: Number(at) * 1000 };
    });
  };

  for (let i = 1; i <= trials; i++) {
    writePreTree(tree);
    const before = hashOf(treeMap(tree));
    if (before !== preHash) throw new Error(`trial ${i}: the tree could not be reset to its pre-fix state`);
    const known = new Set(readAttempts(state).map((a) => a.id));
    // trials 1 (fast fix) and 2 (slow fix) are never killed: they calibrate the windows (trigger → settled)
    const speed = i === 1 ? 'fast' : i === 2 ? 'slow' : r() < slowShare ? 'slow' : 'fast';
    const kill = i > 2 && r() >= noKillShare;
    const delay = kill ? Math.round(r() * windows[speed]) : null;
    writeFileSync(speedFile, speed === 'slow' ? SLOW_SLEEP : FAST_SLEEP);
    const tTrig = Date.now();
    const tp = performance.now();
    const reply = call(join(state, 'nightshift.sock'), '/run/sync');
    let atKill = null;
    let openAtKill = null;
    let fixAliveAfterKill = 0;
    let killWall = null;
    let restartWall = null;
    if (kill) {
      await sleep(delay);
      const pre = readAttempts(state);
      killWall = Date.now();
      process.kill(daemon.pid, 'SIGKILL');
      await daemon.exited;
      collectErrors(daemon);
      const post = readAttempts(state);
      note(pre);
      note(post);
      const mine = post.filter((a) => !known.has(a.id));
      openAtKill = mine.find((a) => a.outcome === null) ?? null;
      atKill = openAtKill ? openAtKill.step : mine.length ? `after ${mine.at(-1).outcome}` : 'before any attempt';
      killedAt[atKill] = (killedAt[atKill] ?? 0) + 1;
      fixAliveAfterKill = fixProcesses(fixPath).length;
      kills++;
      daemon = null;
      restartWall = Date.now();
      await start();
    }
    await reply;
    const s = await settle(tTrig, kill);
    const took = performance.now() - tp;
    const final = readAttempts(state);
    const mine = final.filter((a) => !known.has(a.id));
    if (windows[speed] === null) {
      // the heal's window: trigger → the attempt's ended_at (SQLite), plus 15 % so that some kills land just after it
      const end = Math.max(...mine.map((a) => a.ended_at ?? 0));
      const span = end > tTrig ? end - tTrig : took;
      windows[speed] = Math.round(span * 1.15);
      console.log(`calibration (trial ${i}, ${speed} fix, no kill): trigger → fixed-verified in ${Math.round(span)} ms; kills land uniformly in [0, ${windows[speed]}] ms after the trigger`);
    }
    const alerts = readDb(state, (db) => db.prepare("SELECT id, resolved_at, resolution FROM alerts WHERE fingerprint = 'sync:failed' AND opened_at >= ? ORDER BY id").all(tTrig - 5));
    const run = readDb(state, (db) => db.prepare("SELECT id, outcome FROM runs WHERE job = 'sync' AND trigger = 'manual' AND created_at >= ? ORDER BY id LIMIT 1").get(tTrig - 5));
    checkSeen(final, i);
    for (const a of mine) outcomes[a.outcome ?? 'in flight'] = (outcomes[a.outcome ?? 'in flight'] ?? 0) + 1;

    // What the fix of the attempt cut by the kill did afterwards (from its progress lines).
    let orphan = null;
    if (openAtKill && ['snapshot', 'fix', 'probe', 'verdict'].includes(openAtKill.step)) {
      const lines = progress().filter((l) => l.id === String(openAtKill.id));
      const closed = final.find((a) => a.id === openAtKill.id);
      const last = lines.at(-1);
      const afterRollback = closed?.ended_at ? lines.filter((l) => l.at > closed.ended_at) : [];
      if (afterRollback.length) {
        orphan = 'WROTE AFTER THE ROLLBACK';
        lateWrites.push({ trial: i, attempt: openAtKill.id, closed, restartWall, lines, afterRollback });
        console.log(`trial ${i}: the fix of attempt #${openAtKill.id} went on writing after its rollback was recorded: ${JSON.stringify(afterRollback)}`);
      } else if (!last) orphan = 'fix had not started';
      else if (last.step === LAST_STEP && last.at <= killWall) orphan = 'fix had finished before the kill';
      else if (last.step === LAST_STEP && last.at <= restartWall) orphan = 'fix finished on its own after the kill, before the restart';
      else if (last.step === LAST_STEP) orphan = 'fix finished on its own during the restart, before the rollback';
      else if (fixAliveAfterKill) orphan = `fix still running at the restart, stopped at step ${last.step}/${LAST_STEP} by the restarted daemon`;
      else orphan = `fix stopped at step ${last.step}/${LAST_STEP} (not running after the kill)`;
      const k = orphan.replace(/step \d\/\d/, 'step k/6');
      orphanKinds[k] = (orphanKinds[k] ?? 0) + 1;
    }

    const map = treeMap(tree);
    const h = hashOf(map);
    const which = h === preHash ? 'pre' : h === postHash ? 'post' : 'MIX';
    if (which === 'MIX') {
      const vsPre = diffMaps(PRE, map);
      const vsPost = diffMaps(POST, map);
      mixes.push({ trial: i, speed, kill, delay, atKill, orphan, attempts: mine, vsPre: vsPre.slice(0, 20), vsPost: vsPost.slice(0, 20) });
      console.log(`trial ${i}: MIX — ${vsPre.length} path(s) differ from pre-fix, ${vsPost.length} from post-fix; attempts ${JSON.stringify(mine)}`);
    }
    const alert = alerts.at(-1);
    const expected = alert?.resolution === 'fixed-verified' ? 'post' : 'pre';
    if (which !== 'MIX' && which !== expected) {
      disagreements.push({ trial: i, tree: which, alert, attempts: mine });
      console.log(`trial ${i}: the tree is ${which}-fix but the record says ${alert ? `alert #${alert.id} ${alert.resolution ?? 'open'}` : 'no alert'}; attempts ${JSON.stringify(mine)}`);
    }
    if (!s.ok) {
      stuck.push({ trial: i, speed, kill, delay, atKill, settle: s, attempts: mine, lastLines: daemon.lines.slice(-15).map((l) => l.raw.slice(0, 400)) });
      console.log(`trial ${i}: NOT SETTLED after ${SETTLE_TIMEOUT_MS} ms: ${JSON.stringify(s)}`);
    }
    const procs = fixProcesses(fixPath);
    if (procs.length) {
      leftovers.push({ trial: i, procs });
      console.log(`trial ${i}: fix process(es) still running after settling: ${JSON.stringify(procs)}`);
    }
    let snaps = [];
    try {
      snaps = readdirSync(join(state, 'snapshots'));
    } catch {
      // none
    }
    const keptForPerson = new Set(final.filter((a) => a.outcome === 'rollback-failed').map((a) => String(a.id)));
    snaps = snaps.filter((n) => !keptForPerson.has(n));
    if (snaps.length) snapLeft.push({ trial: i, snapshots: snaps });

    // A run recorded as failed must become an alert, also when the daemon died right after the run.
    if (run?.outcome === 'failed' && !alert) {
      unalerted.push({ trial: i, delay, atKill, run });
      console.log(`trial ${i}: run #${run.id} is recorded as failed, but no alert was raised, even after the restart (kill ${delay} ms after the trigger)`);
    }
    const what = mine.map((a) => a.outcome ?? 'in flight').join(' → ') || `no attempt (run ${run?.outcome ?? 'not recorded'}, ${alert ? 'alert' : 'no alert'})`;
    const kind = `${kill ? 'killed' : 'not killed'}: ${what} (tree ${which})`;
    trialKinds[kind] = (trialKinds[kind] ?? 0) + 1;
    rows.push({ trial: i, speed, kill, delay, atKill, fixAliveAfterKill, orphan, run: run?.outcome ?? null, tree: which, alert: alert ? alert.resolution ?? 'open' : 'none', attempts: mine.map((a) => `#${a.id}:${a.outcome}`).join(' '), ms: Math.round(took), state: stateN });

    // Next incident must be fresh: an alert left open (or a rule demoted) → a new state folder.
    const demoted = readDb(state, (db) => db.prepare('SELECT count(*) AS n FROM rule_ladder').get().n);
    if (alerts.some((a) => a.resolved_at === null) || demoted > 0 || !s.ok || i === trials) {
      await cliCrossCheck(i);
      await stop();
      if (i < trials) {
        resets++;
        seen = new Map();
        newState();
        await start();
      }
    }
    if (i % 20 === 0) {
      const sec = (performance.now() - t0) / 1000;
      console.log(`… ${i}/${trials} trials, ${kills} kills, ${mixes.length} mixes, ${lost.length} lost, ${stuck.length} stuck, ${Math.round(sec)} s`);
    }
  }
  await stop();
  const wallS = round((performance.now() - t0) / 1000, 1);

  const command = `node bench/heal-fault.mjs --trials ${trials} --seed ${seed} --no-kill-share ${noKillShare} --slow-share ${slowShare} --window ${windows.fast} --slow-window ${windows.slow}${values['shared-dist'] ? ' --shared-dist' : ''}`;
  console.log(`\n${trials} trials, ${kills} kills (SIGKILL), ${starts} daemon starts (start → "nightshift started" p50 ${stats(startMs, 0).p50} ms), ${resets} fresh state folders, ${wallS} s`);
  console.log('\nkilled while the attempt was at step:');
  console.log(table(Object.entries(killedAt).sort((a, b) => b[1] - a[1]).map(([k, n]) => ({ 'at the kill': k, trials: n }))));
  console.log('\nheal attempt outcomes (all attempts of all trials):');
  console.log(table(Object.entries(outcomes).sort((a, b) => b[1] - a[1]).map(([k, n]) => ({ outcome: k, attempts: n }))));
  console.log('\ntrials by what happened:');
  console.log(table(Object.entries(trialKinds).sort((a, b) => b[1] - a[1]).map(([k, n]) => ({ trial: k, n }))));
  console.log('\nthe fix of an attempt cut by the kill (snapshot..verdict), from its progress lines:');
  console.log(table(Object.entries(orphanKinds).sort((a, b) => b[1] - a[1]).map(([k, n]) => ({ 'what the fix did': k, trials: n }))));
  console.log(`fix still running right after the kill: ${rows.filter((x) => x.fixAliveAfterKill > 0).length} trials`);
  console.log(`heals --json cross-checks: ${healsCheck.filter((c) => c.ok).length}/${healsCheck.length} ok${healsCheck.some((c) => !c.ok) ? `: ${JSON.stringify(healsCheck.filter((c) => !c.ok))}` : ''}`);
  console.log(`daemon error log lines: ${errorLines.length}${errorLines.length ? `\n  ${errorLines.slice(0, 10).map((e) => e.line).join('\n  ')}` : ''}`);
  const problems = { mixes, lost, changedOutcomes, disagreements, stuck, leftovers, snapshotsLeft: snapLeft, lateWrites, unalerted };
  for (const [k, v] of Object.entries(problems)) if (v.length) console.log(`\n${k.toUpperCase()} (${v.length}):\n${JSON.stringify(v.slice(0, 5), null, 2)}`);
  const figs = [
    figure('heal-fault: trees neither pre- nor post-fix (mix)', mixes.length, '', 0),
    figure('heal-fault: attempts lost (or outcome changed) after kill -9', lost.length + changedOutcomes.length, '', 0),
    figure('heal-fault: tree disagrees with the alert record', disagreements.length, '', 0),
    figure('heal-fault: trials that did not settle', stuck.length, '', 0),
    figure('heal-fault: fix processes left running / snapshots left', leftovers.length + snapLeft.length, '', 0),
    figure('heal-fault: fixes that wrote after their rollback', lateWrites.length, '', 0),
    figure('heal-fault: failed runs never alerted (kill between the two commits)', unalerted.length, '', 0),
    figure('heal-fault: kills', kills, `of ${trials} trials`),
  ];
  printFigures(figs);
  console.log(`\nreproduce: ${command}`);
  const loadEnd = os.loadavg().map((x) => round(x, 2));
  writeResult('heal-fault', {
    bench: 'heal-fault',
    command,
    machine,
    trials,
    seed,
    windows,
    slowShare,
    noKillShare,
    kills,
    starts,
    resets,
    wallSeconds: wallS,
    loadEnd,
    daemonStartMs: stats(startMs, 0),
    killedAt,
    outcomes,
    trialKinds,
    orphanKinds,
    healsCheck,
    errorLines,
    problems,
    rows,
    figures: figs,
  });
});
