// Helpers for the peer comparisons (peers-idle.mjs, peers-precision.mjs): installing Debian cron
// and PM2 when a comparison needs them, running them so that nothing outlives the script, and
// sampling a whole process tree from /proc.
//
// Peers and where they come from:
// - Debian cron: `apt-get install -y cron` when /usr/sbin/cron is missing. Debian images usually
//   carry a policy-rc.d that stops the package from starting the service; when a cron daemon
//   appears anyway (pid file /run/crond.pid), we stop it again: no cron daemon is left running.
//   Our cron runs as `cron -f` in a private mount namespace (unshare -m) in which /etc/cron.d is
//   a temp folder holding only our file, /etc/crontab is empty, the user crontab spool and /run
//   are empty tmpfs: it runs exactly our lines (not e2scrub or the hourly run-parts) and never
//   clashes with a system cron's pid file. Nothing is written under the real /etc. Without
//   unshare, our file goes to the real /etc/cron.d/ and is removed afterwards (and the system's
//   own crontabs are loaded too; the result says which way was used).
// - PM2: `npm install pm2` into ~/.cache/nightshift-bench/pm2 (outside the repository) when not
//   there; every run uses its own PM2_HOME in a temp folder and ends with `pm2 kill`.
//
// Cleanups registered with onCleanup() are synchronous, so they also run on Ctrl-C / SIGTERM
// (before lib.mjs's own handler exits the process) and on a plain exit.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Child, clockTicks } from './lib.mjs';

// ---------------------------------------------------------------- cleanups

const cleanups = [];
let hooked = false;

/** Registers a synchronous cleanup; runs once, newest first, at runCleanups(), on a signal, or at exit. */
export function onCleanup(label, fn) {
  const entry = { label, fn, done: false };
  cleanups.push(entry);
  if (!hooked) {
    hooked = true;
    process.on('exit', runCleanups);
    // Registered before lib.mjs's handlers (those are added when the first Child starts), so our
    // synchronous cleanups finish before lib.mjs calls process.exit.
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
      process.once(sig, () => {
        runCleanups();
        // Our listener replaced node's default exit on the signal. lib.mjs's handler (installed with
        // its first Child, together with an 'exit' hook) stops its children and exits by itself;
        // without it, exit here.
        const libHooked = process.listeners('exit').some((l) => l !== runCleanups);
        if (!libHooked) process.exit(130);
      });
    }
  }
  return () => runOne(entry);
}

function runOne(entry) {
  if (entry.done) return;
  entry.done = true;
  try {
    entry.fn();
  } catch (err) {
    console.error(`cleanup "${entry.label}" failed: ${err?.message ?? err}`);
  }
}

export function runCleanups() {
  for (const e of [...cleanups].reverse()) runOne(e);
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

/** SIGTERM, wait up to graceMs (synchronously), then SIGKILL: for processes we started ourselves. */
export function stopPidSync(pid, graceMs = 5000) {
  if (!pid || !pidAlive(pid)) return true;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return true;
  }
  const until = Date.now() + graceMs;
  while (Date.now() < until) {
    if (!pidAlive(pid)) return true;
    spawnSync('sleep', ['0.05']);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
  return false;
}

// ---------------------------------------------------------------- process trees

function readProc(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const close = stat.lastIndexOf(')');
  const comm = stat.slice(stat.indexOf('(') + 1, close);
  const f = stat.slice(close + 2).split(' ');
  const n = (field) => Number(f[field - 3]);
  return { pid, comm, state: f[0], ppid: n(4), utime: n(14), stime: n(15), cutime: n(16), cstime: n(17), starttime: n(22) };
}

/** Pids of root and all its descendants (one pass over /proc). */
export function procTree(rootPid) {
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const p = readProc(Number(d));
      if (!children.has(p.ppid)) children.set(p.ppid, []);
      children.get(p.ppid).push(p.pid);
    } catch {
      // exited meanwhile
    }
  }
  const out = [];
  const todo = [rootPid];
  while (todo.length) {
    const pid = todo.shift();
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

function statusOf(path) {
  const out = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+)(?: kB)?$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/**
 * One sample of a process tree: per process VmRSS, CPU ticks (utime+stime, and with the reaped
 * children's cutime+cstime), and per thread the context switches and schedstat on-CPU ns.
 */
export function sampleTree(rootPid) {
  const at = performance.now();
  const procs = {};
  for (const pid of procTree(rootPid)) {
    try {
      const p = readProc(pid);
      const st = statusOf(`/proc/${pid}/status`);
      const tasks = {};
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        try {
          const ts = statusOf(`/proc/${pid}/task/${tid}/status`);
          const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
          tasks[tid] = { cs: (ts.voluntary_ctxt_switches ?? 0) + (ts.nonvoluntary_ctxt_switches ?? 0), cpuNs: ns };
        } catch {
          // thread exited
        }
      }
      procs[pid] = { ...p, rssKB: st.VmRSS ?? 0, threads: st.Threads ?? 0, tasks };
    } catch {
      // exited meanwhile
    }
  }
  return { at, rootPid, procs };
}

/**
 * Figures over the window between two samples of the same tree. RSS is the end sample's. CPU and
 * context switches count what happened in the window: a process or thread present in both
 * samples (same start time) counts the difference, one born in the window counts in full; a
 * process that ended in the window is counted through its parent's cutime/cstime once reaped.
 */
export function diffTree(a, b) {
  const tick = 1000 / clockTicks();
  let cpuTicks = 0;
  let cpuNs = 0;
  let wakeups = 0;
  let rssKB = 0;
  let threads = 0;
  for (const [pid, p1] of Object.entries(b.procs)) {
    const p0 = a.procs[pid]?.starttime === p1.starttime ? a.procs[pid] : null;
    rssKB += p1.rssKB;
    threads += p1.threads;
    cpuTicks += p1.utime + p1.stime + p1.cutime + p1.cstime - (p0 ? p0.utime + p0.stime + p0.cutime + p0.cstime : 0);
    for (const [tid, t1] of Object.entries(p1.tasks)) {
      const t0 = p0?.tasks[tid];
      wakeups += t1.cs - (t0 ? t0.cs : 0);
      cpuNs += t1.cpuNs - (t0 ? t0.cpuNs : 0);
    }
  }
  const root1 = b.procs[b.rootPid];
  const root0 = a.procs[a.rootPid];
  let rootCs = 0;
  for (const [tid, t1] of Object.entries(root1?.tasks ?? {})) rootCs += t1.cs - (root0?.tasks[tid]?.cs ?? 0);
  return {
    windowMs: Math.round((b.at - a.at) * 10) / 10,
    processes: Object.keys(b.procs).length,
    processesAtStart: Object.keys(a.procs).length,
    comms: [...new Set(Object.values(b.procs).map((p) => p.comm))],
    threads,
    rssTreeKB: rssKB,
    rssMainKB: root1?.rssKB ?? null,
    cpuMs: Math.round(cpuTicks * tick * 10) / 10,
    cpuSchedMs: Math.round((cpuNs / 1e6) * 10) / 10,
    wakeups,
    wakeupsMain: rootCs,
  };
}

// ---------------------------------------------------------------- Debian cron

export const CRON_BIN = '/usr/sbin/cron';

function cronPidFileAlive() {
  try {
    const pid = Number(readFileSync('/run/crond.pid', 'utf8').trim());
    return pid && pidAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

/** Installs Debian cron when missing. Returns { ok, how, version } or { ok: false, why }. */
export function ensureCron() {
  const version = () => {
    try {
      return execFileSync('dpkg-query', ['-W', '-f=${Version}', 'cron'], { encoding: 'utf8' }).trim();
    } catch {
      return null;
    }
  };
  if (existsSync(CRON_BIN)) return { ok: true, how: 'already installed', version: version() };
  if (process.getuid?.() !== 0) return { ok: false, why: `${CRON_BIN} is missing and installing it needs root (apt-get install cron)` };
  const before = cronPidFileAlive();
  console.log('peers: installing Debian cron (apt-get install -y cron) ...');
  const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'cron'], {
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    timeout: 300_000,
  });
  const after = cronPidFileAlive();
  if (after && after !== before) {
    // The package started the system service: stop it (we must not leave a cron daemon running).
    spawnSync('/etc/init.d/cron', ['stop'], { stdio: 'ignore' });
    if (pidAlive(after)) stopPidSync(after);
    console.log(`peers: the cron package started a cron daemon (pid ${after}); stopped it`);
  }
  if (r.status !== 0 || !existsSync(CRON_BIN)) {
    return { ok: false, why: `apt-get install cron failed (exit ${r.status}): ${(r.stderr || r.stdout || String(r.error ?? '')).trim().split('\n').slice(-3).join(' | ')}` };
  }
  return { ok: true, how: 'installed now with apt-get', version: version() };
}

/** Vixie cron takes names but not ranges or lists of names everywhere: write numbers. */
export function numericCron(expr) {
  const DOW = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
  const MON = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
  const f = expr.trim().split(/\s+/);
  if (f.length !== 5) throw new Error(`numericCron: expected 5 fields: ${expr}`);
  f[3] = f[3].replace(/[a-z]{3}/gi, (m) => String(MON.indexOf(m.toLowerCase()) + 1));
  f[4] = f[4].replace(/[a-z]{3}/gi, (m) => String(DOW.indexOf(m.toLowerCase())));
  return f.join(' ');
}

function canUnshare() {
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'true'], { stdio: 'ignore' });
  return r.status === 0;
}

/**
 * Starts `cron -f` running exactly `lines` (cron.d format: "m h dom mon dow user command"), with
 * `envLines` (NAME=value) at the top of the file. Returns { child, pid, mode, file }; the file and
 * the daemon are removed/stopped by a registered cleanup and by stop().
 */
export function startCron({ lines, envLines = [], tmp, name = 'nsb-peers' }) {
  const text = `# written by nightshift bench/peers-*.mjs; removed when the bench ends\n${envLines.join('\n')}\n${lines.join('\n')}\n`;
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`cron.d file names may only hold letters, digits, "_" and "-": ${name}`);
  let child;
  let mode;
  let file;
  if (canUnshare()) {
    mode = 'private mount namespace (only our cron.d file)';
    const dir = join(tmp, 'cron.d');
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    file = join(dir, name);
    writeFileSync(file, text, { mode: 0o644 });
    const emptyCrontab = join(tmp, 'crontab');
    writeFileSync(emptyCrontab, '', { mode: 0o644 });
    const script = [
      'set -e',
      `mount --bind ${JSON.stringify(dir)} /etc/cron.d`,
      `if [ -e /etc/crontab ]; then mount --bind ${JSON.stringify(emptyCrontab)} /etc/crontab; fi`,
      'mkdir -p /var/spool/cron/crontabs 2>/dev/null || true',
      'mount -t tmpfs -o mode=1730 nsb-cron-spool /var/spool/cron/crontabs',
      'mount -t tmpfs -o mode=755 nsb-cron-run /run',
      `exec ${CRON_BIN} -f`,
    ].join('\n');
    child = new Child('cron', 'unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { env: { PATH: process.env.PATH, TZ: 'UTC' } });
  } else {
    mode = 'real /etc/cron.d (system crontabs loaded too; unshare -m not available)';
    if (cronPidFileAlive()) throw new Error('a cron daemon is already running (/run/crond.pid): a second "cron -f" would refuse to start; skip');
    file = join('/etc/cron.d', name);
    writeFileSync(file, text, { mode: 0o644 });
    onCleanup(`remove ${file}`, () => rmSync(file, { force: true }));
    child = new Child('cron', CRON_BIN, ['-f'], { env: { PATH: process.env.PATH, TZ: 'UTC' } });
  }
  const stopOnce = onCleanup(`stop cron ${child.pid}`, () => {
    if (!child.exitInfo) stopPidSync(child.pid);
  });
  return {
    child,
    pid: child.pid,
    mode,
    file,
    async stop() {
      await child.stop(5000);
      stopOnce();
      if (!mode.startsWith('private')) rmSync(file, { force: true });
    },
  };
}

/** Waits until the cron child has exec'd cron (the pid's comm is "cron") and is still alive. */
export async function waitCronUp(cron, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (cron.child.exitInfo) throw new Error(`cron exited (code ${cron.child.exitInfo.code}): ${cron.child.stderr.trim().slice(-500)}`);
    try {
      if (readProc(cron.pid).comm === 'cron') return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`cron did not start within ${timeoutMs} ms: ${cron.child.stderr.trim().slice(-500)}`);
}

// ---------------------------------------------------------------- PM2

export const PM2_DIR = join(os.homedir(), '.cache', 'nightshift-bench', 'pm2');

/** Installs PM2 with npm into PM2_DIR when missing. Returns { ok, bin, version, how } or { ok: false, why }. */
export function ensurePm2() {
  const bin = join(PM2_DIR, 'node_modules', 'pm2', 'bin', 'pm2');
  const version = () => {
    try {
      return JSON.parse(readFileSync(join(PM2_DIR, 'node_modules', 'pm2', 'package.json'), 'utf8')).version;
    } catch {
      return null;
    }
  };
  if (existsSync(bin)) return { ok: true, bin, how: `cached in ${PM2_DIR}`, version: version() };
  mkdirSync(PM2_DIR, { recursive: true });
  if (!existsSync(join(PM2_DIR, 'package.json'))) writeFileSync(join(PM2_DIR, 'package.json'), '{ "name": "nightshift-bench-pm2", "private": true }\n');
  console.log(`peers: installing PM2 (npm install pm2 in ${PM2_DIR}) ...`);
  const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', 'pm2'], { cwd: PM2_DIR, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0 || !existsSync(bin)) {
    return { ok: false, why: `npm install pm2 failed (exit ${r.status}): ${(r.stderr || r.stdout || String(r.error ?? '')).trim().split('\n').slice(-3).join(' | ')}` };
  }
  return { ok: true, bin, how: `installed now with npm into ${PM2_DIR}`, version: version() };
}

/**
 * Runs a pm2 CLI command against a private PM2_HOME (synchronously: it only talks to the God
 * daemon and returns).
 */
export function pm2Cli(pm2, home, args, timeoutMs = 120_000) {
  return spawnSync(process.execPath, [pm2.bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, PM2_HOME: home },
    timeout: timeoutMs,
  });
}

/**
 * Starts PM2's God daemon with the apps of an ecosystem file; returns { pid, home, stop() }.
 * `pm2 kill` (and SIGKILL of the God daemon if it survives) runs on stop and as a cleanup.
 */
export function startPm2(pm2, { home, apps }) {
  mkdirSync(home, { recursive: true });
  const eco = join(home, 'ecosystem.config.cjs');
  writeFileSync(eco, `module.exports = ${JSON.stringify({ apps }, null, 2)};\n`);
  let godPid = null;
  const kill = () => {
    pm2Cli(pm2, home, ['kill'], 30_000);
    if (godPid && pidAlive(godPid)) stopPidSync(godPid, 3000);
  };
  // Once only: a second `pm2 kill` with no daemon left would start a new God daemon to kill it.
  const killOnce = onCleanup(`pm2 kill (PM2_HOME ${home})`, kill);
  const r = pm2Cli(pm2, home, ['start', eco]);
  try {
    godPid = Number(readFileSync(join(home, 'pm2.pid'), 'utf8').trim());
  } catch {
    // reported below
  }
  if (r.status !== 0 || !godPid) {
    killOnce();
    throw new Error(`pm2 start failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join(' | ')}`);
  }
  return { pid: godPid, home, eco, stop: killOnce };
}
