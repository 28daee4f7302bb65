#!/usr/bin/env node
// Detection and repair, side by side (issue 5, item 3): one worker, two faults, three tools.
//
// The worker (worker.sh, written into a temp folder) is an agent loop that appends
// "PID EPOCHREALTIME" to a heartbeat file every 200 ms. SIGUSR1 makes it HANG (it writes
// "PID hang T" to a faults file and then sleeps forever: alive, silent); SIGUSR2 makes it DIE
// (it writes "PID die T" and exits 3). Both are written by the worker itself at the moment of the
// fault, so "fault" is the worker's own clock, not the bench's. Per trial:
//
//   alert  = the tool's own record that it noticed (see below)           − fault
//   repair = the first heartbeat of a NEW worker (another pid) in the file − fault
//   and for nightshift also: verified = the heal attempt's fixed-verified − fault (its probe passed)
//
// The same scripts surround the worker for every tool, as a user would write them: ctl.sh
// start|stop|restart (flock; start waits until the new worker's first heartbeat; restart leaves
// a fresh worker alone) and probe.sh (passes when the last heartbeat's pid is alive and wrote it
// less than 1 s ago). "No heartbeat for 2 s" is the staleness every tool is told to look for.
//
// - nightshift: the worker is an external job, as DESIGN.md describes an agent loop:
//     jobs/worker.yaml   every: 1s, heartbeat: { file: <hb>, grace: 2s }
//     rules/restart-worker.yaml   match { job: worker, kind: [missed] }, autonomy: auto,
//       action.command [ctl.sh, restart, W], touches [W/worker.pid], probe.command [probe.sh, W]
//   The watchdog raises `missed` 2–3 s after the last heartbeat (next 1 s instant + 2 s grace);
//   the heal loop runs the fix and the probe. alert = alerts.opened_at (SQLite); verified =
//   heal_attempts.ended_at with outcome fixed-verified. An external job has no process that
//   nightshift could see exit, so a death is noticed the same way as a hang: by the silence.
// - Monit (`monit -I -c <temp monitrc>`, own pid/state/id/log files):
//     set daemon 30            (the cycle a user would set; a second run with `set daemon 5`)
//     check process worker with pidfile W/worker.pid  start/stop program = ctl.sh start|stop
//     check file heartbeat with path <hb>  if timestamp > 2 seconds then exec "ctl.sh restart W"
//   alert = the moment its log line ("'worker' process is not running" / "'heartbeat' ...
//   failed") appears in its log file (polled every 5 ms; Monit's own stamps have 1 s resolution).
// - supervisord (`supervisord -n -c <temp conf>`, own log/pid files): [program:worker]
//   autorestart=true. alert = its "exited: worker (...; not expected)" log line (its own
//   millisecond stamp). It cannot see a hang: each hang trial waits --hang-wait seconds and is
//   reported as "not detected" (the bench then kills the hung worker so that the next trial starts
//   from a healthy one; that restart is not counted).
//
// Every fault comes a random 0..cycle after the worker is healthy (the tool's check cycle: 1 s for
// nightshift's every-1s deadline and supervisord, Monit's `set daemon`), so the phase against the
// tool's clock is uniform. With Monit, hang and die trials alternate, so each check has at least
// one cycle to record its recovery before it is tested again (Monit acts on state changes).
//
// Workers are started by daemonising scripts (setsid), so a reaper must take dead ones, as systemd
// does on a real server (here pid 1 does not): the script re-executes itself under `tini -s`
// (apt-get install -y tini). Every worker and daemon started is stopped at the end, on error too.
//
//   node bench/peers-repair.mjs [--quick] [--trials N] [--slow-trials N] [--tools nightshift,monit,supervisord]
//        [--monit-cycles 30,5] [--hang-wait S] [--install] [--keep] [--dist DIR]
//   full: 10 trials per tool and fault (Monit 30 s: --slow-trials, 5), supervisord hang: 3 × 30 s;
//   --quick: 2 (Monit 30 s: 1), supervisord hang 1 × 10 s.
import Database from 'better-sqlite3';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { drawChart, RESULTS_DIR, writeCsv } from './chart.mjs';
import { Child, figure, flags, machineInfo, printFigures, printMachine, round, runMain, sleep, startDaemon, stats, table, tempDir, writeResult, privateInstall } from './lib.mjs';

const SELF = fileURLToPath(import.meta.url);

async function main() {
  const values = flags({
    trials: { type: 'string' },
    'slow-trials': { type: 'string' },
    tools: { type: 'string' },
    'monit-cycles': { type: 'string' },
    'hang-wait': { type: 'string' },
    install: { type: 'boolean', default: false },
    'shared-dist': { type: 'boolean', default: false },
  });
  const quick = values.quick;
  const trials = Number(values.trials ?? (quick ? 2 : 10));
  const slowTrials = Number(values['slow-trials'] ?? (quick ? 1 : 5));
  const tools = (values.tools ?? 'nightshift,monit,supervisord').split(',');
  const monitCycles = (values['monit-cycles'] ?? '30,5').split(',').map(Number);
  const hangWaitS = Number(values['hang-wait'] ?? (quick ? 10 : 30));
  const hangTrialsSup = quick ? 1 : 3;
  const STALE_S = 2;

  await runMain(values, async () => {
    const machine = machineInfo(values);
    console.log(`== peers-repair: a worker that hangs or dies; ${trials} trials per tool and fault (Monit cycles ≥ 30 s: ${slowTrials}), staleness ${STALE_S} s`);
    printMachine(machine);
    const have = ensurePeers(values.install);
    const results = [];
    const skipped = [];
    const workers = new WorkerRegistry();
    try {
      for (const tool of tools) {
        if (tool === 'nightshift') {
          results.push(...(await benchNightshift(values, { trials, STALE_S, workers })));
        } else if (tool === 'monit') {
          if (!have.monit) {
            skipped.push('monit (not installed: apt-get install -y monit, or pass --install)');
            continue;
          }
          for (const cycle of monitCycles) results.push(...(await benchMonit({ cycle, trials: cycle >= 30 ? slowTrials : trials, STALE_S, workers })));
        } else if (tool === 'supervisord') {
          if (!have.supervisord) {
            skipped.push('supervisord (not installed: apt-get install -y supervisor, or pass --install)');
            continue;
          }
          results.push(...(await benchSupervisord({ trials, hangTrials: hangTrialsSup, hangWaitS, workers })));
        } else throw new Error(`unknown tool "${tool}" in --tools (nightshift, monit, supervisord)`);
      }
    } finally {
      workers.killAll();
    }

    // ---- summary
    const groups = [];
    for (const r of results) {
      let g = groups.find((x) => x.tool === r.tool && x.kind === r.kind);
      if (!g) groups.push((g = { tool: r.tool, kind: r.kind, config: r.config, rows: [] }));
      g.rows.push(r);
    }
    const summary = groups.map((g) => {
      const a = stats(g.rows.map((r) => r.alertMs), 0);
      const rp = stats(g.rows.map((r) => r.repairMs), 0);
      const v = stats(g.rows.map((r) => r.verifiedMs), 0);
      const missed = g.rows.filter((r) => r.alertMs === null).length;
      return {
        tool: g.tool,
        fault: g.kind,
        trials: g.rows.length,
        'alert p50 ms': a.p50 ?? '',
        'alert max ms': a.max ?? '',
        'repair p50 ms': rp.p50 ?? '',
        'repair max ms': rp.max ?? '',
        'verified p50 ms': v.p50 ?? '',
        'not detected': missed ? `${missed} (waited ${Math.max(...g.rows.filter((r) => r.alertMs === null).map((r) => r.waitedS ?? 0))} s)` : '',
        _a: a,
        _r: rp,
        _v: v,
        config: g.config,
      };
    });
    console.log('\nfault → alert and fault → repair (a new worker heartbeats), ms:');
    console.log(table(summary.map(({ _a, _r, _v, config, ...x }) => x)));
    for (const s of skipped) console.log(`skipped: ${s}`);
    const figs = [];
    for (const s of summary) {
      const k = `repair[${s.tool}, ${s.fault}]`;
      if (s._a.n) figs.push(figure(`${k}: fault → alert p50`, s._a.p50, 'ms'));
      else figs.push(figure(`${k}: fault → alert`, s['not detected'] ? `not detected` : null, ''));
      if (s._r.n) figs.push(figure(`${k}: fault → new heartbeat p50`, s._r.p50, 'ms'));
      if (s._v.n) figs.push(figure(`${k}: fault → fixed-verified p50`, s._v.p50, 'ms'));
    }
    console.log('');
    printFigures(figs);

    const csvPath = join(RESULTS_DIR, 'peers-repair.csv');
    const sec = (x) => (x === undefined || x === null ? '' : round(x / 1000, 3));
    writeCsv(
      csvPath,
      {
        title: 'Detection and repair: a worker that hangs (alive, silent) or dies',
        subtitle: `${machine.nproc} CPU, ${round(machine.memTotalMB / 1024, 1)} GB, ${machine.date.slice(0, 16).replace('T', ' ')} UTC, load ${machine.loadavg[0]} at start; p50 and max of ${trials} trials (Monit 30 s: ${slowTrials}; supervisord hang: ${hangTrialsSup} waits of ${hangWaitS} s)`,
        notes: [
          'alert = the tool noticed; repair = a new worker heartbeats again; fixed-verified = nightshift\'s probe passed (s after the fault)',
          'staleness for all: no heartbeat for 2 s; heartbeat every 200 ms',
          `supervisord cannot see a hang: not detected in ${hangWaitS} s (n/a)`,
          'nightshift: external job (every 1s, grace 2s, heartbeat.file) + auto heal rule (fix ctl.sh restart, probe.sh)',
        ],
      },
      ['tool — fault', 'alert p50 [s]', 'alert max [s]', 'repair p50 [s]', 'repair max [s]', 'fixed-verified p50 [s]'],
      summary.map((s) => [`${s.tool} — ${s.fault}`, sec(s._a.p50), sec(s._a.max), sec(s._r.p50), sec(s._r.max), sec(s._v.p50)]),
    );
    console.log(`\nCSV written to ${csvPath}, chart to ${drawChart(csvPath)}`);
    writeResult('peers-repair', {
      bench: 'peers-repair',
      command: `node bench/peers-repair.mjs ${process.argv.slice(2).join(' ')}`.trim(),
      machine,
      params: { trials, slowTrials, tools, monitCycles, hangWaitS, hangTrialsSup, staleS: STALE_S, heartbeatMs: 200 },
      summary: summary.map(({ _a, _r, _v, ...x }) => ({ ...x, alert: _a, repair: _r, verified: _v })),
      trials: results,
      skipped,
      figures: figs,
    });
  });
}

// ---------------------------------------------------------------- peers present?

function ensurePeers(install) {
  const has = (bin) => ['/usr/bin', '/usr/sbin', '/bin', '/sbin', '/usr/local/bin'].some((d) => existsSync(join(d, bin)));
  const missing = [];
  if (!has('monit')) missing.push('monit');
  if (!has('supervisord')) missing.push('supervisor');
  if (missing.length && install) {
    console.log(`installing ${missing.join(' ')} (apt-get; Debian's policy-rc.d keeps their system services from starting)`);
    execFileSync('apt-get', ['install', '-y', ...missing], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  return { monit: has('monit'), supervisord: has('supervisord') };
}

// ---------------------------------------------------------------- the worker and its scripts

const WORKER_SH = `#!/bin/bash
# worker.sh DIR: heartbeats every 200 ms; SIGUSR1 = hang (alive, silent), SIGUSR2 = die (exit 3).
d=$1
echo $$ > "$d/worker.pid.$$" && mv -f "$d/worker.pid.$$" "$d/worker.pid"
fault=
trap 'fault=hang' USR1
trap 'fault=die' USR2
while :; do
  if [ -n "$fault" ]; then
    echo "$$ $fault $EPOCHREALTIME" >> "$d/faults"
    [ "$fault" = die ] && exit 3
    while :; do sleep 1; done
  fi
  echo "$$ $EPOCHREALTIME" >> "$d/hb"
  sleep 0.2
done
`;

const CTL_SH = `#!/bin/bash
# ctl.sh start|stop|restart DIR: one at a time (flock); start waits for the new worker's first
# heartbeat (readiness); restart leaves a worker that heartbeated < 1 s ago alone.
cmd=$1 d=$2 here=$(dirname "$0")
exec 9>"$d/ctl.lock"; flock 9
alive() { local s; s=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && [ -n "$s" ] && [ "$s" != Z ]; }
fresh() { local l p t; l=$(tail -n1 "$d/hb" 2>/dev/null); p=\${l%% *}; t=\${l#* }; t=\${t/./}
  [ -n "$p" ] && alive "$p" && [ $(( \${EPOCHREALTIME/./} - t )) -lt 1000000 ]; }
start() {
  local pid; pid=$(cat "$d/worker.pid" 2>/dev/null)
  if [ -n "$pid" ] && alive "$pid"; then return 0; fi
  rm -f "$d/worker.pid"
  setsid -f "$here/worker.sh" "$d" </dev/null >/dev/null 2>&1 9>&-
  for _ in $(seq 500); do
    pid=$(cat "$d/worker.pid" 2>/dev/null)
    [ -n "$pid" ] && tail -n1 "$d/hb" 2>/dev/null | grep -q "^$pid " && return 0
    sleep 0.01
  done
  echo "the worker did not heartbeat within 5 s of its start" >&2; return 1
}
stop() {
  local pid; pid=$(cat "$d/worker.pid" 2>/dev/null)
  [ -n "$pid" ] && alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 200); do alive "$pid" || return 0; sleep 0.01; done
  kill -KILL "$pid" 2>/dev/null; return 0
}
case $cmd in
  start) start ;;
  stop) stop ;;
  restart) if fresh; then echo "healthy already"; exit 0; fi; stop; start ;;
  *) echo "usage: ctl.sh start|stop|restart DIR" >&2; exit 2 ;;
esac
`;

const PROBE_SH = `#!/bin/bash
# probe.sh DIR: passes when the worker named by the last heartbeat is alive and wrote it < 1 s ago.
d=$1
l=$(tail -n1 "$d/hb" 2>/dev/null) || exit 1
p=\${l%% *}; t=\${l#* }; t=\${t/./}
s=$(cut -d' ' -f3 "/proc/$p/stat" 2>/dev/null) && [ "$s" != Z ] || { echo "worker $p is not running"; exit 1; }
age=$(( (\${EPOCHREALTIME/./} - t) / 1000 ))
[ $age -lt 1000 ] || { echo "last heartbeat \${age} ms ago"; exit 1; }
echo "worker $p heartbeat \${age} ms ago"
`;

/** A folder with the scripts and the worker's files: bin/ (scripts) and w/ (hb, faults, worker.pid). */
function workerKit(prefix) {
  const root = tempDir(prefix);
  const bin = join(root, 'bin');
  const w = join(root, 'w');
  mkdirSync(bin);
  mkdirSync(w);
  for (const [n, text] of [['worker.sh', WORKER_SH], ['ctl.sh', CTL_SH], ['probe.sh', PROBE_SH]]) {
    writeFileSync(join(bin, n), text);
    chmodSync(join(bin, n), 0o755);
  }
  writeFileSync(join(w, 'hb'), '');
  writeFileSync(join(w, 'faults'), '');
  return { root, bin, w, hb: join(w, 'hb'), faults: join(w, 'faults'), pidfile: join(w, 'worker.pid'), ctl: join(bin, 'ctl.sh'), probe: join(bin, 'probe.sh'), worker: join(bin, 'worker.sh') };
}

/** Every worker pid seen in any kit; killed at the end whoever started them (checked by cmdline). */
class WorkerRegistry {
  constructor() {
    this.kits = [];
    process.on('exit', () => this.killAll());
  }

  add(kit) {
    this.kits.push(kit);
  }

  killAll() {
    for (const kit of this.kits) {
      const pids = new Set();
      for (const f of [kit.hb, kit.faults]) {
        try {
          for (const l of readFileSync(f, 'utf8').split('\n')) if (/^\d+ /.test(l)) pids.add(Number(l.split(' ')[0]));
        } catch {
          // gone with the temp folder
        }
      }
      try {
        pids.add(Number(readFileSync(kit.pidfile, 'utf8').trim()));
      } catch {
        // none
      }
      for (const pid of pids) {
        try {
          if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(kit.worker)) continue;
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  }
}

/** Appended lines of a file, with the wall time each was first seen (polled). */
class Tail {
  constructor(path, everyMs = 5) {
    this.path = path;
    this.lines = [];
    this.offset = 0;
    this.partial = '';
    this.timer = setInterval(() => this.poll(), everyMs);
  }

  poll() {
    let size;
    try {
      size = statSync(this.path).size;
    } catch {
      return;
    }
    if (size <= this.offset) return;
    const fd = openSync(this.path, 'r');
    try {
      const buf = Buffer.alloc(size - this.offset);
      const n = readSync(fd, buf, 0, buf.length, this.offset);
      this.offset += n;
      const text = this.partial + buf.subarray(0, n).toString('utf8');
      const parts = text.split('\n');
      this.partial = parts.pop();
      const wall = Date.now();
      for (const raw of parts) this.lines.push({ wall, raw });
    } finally {
      closeSync(fd);
    }
  }

  mark() {
    this.poll();
    return this.lines.length;
  }

  /** The first line from `from` on that matches, or null after timeoutMs. */
  async waitFor(pred, from, timeoutMs) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      this.poll();
      for (let i = from; i < this.lines.length; i++) if (pred(this.lines[i])) return this.lines[i];
      if (Date.now() > until) return null;
      await sleep(5);
    }
  }

  stop() {
    clearInterval(this.timer);
  }
}

const hbLine = (l) => {
  const [pid, t] = l.raw.split(' ');
  return { pid: Number(pid), at: Number(t) * 1000 };
};

/** The worker is up and has heartbeated for at least `minUpMs` (supervisord's startsecs is 1 s). */
async function healthyWorker(kit, hb, minUpMs, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    hb.poll();
    const last = hb.lines.at(-1);
    if (last && /^\d+ \d/.test(last.raw)) {
      const { pid, at } = hbLine(last);
      const first = hb.lines.find((l) => l.raw.startsWith(`${pid} `));
      if (Date.now() - at < 500 && at - hbLine(first).at >= minUpMs) return pid;
    }
    await sleep(20);
  }
  return null;
}

/**
 * One trial: signal the worker, then time the tool's alert and the first heartbeat of a new
 * worker. `alert(from)` resolves with {at, how} or null; `after(kind, faultAt)` adds tool figures.
 */
async function trial({ kit, hb, faults, kind, cycleMs, alert, alertTimeoutMs, repairTimeoutMs, after, minUpMs = 1200 }) {
  const pid = await healthyWorker(kit, hb, minUpMs);
  if (pid === null) return { kind, error: 'no healthy worker before the fault (no fresh heartbeat for 30 s)' };
  await sleep(Math.random() * cycleMs);
  const fFrom = faults.mark();
  const hFrom = hb.mark();
  const aCtx = alert.mark();
  process.kill(pid, kind === 'hang' ? 'SIGUSR1' : 'SIGUSR2');
  const f = await faults.waitFor((l) => l.raw.startsWith(`${pid} ${kind} `), fFrom, 3000);
  if (!f) return { kind, pid, error: 'the worker did not record its fault within 3 s' };
  const faultAt = Number(f.raw.split(' ')[2]) * 1000;
  const [a, r] = await Promise.all([
    alert.wait(aCtx, alertTimeoutMs),
    hb.waitFor((l) => /^\d+ \d/.test(l.raw) && hbLine(l).pid !== pid && hbLine(l).at > faultAt, hFrom, repairTimeoutMs),
  ]);
  const row = {
    kind,
    pid,
    faultAt: round(faultAt, 1),
    alertMs: a ? round(a.at - faultAt, 1) : null,
    alertHow: a?.how ?? null,
    repairMs: r ? round(hbLine(r).at - faultAt, 1) : null,
    newPid: r ? hbLine(r).pid : null,
    waitedS: a ? null : round(alertTimeoutMs / 1000, 0),
  };
  if (after) Object.assign(row, await after(row, faultAt));
  return row;
}

function printTrial(tool, i, r) {
  const ms = (x) => (x === null || x === undefined ? '—' : `${Math.round(x)} ms`);
  console.log(
    `  ${tool} ${r.kind} #${i + 1}: alert ${ms(r.alertMs)}, repair ${ms(r.repairMs)}${r.verifiedMs !== undefined ? `, verified ${ms(r.verifiedMs)}` : ''}${r.error ? `  (${r.error})` : ''}${r.note ? `  (${r.note})` : ''}`,
  );
}

// ---------------------------------------------------------------- nightshift

async function benchNightshift(values, { trials, STALE_S, workers }) {
  console.log(`\n-- nightshift: external job (every 1s, heartbeat.file, grace ${STALE_S}s) + auto rule (fix: ctl.sh restart, probe: probe.sh)`);
  // A private copy of the build: the install's dist/ is in the protected zone, and a rebuild of
  // the shared dist/ during a heal would turn it into a protected-zone emergency.
  const v = { ...values, dist: privateInstall(values, 'repair-install') };
  const kit = workerKit('repair-ns');
  workers.add(kit);
  const home = tempDir('repair-ns-home');
  const state = join(home, 'state');
  for (const d of ['jobs', 'rules', 'protected']) mkdirSync(join(home, d), { recursive: true });
  writeFileSync(join(home, 'protected', 'policy.yaml'), 'timezone: UTC\n');
  writeFileSync(join(home, 'jobs', 'worker.yaml'), `description: agent loop, heartbeats every 200 ms\nevery: 1s\nheartbeat: { file: "${kit.hb}", grace: ${STALE_S}s }\n`);
  writeFileSync(
    join(home, 'rules', 'restart-worker.yaml'),
    [
      'description: The worker stopped heartbeating; restart it and check it heartbeats again.',
      'match: { job: worker, kind: [missed] }',
      'autonomy: auto',
      'action:',
      `  command: ["${kit.ctl}", "restart", "${kit.w}"]`,
      `  touches: ["${kit.pidfile}"]`,
      '  timeout: 20s',
      'probe:',
      `  command: ["${kit.probe}", "${kit.w}"]`,
      '  timeout: 5s',
      '',
    ].join('\n'),
  );
  // The worker runs before nightshift starts, as an agent loop already in service would.
  execFileSync(kit.ctl, ['start', kit.w]);
  const daemon = startDaemon(v, { home, state, label: 'nightshift' });
  const rows = [];
  const hb = new Tail(kit.hb);
  const faults = new Tail(kit.faults);
  try {
    await daemon.waitFor((e) => e.obj?.msg === 'nightshift started', { timeoutMs: 60_000, what: 'start' });
    const db = new Database(join(state, 'nightshift.db'), { readonly: true, fileMustExist: true });
    const healLine = (e) => typeof e.obj?.msg === 'string' && e.obj.msg.startsWith('heal ') && e.obj.outcome !== undefined && e.obj.job === 'worker';
    for (let i = 0; i < trials * 2; i++) {
      const kind = i % 2 === 0 ? 'hang' : 'die';
      let healFrom = 0;
      const r = await trial({
        kit,
        hb,
        faults,
        kind,
        cycleMs: 1000,
        alertTimeoutMs: 20_000,
        repairTimeoutMs: 30_000,
        alert: {
          mark: () => {
            healFrom = daemon.mark();
            return db.prepare('SELECT coalesce(max(id), 0) AS id FROM alerts').get().id;
          },
          wait: async (lastId, timeoutMs) => {
            const until = Date.now() + timeoutMs;
            while (Date.now() < until) {
              const a = db.prepare("SELECT * FROM alerts WHERE id > ? AND job = 'worker' ORDER BY id LIMIT 1").get(lastId);
              if (a) return { at: a.opened_at, how: `alert #${a.id} ${a.kind} (alerts.opened_at)`, id: a.id };
              await sleep(10);
            }
            return null;
          },
        },
        after: async (row, faultAt) => {
          const done = await daemon.waitFor(healLine, { from: healFrom, timeoutMs: 30_000, what: 'the heal outcome' }).catch(() => null);
          if (!done) return { verifiedMs: null, note: 'no heal outcome within 30 s' };
          let h = db.prepare('SELECT * FROM heal_attempts WHERE id = ?').get(done.obj.heal);
          for (let w = 0; h.outcome === null && w < 200; w++) {
            await sleep(10);
            h = db.prepare('SELECT * FROM heal_attempts WHERE id = ?').get(done.obj.heal);
          }
          const alertRow = db.prepare('SELECT * FROM alerts WHERE id = ?').get(h.alert_id);
          await sleep(100); // the snapshot's clean-up after the verdict
          return {
            verifiedMs: h.outcome === 'fixed-verified' ? round(h.ended_at - faultAt, 1) : null,
            heal: h.id,
            outcome: h.outcome,
            alertResolution: alertRow?.resolution ?? null,
            note: h.outcome === 'fixed-verified' ? undefined : `heal #${h.id} ${h.outcome}: ${h.detail}`,
          };
        },
      });
      r.tool = 'nightshift';
      r.config = 'external job every 1s + heartbeat.file, grace 2s; auto rule: ctl.sh restart, probe.sh';
      rows.push(r);
      printTrial('nightshift', Math.floor(i / 2), r);
    }
    // The heal's verdict and a new worker's heartbeat race to resolve the alert.
    const res = {};
    for (const r of rows) if (r.alertResolution) res[r.alertResolution] = (res[r.alertResolution] ?? 0) + 1;
    console.log(`  alert resolutions: ${JSON.stringify(res)} (a new worker's heartbeat can resolve the alert as self-recovered before the heal's probe; the attempt is still fixed-verified)`);
    db.close();
  } finally {
    hb.stop();
    faults.stop();
    await daemon.stop();
    workers.killAll();
  }
  return rows;
}

// ---------------------------------------------------------------- Monit

async function benchMonit({ cycle, trials, STALE_S, workers }) {
  console.log(`\n-- Monit, set daemon ${cycle}: check process (pidfile) + check file timestamp > ${STALE_S} seconds then exec ctl.sh restart`);
  const kit = workerKit(`repair-monit${cycle}`);
  workers.add(kit);
  const dir = kit.root;
  const log = join(dir, 'monit.log');
  const rc = join(dir, 'monitrc');
  writeFileSync(
    rc,
    [
      `set daemon ${cycle}`,
      `set log ${log}`,
      `set pidfile ${join(dir, 'monit.pid')}`,
      `set idfile ${join(dir, 'monit.id')}`,
      `set statefile ${join(dir, 'monit.state')}`,
      // The process check comes first: a death is repaired (synchronously) before the file check looks.
      `check process worker with pidfile ${kit.pidfile}`,
      `  start program = "${kit.ctl} start ${kit.w}" with timeout 10 seconds`,
      `  stop program = "${kit.ctl} stop ${kit.w}"`,
      `check file heartbeat with path ${kit.hb}`,
      `  if timestamp > ${STALE_S} seconds then exec "${kit.ctl} restart ${kit.w}"`,
      '',
    ].join('\n'),
  );
  chmodSync(rc, 0o600);
  writeFileSync(log, '');
  const monit = new Child(`monit (${cycle} s)`, 'monit', ['-I', '-c', rc]);
  const mlog = new Tail(log);
  const hb = new Tail(kit.hb);
  const faults = new Tail(kit.faults);
  const rows = [];
  const label = `monit ${cycle}s`;
  try {
    // Monit starts the worker itself in its first cycle (the process does not exist yet).
    for (let i = 0; i < trials * 2; i++) {
      const kind = i % 2 === 0 ? 'hang' : 'die';
      const pattern = kind === 'hang' ? /'heartbeat' .*failed/ : /'worker' process is not running/;
      const recovered = kind === 'hang' ? /'heartbeat' .*succeeded/ : /'worker' process is running with pid/;
      // Monit acts on a state change: the check this trial needs must have seen its recovery.
      const lastFail = mlog.lines.findLastIndex((l) => pattern.test(l.raw));
      if (lastFail >= 0) {
        const ok = await mlog.waitFor((l) => recovered.test(l.raw), lastFail + 1, (cycle * 2 + 15) * 1000);
        if (!ok) console.log(`  (Monit did not log the recovery of the ${kind} check within ${cycle * 2 + 15} s)`);
      }
      const r = await trial({
        kit,
        hb,
        faults,
        kind,
        cycleMs: cycle * 1000,
        alertTimeoutMs: (cycle * 2 + STALE_S + 15) * 1000,
        repairTimeoutMs: (cycle * 2 + STALE_S + 30) * 1000,
        alert: {
          mark: () => mlog.mark(),
          wait: async (from, timeoutMs) => {
            const l = await mlog.waitFor((x) => pattern.test(x.raw), from, timeoutMs);
            return l ? { at: l.wall, how: l.raw.replace(/^\[[^\]]*\]\s*/, '').slice(0, 100) } : null;
          },
        },
      });
      r.tool = label;
      r.config = `set daemon ${cycle}; check process ... pidfile (restart); check file ... if timestamp > ${STALE_S} seconds then exec ctl.sh restart`;
      rows.push(r);
      printTrial(label, Math.floor(i / 2), r);
    }
  } finally {
    mlog.stop();
    hb.stop();
    faults.stop();
    workers.killAll();
    await monit.stop();
  }
  return rows;
}

// ---------------------------------------------------------------- supervisord

async function benchSupervisord({ trials, hangTrials, hangWaitS, workers }) {
  console.log(`\n-- supervisord: [program:worker] autorestart=true (hang: waits ${hangWaitS} s per trial, ${hangTrials} trial(s))`);
  const kit = workerKit('repair-sup');
  workers.add(kit);
  const dir = kit.root;
  const conf = join(dir, 'supervisord.conf');
  const log = join(dir, 'supervisord.log');
  writeFileSync(
    conf,
    [
      '[supervisord]',
      'nodaemon=true',
      `logfile=${log}`,
      `pidfile=${join(dir, 'supervisord.pid')}`,
      `childlogdir=${dir}`,
      'loglevel=info',
      'user=root',
      '',
      '[program:worker]',
      `command=${kit.worker} ${kit.w}`,
      'autorestart=true',
      'startsecs=1',
      'stdout_logfile=NONE',
      'stderr_logfile=NONE',
      '',
    ].join('\n'),
  );
  writeFileSync(log, '');
  const sup = new Child('supervisord', 'supervisord', ['-n', '-c', conf]);
  const slog = new Tail(log);
  const hb = new Tail(kit.hb);
  const faults = new Tail(kit.faults);
  const rows = [];
  // "2026-12-01 16:09:09,532 WARN exited: ..." in local time, millisecond resolution.
  const stamp = (raw) => {
    const m = /^(\d+)-(\d+)-(\d+) (\d+):(\d+):(\d+),(\d+)/.exec(raw);
    return m ? new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], +m[7]).getTime() : null;
  };
  try {
    const plan = [];
    for (let i = 0; i < trials; i++) plan.push('die');
    for (let i = 0; i < hangTrials; i++) plan.push('hang');
    const n = { die: 0, hang: 0 };
    for (const kind of plan) {
      const r = await trial({
        kit,
        hb,
        faults,
        kind,
        cycleMs: 1000,
        alertTimeoutMs: kind === 'hang' ? hangWaitS * 1000 : 20_000,
        repairTimeoutMs: kind === 'hang' ? hangWaitS * 1000 : 30_000,
        alert: {
          mark: () => slog.mark(),
          wait: async (from, timeoutMs) => {
            const l = await slog.waitFor((x) => /(exited|stopped): worker/.test(x.raw), from, timeoutMs);
            return l ? { at: stamp(l.raw) ?? l.wall, how: l.raw.slice(24, 120) } : null;
          },
        },
      });
      r.tool = 'supervisord';
      r.config = 'autorestart=true, startsecs=1';
      if (kind === 'hang') {
        // Not seen: the worker is alive. The bench kills it so that the next trial starts healthy.
        if (r.alertMs === null) r.note = `not detected: no log line and no restart in ${hangWaitS} s; the bench then killed the hung worker`;
        try {
          process.kill(r.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      rows.push(r);
      printTrial('supervisord', n[kind]++, r);
    }
  } finally {
    slog.stop();
    hb.stop();
    faults.stop();
    await sup.stop(); // stops its worker (SIGTERM) itself
    workers.killAll();
  }
  return rows;
}

// ---------------------------------------------------------------- a reaper above us, then main
// (last in the file: main() uses the classes above)

if (process.env.NSB_REAPER !== '1') {
  const tini = ['/usr/bin/tini', '/sbin/tini', '/usr/sbin/tini'].find((p) => existsSync(p));
  if (!tini) {
    console.error('peers-repair: tini is missing (apt-get install -y tini): dead workers of daemonising start scripts must be reaped, as systemd does on a server');
    process.exit(2);
  }
  const c = spawn(tini, ['-s', '--', process.execPath, ...process.execArgv, SELF, ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, NSB_REAPER: '1' } });
  // Ctrl-C reaches the whole foreground group (tini forwards it too); we only wait for the inner run.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => c.kill('SIGTERM'));
  c.on('exit', (code, signal) => process.exit(code ?? (signal ? 130 : 1)));
} else {
  await main();
}
