#!/usr/bin/env node
// Fault run: kill -9 of the daemon at random moments across runs AND heals (issue #5).
//
// One home with a mix of frequent jobs — every-second ticks, a 2.5 s job that overlaps itself, a
// cron job with seconds and catchUp, a job that always fails, one that hangs past its timeout while
// ignoring SIGTERM, and `sync`, which fails until a small tree is healed by an auto rule (a command
// fix that rewrites, deletes, creates, chmods, relinks and renames in steps, marker last; probe:
// the marker). A share of the fixes (--slow-share, default 0.3) sleeps 0.45 s between steps
// instead of 0.12 s, longer than a restart, so that the restarted daemon meets a fix still running
// and must stop it before it restores the tree (contained, a fix dies with its daemon; a fix still
// running after a restart would be a containment failure, caught as a leftover or a late write).
// The fix runs contained: it writes only its touches (the tree, and the folder of its progress
// file), and like the probe it sees /tmp as an empty folder of its own, so the work folder lies
// under the package's work/ (git-ignored), not in /tmp. Every job appends "RUN_ID JOB TRIGGER PID
// start|end" to an evidence file outside the state folder: the jobs' own word of what ran. The
// daemon is killed with SIGKILL after a seeded random delay, restarted, killed again, and so on;
// between kills the harness breaks the tree again whenever it is healed and nothing is in flight,
// so that heals keep coming.
//
// Each restart comes up with the kill switch on (state/KILL), so that the heal loop cannot start
// a new fix before the harness has looked at what the recovery left: every row the dead daemon
// left open is final, no row or heal attempt seen before the kill is gone or changed its outcome,
// no process of a run or fix open at the kill survives the restart, and the tree is exactly its
// pre-fix or post-fix state (by a hash walk here, independent of src/heal/snapshot.ts) — pre-fix when
// an attempt the kill cut was recorded as rolled back. Then the switch goes off and the next delay
// starts. At the end (graceful stop) the evidence is compared with SQLite:
//   lost    a run the job says it started with no row of that id and job, a row left open, a row
//           seen before a kill that is gone or whose final outcome changed, an attempt likewise;
//   double  one run id started twice by the job's evidence, or two rows / two started runs for one
//           (job, scheduled instant) of a schedule or catch-up trigger;
//   mixed   the tree neither pre- nor post-fix at a quiet moment (no attempt in flight before and
//           after the walk), post-fix after a recorded rollback, or a fix that wrote after its
//           rollback was recorded;
//   unalerted  failed runs of a job not matched one for one by occurrences of its `failed` alerts,
//           or timed-out runs with fewer `hung` occurrences;
//   leftovers  processes of a run or fix the dead daemon left, alive after the restart.
// Kills are classified from SQLite as the dead daemon left it: during a run (a started run open),
// during a heal (an attempt open; "changing" when at snapshot, fix, probe, verdict or rollback).
//
// A share of the kills (--aim-share, default 0.25) is aimed: it waits until a fix is under way,
// then a random part of the fix's length, so that heals are hit whatever the machine's speed; the
// others come after a uniform random delay (--min-delay..--max-delay ms) after the kill switch
// went off.
//
//   node bench/faults-kill9.mjs [--kills 200] [--seed S] [--min-delay MS] [--max-delay MS] [--aim-share F] [--slow-share F]
//                               [--quick] [--keep] [--dist DIR]
// tests/faults/kill9.test.ts checks the run half of the same contract with checks of its own.
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { distDir, figure, flags, machineInfo, printFigures, printMachine, REPO, rng, round, runMain, sleep, startDaemon, stats, table, writeResult, hashOf, treeMap } from './lib.mjs';

const FIXTURES = join(REPO, 'tests', 'fixtures');
/** Seconds between the fix's steps: a fast fix is done before a restart, a slow one is still running. */
const FAST_SLEEP = '0.12';
const SLOW_SLEEP = '0.45';
const CHANGING = new Set(['snapshot', 'fix', 'probe', 'verdict', 'rollback']);
/** Outcomes after which an incident waits for a person (src/heal/healer.ts WAITING). */
const WAITING = new Set(['needs-human', 'proposed', 'awaiting-approval', 'blocked', 'denied', 'expired', 'refused', 'rollback-failed']);

// ---------------------------------------------------------------- the tree

function writePreTree(root) {
  rmSync(root, { recursive: true, force: true });
  for (const d of ['a', 'b', 'c/sub']) mkdirSync(join(root, d), { recursive: true });
  for (const d of ['', 'a', 'b', 'c', 'c/sub']) chmodSync(join(root, d), 0o755);
  const files = ['a/f1', 'a/f2', 'a/f3', 'b/f4', 'b/f5', 'c/sub/f6', 'c/sub/f7', 'c/f8'];
  for (const [i, f] of files.entries()) {
    writeFileSync(join(root, f), `${f}: original ${i}\n${'x'.repeat(i * 53)}\n`);
    chmodSync(join(root, f), 0o644);
  }
  chmodSync(join(root, 'c', 'f8'), 0o640);
  symlinkSync('sub/f6', join(root, 'c', 'latest'));
}


// ---------------------------------------------------------------- processes

/** Live (non-zombie) processes whose environment names our state folder, with their run / heal ids. */
function ourProcesses(state) {
  const out = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') continue;
      const env = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
      if (!env.includes(`NIGHTSHIFT_STATE=${state}`)) continue;
      const get = (k) => env.find((v) => v.startsWith(`${k}=`))?.slice(k.length + 1);
      out.push({ pid: Number(pid), run: get('NIGHTSHIFT_RUN_ID') ? Number(get('NIGHTSHIFT_RUN_ID')) : null, heal: get('NIGHTSHIFT_HEAL_ATTEMPT') ? Number(get('NIGHTSHIFT_HEAL_ATTEMPT')) : null });
    } catch {
      // gone meanwhile
    }
  }
  return out;
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

// ---------------------------------------------------------------- the run

/**
 * Runs the scenario and returns its figures and every problem found (never throws for a problem
 * of the daemon's; throws only when the harness itself cannot go on).
 * opts: { kills, seed, minDelayMs, maxDelayMs, dist, keep, log }
 */
export async function runKill9(opts = {}) {
  const kills = opts.kills ?? 200;
  const seed = opts.seed ?? 20261201;
  const minDelay = opts.minDelayMs ?? 150;
  const maxDelay = opts.maxDelayMs ?? 2500;
  const aimShare = opts.aimShare ?? 0.25;
  const slowShare = opts.slowShare ?? 0.3;
  const log = opts.log ?? (() => {});
  const r = rng(seed);
  const dirs = [];
  const mk = (p) => {
    const d = mkdtempSync(join(os.tmpdir(), `nsf-${p}-`));
    dirs.push(d);
    return d;
  };


  // A private install: the protected zone includes the install's dist/, and someone rebuilding the
  // shared dist/ during the run would (rightly) turn heals into protected-zone emergencies.
  const inst = mk('kill9-install');
  cpSync(opts.dist ?? distDir({}), join(inst, 'dist'), { recursive: true });
  cpSync(join(REPO, 'package.json'), join(inst, 'package.json'));
  symlinkSync(join(REPO, 'node_modules'), join(inst, 'node_modules'));
  const values = { dist: join(inst, 'dist') };

  const home = mk('kill9-home');
  const work = mk('kill9-work');
  const state = join(home, 'state');
  const tree = join(work, 'tree');
  const evidence = join(work, 'evidence');
  // The fix's progress file lies in a folder of its own in the rule's touches: a contained fix can
  // write nothing else. A rollback restores that folder too (and so removes what the rolled-back
  // attempt wrote there): progressLines() keeps every line the harness has ever seen.
  const progressDir = join(work, 'fix-log');
  const progressFile = join(progressDir, 'progress');
  // In the home: a fix sees its home (read-only) even when it lies in /tmp, which it otherwise sees empty.
  const speedFile = join(home, 'fix-sleep');
  mkdirSync(progressDir);
  const job = join(FIXTURES, 'fault-job.sh');
  const fix = join(FIXTURES, 'fault-fix-tree.sh');
  writeFileSync(evidence, '');
  for (const d of ['jobs', 'rules', 'protected']) mkdirSync(join(home, d), { recursive: true });
  writeFileSync(join(home, 'protected', 'policy.yaml'), 'timezone: UTC\n');
  const jobs = {
    tick: `every: 1s\ncatchUp: true\ncommand: ["${job}", "${evidence}"]\n`,
    cron2: `schedule: "*/2 * * * * *"\ncatchUp: true\ncommand: ["${job}", "${evidence}", "0.3"]\n`,
    slow: `every: 1s\ncommand: ["${job}", "${evidence}", "2.5"]\nkillGrace: 1s\n`,
    fail: `every: 1s\ncommand: ["${job}", "${evidence}", "0", "3"]\n`,
    hang: `every: 2s\ncommand: ["${job}", "${evidence}", "30", "0", "ignore-term"]\ntimeout: 800ms\nkillGrace: 300ms\n`,
    sync: `every: 1s\ncommand: ["${job}", "${evidence}"]\nenv: { REQUIRE: "${tree}/.fixed" }\n`,
  };
  for (const [n, t] of Object.entries(jobs)) writeFileSync(join(home, 'jobs', `${n}.yaml`), t);
  let ruleEdits = 0;
  const writeRule = () =>
    writeFileSync(
      join(home, 'rules', 'fix-tree.yaml'),
      `description: The tree is broken; rewrite it (edit ${ruleEdits++}).\nmatch: { job: sync, kind: [failed] }\nautonomy: auto\naction:\n  command: ["${fix}", "${tree}", "${progressFile}", "${speedFile}"]\n  touches: ["${tree}/", "${progressDir}/"]\n  timeout: 30s\nprobe: { command: ["test", "-e", "${tree}/.fixed"] }\n`,
    );
  writeRule();

  writeFileSync(speedFile, FAST_SLEEP);
  writePreTree(tree);
  const PRE = hashOf(treeMap(tree));
  const scratch = join(work, 'post-copy');
  writePreTree(scratch);
  execFileSync(fix, [scratch, join(work, 'scratch-progress'), '0']);
  const POST = hashOf(treeMap(scratch));
  rmSync(scratch, { recursive: true, force: true });

  const problems = { lost: [], double: [], mixed: [], unalerted: [], leftovers: [], notFinal: [] };
  /** Every line of the progress file seen so far, in the order first seen. */
  const progressSeen = new Set();
  const progressLines = () => {
    if (existsSync(progressFile)) for (const l of readFileSync(progressFile, 'utf8').split('\n')) if (l) progressSeen.add(l);
    return [...progressSeen];
  };
  const fig = {
    kills: 0,
    aimedKills: 0,
    killsDuringRun: 0,
    killsDuringHeal: 0,
    killsDuringChangingHeal: 0,
    rolledBackAtRestart: 0,
    killedAtStep: {},
    interruptedRuns: 0,
    treeChecks: { pre: 0, post: 0, mix: 0 },
    resets: 0,
    humanFixes: 0,
    ruleEdits: 0,
    starts: 0,
  };
  const startMs = [];
  const errorLines = [];
  const killFile = join(state, 'KILL');

  let daemon = null;
  const start = async () => {
    mkdirSync(state, { recursive: true });
    writeFileSync(killFile, 'fault run: held until the harness has looked at the recovery\n');
    const t = performance.now();
    daemon = startDaemon(values, { home, state, label: 'daemon (kill9)' });
    fig.starts++;
    await daemon.waitFor((e) => e.obj?.msg === 'nightshift started', { timeoutMs: 60_000, what: 'nightshift started' });
    startMs.push(performance.now() - t);
  };
  // The restart loop the harness itself makes is reported by the daemon as an error: expected here.
  let restartLoopLines = 0;
  const collectErrors = (d) => {
    for (const l of d.lines) {
      if (!l.obj || !(l.obj.level >= 50 || l.obj.level === 'error' || l.obj.level === 'fatal')) continue;
      if (typeof l.obj.starts === 'number' && String(l.obj.msg).includes('keeps crashing or being restarted')) restartLoopLines++;
      else errorLines.push(l.raw.slice(0, 600));
    }
  };

  /** Rows and attempts ever seen, with the final outcome once they had one. */
  const seenRuns = new Map();
  const seenHeals = new Map();
  const snapshot = () =>
    readDb(state, (db) => ({
      runs: db.prepare('SELECT id, job, trigger, outcome, started_at FROM runs ORDER BY id').all(),
      heals: db.prepare('SELECT id, step, outcome, ended_at FROM heal_attempts ORDER BY id').all(),
    })) ?? { runs: [], heals: [] };
  const compareSeen = (snap, when) => {
    const runs = new Map(snap.runs.map((x) => [x.id, x]));
    for (const [id, prev] of seenRuns) {
      const now = runs.get(id);
      if (!now) problems.lost.push({ when, what: `run #${id} (${prev.job}) seen before is gone` });
      else if (prev.outcome !== null && now.outcome !== prev.outcome) problems.lost.push({ when, what: `run #${id} (${prev.job}) was ${prev.outcome}, now ${now.outcome}` });
    }
    const heals = new Map(snap.heals.map((x) => [x.id, x]));
    for (const [id, prev] of seenHeals) {
      const now = heals.get(id);
      if (!now) problems.lost.push({ when, what: `heal attempt #${id} seen before is gone` });
      else if (prev.outcome !== null && now.outcome !== prev.outcome) problems.lost.push({ when, what: `heal attempt #${id} was ${prev.outcome}, now ${now.outcome}` });
    }
    for (const x of snap.runs) if (!seenRuns.has(x.id) || seenRuns.get(x.id).outcome === null) seenRuns.set(x.id, x);
    for (const x of snap.heals) if (!seenHeals.has(x.id) || seenHeals.get(x.id).outcome === null) seenHeals.set(x.id, x);
  };

  /** The tree at a quiet moment: no attempt in flight before and after the walk, none begun meanwhile. */
  const quiet = () => readDb(state, (db) => db.prepare('SELECT count(*) FILTER (WHERE outcome IS NULL) AS open, coalesce(max(id), 0) AS max FROM heal_attempts').get());
  const checkTree = (when) => {
    const a = quiet();
    if (a.open > 0) return null;
    const h = hashOf(treeMap(tree));
    const b = quiet();
    if (b.open > 0 || b.max !== a.max) return null;
    const which = h === PRE ? 'pre' : h === POST ? 'post' : 'mix';
    fig.treeChecks[which]++;
    if (which === 'mix') problems.mixed.push({ when, what: 'the tree is neither exactly pre-fix nor post-fix', tree: treeMap(tree) });
    return which;
  };

  /** Between kills: break a healed tree again; a person's fix for an incident left waiting; un-demote. */
  const tend = () => {
    progressLines();
    const which = checkTree('between kills');
    if (which === null) return;
    const s = readDb(state, (db) => {
      const alert = db.prepare("SELECT id FROM alerts WHERE fingerprint = 'sync:failed' AND resolved_at IS NULL").get();
      const last = alert ? db.prepare('SELECT outcome FROM heal_attempts WHERE alert_id = ? ORDER BY id DESC LIMIT 1').get(alert.id) : null;
      const demoted = db.prepare('SELECT count(*) AS n FROM rule_ladder').get().n;
      return { alert, last, demoted };
    });
    if (s.demoted > 0) {
      // A human's edit of the rule ends a demotion.
      writeRule();
      fig.ruleEdits++;
    }
    if (which === 'post' && !s.alert) {
      // Swapped in whole (two renames), so that a heal can never start on a half-written tree.
      const next = join(work, 'tree.next');
      const old = join(work, 'tree.old');
      writePreTree(next);
      rmSync(old, { recursive: true, force: true });
      renameSync(tree, old);
      renameSync(next, tree);
      rmSync(old, { recursive: true, force: true });
      fig.resets++;
    } else if (which === 'pre' && s.alert && s.last && WAITING.has(s.last.outcome)) {
      execFileSync(fix, [tree, progressFile, '0'], { env: { ...process.env, NIGHTSHIFT_HEAL_ATTEMPT: 'human' } });
      fig.humanFixes++;
    }
  };

  const t0 = performance.now();
  let lastKill = null;
  try {
    await start();
    for (let k = 1; k <= kills + 1; k++) {
      // ---- after a (re)start, with the heal loop held by the kill switch
      progressLines();
      const snap = snapshot();
      compareSeen(snap, k === 1 ? 'first start' : `restart after kill ${k - 1}`);
      const open = snap.runs.filter((x) => x.outcome === null);
      const openHeals = snap.heals.filter((x) => x.outcome === null);
      if (k > 1) {
        const before = lastKill;
        for (const x of open) if (x.id <= before.maxRun) problems.notFinal.push({ when: `restart after kill ${k - 1}`, what: `run #${x.id} (${x.job}) is still open after the recovery` });
        for (const x of openHeals) if (x.id <= before.maxHeal) problems.notFinal.push({ when: `restart after kill ${k - 1}`, what: `heal attempt #${x.id} is still open after the recovery` });
        const left = ourProcesses(state).filter((p) => (p.run !== null && before.openRuns.has(p.run)) || (p.heal !== null && before.openHeals.has(p.heal)));
        if (left.length) problems.leftovers.push({ when: `restart after kill ${k - 1}`, processes: left });
      }
      let which = null;
      for (let i = 0; i < 40 && which === null; i++) {
        which = checkTree(k === 1 ? 'first start' : `restart after kill ${k - 1}`);
        if (which === null) await sleep(25);
      }
      if (which === null) problems.mixed.push({ when: `restart after kill ${k - 1}`, what: 'a heal attempt stayed in flight while the kill switch was on' });
      if (k > 1) {
        // Every attempt starts from the pre-fix tree: one the kill cut and the recovery rolled back
        // must have left exactly that, whatever the fix (still running after the kill) had done.
        const rolledBack = snap.heals.filter((x) => lastKill.openHeals.has(x.id) && x.outcome === 'interrupted-rolled-back');
        if (rolledBack.length) fig.rolledBackAtRestart++;
        if (rolledBack.length && which === 'post') {
          problems.mixed.push({ when: `restart after kill ${k - 1}`, what: `attempt(s) ${rolledBack.map((x) => `#${x.id}`).join(', ')} recorded interrupted-rolled-back, but the tree is post-fix` });
        }
      }
      unlinkSync(killFile);
      if (k === kills + 1) break;

      // ---- a random delay, tending the tree meanwhile, then SIGKILL. An aimed kill waits for a
      // fix to be under way first, then a random part of a fix's length: heals are a small share
      // of the time, and a run that never kills one proves nothing about them.
      const aimed = r() < aimShare;
      const slow = r() < slowShare;
      writeFileSync(speedFile, slow ? SLOW_SLEEP : FAST_SLEEP);
      const delay = Math.round(minDelay + r() * (maxDelay - minDelay));
      const extra = Math.round(r() * 5 * Number(slow ? SLOW_SLEEP : FAST_SLEEP) * 1000);
      let until = performance.now() + delay;
      if (aimed) {
        const giveUp = performance.now() + 15_000;
        until = Infinity;
        while (performance.now() < giveUp && until === Infinity) {
          tend();
          const fixing = readDb(state, (db) => db.prepare("SELECT id FROM heal_attempts WHERE outcome IS NULL AND step = 'fix'").get());
          if (fixing) until = performance.now() + extra;
          else await sleep(20);
        }
        if (until === Infinity) until = performance.now();
      }
      while (performance.now() < until - 60) {
        tend();
        await sleep(Math.min(50, until - performance.now()));
      }
      await sleep(Math.max(0, until - performance.now()));
      if (aimed) fig.aimedKills++;
      process.kill(daemon.pid, 'SIGKILL');
      await daemon.exited;
      collectErrors(daemon);
      daemon = null;
      fig.kills++;

      // ---- what the dead daemon left (nothing writes to SQLite now; the restart's rollback of a
      // cut attempt will restore the progress folder, so its lines are read now)
      progressLines();
      const dead = snapshot();
      compareSeen(dead, `kill ${k}`);
      const openRuns = dead.runs.filter((x) => x.outcome === null);
      const openH = dead.heals.filter((x) => x.outcome === null);
      if (openRuns.some((x) => x.started_at !== null)) fig.killsDuringRun++;
      if (openH.length) fig.killsDuringHeal++;
      if (openH.some((x) => CHANGING.has(x.step))) fig.killsDuringChangingHeal++;
      const at = openH.length ? openH.map((x) => x.step).join('+') : 'no heal in flight';
      fig.killedAtStep[at] = (fig.killedAtStep[at] ?? 0) + 1;
      fig.interruptedRuns += openRuns.length;
      lastKill = {
        maxRun: Math.max(0, ...dead.runs.map((x) => x.id)),
        maxHeal: Math.max(0, ...dead.heals.map((x) => x.id)),
        openRuns: new Set(openRuns.map((x) => x.id)),
        openHeals: new Set(openH.map((x) => x.id)),
      };
      if (k % 10 === 0) log(`… ${k}/${kills} kills, ${Math.round((performance.now() - t0) / 1000)} s`);
      await start();
    }
    const finalExit = await daemon.stop();
    collectErrors(daemon);
    const finalLines = daemon.lines.slice(-40).map((l) => l.raw.slice(0, 300));
    daemon = null;

    // ---- at the end, all from the files and SQLite
    const end = snapshot();
    compareSeen(end, 'end');
    checkTree('end') ?? problems.mixed.push({ when: 'end', what: 'an attempt is in flight after a graceful stop' });
    for (const x of end.runs) if (x.outcome === null) problems.notFinal.push({ when: 'end', what: `run #${x.id} (${x.job}) is still open after a graceful stop` });
    for (const x of end.heals) if (x.outcome === null) problems.notFinal.push({ when: 'end', what: `heal attempt #${x.id} is still open after a graceful stop` });
    const left = ourProcesses(state);
    if (left.length) problems.leftovers.push({ when: 'end', processes: left });

    const rows = readDb(state, (db) => db.prepare('SELECT id, job, trigger, scheduled_for, outcome, ended_at FROM runs').all());
    const byId = new Map(rows.map((x) => [x.id, x]));
    const lines = readFileSync(evidence, 'utf8').split('\n').filter(Boolean).map((l) => {
      const [id, jobName, trigger, pid, what] = l.split(' ');
      return { id: Number(id), job: jobName, trigger, pid: Number(pid), what };
    });
    const starts = lines.filter((l) => l.what === 'start');
    const startsById = new Map();
    for (const l of starts) startsById.set(l.id, [...(startsById.get(l.id) ?? []), l]);
    for (const [id, ls] of startsById) {
      const row = byId.get(id);
      if (!row || row.job !== ls[0].job) problems.lost.push({ when: 'end', what: `job ${ls[0].job} started as run #${id} (pid ${ls[0].pid}) but SQLite has ${row ? `run #${id} of ${row.job}` : 'no such row'}` });
      if (ls.length > 1) problems.double.push({ when: 'end', what: `run #${id} was started ${ls.length} times (pids ${ls.map((l) => l.pid).join(', ')})` });
    }
    const perInstant = new Map();
    for (const x of rows) {
      if (x.trigger !== 'schedule' && x.trigger !== 'catch-up') continue;
      const key = `${x.job}@${x.scheduled_for}`;
      perInstant.set(key, [...(perInstant.get(key) ?? []), x]);
    }
    for (const [key, xs] of perInstant) {
      const started = xs.filter((x) => startsById.has(x.id));
      if (xs.length > 1 || started.length > 1) problems.double.push({ when: 'end', what: `${key}: ${xs.length} row(s), ${started.length} started by the job's evidence` });
    }
    // Rows that say the job ran to an end must have the job's own word that it started.
    for (const x of rows) if (['ok', 'failed', 'wrong'].includes(x.outcome) && !startsById.has(x.id)) problems.lost.push({ when: 'end', what: `run #${x.id} (${x.job}) is recorded ${x.outcome} but the job never started` });

    // Every failed run is an occurrence of its job's `failed` alert (no retries are configured);
    // every timed-out run was counted on `hung` (an interrupted one may have been too).
    const alerts = readDb(state, (db) => db.prepare('SELECT fingerprint, sum(count) AS n FROM alerts GROUP BY fingerprint').all());
    const occurrences = (fp) => alerts.find((a) => a.fingerprint === fp)?.n ?? 0;
    const count = (jobName, outcome) => rows.filter((x) => x.job === jobName && x.outcome === outcome && x.trigger !== 'heal' && x.trigger !== 'probe').length;
    for (const j of Object.keys(jobs)) {
      const failed = count(j, 'failed');
      if (occurrences(`${j}:failed`) !== failed) problems.unalerted.push({ what: `${j}: ${failed} failed run(s), ${occurrences(`${j}:failed`)} occurrence(s) of ${j}:failed` });
      const timeouts = count(j, 'timeout');
      if (occurrences(`${j}:hung`) < timeouts) problems.unalerted.push({ what: `${j}: ${timeouts} timed-out run(s), only ${occurrences(`${j}:hung`)} occurrence(s) of ${j}:hung` });
    }

    // A fix cut by a kill must not write after its rollback was recorded.
    const attempts = readDb(state, (db) => db.prepare("SELECT id, outcome, ended_at FROM heal_attempts WHERE step IN ('snapshot','fix','probe','verdict','rollback')").all());
    const progress = progressLines().map((l) => {
      const [id, step, at] = l.split(' ');
      return { id, step: Number(step), at: Number(at) * 1000 };
    });
    for (const a of attempts) {
      if (a.outcome !== 'interrupted-rolled-back' && a.outcome !== 'rolled-back') continue;
      const late = progress.filter((p) => p.id === String(a.id) && p.at > a.ended_at);
      if (late.length) problems.mixed.push({ when: 'end', what: `the fix of attempt #${a.id} wrote after its rollback was recorded`, late });
    }

    const healOutcomes = readDb(state, (db) => db.prepare('SELECT outcome, count(*) AS n FROM heal_attempts GROUP BY outcome ORDER BY n DESC').all());
    const runOutcomes = readDb(state, (db) => db.prepare('SELECT outcome, count(*) AS n FROM runs GROUP BY outcome ORDER BY n DESC').all());
    const triggers = readDb(state, (db) => db.prepare('SELECT trigger, count(*) AS n FROM runs GROUP BY trigger ORDER BY n DESC').all());
    return {
      kills,
      seed,
      minDelay,
      maxDelay,
      aimShare,
      slowShare,
      command: `node bench/faults-kill9.mjs --kills ${kills} --seed ${seed} --min-delay ${minDelay} --max-delay ${maxDelay} --aim-share ${aimShare} --slow-share ${slowShare}`,
      wallSeconds: round((performance.now() - t0) / 1000, 1),
      daemonStartMs: stats(startMs, 0),
      ...fig,
      runs: rows.length,
      evidenceStarts: starts.length,
      heals: attempts.length,
      healOutcomes,
      runOutcomes,
      triggers,
      finalExit,
      finalLines,
      counts: Object.fromEntries(Object.entries(problems).map(([k, v]) => [k, v.length])),
      problems,
      errorLines,
      restartLoopLines,
    };
  } finally {
    if (daemon) {
      try {
        process.kill(daemon.pid, 'SIGKILL');
      } catch {
        // gone
      }
      await daemon.exited;
    }
    // Whatever a failed harness left of the jobs (they run in their own process groups).
    for (const p of ourProcesses(state)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    if (!opts.keep) {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    } else log(`kept: ${dirs.join(' ')}`);
  }
}

// ---------------------------------------------------------------- main

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const values = flags({ kills: { type: 'string' }, seed: { type: 'string' }, 'min-delay': { type: 'string' }, 'max-delay': { type: 'string' }, 'aim-share': { type: 'string' }, 'slow-share': { type: 'string' } });
  await runMain(values, async () => {
    const machine = machineInfo(values);
    printMachine(machine);
    const res = await runKill9({
      kills: Number(values.kills ?? (values.quick ? 20 : 200)),
      seed: values.seed === undefined ? undefined : Number(values.seed),
      minDelayMs: values['min-delay'] === undefined ? undefined : Number(values['min-delay']),
      maxDelayMs: values['max-delay'] === undefined ? undefined : Number(values['max-delay']),
      aimShare: values['aim-share'] === undefined ? undefined : Number(values['aim-share']),
      slowShare: values['slow-share'] === undefined ? undefined : Number(values['slow-share']),
      dist: distDir(values),
      keep: values.keep,
      log: (m) => console.log(m),
    });
    console.log(`\n${res.kills} kills (SIGKILL) in ${res.wallSeconds} s, ${res.starts} daemon starts (start → "nightshift started" p50 ${res.daemonStartMs.p50} ms)`);
    console.log(`kills aimed at a fix under way: ${res.aimedKills}; kills during a run: ${res.killsDuringRun}; during a heal: ${res.killsDuringHeal} (${res.killsDuringChangingHeal} at snapshot..rollback; ${res.rolledBackAtRestart} rolled back at the restart); runs left open by the kills: ${res.interruptedRuns}`);
    console.log('\nheal step at the kill:');
    console.log(table(Object.entries(res.killedAtStep).sort((a, b) => b[1] - a[1]).map(([k, n]) => ({ 'at the kill': k, kills: n }))));
    console.log('\nruns by outcome:');
    console.log(table(res.runOutcomes));
    console.log('\nruns by trigger:');
    console.log(table(res.triggers));
    console.log('\nheal attempts by outcome:');
    console.log(table(res.healOutcomes));
    console.log(`\ntree checks at quiet moments: ${res.treeChecks.pre} pre-fix, ${res.treeChecks.post} post-fix, ${res.treeChecks.mix} mixed; trees broken again by the harness ${res.resets}, fixed by "a person" ${res.humanFixes}, rule edits after a demotion ${res.ruleEdits}`);
    console.log(`daemon error log lines: ${res.restartLoopLines} about the restart loop (the harness's doing), ${res.errorLines.length} others`);
    if (res.errorLines.length) console.log(`  ${res.errorLines.slice(0, 10).join("\n  ")}`);
    for (const [k, v] of Object.entries(res.problems)) if (v.length) console.log(`\n${k.toUpperCase()} (${v.length}):\n${JSON.stringify(v.slice(0, 5), null, 2)}`);
    const figs = [
      figure('faults-kill9: lost (runs, rows, attempts)', res.counts.lost + res.counts.notFinal, '', 0),
      figure('faults-kill9: double runs of one instant / run id', res.counts.double, '', 0),
      figure('faults-kill9: half-applied fixes (mixed trees, late writes)', res.counts.mixed, '', 0),
      figure('faults-kill9: failed runs without their alert', res.counts.unalerted, '', 0),
      figure('faults-kill9: processes left after a restart', res.counts.leftovers, '', 0),
      figure('faults-kill9: kills', res.kills, `${res.killsDuringRun} during runs, ${res.killsDuringHeal} during heals`),
      figure('faults-kill9: runs', res.runs, `${res.evidenceStarts} started by the jobs' evidence`),
      figure('faults-kill9: heal attempts that reached the snapshot (fix) step', res.heals, ''),
    ];
    printFigures(figs);
    console.log(`\nreproduce: ${res.command}`);
    writeResult('faults-kill9', { bench: 'faults-kill9', machine, ...res, figures: figs });
    if (Object.values(res.counts).some((n) => n > 0)) process.exitCode = 1;
  });
}
