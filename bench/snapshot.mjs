#!/usr/bin/env node
// The work a heal does around a fix (dist/snapshot.js, dist/zone.js), in the daemon's own process:
// before the fix, snapshot the `touches` tree (copy + sha256 manifest), snapshot the protected
// zone (for an emergency restore) and hash it; after the fix, hash the zone again; on a failed
// probe, restore the touches byte-exact. A 500-file zone (jobs/, rules/, protected/ plus the real
// install's dist/) and a 50 MB touches tree (50 files of 1 MB and 300 small ones).
// Also: the longest event-loop stall while that work runs (the daemon keeps scheduling meanwhile).
// Files are warm in the page cache after the first repetition: these are warm-cache figures.
//   node bench/snapshot.mjs [--quick] [--reps N] [--keep] [--dist DIR]
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { distDir, figure, flags, machineInfo, printFigures, printMachine, round, runMain, stats, table, tempDir, writeResult } from './lib.mjs';

const values = flags({ reps: { type: 'string' } });
const dist = distDir(values);
const snap = await import(join(dist, 'heal/snapshot.js'));
const zoneMod = { ...(await import(join(dist, 'config/zone.js'))), ...(await import(join(dist, 'heal/zone.js'))) };
const { DEFAULT_POLICY } = await import(join(dist, 'config/home.js'));
const { homePaths } = await import(join(dist, 'config/paths.js'));

const reps = Number(values.reps ?? (values.quick ? 3 : 10));
const BIG = values.quick ? 10 : 50; // files of 1 MB
const SMALL = 300;

function writeZone(home) {
  const words = ['export', 'backup', 'report', 'sync', 'cleanup', 'invoice', 'mailer', 'rotate', 'audit', 'import'];
  for (const d of ['jobs', 'rules', 'protected']) mkdirSync(join(home, d), { recursive: true });
  writeFileSync(
    join(home, 'protected', 'policy.yaml'),
    'timezone: Europe/Zurich\nautonomy: auto\nmaxAttempts: 2\nprotect: []\ndigest:\n  at: "07:00"\n  to: ["ops@example.com"]\n',
  );
  let n = 1;
  for (let i = 0; i < 250; i++, n++) {
    const w = words[i % words.length];
    writeFileSync(
      join(home, 'jobs', `${w}-${i}.yaml`),
      `description: ${w} job number ${i}, generated for the benchmark\nschedule: "${i % 60} ${i % 24} * * *"\ncommand: ["/usr/local/bin/${w}", "--id", "${i}"]\ncwd: /srv/${w}\ntimeout: 15m\nretries: { count: 1, delay: 30s }\nexpect:\n  files:\n    - { path: /srv/${w}/out-${i}.csv, maxAge: 2h, minBytes: 100 }\nheartbeat:\n  grace: 10m\n`,
    );
  }
  for (let i = 0; i < 200; i++, n++) {
    const w = words[i % words.length];
    writeFileSync(
      join(home, 'rules', `${w}-fix-${i}.yaml`),
      `description: A hung ${w} holds a stale lock; clear it and run again.\nmatch:\n  job: ${w}-*\n  kind: [hung, failed]\n  output: "lock .* held"\nautonomy: gated\naction:\n  command: ["rm", "-f", "/srv/${w}/state/${i}.lock"]\n  touches: ["/srv/${w}/state/"]\n  timeout: 2m\nprobe:\n  rerun: true\n`,
    );
  }
  for (let i = 0; n <= 500; i++, n++) writeFileSync(join(home, 'protected', `note-${i}.txt`), `operator note ${i}: ${'x'.repeat(200 + (i % 7) * 50)}\n`);
  // the daemon's own files in state/: not hashed, not copied
  mkdirSync(join(home, 'state', 'logs'), { recursive: true });
  writeFileSync(join(home, 'state', 'nightshift.db'), randomBytes(4 << 20));
  for (let i = 0; i < 100; i++) writeFileSync(join(home, 'state', 'logs', `run-${i}.log`), 'output\n'.repeat(100));
}

function writeTouches(root) {
  for (let i = 0; i < BIG; i++) {
    const d = join(root, `shard-${i % 5}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `data-${i}.bin`), randomBytes(1 << 20));
  }
  for (let i = 0; i < SMALL; i++) {
    const d = join(root, 'small', `d${i % 12}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f-${i}.txt`), `${'line\n'.repeat(1 + (i % 40) * 20)}`);
    if (i % 10 === 0) chmodSync(join(d, `f-${i}.txt`), 0o600);
  }
}

/** What a fix might do: rewrite 5 big files, delete 20 small ones, create 20, chmod one folder. */
function fix(root, k) {
  for (let i = 0; i < 5; i++) writeFileSync(join(root, `shard-${i % 5}`, `data-${(k * 5 + i) % BIG}.bin`), randomBytes(1 << 20));
  for (let m = 0; m < 20; m++) {
    const i = (k * 20 + m) % SMALL;
    rmSync(join(root, 'small', `d${i % 12}`, `f-${i}.txt`));
  }
  mkdirSync(join(root, 'created', `k${k}`), { recursive: true });
  for (let i = 0; i < 20; i++) writeFileSync(join(root, 'created', `k${k}`, `new-${i}.txt`), 'new');
  chmodSync(join(root, 'small', 'd3'), 0o700);
}

const ms = (t0) => performance.now() - t0;

await runMain(values, async () => {
  const machine = machineInfo(values);
  printMachine(machine);
  const work = tempDir('snapshot');
  const home = join(work, 'home');
  const touches = join(work, 'srv', 'shop', 'state');
  writeZone(home);
  writeTouches(touches);

  const paths = homePaths(home);
  const zone = zoneMod.protectedZone(paths, DEFAULT_POLICY);
  const guard = zoneMod.guardTouches([touches], home, zone);
  if (!guard.ok) throw new Error(`guard refused the bench's touches: ${guard.reason}`);
  const zoneRoots = zoneMod.zoneRoots(zone);
  const exclude = zoneMod.zoneExclude(zone);
  const treeBefore = await snap.treeState([touches]);
  const zoneFiles = Object.values(await zoneMod.hashZone(zone)).filter((s) => s.type === 'file').length;
  const touchBytes = Object.values(treeBefore).reduce((a, s) => a + (s.size ?? 0), 0);
  console.log(`zone: ${zoneFiles} files hashed (${zoneRoots.length} roots, incl. the install's dist/); touches: ${Object.keys(treeBefore).length} paths, ${round(touchBytes / 2 ** 20, 1)} MB; ${reps} repetitions\n`);

  const rows = [];
  // The longest gap between two ticks of a 2 ms interval while the timed work runs.
  const loop = {
    on: false,
    last: 0,
    max: 0,
    timer: setInterval(() => {
      const now = performance.now();
      if (loop.on) loop.max = Math.max(loop.max, now - loop.last);
      loop.last = now;
    }, 2).unref(),
    enable() {
      loop.last = performance.now();
      loop.on = true;
    },
    disable() {
      loop.on = false;
    },
  };
  let exact = 0;
  let zoneQuiet = 0;
  // the same gap with nothing to do: what the machine itself (other load) adds
  loop.enable();
  await new Promise((r) => setTimeout(r, 1000));
  loop.disable();
  const idleStallMs = round(loop.max, 1);
  loop.max = 0;
  for (let k = 0; k < reps; k++) {
    const dir = join(paths.state, 'snapshots', `heal-${k}`);
    loop.enable();
    let t = performance.now();
    await snap.takeSnapshot([touches], join(dir, 'touches'));
    const snapTouches = ms(t);
    t = performance.now();
    await snap.takeSnapshot(zoneRoots, join(dir, 'zone'), { exclude });
    const snapZone = ms(t);
    t = performance.now();
    const zBefore = await zoneMod.hashZone(zone);
    const hashBefore = ms(t);
    loop.disable();

    fix(touches, k);

    loop.enable();
    t = performance.now();
    const zAfter = await zoneMod.hashZone(zone);
    const hashAfter = ms(t);
    const changed = zoneMod.diffZone(zBefore, zAfter);
    t = performance.now();
    const r = await snap.restoreSnapshot(join(dir, 'touches'));
    const restore = ms(t);
    t = performance.now();
    await snap.dropSnapshot(join(dir, 'touches'));
    await snap.dropSnapshot(join(dir, 'zone'));
    const drop = ms(t);
    loop.disable();

    if (changed.length === 0) zoneQuiet++;
    const after = await snap.treeState([touches]);
    if (snap.diffTree(treeBefore, after).length === 0) exact++;
    rows.push({
      rep: k + 1,
      'snapshot touches': round(snapTouches),
      'snapshot zone': round(snapZone),
      'hash zone before': round(hashBefore),
      'before fix': round(snapTouches + snapZone + hashBefore),
      'hash zone after': round(hashAfter),
      'snapshot + hashing': round(snapTouches + snapZone + hashBefore + hashAfter),
      // the zone snapshot's manifest already is the "before" hash (manifestState): no second pass
      'without hash before': round(snapTouches + snapZone + hashAfter),
      restore: round(restore),
      'restored (chg/rm/new)': `${r.changed}/${r.removed}/${r.recreated}`,
      drop: round(drop),
    });
  }
  console.log(table(rows));
  const col = (c) => stats(rows.map((r) => r[c]), 1);
  const summary = ['snapshot touches', 'snapshot zone', 'hash zone before', 'before fix', 'hash zone after', 'snapshot + hashing', 'without hash before', 'restore', 'drop'].map((c) => ({ step: c, ...col(c) }));
  console.log(`\nms over ${reps} repetitions:`);
  console.log(table(summary, ['step', 'p50', 'p95', 'min', 'max']));
  clearInterval(loop.timer);
  const maxStallMs = round(loop.max, 1);
  console.log(`\nlongest gap between ticks of a 2 ms interval during the timed work: ${maxStallMs} ms (idle, same process, 1 s: ${idleStallMs} ms)`);
  console.log(`restores byte-exact: ${exact}/${reps}; zone unchanged by the fix: ${zoneQuiet}/${reps}\n`);

  const total = col('snapshot + hashing');
  const figs = [
    figure(`snapshot + hashing (touches ${Math.round(touchBytes / 2 ** 20)} MB + zone ${zoneFiles} files), p50`, total.p50, 'ms', 1000),
    figure('snapshot + hashing, p95', total.p95, 'ms', 1000),
    figure('snapshot + hashing, "before" hash taken from the zone manifest, p50', col('without hash before').p50, 'ms', 1000),
    figure('before the fix (snapshots + zone hash), p50', col('before fix').p50, 'ms'),
    figure('zone hash after the fix, p50', col('hash zone after').p50, 'ms'),
    figure('restore of the touches, p50', col('restore').p50, 'ms'),
    figure('restore of the touches, p95', col('restore').p95, 'ms'),
    figure('longest event-loop stall (2 ms interval)', maxStallMs, 'ms'),
    figure('  the same, idle (machine noise)', idleStallMs, 'ms'),
    figure('restores byte-exact', exact, `of ${reps}`, reps, 'higher'),
  ];
  printFigures(figs);
  writeResult('snapshot', {
    bench: 'snapshot',
    command: `node bench/snapshot.mjs${values.quick ? ' --quick' : ''}${values.reps ? ` --reps ${values.reps}` : ''}`,
    machine,
    zoneFiles,
    touchesBytes: touchBytes,
    stallMs: { work: maxStallMs, idle: idleStallMs },
    rows,
    summary,
    figures: figs,
  });
});
