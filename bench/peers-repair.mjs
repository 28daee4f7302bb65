#!/usr/bin/env node
// Detection and repair, side by side (issue 5, item 3): one worker, two faults, three tools.
//
// Since containment (issue 9) nightshift runs the worker itself: a worker started by a fix would
// die with the fix's sandbox, and a fix cannot see or signal the worker. A managed job with
// heartbeat.file is long-running: its touches are its heartbeats, a `rerun` replaces the run under
// way and is done once the new run is (the probe judges it), and that run is judged by the
// watchdog like any other. Monit and supervisord are measured as before.
//
// The worker (worker.sh, written into a temp folder) is an agent loop that appends
// "ID EPOCHREALTIME" to a heartbeat file every 200 ms. ID names one worker: its pid, or under
// nightshift "run<N>" (its run id: inside its own PID namespace every worker is pid 2). SIGUSR1
// makes it HANG (it writes "ID hang T" to a faults file and then sleeps forever: alive, silent);
// SIGUSR2 makes it DIE (it writes "ID die T" and exits 3). Both are written by the worker itself at
// the moment of the fault, so "fault" is the worker's own clock, not the bench's. Per trial:
//
//   alert  = the tool's own record that it noticed (see below)             − fault
//   repair = the first heartbeat of a NEW worker (another ID) in the file    − fault
//   and for nightshift also: verified = the heal attempt's fixed-verified    − fault (its probe passed)
//   (the heal attempt's verdict is recorded for every nightshift trial: fixed-verified, or
//   self-recovered when its pre-check found the worker already back; see below)
//
// "No heartbeat for 2 s" is the staleness every tool is told to look for.
//
// - nightshift runs the worker itself, as a managed, long-running job (every process nightshift
//   starts is contained: a worker started by a fix would die with the fix's sandbox, and a fix
//   cannot see or signal the worker, so a `ctl.sh restart` fix cannot repair anything):
//     jobs/worker.yaml   command [worker.sh, W] (in the foreground), every: 1s, concurrency: forbid,
//                        timeout: 1d, killGrace: 2s, heartbeat: { file: <hb>, grace: 2s }
//     rules/restart-worker.yaml   match { job: worker, kind: [missed, failed] }, autonomy: auto,
//       action { rerun: true }, probe.command [probe.sh, W, 2] (read-only: it reads the heartbeat
//       file and writes nothing; it passes when a heartbeat newer than the last one it saw arrives
//       before that one is 2 s old, waiting at least 0.5 s — a dead or hung worker writes none)
//   A hang (alive, silent): the next 1 s instants are skipped (concurrency: forbid) and, with no
//   heartbeat, the watchdog raises `missed` 2–3 s after the last one (next instant + grace); the
//   heal loop's pre-check runs the probe (it fails: 0.5 s), then the rerun stops the hung run — its
//   whole sandbox — and runs the job again (trigger heal); the probe must then see the new
//   worker's heartbeat: fixed-verified. A death: the run ends with exit 3, `failed` is raised at
//   once, and the next 1 s instant starts a new worker (as supervisord's autorestart would); the
//   heal attempt's pre-check runs the probe, which sees that worker heartbeat: self-recovered
//   (nothing is rerun). Why `every: 1s` and not "only via the rule": `missed` exists only for a
//   job with a schedule (no success by its next instant + grace), so a job without one could
//   never be found hung, and any schedule short enough to notice a silence within seconds also
//   starts a dead worker again at its next instant. A death is therefore repaired by the schedule,
//   a hang (which no schedule can see) by the rule. alert = alerts.opened_at (SQLite); verified =
//   heal_attempts.ended_at with outcome fixed-verified. The bench first checks that a healthy
//   worker raises no alert for STALE + 2 s; if it does, nightshift's trials are not run (the
//   figures would be meaningless) and the bench fails.
// - Monit (`monit -I -c <temp monitrc>`, own pid/state/id/log files), with the scripts a user
//   would write around the worker: ctl.sh start|stop|restart (flock; start waits until the new
//   worker's first heartbeat; restart leaves a fresh worker alone):
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
// tool's clock is uniform. With nightshift and Monit, hang and die trials alternate (with Monit, so
// each check has at least one cycle to record its recovery before it is tested again: Monit acts on
// state changes); supervisord has its die trials first, then its hang waits.
//
// Monit's workers are started by a daemonising script (setsid), so a reaper must take dead ones, as
// systemd does on a real server (here pid 1 does not): the script re-executes itself under
// `tini -s` (apt-get install -y tini). Every worker and daemon started is stopped at the end, on
// error too. The bench exits non-zero when a nightshift trial was not repaired and verified.
//
//   node bench/peers-repair.mjs [--quick] [--trials N] [--slow-trials N] [--tools nightshift,monit,supervisord]
//        [--monit-cycles 30,5] [--hang-wait S] [--install] [--keep] [--dist DIR]
//   full: 10 trials per tool and fault (Monit 30 s: --slow-trials, 5), supervisord hang: 3 × 30 s;
//   --quick: 2 (Monit 30 s: 1), supervisord hang 1 × 10 s.
import Database from 'better-sqlite3';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
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
      const missed = g.rows.filter((r) => r.alertMs === null && !r.error).length;
      return {
        tool: g.tool,
        fault: g.kind,
        trials: g.rows.length,
        'alert p50 ms': a.p50 ?? '',
        'alert max ms': a.max ?? '',
        'repair p50 ms': rp.p50 ?? '',
        'repair max ms': rp.max ?? '',
        'verified p50 ms': v.p50 ?? '',
        'heal verdicts': verdicts(g.rows),
        'not detected': missed ? `${missed} (waited ${Math.max(...g.rows.filter((r) => r.alertMs === null).map((r) => r.waitedS ?? 0))} s)` : '',
        _a: a,
        _r: rp,
        _v: v,
        config: g.config,
      };
    });
    console.log('\nfault → alert and fault → repair (a new worker heartbeats), ms:');
    console.log(table(summary.map(({ _a, _r, _v, config, ...x }) => x)));
    console.log('(verified = the heal attempt\'s fixed-verified; heal verdicts = the outcome of the heal attempt on each trial\'s alert)');
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
          'nightshift: managed job (worker in the foreground, every 1s, forbid, heartbeat.file, grace 2s) + auto rule (rerun, read-only probe.sh); a death is restarted by the schedule (heal: self-recovered), a hang by the rule (fixed-verified)',
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
    // nightshift must repair and verify every trial: a trial that it did not is a failure of the run.
    const bad = results.filter((r) => r.tool === 'nightshift').map((r) => [r, nsVerdict(r)]).filter(([, why]) => why !== null);
    if (bad.length) throw new Error(`${bad.length} nightshift trial(s) not repaired and verified: ${bad.map(([r, why]) => `${r.kind}: ${why}`).join('; ')}`);
  });
}

/** "fixed-verified×2, self-recovered×1" for the nightshift trials of a group; '' for the others. */
function verdicts(rows) {
  const n = {};
  for (const r of rows) if (r.healOutcome !== undefined) n[r.healOutcome ?? 'none'] = (n[r.healOutcome ?? 'none'] ?? 0) + 1;
  return Object.entries(n).map(([k, c]) => `${k}×${c}`).join(', ');
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
# Its ID is its pid, or "run<N>" under nightshift (in its own PID namespace every worker is pid 2).
d=$1
id=$$
[ -n "$NIGHTSHIFT_RUN_ID" ] && id=run$NIGHTSHIFT_RUN_ID
echo $$ > "$d/worker.pid.$$" && mv -f "$d/worker.pid.$$" "$d/worker.pid"
fault=
trap 'fault=hang' USR1
trap 'fault=die' USR2
while :; do
  if [ -n "$fault" ]; then
    echo "$id $fault $EPOCHREALTIME" >> "$d/faults"
    [ "$fault" = die ] && exit 3
    while :; do sleep 1; done
  fi
  echo "$id $EPOCHREALTIME" >> "$d/hb"
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
# probe.sh DIR [STALE_S]: read-only (it reads the heartbeat file and writes nothing; it needs no
# view of the worker's process). Passes when the worker heartbeats on time: a heartbeat newer than
# the last one at its start arrives before that one is STALE_S (default 2) s old, waiting at least
# 0.5 s (a worker just started writes its first within that). A dead or hung worker writes none.
d=$1 stale_us=$(( \${2:-2} * 1000000 ))
us() { local t=$EPOCHREALTIME; echo \${t/./}; }
last=$(tail -n1 "$d/hb" 2>/dev/null)
t=\${last##* }; t=\${t/./}; [[ $t =~ ^[0-9]+$ ]] || t=0
start=$(us)
until=$(( t + stale_us )); [ $until -lt $(( start + 500000 )) ] && until=$(( start + 500000 ))
while [ "$(us)" -lt $until ]; do
  l=$(tail -n1 "$d/hb" 2>/dev/null)
  if [ -n "$l" ] && [ "$l" != "$last" ]; then echo "worker \${l%% *} heartbeats ($(( ($(us) - start) / 1000 )) ms after the probe started)"; exit 0; fi
  sleep 0.02
done
if [ -z "$last" ]; then echo "no heartbeat at all"; else echo "no heartbeat since \${last%% *}'s, $(( ($(us) - t) / 1000 )) ms ago"; fi
exit 1
`;

/**
 * A folder with the scripts and the worker's files: bin/ (scripts) and w/ (hb, faults, worker.pid);
 * `root` defaults to a new temp folder. (nightshift's probes see the file system read-only; a fix
 * would get a private /tmp, in which only the home comes back: nightshift's kit lives in the home.)
 */
function workerKit(prefix, root = tempDir(prefix)) {
  const bin = join(root, 'bin');
  const w = join(root, 'w');
  mkdirSync(bin, { recursive: true });
  mkdirSync(w, { recursive: true });
  for (const [n, text] of [['worker.sh', WORKER_SH], ['ctl.sh', CTL_SH], ['probe.sh', PROBE_SH]]) {
    writeFileSync(join(bin, n), text);
    chmodSync(join(bin, n), 0o755);
  }
  writeFileSync(join(w, 'hb'), '');
  writeFileSync(join(w, 'faults'), '');
  const kit = { root, bin, w, hb: join(w, 'hb'), faults: join(w, 'faults'), pidfile: join(w, 'worker.pid'), ctl: join(bin, 'ctl.sh'), probe: join(bin, 'probe.sh'), worker: join(bin, 'worker.sh') };
  kit.hostPid = (id) => workerPid(kit, id);
  return kit;
}

/** Live processes running this kit's worker.sh (bash, the script, then its folder), as seen from here. */
function kitWorkers(kit) {
  const out = [];
  let names = [];
  try {
    names = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return out;
  }
  for (const n of names) {
    try {
      const argv = readFileSync(`/proc/${n}/cmdline`, 'utf8').split('\0');
      if (argv[1] !== kit.worker || !/(^|\/)bash$/.test(argv[0])) continue;
      const stat = readFileSync(`/proc/${n}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') continue;
      const env = readFileSync(`/proc/${n}/environ`, 'utf8').split('\0');
      const run = env.find((e) => e.startsWith('NIGHTSHIFT_RUN_ID='))?.slice('NIGHTSHIFT_RUN_ID='.length);
      out.push({ pid: Number(n), id: run ? `run${run}` : n });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * The pid (in our PID namespace) of the worker with this ID: the ID itself for a plain worker;
 * for "run<N>" (a worker nightshift contains, pid 2 in its own namespace) the live worker.sh
 * whose environment carries NIGHTSHIFT_RUN_ID=N. Null when none lives.
 */
function workerPid(kit, id) {
  if (/^\d+$/.test(id)) return Number(id);
  return kitWorkers(kit).find((w) => w.id === id)?.pid ?? null;
}

/** Every worker of every kit; killed at the end whoever started them (checked by cmdline). */
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
      const pids = new Set(kitWorkers(kit).map((w) => w.pid));
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

const HB = /^\S+ \d+\.\d+$/;
const hbLine = (l) => {
  const [id, t] = l.raw.split(' ');
  return { id, at: Number(t) * 1000 };
};

/** The worker is up and has heartbeated for at least `minUpMs` (supervisord's startsecs is 1 s); its ID. */
async function healthyWorker(kit, hb, minUpMs, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    hb.poll();
    const last = hb.lines.at(-1);
    if (last && HB.test(last.raw)) {
      const { id, at } = hbLine(last);
      const first = hb.lines.find((l) => l.raw.startsWith(`${id} `));
      if (Date.now() - at < 500 && at - hbLine(first).at >= minUpMs && kit.hostPid(id) !== null) return id;
    }
    await sleep(20);
  }
  return null;
}

/**
 * One trial: signal the worker, then time the tool's alert and the first heartbeat of a new
 * worker. `alert.mark()` / `alert.wait(ctx, ms)` resolve with {at, how} or null; `after(row, faultAt)` adds tool figures.
 */
async function trial({ kit, hb, faults, kind, cycleMs, alert, alertTimeoutMs, repairTimeoutMs, after, minUpMs = 1200 }) {
  const id = await healthyWorker(kit, hb, minUpMs);
  if (id === null) return { kind, error: 'no healthy worker before the fault (no fresh heartbeat for 30 s)' };
  await sleep(Math.random() * cycleMs);
  const fFrom = faults.mark();
  const hFrom = hb.mark();
  const aCtx = alert.mark();
  const pid = kit.hostPid(id);
  try {
    if (pid === null) throw new Error('gone');
    process.kill(pid, kind === 'hang' ? 'SIGUSR1' : 'SIGUSR2');
  } catch {
    return { kind, worker: id, pid, error: `worker ${id} (pid ${pid}) could not be signalled` };
  }
  const f = await faults.waitFor((l) => l.raw.startsWith(`${id} ${kind} `), fFrom, 3000);
  if (!f) return { kind, worker: id, pid, error: 'the worker did not record its fault within 3 s' };
  const faultAt = Number(f.raw.split(' ')[2]) * 1000;
  const [a, r] = await Promise.all([
    alert.wait(aCtx, alertTimeoutMs),
    hb.waitFor((l) => HB.test(l.raw) && hbLine(l).id !== id && hbLine(l).at > faultAt, hFrom, repairTimeoutMs),
  ]);
  const row = {
    kind,
    worker: id,
    pid,
    faultAt: round(faultAt, 1),
    alertMs: a ? round(a.at - faultAt, 1) : null,
    alertHow: a?.how ?? null,
    repairMs: r ? round(hbLine(r).at - faultAt, 1) : null,
    newWorker: r ? hbLine(r).id : null,
    waitedS: a ? null : round(alertTimeoutMs / 1000, 0),
  };
  if (after) Object.assign(row, await after(row, faultAt, a));
  return row;
}

function printTrial(tool, i, r) {
  const ms = (x) => (x === null || x === undefined ? '—' : `${Math.round(x)} ms`);
  console.log(
    `  ${tool} ${r.kind} #${i + 1}: alert ${ms(r.alertMs)}${r.alertHow && r.tool === 'nightshift' ? ` [${r.alertHow.replace(/ \(.*$/, '')}]` : ''}, repair ${ms(r.repairMs)}${r.verifiedMs !== undefined ? `, verified ${ms(r.verifiedMs)}` : ''}${r.healOutcome ? `, heal ${r.healOutcome} at ${ms(r.healMs)}` : ''}${r.error ? `  (${r.error})` : ''}${r.note ? `  (${r.note})` : ''}`,
  );
}

// ---------------------------------------------------------------- nightshift

const NS_CONFIG = 'managed job (worker.sh in the foreground) every 1s, concurrency forbid, heartbeat.file, grace 2s; auto rule: rerun, probe.sh (read-only)';

async function benchNightshift(values, { trials, STALE_S, workers }) {
  console.log(`\n-- nightshift: ${NS_CONFIG.replace('grace 2s', `grace ${STALE_S}s`)}`);
  // A private copy of the build: the install's dist/ is in the protected zone, and a rebuild of
  // the shared dist/ during a heal would turn it into a protected-zone emergency.
  const v = { ...values, dist: privateInstall(values, 'repair-install') };
  const home = tempDir('repair-ns-home');
  // The worker's folder inside the home, beside its job: readable by every sandbox nightshift makes.
  const kit = workerKit('repair-ns', join(home, 'worker'));
  workers.add(kit);
  const state = join(home, 'state');
  for (const d of ['jobs', 'rules', 'protected']) mkdirSync(join(home, d), { recursive: true });
  writeFileSync(join(home, 'protected', 'policy.yaml'), 'timezone: UTC\n');
  writeFileSync(
    join(home, 'jobs', 'worker.yaml'),
    [
      'description: agent loop, heartbeats every 200 ms into its heartbeat file; nightshift runs it and keeps it running',
      `command: ["${kit.worker}", "${kit.w}"]`,
      'every: 1s',
      'concurrency: forbid',
      'timeout: 1d',
      'killGrace: 2s',
      `heartbeat: { file: "${kit.hb}", grace: ${STALE_S}s }`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(home, 'rules', 'restart-worker.yaml'),
    [
      'description: The worker stopped heartbeating or died; run it again and check that a worker heartbeats.',
      'match: { job: worker, kind: [missed, failed] }',
      'autonomy: auto',
      'action: { rerun: true }',
      'probe:',
      `  command: ["${kit.probe}", "${kit.w}", "${STALE_S}"]`,
      '  timeout: 10s',
      '',
    ].join('\n'),
  );
  // The daemon starts the worker itself, at its first 1 s instant.
  const daemon = startDaemon(v, { home, state, label: 'nightshift' });
  const rows = [];
  const hb = new Tail(kit.hb);
  const faults = new Tail(kit.faults);
  let db = null;
  try {
    await daemon.waitFor((e) => e.obj?.msg === 'nightshift started', { timeoutMs: 60_000, what: 'start' });
    db = new Database(join(state, 'nightshift.db'), { readonly: true, fileMustExist: true });
    const alertsOf = (fromId) => db.prepare("SELECT * FROM alerts WHERE id > ? AND job = 'worker' ORDER BY id").all(fromId);
    const attemptsOf = (alertId) => db.prepare('SELECT * FROM heal_attempts WHERE alert_id = ? ORDER BY id').all(alertId);

    // A healthy worker must raise nothing: otherwise every figure below would be wrong.
    const first = await healthyWorker(kit, hb, 1200);
    if (first === null) {
      const runs = db.prepare("SELECT id, trigger, outcome, reason FROM runs WHERE job = 'worker' AND outcome NOT LIKE 'skipped%' ORDER BY id DESC LIMIT 3").all();
      throw new NsProblem(`nightshift did not start a worker that heartbeats within 30 s (runs: ${JSON.stringify(runs)})`);
    }
    const quietMs = (STALE_S + 2) * 1000;
    await sleep(quietMs);
    const spurious = alertsOf(0);
    if (spurious.length) {
      const a = spurious[0];
      const heals = attemptsOf(a.id).map((h) => `heal #${h.id} ${h.outcome ?? `at step ${h.step}`}`);
      throw new NsProblem(
        `nightshift raised ${spurious.length} alert(s) for a worker that heartbeats every 200 ms into its heartbeat.file ` +
          `(first: #${a.id} ${a.kind} "${a.message}", count ${a.count}${heals.length ? `; ${heals.join(', ')}` : ''}) within ${quietMs / 1000} s of watching a healthy worker; ` +
          `trials not run`,
      );
    }

    for (let i = 0; i < trials * 2; i++) {
      const kind = i % 2 === 0 ? 'hang' : 'die';
      const r = await trial({
        kit,
        hb,
        faults,
        kind,
        cycleMs: 1000,
        alertTimeoutMs: 20_000,
        repairTimeoutMs: 30_000,
        alert: {
          mark: () => db.prepare('SELECT coalesce(max(id), 0) AS id FROM alerts').get().id,
          wait: async (lastId, timeoutMs) => {
            const until = Date.now() + timeoutMs;
            while (Date.now() < until) {
              const a = alertsOf(lastId)[0];
              if (a) return { at: a.opened_at, how: `alert #${a.id} ${a.kind} (alerts.opened_at)`, id: a.id };
              await sleep(10);
            }
            return null;
          },
        },
        after: async (row, faultAt, a) => {
          if (!a) return { healOutcome: null, note: 'no alert, so no heal' };
          // The heal loop's verdict on this alert: every attempt for it finished, the alert resolved.
          const until = Date.now() + 30_000;
          let hs = attemptsOf(a.id);
          let al = db.prepare('SELECT * FROM alerts WHERE id = ?').get(a.id);
          while (Date.now() < until && (hs.length === 0 || hs.some((h) => h.outcome === null) || al.resolved_at === null)) {
            await sleep(20);
            hs = attemptsOf(a.id);
            al = db.prepare('SELECT * FROM alerts WHERE id = ?').get(a.id);
          }
          const h = hs.at(-1);
          const out = {
            verifiedMs: null,
            heal: h?.id ?? null,
            healOutcome: h ? (h.outcome ?? `unfinished (step ${h.step})`) : 'no attempt',
            healDetail: h?.detail ?? null,
            healMs: h?.ended_at ? round(h.ended_at - faultAt, 1) : null,
            alertResolution: al.resolution ?? null,
            resolvedMs: al.resolved_at ? round(al.resolved_at - faultAt, 1) : null,
          };
          if (h?.outcome === 'fixed-verified') out.verifiedMs = round(h.ended_at - faultAt, 1);
          else if (!h) out.note = `no heal attempt within 30 s; alert ${al.resolution ?? 'still open'}`;
          else if (h.outcome === null) out.note = `heal #${h.id} still at step ${h.step} 30 s after the alert`;
          else if (h.outcome !== 'self-recovered' || kind !== 'die') out.note = `heal #${h.id} ${h.outcome}: ${h.detail}`;
          else out.note = 'self-recovered: the schedule had started a new worker; the pre-check probe saw it heartbeat';
          await sleep(100); // the snapshot's clean-up after the verdict
          return out;
        },
      });
      r.tool = 'nightshift';
      r.config = NS_CONFIG;
      rows.push(r);
      printTrial('nightshift', Math.floor(i / 2), r);
    }
    // A new worker's heartbeat can resolve the alert before the heal's probe has spoken; a verified
    // attempt is still credited (fixed-verified). A death is resolved by the schedule's new worker.
    const res = {};
    for (const r of rows) if (r.alertResolution) res[`${r.kind}: ${r.alertResolution}`] = (res[`${r.kind}: ${r.alertResolution}`] ?? 0) + 1;
    console.log(`  alert resolutions: ${JSON.stringify(res)}`);
  } catch (err) {
    if (!(err instanceof NsProblem)) throw err;
    console.log(`  NOT MEASURED: ${err.message}`);
    for (const kind of ['hang', 'die']) rows.push({ tool: 'nightshift', kind, config: NS_CONFIG, alertMs: null, repairMs: null, verifiedMs: null, healOutcome: 'not measured', error: err.message });
  } finally {
    db?.close();
    hb.stop();
    faults.stop();
    await daemon.stop();
    workers.killAll();
  }
  return rows;
}

/** nightshift did something that makes its trials meaningless: reported, and the bench fails at the end. */
class NsProblem extends Error {}

/** A nightshift trial is repaired and verified when a new worker heartbeats and the heal loop's verdict says so. */
function nsVerdict(r) {
  if (r.error) return r.error;
  if (r.alertMs === null) return 'no alert';
  if (r.repairMs === null) return 'no new worker heartbeat';
  if (r.kind === 'hang' && r.healOutcome !== 'fixed-verified') return `heal ${r.healOutcome}`;
  if (r.kind === 'die' && r.healOutcome !== 'fixed-verified' && r.healOutcome !== 'self-recovered') return `heal ${r.healOutcome}`;
  return null;
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
          if (r.pid) process.kill(r.pid, 'SIGKILL');
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
