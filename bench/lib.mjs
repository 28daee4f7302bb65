// Shared helpers for the benchmark scripts: machine info, /proc sampling, a daemon handle that
// reads the daemon's JSON log lines, temp homes, job-spec generation with schedules that cannot
// fire inside a measurement window, statistics and table printing.
//
// Benchmarks print figures; they never assert timings. Every daemon started here is registered
// and stopped (SIGTERM, wait for exit, SIGKILL as a last resort) even when a script fails.
import { createServer as createNetServer } from 'node:net';
import { request } from 'node:http';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(BENCH_DIR, '..');
export const OUT_DIR = join(BENCH_DIR, 'out');

// ---------------------------------------------------------------- arguments

let jsonOut = false;

/**
 * Parses flags common to all scripts plus the script's own; `--dist DIR` picks another build.
 * `--json` (used by ab.mjs): the result is printed as one JSON line, the last line of stdout,
 * instead of being written to bench/out/NAME.json, and nothing is written to bench/results/.
 */
export function flags(own = {}) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      quick: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false }, // keep temp homes for inspection
      dist: { type: 'string' },
      json: { type: 'boolean', default: false },
      ...own,
    },
    allowPositionals: false,
    strict: true,
  });
  jsonOut = values.json;
  return values;
}

/** True under --json: the bench writes no file (bench/out/, bench/results/) and prints its result as JSON. */
export function jsonMode() {
  return jsonOut;
}

export function distDir(values) {
  return resolve(values?.dist ?? process.env.NIGHTSHIFT_DIST ?? join(REPO, 'dist'));
}

export function cliPath(values) {
  const p = join(distDir(values), 'cli.js');
  if (!existsSync(p)) throw new Error(`${p} does not exist: run "npm run build" first (or pass --dist DIR)`);
  return p;
}

// ---------------------------------------------------------------- machine

let clkTck = null;
export function clockTicks() {
  if (clkTck === null) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

function git(args, cwd = REPO) {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

/** nproc, memory, node, kernel, filesystem of the temp dir, build freshness; printed with every result. */
export function machineInfo(values) {
  const dist = distDir(values);
  // The checkout the build comes from (--dist may point at another one's dist/).
  const buildRoot = resolve(dist, '..');
  let distMtime = null;
  let newestSrc = null;
  try {
    distMtime = statSync(join(dist, 'cli.js')).mtimeMs;
    const srcDir = join(buildRoot, 'src');
    const files = readdirSync(srcDir, { recursive: true }).filter((f) => f.endsWith('.ts'));
    newestSrc = Math.max(...files.map((f) => statSync(join(srcDir, f)).mtimeMs));
  } catch {
    // reported as null
  }
  let tmpFs = null;
  try {
    tmpFs = execFileSync('df', ['-PT', os.tmpdir()], { encoding: 'utf8' }).trim().split('\n').pop().split(/\s+/)[1];
  } catch {
    // unknown
  }
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  return {
    date: new Date().toISOString(),
    host: os.hostname(),
    nproc: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
    cpu,
    memTotalMB: Math.round(os.totalmem() / 2 ** 20),
    memFreeMB: Math.round(os.freemem() / 2 ** 20),
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    clkTck: clockTicks(),
    tmpdir: os.tmpdir(),
    tmpFs,
    dist,
    gitHead: git(['rev-parse', '--short', 'HEAD'], buildRoot),
    gitDirtySrc: (git(['status', '--porcelain', '--', 'src'], buildRoot) ?? '') !== '',
    distStale: distMtime !== null && newestSrc !== null ? newestSrc > distMtime : null,
  };
}

export function printMachine(m) {
  console.log(
    `machine: ${m.nproc} CPU (${m.cpu}), ${m.memTotalMB} MB RAM (${m.memFreeMB} free), load ${m.loadavg.join(' ')}, ${m.kernel}, node ${m.node}, CLK_TCK ${m.clkTck}`,
  );
  console.log(`date: ${m.date}   tmp: ${m.tmpdir} (${m.tmpFs})   build: ${m.dist} (git ${m.gitHead}${m.gitDirtySrc ? ', src has uncommitted changes' : ''})`);
  if (m.distStale) console.log('WARNING: a file in src/ is newer than dist/cli.js — the build may not match the sources (npm run build)');
}

// ---------------------------------------------------------------- /proc

/** utime+stime (ticks) and more from /proc/PID/stat. Fields after the ")" of comm are 3.. */
export function readStat(pid, task) {
  const path = task ? `/proc/${pid}/task/${task}/stat` : `/proc/${pid}/stat`;
  const s = readFileSync(path, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  const n = (field) => Number(f[field - 3]);
  return { state: f[0], minflt: n(10), majflt: n(12), utime: n(14), stime: n(15), cutime: n(16), cstime: n(17), threads: n(20) };
}

export function readStatus(pid, task) {
  const path = task ? `/proc/${pid}/task/${task}/status` : `/proc/${pid}/status`;
  const out = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+)(?: kB)?$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** Per-thread: name, on-CPU ns (schedstat), context switches. Threads come and go; keyed by tid. */
export function readThreads(pid) {
  const threads = {};
  let tids = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return threads;
  }
  for (const tid of tids) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const sched = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number);
      const st = readStatus(pid, tid);
      threads[tid] = { comm, cpuNs: sched[0], vcs: st.voluntary_ctxt_switches ?? 0, ivcs: st.nonvoluntary_ctxt_switches ?? 0 };
    } catch {
      // the thread exited meanwhile
    }
  }
  return threads;
}

/** One sample of a process: memory (kB), CPU ticks, context switches (main thread and all threads). */
export function sampleProc(pid) {
  const at = performance.now();
  const stat = readStat(pid);
  const status = readStatus(pid);
  const threads = readThreads(pid);
  let vcsAll = 0;
  let ivcsAll = 0;
  let cpuNsAll = 0;
  for (const t of Object.values(threads)) {
    vcsAll += t.vcs;
    ivcsAll += t.ivcs;
    cpuNsAll += t.cpuNs;
  }
  return {
    at,
    rssKB: status.VmRSS,
    hwmKB: status.VmHWM,
    rssAnonKB: status.RssAnon,
    rssFileKB: status.RssFile,
    threads: status.Threads,
    utime: stat.utime,
    stime: stat.stime,
    minflt: stat.minflt,
    vcs: status.voluntary_ctxt_switches,
    ivcs: status.nonvoluntary_ctxt_switches,
    vcsAll,
    ivcsAll,
    cpuNsAll,
    threadDetail: threads,
  };
}

/** Differences between two samples of the same process, over the window between them. */
export function diffSamples(a, b) {
  const tick = 1000 / clockTicks();
  const perThread = [];
  for (const [tid, t1] of Object.entries(b.threadDetail)) {
    const t0 = a.threadDetail[tid];
    if (!t0) {
      perThread.push({ tid, comm: t1.comm, cpuMs: t1.cpuNs / 1e6, cs: t1.vcs + t1.ivcs, new: true });
      continue;
    }
    const cs = t1.vcs - t0.vcs + (t1.ivcs - t0.ivcs);
    const cpuMs = (t1.cpuNs - t0.cpuNs) / 1e6;
    if (cs || cpuMs) perThread.push({ tid, comm: t1.comm, cpuMs: round(cpuMs, 3), cs });
  }
  return {
    windowMs: round(b.at - a.at, 1),
    cpuTicks: b.utime + b.stime - (a.utime + a.stime),
    cpuMs: (b.utime + b.stime - (a.utime + a.stime)) * tick,
    utimeMs: (b.utime - a.utime) * tick,
    stimeMs: (b.stime - a.stime) * tick,
    cpuNsMs: round((b.cpuNsAll - a.cpuNsAll) / 1e6, 3),
    ctxMain: b.vcs - a.vcs + (b.ivcs - a.ivcs),
    ctxMainVoluntary: b.vcs - a.vcs,
    ctxMainInvoluntary: b.ivcs - a.ivcs,
    ctxAll: b.vcsAll - a.vcsAll + (b.ivcsAll - a.ivcsAll),
    minflt: b.minflt - a.minflt,
    rssEndKB: b.rssKB,
    hwmKB: b.hwmKB,
    rssAnonKB: b.rssAnonKB,
    rssFileKB: b.rssFileKB,
    threads: b.threads,
    perThread,
  };
}

/** Peak RSS of a process that is still alive, by polling (fallback when /usr/bin/time is missing). */
export function pollPeak(pid, everyMs = 20) {
  let peak = 0;
  const t = setInterval(() => {
    try {
      const s = readStatus(pid);
      peak = Math.max(peak, s.VmHWM ?? 0, s.VmRSS ?? 0);
    } catch {
      // gone
    }
  }, everyMs);
  return () => {
    clearInterval(t);
    return peak;
  };
}

// ---------------------------------------------------------------- processes

const live = new Set();

async function stopAllLive() {
  await Promise.allSettled([...live].map((p) => p.stop()));
}

let hooked = false;
function hookExit() {
  if (hooked) return;
  hooked = true;
  // Last resort: a synchronous exit cannot wait, so SIGKILL whatever is left.
  process.on('exit', () => {
    for (const p of live) {
      try {
        p.child.kill('SIGKILL');
      } catch {
        // gone
      }
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      console.error(`\nbench: ${sig}: stopping ${live.size} child process(es)`);
      stopAllLive().finally(() => process.exit(130));
    });
  }
}

/**
 * A child process with a SIGTERM-then-wait stop. `lines` collects stdout lines (parsed as JSON
 * when they are) with the time they were received (performance.now() and Date.now()).
 */
export class Child {
  constructor(label, cmd, args, opts = {}) {
    hookExit();
    this.label = label;
    this.lines = [];
    this.stderr = '';
    this.waiters = [];
    this.exitInfo = null;
    this.spawnedAt = performance.now();
    this.child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.pid = this.child.pid;
    live.add(this);
    this.exited = new Promise((res) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal, at: performance.now() };
        live.delete(this);
        for (const w of this.waiters.splice(0)) w.reject(new Error(`${label} exited (code ${code}, signal ${signal}) while waiting for ${w.what}; stderr: ${this.stderr.slice(-2000)}`));
        res(this.exitInfo);
      });
    });
    this.child.once('error', (err) => {
      this.stderr += `spawn error: ${err.message}\n`;
    });
    createInterface({ input: this.child.stdout }).on('line', (raw) => {
      const entry = { t: performance.now(), wall: Date.now(), raw, obj: null };
      try {
        entry.obj = JSON.parse(raw);
      } catch {
        // not JSON
      }
      this.lines.push(entry);
      for (const w of [...this.waiters]) {
        if (w.pred(entry)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          clearTimeout(w.timer);
          w.resolve(entry);
        }
      }
    });
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (d) => {
      this.stderr += d;
      if (this.stderr.length > 100_000) this.stderr = this.stderr.slice(-50_000);
    });
  }

  /** Number of lines received so far; pass it as `from` so waitFor only looks at newer lines. */
  mark() {
    return this.lines.length;
  }

  waitFor(pred, { from = 0, timeoutMs = 30_000, what = 'a log line' } = {}) {
    for (let i = from; i < this.lines.length; i++) if (pred(this.lines[i])) return Promise.resolve(this.lines[i]);
    if (this.exitInfo) return Promise.reject(new Error(`${this.label} has exited; cannot wait for ${what}`));
    return new Promise((resolve, reject) => {
      const w = { pred, resolve, reject, what };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.label}: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** SIGTERM, wait for the exit (SIGKILL after graceMs). Idempotent. */
  stop(graceMs = 20_000) {
    if (!this.stopPromise) {
      this.stopPromise = (async () => {
        if (this.exitInfo) return this.exitInfo;
        try {
          this.child.kill('SIGTERM');
        } catch {
          // gone
        }
        const timer = setTimeout(() => {
          console.error(`bench: ${this.label} (pid ${this.pid}) did not exit ${graceMs} ms after SIGTERM; SIGKILL`);
          try {
            this.child.kill('SIGKILL');
          } catch {
            // gone
          }
        }, graceMs);
        const info = await this.exited;
        clearTimeout(timer);
        return info;
      })();
    }
    return this.stopPromise;
  }
}

/**
 * node's own flags for the daemon as deployed: read from deploy/nightshift.service's ExecStart
 * (the words between node and the script), so the benches measure what systemd runs.
 */
export function deployedNodeFlags() {
  const unit = readFileSync(join(REPO, 'deploy', 'nightshift.service'), 'utf8');
  const line = unit.split('\n').find((l) => l.startsWith('ExecStart='));
  if (!line) throw new Error('deploy/nightshift.service has no ExecStart= line');
  const words = line.slice('ExecStart='.length).trim().split(/\s+/);
  const out = [];
  for (const w of words.slice(1)) {
    if (!w.startsWith('--')) break;
    out.push(w);
  }
  return out;
}

/**
 * Starts `node [flags] dist/cli.js --home H --state S start` as a real child process; the flags
 * are those of the systemd unit unless `nodeArgs` is given (investigations: --node-args).
 */
export function startDaemon(values, { home, state, env = {}, nodeArgs, label = 'daemon' }) {
  const flagsUsed = nodeArgs ?? deployedNodeFlags();
  return new Child(label, process.execPath, [...flagsUsed, cliPath(values), '--home', home, '--state', state, 'start'], {
    env: { ...process.env, NIGHTSHIFT_LOG_LEVEL: 'info', ...env, NOTIFY_SOCKET: '', WATCHDOG_USEC: '' },
    cwd: home,
  });
}

export const isMsg = (msg) => (e) => e.obj?.msg === msg;

/** Runs the CLI to completion; returns stdout, stderr, exit code and wall time (ms). */
export function runCli(values, args, { home, state, timeoutMs = 120_000, wrapTime = false } = {}) {
  const base = [cliPath(values), ...(home ? ['--home', home] : []), ...(state ? ['--state', state] : []), ...args];
  const useTime = wrapTime && existsSync('/usr/bin/time');
  const cmd = useTime ? '/usr/bin/time' : process.execPath;
  const argv = useTime ? ['-v', process.execPath, ...base] : base;
  return new Promise((resolvePromise, reject) => {
    const t0 = performance.now();
    const c = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const stopPeak = useTime ? null : pollPeak(c.pid, 10);
    let out = '';
    let err = '';
    c.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    c.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.once('error', reject);
    c.once('exit', (code, signal) => {
      clearTimeout(timer);
      const wallMs = performance.now() - t0;
      let peakKB = stopPeak ? stopPeak() : null;
      let timeWallMs = null;
      let cpuMs = null;
      if (useTime) {
        const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(err);
        peakKB = m ? Number(m[1]) : null;
        const w = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(err);
        if (w) timeWallMs = ((Number(w[1] ?? 0) * 60 + Number(w[2])) * 60 + Number(w[3])) * 1000;
        const u = /User time \(seconds\): ([\d.]+)/.exec(err);
        const s = /System time \(seconds\): ([\d.]+)/.exec(err);
        if (u && s) cpuMs = (Number(u[1]) + Number(s[1])) * 1000;
      }
      resolvePromise({ code, signal, stdout: out, stderr: err, wallMs, timeWallMs, peakKB, cpuMs, measuredWith: useTime ? '/usr/bin/time -v' : 'polling /proc' });
    });
  });
}

// ---------------------------------------------------------------- temp dirs

const tmpDirs = [];
export function tempDir(prefix) {
  const d = mkdtempSync(join(os.tmpdir(), `nsb-${prefix}-`));
  tmpDirs.push(d);
  return d;
}

export function cleanupTemp(values) {
  if (values?.keep) {
    if (tmpDirs.length) console.log(`kept temp dirs: ${tmpDirs.join(' ')}`);
    return;
  }
  for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Runs main with cleanup of daemons and temp dirs, whatever happens. */
export async function runMain(values, main) {
  let code = 0;
  try {
    await main();
  } catch (err) {
    console.error(`bench failed: ${err?.stack ?? err}`);
    code = 1;
  } finally {
    await stopAllLive();
    cleanupTemp(values);
  }
  process.exitCode = code;
}

// ---------------------------------------------------------------- job specs

/** mulberry32: reproducible pseudo-random numbers, so that a home is the same run after run. */
export function rng(seed = 42) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DOW = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const MON = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const NICK = { '@yearly': '0 0 1 1 *', '@annually': '0 0 1 1 *', '@monthly': '0 0 1 * *', '@weekly': '0 0 * * 0', '@daily': '0 0 * * *', '@midnight': '0 0 * * *', '@hourly': '0 * * * *' };

function fieldSet(text, min, max, names) {
  const set = new Set();
  for (const part of text.split(',')) {
    let [range, step] = part.split('/');
    const val = (v) => {
      const i = names ? names.indexOf(v.toLowerCase()) : -1;
      return i >= 0 ? i + (names === MON ? 1 : 0) : Number(v);
    };
    let lo;
    let hi;
    if (range === '*') [lo, hi] = [min, max];
    else if (range.includes('-')) [lo, hi] = range.split('-').map(val);
    else [lo, hi] = [val(range), step ? max : val(range)];
    for (let v = lo; v <= hi; v += step ? Number(step) : 1) set.add(names === DOW && v === 7 ? 0 : v);
  }
  return set;
}

/** A small independent cron matcher (Vixie semantics) for the expressions generated here. */
export function cronMatcher(expr) {
  let f = (NICK[expr] ?? expr).trim().split(/\s+/);
  if (f.length === 6) f = f.slice(1); // seconds: generated expressions use one fixed second
  const [mi, h, dom, mon, dow] = f;
  const s = { mi: fieldSet(mi, 0, 59), h: fieldSet(h, 0, 23), dom: fieldSet(dom, 1, 31), mon: fieldSet(mon, 1, 12, MON), dow: fieldSet(dow, 0, 7, DOW) };
  const domStar = dom.startsWith('*');
  const dowStar = dow.startsWith('*');
  return (p) => {
    if (!s.mi.has(p.minute) || !s.h.has(p.hour) || !s.mon.has(p.month)) return false;
    const d1 = s.dom.has(p.day);
    const d2 = s.dow.has(p.dow);
    return domStar || dowStar ? d1 && d2 : d1 || d2;
  };
}

const partsFmt = new Map();
export function localParts(tz, ms) {
  let f = partsFmt.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', weekday: 'short' });
    partsFmt.set(tz, f);
  }
  const o = {};
  for (const p of f.formatToParts(ms)) o[p.type] = p.value;
  return { year: +o.year, month: +o.month, day: +o.day, hour: +o.hour % 24, minute: +o.minute, dow: DOW.indexOf(o.weekday.toLowerCase().slice(0, 3)) };
}

/** True when the cron expression has a wall-clock minute in [from, to] in zone tz (minute steps). */
const partsCache = new Map();
function cachedParts(tz, t) {
  const k = `${tz} ${t}`;
  let p = partsCache.get(k);
  if (!p) partsCache.set(k, (p = localParts(tz, t)));
  return p;
}

export function cronFiresBetween(expr, tz, from, to) {
  const match = cronMatcher(expr);
  for (let t = Math.floor(from / 60_000) * 60_000; t <= to; t += 60_000) if (match(cachedParts(tz, t))) return true;
  return false;
}

export function everyFiresBetween(ms, from, to) {
  return Math.floor(from / ms) * ms + ms <= to;
}

const pick = (r, list) => list[Math.floor(r() * list.length)];
const int = (r, lo, hi) => lo + Math.floor(r() * (hi - lo + 1));

/**
 * Cron expressions of many shapes (daily, hourly, weekly, monthly, yearly, weekdays, lists,
 * six fields, nicknames) that do not fire in the window: a candidate that would is re-drawn.
 */
export function safeCron(r, tz, window, kind) {
  for (let attempt = 0; attempt < 200; attempt++) {
    const m = int(r, 0, 59);
    const h = int(r, 0, 23);
    let expr;
    switch (kind) {
      case 'hourly':
        expr = attempt < 100 ? `${m} * * * *` : `${m} ${h} * * *`;
        break;
      case 'every6h':
        // Within a couple of minutes of 00, 06, 12 or 18 h the window covers every minute of such an
        // hour: then the same stride, shifted by one to five hours.
        expr = attempt < 100 ? `${m} */6 * * *` : `${m} ${int(r, 1, 5)}-23/6 * * *`;
        break;
      case 'weekdays':
        expr = `${m} ${h} * * ${pick(r, ['mon-fri', '1-5', 'mon,wed,fri'])}`;
        break;
      case 'weekly':
        expr = `${m} ${h} * * ${pick(r, DOW)}`;
        break;
      case 'monthly':
        expr = `${m} ${h} ${int(r, 1, 28)} * *`;
        break;
      case 'yearly':
        expr = `${m} ${h} ${int(r, 1, 28)} ${pick(r, MON)} *`;
        break;
      case 'seconds':
        expr = `${int(r, 0, 59)} ${m} ${h} * * *`;
        break;
      case 'list':
        expr = `${m} ${h},${(h + 12) % 24} * * *`;
        break;
      case 'nickname':
        expr = attempt < 20 ? pick(r, ['@daily', '@weekly', '@monthly', '@yearly', '@midnight']) : `${m} ${h} * * *`;
        break;
      default: // daily
        expr = `${m} ${h} * * *`;
    }
    if (!cronFiresBetween(expr, tz, window.from, window.to)) return expr;
  }
  throw new Error(`no safe ${kind} schedule found for ${tz} (window too long?)`);
}

export function safeEvery(r, window) {
  const options = ['1h', '2h', '3h', '4h', '6h', '8h', '12h', '1d', '2d', '7d'];
  const ms = { h: 3_600_000, d: 86_400_000 };
  for (let i = 0; i < 100; i++) {
    const e = pick(r, options);
    const v = Number(e.slice(0, -1)) * ms[e.slice(-1)];
    if (!everyFiresBetween(v, window.from, window.to)) return e;
  }
  return '7d';
}

const q = (s) => JSON.stringify(s); // JSON strings and arrays are valid YAML flow scalars

/** Serialises a flat spec object as YAML (JSON flow values; nested objects inline). */
export function toYaml(spec) {
  return Object.entries(spec)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}: ${typeof v === 'string' && /^[\w./:-]+$/.test(v) && !/^[\d@*]/.test(v) ? v : q(v)}`)
    .join('\n') + '\n';
}

export const ZONES = ['UTC', 'Europe/Zurich', 'America/New_York', 'Asia/Kolkata', 'Australia/Adelaide'];

/**
 * A realistic home: n job specs of many shapes, none of which is due in `window`
 * ({from, to} epoch ms). Returns [{name, file, spec}] after writing jobs/*.yaml.
 */
export function writeHome(home, n, window, { seed = 7, everyShare = 0.15, policyTz = 'Europe/Zurich', prefix = 'job' } = {}) {
  const r = rng(seed);
  mkdirSync(join(home, 'jobs'), { recursive: true });
  mkdirSync(join(home, 'rules'), { recursive: true });
  mkdirSync(join(home, 'protected'), { recursive: true });
  writeFileSync(join(home, 'protected', 'policy.yaml'), toYaml({ timezone: policyTz }));
  const kinds = ['daily', 'daily', 'hourly', 'weekly', 'weekdays', 'monthly', 'every6h', 'yearly', 'seconds', 'list', 'nickname'];
  const words = ['export', 'backup', 'report', 'sync', 'cleanup', 'digest', 'reindex', 'invoice', 'mailer', 'rotate', 'audit', 'import'];
  const width = String(n).length;
  const jobs = [];
  for (let i = 0; i < n; i++) {
    const word = words[i % words.length];
    const name = `${prefix}-${word}-${String(i).padStart(width, '0')}`;
    const spec = { description: `${word} #${i}: generated for the benchmark` };
    const useEvery = r() < everyShare;
    // Jobs without their own zone follow the policy's zone.
    const tz = useEvery ? null : pick(r, [...ZONES, null]);
    if (useEvery) spec.every = safeEvery(r, window);
    else {
      spec.schedule = safeCron(r, tz ?? policyTz, window, kinds[i % kinds.length]);
      if (tz) spec.timezone = tz;
    }
    const external = i % 10 === 9; // every tenth job is run by something else and only pings
    if (!external) {
      if (i % 7 === 3) spec.shell = `echo ${word} ${i} && true`;
      else spec.command = ['true', `--${word}`, String(i)];
      spec.timeout = pick(r, ['30s', '5m', '15m', '1h']);
      if (i % 5 === 0) spec.retries = { count: 1, delay: '30s' };
      if (i % 4 === 1) spec.catchUp = true;
      if (i % 6 === 2) spec.env = { TARGET: `/srv/${word}`, LEVEL: String(i % 3) };
      if (i % 11 === 4) spec.precheck = ['true'];
      if (i % 13 === 5) spec.expect = { outputMatches: `${word} [0-9]+`, minDuration: '0s' };
      if (i % 17 === 6) spec.concurrency = pick(r, ['allow', 'replace']);
      if (i % 19 === 7) spec.enabled = false;
    }
    spec.heartbeat = { grace: pick(r, ['10m', '30m', '2h']) };
    if (i % 8 === 2 && jobs.length > 0) spec.dependsOn = [jobs[Math.floor(r() * jobs.length)].name];
    const file = join(home, 'jobs', `${name}.yaml`);
    writeFileSync(file, toYaml(spec));
    jobs.push({ name, file, spec, tz: tz ?? policyTz });
  }
  return jobs;
}

/**
 * Cross-check with the project's own scheduler (dist/config/home.js + dist/schedule/instants.js): the earliest
 * next instant of any loaded job after `from`. Returns null when those modules changed shape.
 */
export async function earliestNextRun(values, home, from) {
  try {
    const dist = distDir(values);
    // Builds before the move into folders (bb3e8c6) have dist/home.js and dist/schedule.js.
    const flat = !existsSync(join(dist, 'config/home.js')) && existsSync(join(dist, 'home.js'));
    const homeMod = await import(join(dist, flat ? 'home.js' : 'config/home.js'));
    const { homePaths } = flat ? homeMod : await import(join(dist, 'config/paths.js'));
    const sched = await import(join(dist, flat ? 'schedule.js' : 'schedule/instants.js'));
    const loaded = homeMod.loadHome(homePaths(home, join(home, 'nonexistent-state')));
    let best = null;
    for (const job of loaded.jobs.values()) {
      if (!job.schedule || !job.managed || job.spec.enabled === false) continue;
      const n = sched.nextAfter(job.schedule, from);
      if (n !== null && (best === null || n < best.at)) best = { at: n, job: job.name };
    }
    return { jobs: loaded.jobs.size, problems: loaded.problems.length, earliest: best };
  } catch (err) {
    return { error: String(err) };
  }
}

// ---------------------------------------------------------------- statistics and output

export function round(x, d = 1) {
  if (x === null || x === undefined || Number.isNaN(x)) return x;
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

/** Nearest-rank percentile of a numeric array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function stats(values, d = 2) {
  const s = [...values].filter((v) => typeof v === 'number' && !Number.isNaN(v)).sort((a, b) => a - b);
  if (s.length === 0) return { n: 0 };
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return {
    n: s.length,
    min: round(s[0], d),
    p50: round(percentile(s, 50), d),
    p95: round(percentile(s, 95), d),
    p99: round(percentile(s, 99), d),
    max: round(s[s.length - 1], d),
    mean: round(mean, d),
  };
}

export function median(values) {
  return stats(values).p50 ?? null;
}

export function table(rows, headers) {
  const cols = headers ?? Object.keys(rows[0] ?? {});
  const cells = [cols, ...rows.map((r) => cols.map((c) => (r[c] === undefined || r[c] === null ? '' : String(r[c]))))];
  const w = cols.map((_, i) => Math.max(...cells.map((row) => String(row[i]).length)));
  const line = (row) => row.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ');
  return [line(cells[0]), w.map((x) => '-'.repeat(x)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export const MB = (kB) => (kB === null || kB === undefined ? null : round(kB / 1024, 1));

/** A headline figure: run.mjs prints these in its summary table. */
export function figure(name, value, unit, target, better = 'lower') {
  const within = target === undefined || value === null || value === undefined ? null : better === 'lower' ? value <= target : value >= target;
  return { name, value, unit, target: target ?? null, within };
}

export function writeResult(name, data) {
  if (jsonOut) {
    console.log(`\n${JSON.stringify(data)}`);
    return null;
  }
  mkdirSync(OUT_DIR, { recursive: true });
  const path = join(OUT_DIR, `${name}.json`);
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
  console.log(`\nfigures written to ${path}`);
  return path;
}

export function printFigures(figs) {
  console.log(
    table(
      figs.map((f) => ({
        figure: f.name,
        value: f.value,
        unit: f.unit,
        target: f.target === null ? '' : `${f.target}`,
        'within target': f.within === null ? '' : f.within ? 'yes' : 'NO',
      })),
    ),
  );
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** POST to the daemon's control socket (no CLI process per call, which would load the machine we measure); resolves with the status code. */
export function postControl(socketPath, path) {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'POST' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end();
  });
}

// ---------------------------------------------------------------- heal benches

/**
 * A private copy of the build for a bench that heals: the install's dist/ is in the protected
 * zone, so a rebuild of the shared dist/ during a heal would turn it into a protected-zone
 * emergency. Returns the copy's dist/ (or the shared one with --shared-dist).
 */
export function privateInstall(values, prefix) {
  if (values['shared-dist']) return distDir(values);
  const inst = tempDir(prefix);
  cpSync(distDir(values), join(inst, 'dist'), { recursive: true });
  cpSync(join(REPO, 'package.json'), join(inst, 'package.json'));
  symlinkSync(join(REPO, 'node_modules'), join(inst, 'node_modules'));
  return join(inst, 'dist');
}

/** path → type, mode, sha256 or link target, for every path under root (root itself is "."). */
export function treeMap(root) {
  const out = {};
  const walk = (p, rel) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      out[rel] = 'absent';
      return;
    }
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out[rel] = `link ${readlinkSync(p)}`;
    else if (st.isDirectory()) {
      out[rel] = `dir ${mode}`;
      for (const e of readdirSync(p).sort()) walk(join(p, e), `${rel}/${e}`);
    } else if (st.isFile()) out[rel] = `file ${mode} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
    else out[rel] = `special ${st.mode.toString(8)}`;
  };
  walk(root, '.');
  return out;
}

export const hashOf = (map) => createHash('sha256').update(JSON.stringify(Object.entries(map).sort())).digest('hex');

/** A port free on 127.0.0.1 now (the dashboard's listen address of a bench's daemon). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
