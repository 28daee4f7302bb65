// The one launcher: every process nightshift starts (job, pre-check, fix, brain, probe, page,
// deadman, sendmail) is started here, and contained here with bubblewrap (bwrap):
//
// - its own PID namespace: when its first process ends or is killed, the kernel kills everything
//   it started (setsid, double fork, nohup, env -i change nothing), and nothing inside can see or
//   signal a process outside. `--die-with-parent` ties the sandbox to the daemon: a kill -9 of the
//   daemon ends every sandbox with it. A job may opt out of the PID namespace
//   (`seeAllProcesses: true`); it is then stopped by process group, as before containment.
// - nightshift's state folder (database, control socket, snapshots, the default kill switch) and
//   its install (dist/, src/, node_modules/, package files) are hidden behind empty mounts, so a
//   unix socket in them cannot even be connected to; jobs/, rules/, protected/, the folder of a
//   kill switch kept elsewhere and policy.protect are read-only.
// - fixes and brains see the whole file system read-only except their declared `touches`; probe
//   commands write nothing; both get a private empty /tmp and HOME.
// - no capabilities: as root, every capability is dropped, and fixes, brains and probes run as
//   uid 65534 inside a user namespace that may not create further ones. (The kernel still maps
//   that uid to the daemon's own for file ownership, so a fix can write the touches the daemon
//   owns — and nothing else, since everything else is mounted read-only or hidden.)
// - no local services: a unix socket on a read-only mount can still be connected to, and its
//   file permissions would let a fix in as the daemon's user (root: docker, D-Bus, systemd).
//   Fixes, brains and probes cannot create a unix socket at all (a seccomp filter), nor use
//   io_uring (which creates sockets without the system call) or the kernel keyrings. TCP and UDP
//   stay open to them.
//
// Where bwrap cannot run (not installed, no user namespaces, a unit that forbids them), jobs and
// notifications still run, uncontained (fail open to work), and fixes do not run at all (fail
// closed to action): the heal outcome is `uncontained`.
import { execa, type Options, type ResultPromise } from 'execa';
import { spawnSync } from 'node:child_process';
import {
  accessSync,
  chmodSync,
  closeSync,
  constants as fsConstants,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HomePaths } from '../config/paths.js';
import { killSwitchPath } from '../control/killswitch.js';
import { listProcesses, pidNamespace, processEnv } from './proc.js';
import type { Policy } from '../config/schema.js';
import { installRoot, resolveReal, resolveTouch } from '../config/zone.js';
import { errorCode } from '../errors.js';
import { asAccount, type Account } from './account.js';
import { elapsedMs } from '../clock.js';

/**
 * What a process is for decides what it may do. `restore` is nightshift's own rollback of a fix's
 * touches (restore-worker): it writes where a job may, and sees the state folder and the install
 * read-only instead of not at all (it reads the snapshot and runs from the install).
 */
export type Profile = 'job' | 'fix' | 'probe' | 'notify' | 'restore';

/** What every contained process is kept from: computed from the home and the policy in force. */
export interface Leash {
  home: string;
  /** Folders replaced by an empty one (their content, sockets included, is unreachable). */
  hiddenDirs: string[];
  /** Files replaced by an empty one. */
  hiddenFiles: string[];
  /** Read-only for every process. */
  readOnly: string[];
}

/** The uid fixes, brains and probes get inside their user namespace when the daemon is root. */
export const SANDBOX_UID = 65534;

/** Environment variable on the bwrap process only (not its child): lets a restart find the sandboxes a dead daemon left. */
export const SANDBOX_TAG = 'NIGHTSHIFT_SANDBOX';

// ---------------------------------------------------------------- the socket filter

/** Architectures the filter is built for: the audit arch and the system call numbers it checks. */
const FILTER_ARCH: Partial<
  Record<NodeJS.Architecture, { audit: number; socket: number; socketpair: number; ioUring: number[]; keys: number[] }>
> = {
  // io_uring_setup/enter/register are the same on both (the generic table); add_key, request_key, keyctl are not.
  x64: { audit: 0xc000003e, socket: 41, socketpair: 53, ioUring: [425, 426, 427], keys: [248, 249, 250] },
  arm64: { audit: 0xc00000b7, socket: 198, socketpair: 199, ioUring: [425, 426, 427], keys: [217, 218, 219] },
};
const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_SEQPACKET = 5;
const EPERM = 1;
const EACCES = 13;
const ENOSYS = 38;

/**
 * A classic BPF seccomp program (what bwrap --seccomp reads):
 * - socket(AF_UNIX, …) fails with EACCES: no local service can be reached, whatever its socket's
 *   file permissions (as root, a sandboxed process is still uid 0 to the kernel);
 * - socketpair(AF_UNIX, …) too, except stream and seqpacket pairs (shells and libuv use them for
 *   pipes): those are connected to each other and cannot be aimed elsewhere, while one end of a
 *   datagram pair can sendto() or connect() any socket path;
 * - io_uring fails with ENOSYS (it creates sockets without the system call; programs fall back);
 * - add_key, request_key, keyctl fail with EPERM (the kernel keyrings are per uid, root's too);
 * - x32 system calls fail with ENOSYS (other numbers, which the checks above would miss);
 * - a system call of another architecture (32-bit compat: socketcall) kills the process.
 * Everything else is allowed. Null: no filter for this machine.
 */
export function socketFilter(arch: NodeJS.Architecture = process.arch): Buffer | null {
  const a = FILTER_ARCH[arch];
  if (!a) return null;
  const LD_W_ABS = 0x20;
  const AND_K = 0x54;
  const JEQ_K = 0x15;
  const JGE_K = 0x35;
  const RET_K = 0x06;
  const RET = { allow: 0x7fff0000, eacces: 0x00050000 | EACCES, enosys: 0x00050000 | ENOSYS, eperm: 0x00050000 | EPERM, kill: 0x80000000 };
  type Label = keyof typeof RET | 'next' | 'pair';
  // Jumps name their target; offsets (relative to the next instruction) are computed below.
  type Insn = { op: number; k: number; jt?: Label; jf?: Label; label?: 'pair' };
  const code: Insn[] = [
    { op: LD_W_ABS, k: 4 }, // seccomp_data.arch
    { op: JEQ_K, k: a.audit, jt: 'next', jf: 'kill' },
    { op: LD_W_ABS, k: 0 }, // seccomp_data.nr
    { op: JGE_K, k: 0x40000000, jt: 'enosys', jf: 'next' }, // x32
    ...a.ioUring.map((nr): Insn => ({ op: JEQ_K, k: nr, jt: 'enosys', jf: 'next' })),
    ...a.keys.map((nr): Insn => ({ op: JEQ_K, k: nr, jt: 'eperm', jf: 'next' })),
    { op: JEQ_K, k: a.socketpair, jt: 'pair', jf: 'next' },
    { op: JEQ_K, k: a.socket, jt: 'next', jf: 'allow' },
    { op: LD_W_ABS, k: 16 }, // seccomp_data.args[0], low 32 bits (little-endian)
    { op: JEQ_K, k: AF_UNIX, jt: 'eacces', jf: 'allow' },
    // pair: socketpair(domain, type, …)
    { op: LD_W_ABS, k: 16, label: 'pair' },
    { op: JEQ_K, k: AF_UNIX, jt: 'next', jf: 'allow' },
    { op: LD_W_ABS, k: 24 }, // args[1]: the type, with SOCK_NONBLOCK and SOCK_CLOEXEC in its high bits
    { op: AND_K, k: 0xf },
    { op: JEQ_K, k: SOCK_STREAM, jt: 'allow', jf: 'next' },
    { op: JEQ_K, k: SOCK_SEQPACKET, jt: 'allow', jf: 'eacces' },
  ];
  const rets = Object.keys(RET) as Array<keyof typeof RET>;
  const at = (label: Label, pc: number): number => {
    if (label === 'next') return 0;
    const target = label === 'pair' ? code.findIndex((c) => c.label === 'pair') : code.length + rets.indexOf(label);
    return target - (pc + 1);
  };
  const buf = Buffer.alloc((code.length + rets.length) * 8);
  code.forEach((c, pc) => {
    buf.writeUInt16LE(c.op, pc * 8);
    buf.writeUInt8(c.jt === undefined ? 0 : at(c.jt, pc), pc * 8 + 2);
    buf.writeUInt8(c.jf === undefined ? 0 : at(c.jf, pc), pc * 8 + 3);
    buf.writeUInt32LE(c.k >>> 0, pc * 8 + 4);
  });
  rets.forEach((r, i) => {
    buf.writeUInt16LE(RET_K, (code.length + i) * 8);
    buf.writeUInt32LE(RET[r] >>> 0, (code.length + i) * 8 + 4);
  });
  return buf;
}

/** This machine's filter, built once: every fix and probe launch hands it in. */
let hostFilter: Buffer | null | undefined;
function hostSocketFilter(): Buffer | null {
  if (hostFilter === undefined) hostFilter = socketFilter();
  return hostFilter;
}

/** The file descriptor bwrap reads the filter from (handed in as the child's fd 3). */
const FILTER_FD = 3;

function filtered(profile: Profile): boolean {
  return profile === 'fix' || profile === 'probe' || profile === 'restore';
}

// A new sibling in the folder of a touched file cannot be refused by a mount; it is found after
// the fix and counts as a write outside the touches. Past this many siblings, declare a folder.
const MAX_SIBLINGS = 1000;

function under(p: string, root: string): boolean {
  return p === root || p.startsWith(root === '/' ? '/' : `${root}${sep}`);
}

function real(p: string): string {
  return resolveReal(resolve(p));
}

/**
 * The leash of a home: what is hidden and what is read-only for every process nightshift starts.
 * `policy` may be null (unreadable): then only the fixed parts apply; no fix runs in that case.
 */
export function leashOf(paths: HomePaths, policy: Policy | null, killSwitch: string, installDir: string = installRoot()): Leash {
  const home = real(paths.home);
  const state = real(paths.state);
  const install = real(installDir);
  const hiddenDirs = [state];
  const hiddenFiles: string[] = [];
  // Real paths: bwrap cannot mount over a symbolic link (node_modules is often one), and what
  // must be hidden is what the link points to.
  for (const d of ['dist', 'src', 'node_modules']) hiddenDirs.push(real(join(install, d)));
  for (const f of ['package.json', 'package-lock.json']) hiddenFiles.push(real(join(install, f)));
  const readOnly = [real(paths.jobsDir), real(paths.rulesDir), real(paths.protectedDir)];
  const ks = real(killSwitch);
  if (!under(ks, state)) {
    // A kill switch kept elsewhere (e.g. /run/nightshift/KILL): its folder is read-only, so that
    // nothing can remove the switch once an operator has set it. When that folder is the home (or
    // above it), only an existing switch file is covered.
    const dir = dirname(ks);
    if (!under(home, dir) && !under(state, dir)) readOnly.push(dir);
    else hiddenFiles.push(ks);
  }
  for (const pattern of policy?.protect ?? []) readOnly.push(...protectMatches(pattern, paths.home));
  return { home, hiddenDirs, hiddenFiles, readOnly };
}

/** The leash in force for a home and its policy (null: unreadable; the fixed parts still apply). */
export function leashFor(paths: HomePaths, policy: Policy | null): Leash {
  return leashOf(paths, policy, killSwitchPath(paths, policy));
}

/** The paths a policy.protect glob names now: its literal folder when it has no wildcard, else every existing match. */
function protectMatches(pattern: string, home: string): string[] {
  const abs = resolve(home, pattern);
  const segs = abs.split('/').filter(Boolean);
  const wild = segs.findIndex((s) => s.includes('*') || s.includes('?'));
  if (wild === -1) return [real(abs)];
  const out: string[] = [];
  const seg = (s: string): RegExp =>
    new RegExp(
      `^${s
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')}$`,
    );
  const walk = (dir: string, i: number, budget: { n: number }): void => {
    if (budget.n-- <= 0) return;
    if (i === segs.length) {
      out.push(dir);
      return;
    }
    const s = segs[i]!;
    if (s === '**') {
      // `**` and everything below the folder it stands on: the folder itself covers it.
      out.push(dir);
      return;
    }
    if (!s.includes('*') && !s.includes('?')) return walk(join(dir, s), i + 1, budget);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    const re = seg(s);
    for (const n of names) if (re.test(n)) walk(join(dir, n), i + 1, budget);
  };
  walk(`/${segs.slice(0, wild).join('/')}`, wild, { n: 10_000 });
  return out.filter((p) => existsSync(p)).map(real);
}

// ---------------------------------------------------------------- is containment possible here?

export type Containment = { ok: true; bwrap: string } | { ok: false; reason: string };

let cached: { at: number; value: Containment } | null = null;
const RECHECK_FAILED_MS = 60_000;

function bwrapPath(): string {
  return process.env.NIGHTSHIFT_BWRAP || 'bwrap';
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * Whether the sandbox for fixes can be set up on this machine: a real bwrap start with the fix
 * profile's namespaces, once (a failure is re-checked after a minute, so installing bwrap needs no
 * restart). The reason says what to change.
 */
export function containment(): Containment {
  const now = elapsedMs();
  if (cached && (cached.value.ok || now - cached.at < RECHECK_FAILED_MS)) return cached.value;
  const bwrap = bwrapPath();
  // With the seccomp filter too, when there is one: a kernel or container that refuses to install
  // filters must show here, not as every fix failing later.
  const filter = hostSocketFilter();
  const seccomp = filter ? ['--seccomp', String(FILTER_FD)] : [];
  const args = [
    ...privilegeArgs('fix'),
    '--ro-bind',
    '/',
    '/',
    '--dev',
    '/dev',
    '--proc',
    '/proc',
    '--tmpfs',
    '/tmp',
    '--unshare-pid',
    '--unshare-ipc',
    ...seccomp,
    '--die-with-parent',
    '--',
    'true',
  ];
  let filterFd: number | null = null;
  if (filter) {
    // spawnSync hands extra fds in only as open files: an unlinked temporary file.
    const dir = mkdtempSync(join(tmpdir(), 'nightshift-filter-'));
    writeFileSync(join(dir, 'filter'), filter, { mode: 0o600 });
    filterFd = openSync(join(dir, 'filter'), 'r');
    rmSync(dir, { recursive: true, force: true });
  }
  let r: ReturnType<typeof spawnSync>;
  try {
    r = spawnSync(bwrap, args, {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'ignore', 'pipe', ...(filterFd === null ? [] : [filterFd])],
    });
  } finally {
    if (filterFd !== null) closeSync(filterFd);
  }
  let value: Containment;
  if (r.error && errorCode(r.error) === 'ENOENT') {
    value = { ok: false, reason: `bubblewrap (${bwrap}) is not installed: install it (Debian/Ubuntu: apt-get install bubblewrap)` };
  } else if (r.error) {
    value = { ok: false, reason: `bubblewrap (${bwrap}) could not be started: ${r.error.message}` };
  } else if (r.status !== 0) {
    const said =
      String(r.stderr ?? '')
        .trim()
        .split('\n')
        .pop() ?? '';
    value = {
      ok: false,
      reason:
        `bubblewrap cannot set up a sandbox here (${said || `exit ${String(r.status ?? r.signal)}`}): the machine or the service must allow ` +
        'unprivileged user, mount and PID namespaces (sysctl kernel.unprivileged_userns_clone=1; in the systemd unit RestrictNamespaces=user mnt pid ipc, no PrivateUsers=, no ProtectKernelTunables=; in a container: allow unshare/mount, e.g. a seccomp profile that permits them)',
    };
  } else {
    // By its full path, found on the daemon's PATH: a job's env may bring a PATH of its own, on
    // which a program named bwrap would otherwise be found and run by the daemon.
    value = { ok: true, bwrap: onDaemonPath(bwrap) ?? bwrap };
  }
  cached = { at: now, value };
  return value;
}

/**
 * Whether a fix, brain or probe can run here: a sandbox (containment()) and the seccomp filter
 * for this architecture. Jobs need only the first.
 */
export function fixContainment(): Containment {
  const c = containment();
  if (!c.ok || hostSocketFilter() !== null) return c;
  return {
    ok: false,
    reason: `no seccomp filter is built for this architecture (${process.arch}; x64 and arm64 are), so fixes and probes cannot be kept from local services`,
  };
}

/** Forget the cached answer (tests; an operator's `validate` always asks afresh). */
export function resetContainment(): void {
  cached = null;
}

function privilegeArgs(profile: Profile): string[] {
  if (!isRoot()) {
    // An ordinary user: bwrap makes a user namespace anyway; no capabilities survive into it.
    return ['--unshare-user', '--disable-userns'];
  }
  if (profile === 'fix' || profile === 'probe') {
    return ['--unshare-user', '--uid', String(SANDBOX_UID), '--gid', String(SANDBOX_UID), '--disable-userns', '--cap-drop', 'ALL'];
  }
  if (profile === 'restore') {
    // Putting back owners and modes of files that are not root's, and nothing more (no mounts).
    return ['--cap-drop', 'ALL', ...['CAP_CHOWN', 'CAP_FOWNER', 'CAP_DAC_OVERRIDE', 'CAP_FSETID'].flatMap((cap) => ['--cap-add', cap])];
  }
  // Jobs and notifications keep uid 0 (their files stay root's, as under cron) without any capability.
  return ['--cap-drop', 'ALL'];
}

// ---------------------------------------------------------------- building the sandbox

/** What a fix may write: each touched path, folders whole, files with their folder's other entries kept read-only. */
export interface FixMounts {
  args: string[];
  /** Folders the daemon created so that a touched path had somewhere to be; removed again when empty. */
  created: string[];
  /** Entries of a touched file's folder before the fix, to find what it created beside its touches. */
  watched: Array<{ dir: string; before: Set<string>; allowed: Set<string>; links: Map<string, string> }>;
}

/**
 * Prepares the writable mounts for a fix's touches (already checked by the guard: outside the
 * protected zone). A folder (declared with a trailing "/" or existing as one) is writable whole and
 * is created first when missing (the snapshot recorded it as absent, so a rollback removes it). A
 * file needs its folder writable to be created, replaced or removed: the folder is bound writable
 * and every other entry in it read-only over itself, so none of them can be changed, removed or
 * renamed; a new name beside it is found afterwards (strays()).
 */
export function fixMounts(touches: readonly string[], home: string): FixMounts {
  const args: string[] = [];
  const created: string[] = [];
  const watched: FixMounts['watched'] = [];
  const mkdirs = (dir: string): void => {
    const missing: string[] = [];
    for (let d = dir; !existsSync(d) && d !== dirname(d); d = dirname(d)) missing.unshift(d);
    for (const d of missing) {
      mkdirSync(d);
      created.push(d);
    }
  };
  const folders: string[] = [];
  const files: string[] = [];
  for (const t of touches) {
    const r = resolveTouch(t, home);
    if (!r.ok) throw new Error(`touches "${t}" ${r.reason}`);
    const st = lstatSync(r.path, { throwIfNoEntry: false });
    if (t.endsWith('/') || st?.isDirectory()) folders.push(r.path);
    else files.push(r.path);
  }
  // A file with a second name (a hard link a job planted) would let the fix change it outside its
  // touches, and no rollback of the touches could undo that.
  const linked = hardLinked([...folders, ...files]);
  if (linked.length) {
    throw new Error(
      `${linked.slice(0, 3).join(', ')}${linked.length > 3 ? ', …' : ''} in the touches also exist(s) under another name (a hard link): writing it would change a file outside the touches; remove the extra link`,
    );
  }
  for (const f of folders) {
    mkdirs(f);
    args.push('--bind', f, f);
  }
  const byDir = new Map<string, Set<string>>();
  for (const f of files) {
    if (folders.some((d) => under(f, d))) continue; // its folder is writable whole already
    const dir = dirname(f);
    if (!byDir.has(dir)) byDir.set(dir, new Set());
    byDir.get(dir)!.add(basename(f));
  }
  for (const [dir, allowed] of byDir) {
    mkdirs(dir);
    const names = readdirSync(dir);
    const siblings = names.filter((n) => !allowed.has(n));
    if (siblings.length > MAX_SIBLINGS) {
      throw new Error(
        `the folder ${dir} of a touched file holds ${siblings.length} other entries (more than ${MAX_SIBLINGS} cannot be kept read-only around it); declare a folder of its own in touches`,
      );
    }
    args.push('--bind', dir, dir);
    const links = new Map<string, string>();
    for (const n of siblings) {
      const p = join(dir, n);
      // A folder of a touch is itself writable: its own mount wins (it comes later below).
      if (folders.some((d) => under(d, p))) continue;
      // A mount on a link lands on its target: a link is kept by checking it afterwards instead.
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (st?.isSymbolicLink()) links.set(n, readlinkSync(p));
      else args.push('--ro-bind', p, p);
    }
    watched.push({ dir, before: new Set(names), allowed, links });
  }
  // Folders inside a file's folder were skipped above; bind them again so they win over the folder's mount order.
  for (const f of folders) if ([...byDir.keys()].some((d) => under(f, d) && f !== d)) args.push('--bind', f, f);
  return { args, created, watched };
}

/** Regular files under the given paths with more than one name (bounded walk; links are not followed). */
function hardLinked(roots: readonly string[]): string[] {
  const out: string[] = [];
  let budget = 200_000;
  const walk = (p: string): void => {
    if (budget-- <= 0) return;
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isFile() && st.nlink > 1) out.push(p);
    else if (st.isDirectory()) {
      let names: string[] = [];
      try {
        names = readdirSync(p);
      } catch {
        return; // unreadable: the snapshot reports it
      }
      for (const n of names) walk(join(p, n));
    }
  };
  for (const r of roots) walk(r);
  return out;
}

/** What is left to tidy after a fix, as plain JSON (it goes to restore-worker on stdin). */
export interface TidyOrder {
  watched?: Array<{ dir: string; before: string[]; allowed: string[]; links: Array<[string, string]> }>;
  created?: string[];
}

export function tidyOrder(m: FixMounts, what: 'strays' | 'created'): TidyOrder {
  if (what === 'created') return { created: m.created };
  return { watched: m.watched.map((w) => ({ dir: w.dir, before: [...w.before], allowed: [...w.allowed], links: [...w.links] })) };
}

/** Carries out a TidyOrder (in restore-worker): strays removed (all of them, named), empty created folders removed. */
export function tidy(order: TidyOrder): string[] {
  const m: FixMounts = {
    args: [],
    created: order.created ?? [],
    watched: (order.watched ?? []).map((w) => ({
      dir: w.dir,
      before: new Set(w.before),
      allowed: new Set(w.allowed),
      links: new Map(w.links),
    })),
  };
  const strays = removeStrays(m);
  removeCreated(m);
  return strays;
}

/**
 * Entries a fix created beside its touched files (outside its touches): removed, and named so that
 * the attempt is rolled back as a fix that wrote outside what it declared.
 */
export function removeStrays(m: FixMounts): string[] {
  const strays: string[] = [];
  for (const w of m.watched) {
    let now: string[];
    try {
      now = readdirSync(w.dir);
    } catch {
      continue;
    }
    for (const n of now) {
      if (w.before.has(n) || w.allowed.has(n)) continue;
      const p = join(w.dir, n);
      strays.push(p);
      removeTree(p);
    }
    // Links beside a touched file: put back as they were when the fix changed or removed them.
    for (const [n, target] of w.links) {
      const p = join(w.dir, n);
      let now2: string | null = null;
      try {
        now2 = lstatSync(p).isSymbolicLink() ? readlinkSync(p) : '(not a link)';
      } catch {
        now2 = null;
      }
      if (now2 === target) continue;
      strays.push(p);
      removeTree(p);
      symlinkSync(target, p);
    }
  }
  return strays;
}

/** Removes a path a fix left, also when it made it unreadable (chmod 000) to get in the way. */
function removeTree(p: string): void {
  try {
    rmSync(p, { recursive: true, force: true });
    return;
  } catch {
    // made unreadable or unwritable: open it up, then remove
  }
  const open = (q: string): void => {
    const st = lstatSync(q, { throwIfNoEntry: false });
    if (!st || st.isSymbolicLink()) return;
    if (st.isDirectory()) {
      chmodSync(q, 0o700);
      for (const n of readdirSync(q)) open(join(q, n));
    }
  };
  open(p);
  rmSync(p, { recursive: true, force: true });
}

/** Folders the daemon created for the touches, removed when they are empty (deepest first). */
export function removeCreated(m: FixMounts): void {
  for (const d of [...m.created].reverse()) {
    try {
      if (statSync(d).isDirectory() && readdirSync(d).length === 0) rmdirSync(d);
    } catch {
      // gone or not empty: leave it
    }
  }
}

export interface Confinement {
  profile: Profile;
  leash: Leash;
  /** Jobs only: share the machine's PID namespace (see and signal other processes). */
  seeAllProcesses?: boolean;
  /** Fixes only: the writable touches (fixMounts). */
  fix?: FixMounts;
  /** Files the daemon hands in read-only at a path of the sandbox (the alert file of a fix). */
  files?: Array<{ host: string; inside: string }>;
  /** The program's real path (set by launch), so a private /tmp does not hide it. */
  program?: string;
  /** Jobs only: the account of their `user:` (null or absent: nightshift's own). */
  account?: Account | null;
}

const PRIVATE_TMP = ['/tmp', '/var/tmp'];

/** The private HOME of fixes, brains and probes (inside their private /tmp). */
export const SANDBOX_HOME = '/tmp/home';

/** The bwrap argv (without the command) for a confinement. Exported for tests and `validate`. */
export function sandboxArgs(c: Confinement, cwd: string | undefined): string[] {
  const { leash } = c;
  const writesAnywhere = c.profile === 'job' || c.profile === 'notify' || c.profile === 'restore';
  const a: string[] = [...privilegeArgs(c.profile)];
  // A job of another account: the sandbox is built as root (every path of the leash in reach), and
  // setpriv inside it becomes the account, which drops these two capabilities with root's uid.
  if (c.account && c.account.uid !== 0 && isRoot()) a.push('--cap-add', 'CAP_SETUID', '--cap-add', 'CAP_SETGID');
  if (writesAnywhere) a.push('--bind', '/', '/', '--dev-bind', '/dev', '/dev');
  else a.push('--ro-bind', '/', '/', '--dev', '/dev');
  const ownPids = !(c.profile === 'job' && c.seeAllProcesses === true);
  if (ownPids) a.push('--unshare-pid', '--proc', '/proc');
  a.push('--unshare-ipc');
  // A fix or brain gets a private, empty /tmp and HOME. A probe does not: it must check the real
  // thing (a private /tmp would let `test ! -e /tmp/app.lock` pass whatever the fix did); it sees
  // the machine's /tmp read-only, like everything else, and its HOME is the (read-only) home.
  if (c.profile === 'fix') {
    a.push('--tmpfs', '/tmp', '--tmpfs', '/var/tmp', '--dir', SANDBOX_HOME);
    // The private /tmp must not hide the home (the fix's working folder) or the program itself when
    // they live in the machine's /tmp: both come back read-only; touches come back writable below.
    for (const p of [leash.home, ...(c.program ? [c.program] : [])]) {
      if (PRIVATE_TMP.some((t) => under(p, t) && p !== t) && existsSync(p)) a.push('--ro-bind', p, p);
    }
  }
  // The kernel's settings stay read-only to everyone: as root a sandboxed process is still uid 0
  // to the kernel, and sysctl files check the uid, not capabilities.
  for (const k of ['/proc/sys', '/proc/sysrq-trigger', '/sys']) if (existsSync(k)) a.push('--ro-bind', k, k);
  if (c.fix) a.push(...c.fix.args);
  for (const f of c.files ?? []) a.push('--ro-bind', f.host, f.inside);
  // The leash comes last, so that it covers whatever an earlier mount brought in: a touch whose
  // path a job switched to a link into the state folder, a link beside a touched file.
  if (c.profile === 'restore') {
    for (const p of [...leash.hiddenDirs, ...leash.hiddenFiles]) if (existsSync(p)) a.push('--ro-bind', p, p);
  } else {
    for (const d of leash.hiddenDirs) if (existsSync(d)) a.push('--tmpfs', d, '--remount-ro', d);
    for (const f of leash.hiddenFiles) if (existsSync(f)) a.push('--ro-bind', '/dev/null', f);
  }
  for (const p of leash.readOnly) if (existsSync(p)) a.push('--ro-bind', p, p);
  if (cwd !== undefined) a.push('--chdir', cwd);
  if (filtered(c.profile) && hostSocketFilter() !== null) a.push('--seccomp', String(FILTER_FD));
  a.push('--unsetenv', SANDBOX_TAG, '--die-with-parent', '--');
  return a;
}

export interface Launched {
  sub: ResultPromise;
  /** False when the process runs without a sandbox (containment unavailable; fail open for work). */
  contained: boolean;
}

export class UncontainedError extends Error {
  override name = 'UncontainedError';
}

/** The program could not be found or run: reported as before containment, not as bwrap's exit 1. */
export class StartError extends Error {
  override name = 'StartError';
  constructor(
    message: string,
    readonly code: 'ENOENT' | 'EACCES',
  ) {
    super(message);
  }
}

/** Finds the program as execvp would (PATH of its environment, or a path relative to cwd). */
function checkProgram(file: string, cwd: string | undefined, env: Record<string, string> | undefined): void {
  const p = programProblem(file, cwd, env);
  if (p) throw new StartError(p.message, p.code);
}

/**
 * Why the program could not be started, found as execvp would (PATH of its environment, or a path
 * relative to cwd), or null when it can. `validate` warns with it before the first run fails.
 */
export function programProblem(
  file: string,
  cwd: string | undefined,
  env: Record<string, string> | undefined,
): { message: string; code: 'ENOENT' | 'EACCES' } | null {
  const ok = (p: string): 'yes' | 'no' | 'noexec' => {
    try {
      const st = statSync(p);
      if (!st.isFile()) return 'noexec';
      accessSync(p, fsConstants.X_OK);
      return 'yes';
    } catch (err) {
      return errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR' ? 'no' : 'noexec';
    }
  };
  if (file.includes('/')) {
    const r = ok(resolve(cwd ?? '/', file));
    if (r === 'no') return { message: `command not found: ${file}`, code: 'ENOENT' };
    if (r === 'noexec') return { message: `permission denied: ${file}`, code: 'EACCES' };
    return null;
  }
  const path = env?.PATH ?? process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin';
  let denied = false;
  for (const dir of path.split(':')) {
    const r = ok(join(dir || '.', file));
    if (r === 'yes') return null;
    if (r === 'noexec') denied = true;
  }
  return denied ? { message: `permission denied: ${file}`, code: 'EACCES' } : { message: `command not found: ${file}`, code: 'ENOENT' };
}

/** Why a launched process never existed (its pid is undefined), in the words every caller reports. */
export function startFailure(settled: { code?: string; shortMessage?: string; message?: string }, file: string): string {
  if (settled.code === 'ENOENT') return `command not found: ${file}`;
  if (settled.code === 'EACCES') return `permission denied: ${file}`;
  return settled.shortMessage ?? settled.message ?? 'unknown error';
}

/**
 * How the process ended, as the caller would have seen it without the sandbox: bwrap reports a
 * command killed by signal N as exit code 128+N (as a shell does), which is read back as the signal.
 */
export function exitOf(
  l: Pick<Launched, 'contained'>,
  code: number | null,
  signal: NodeJS.Signals | null,
): { code: number | null; signal: NodeJS.Signals | null } {
  if (!l.contained || code === null || code <= 128 || code > 128 + 64) return { code, signal };
  const name = Object.entries(osConstants.signals).find(([, n]) => n === code - 128)?.[0] as NodeJS.Signals | undefined;
  return name ? { code: null, signal: name } : { code, signal };
}

/**
 * Starts argv contained as `c` says, in its own process group (detached). Fixes and probes are
 * never started without a sandbox (UncontainedError); jobs and notifications are, when this
 * machine cannot contain them.
 */
export function launch(
  argv: readonly string[],
  c: Confinement,
  options: Options & { cwd?: string; env?: Record<string, string> },
): Launched {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('no command given');
  if (c.account && c.profile !== 'job') throw new Error(`only a job runs as another account, not a ${c.profile}`);
  // setpriv becomes the account (uid, gid, groups) and runs the command in its place: inside the
  // sandbox (sandboxArgs), or, uncontained, as the process the daemon starts.
  const as = c.account && c.account.uid !== 0 ? asAccount(c.account, setprivPath()) : [];
  const cont = containment();
  const base: Options = { ...options, detached: true, cleanup: false, extendEnv: false, windowsHide: true };
  if (c.profile === 'fix' || c.profile === 'probe') {
    const fc = fixContainment();
    if (!fc.ok) throw new UncontainedError(fc.reason);
  }
  // The dynamic loader's variables (LD_PRELOAD and the rest) would be obeyed by every program on
  // the way to the command: bwrap (as root: with every capability the daemon has) and setpriv
  // (still root). They are set for the command alone, by `env` as the last step.
  const { safe, loader } = splitLoaderEnv(options.env);
  // (A program whose name holds "=" would be read by env as one more variable: a shell runs it.)
  const run = loader.length > 0 && file.includes('=') ? ['/bin/sh', '-c', 'exec "$0" "$@"', file, ...args] : [file, ...args];
  const command = [...as, ...(loader.length > 0 ? ['env', '--', ...loader] : []), ...run];
  if (!cont.ok) {
    const [first = file, ...rest] = command;
    return { sub: execa(first, rest, { ...base, env: safe }), contained: false };
  }
  checkProgram(file, options.cwd ?? process.cwd(), options.env);
  // The working directory is set inside (after the mounts); bwrap itself starts from `/`.
  // Without a cwd of its own, a process starts where the daemon runs, as it would without a sandbox.
  const cwd = options.cwd ?? process.cwd();
  const program = file.includes('/') ? real(resolve(cwd, file)) : undefined;
  const bargs = [...sandboxArgs({ ...c, program }, cwd), ...command];
  const env = { ...safe, [SANDBOX_TAG]: leashTag(c.leash) };
  let withFilter: Options = base;
  const filter = filtered(c.profile) ? hostSocketFilter() : null;
  if (filter !== null) {
    // The filter goes in on fd 3 (bwrap reads it to the end); stdin/stdout/stderr move into the
    // stdio array, which execa does not let us mix with the single options.
    const { stdin, stdout, stderr, ...rest } = base;
    const stdio = [stdin ?? 'pipe', stdout ?? 'pipe', stderr ?? 'pipe', new Uint8Array(filter)];
    withFilter = { ...rest, stdio } as unknown as Options;
  }
  const sub = execa(cont.bwrap, bargs, { ...withFilter, cwd: '/', env });
  return { sub, contained: true };
}

let setpriv: string | null = null;
/** setpriv's full path, found once: the daemon's PATH does not change while it runs. */
function setprivPath(): string {
  return (setpriv ??= onDaemonPath('setpriv') ?? '/usr/bin/setpriv');
}

/** The program's full path as the daemon's own PATH finds it (null: not found there). */
export function onDaemonPath(name: string): string | null {
  if (name.includes('/')) return resolve(name);
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    if (!dir.startsWith('/')) continue;
    const p = join(dir, name);
    try {
      accessSync(p, fsConstants.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return null;
}

// glibc's list of variables it ignores for a privileged program (unsecvars.h), and every LD_*.
const LOADER_ENV = new Set([
  'GCONV_PATH',
  'GETCONF_DIR',
  'GLIBC_TUNABLES',
  'HOSTALIASES',
  'LOCALDOMAIN',
  'LOCPATH',
  'MALLOC_TRACE',
  'NIS_PATH',
  'NLSPATH',
  'RESOLV_HOST_CONF',
  'RES_OPTIONS',
  'TMPDIR',
  'TZDIR',
]);

/** The environment without the loader's variables, and those as NAME=VALUE for `env`. */
export function splitLoaderEnv(env: Record<string, string> | undefined): { safe: Record<string, string>; loader: string[] } {
  const safe: Record<string, string> = {};
  const loader: string[] = [];
  for (const [k, v] of Object.entries(env ?? {})) {
    if (k.startsWith('LD_') || LOADER_ENV.has(k)) loader.push(`${k}=${v}`);
    else safe[k] = v;
  }
  return { safe, loader };
}

function leashTag(l: Leash): string {
  return l.hiddenDirs[0] ?? l.home;
}

// ---------------------------------------------------------------- stopping

/**
 * Every process of the sandbox led by `leader` (the bwrap process, also its process group):
 * its process group and, with a PID namespace, everything in that namespace — bwrap's own
 * processes excepted (signalling them would end the sandbox at once, without the grace).
 */
function members(leader: number): number[] {
  const procs = listProcesses();
  if (procs === null) return [];
  const alive = procs.filter((p) => p.state !== 'Z');
  const bwrapPids = new Set<number>();
  const leaderProc = alive.find((p) => p.pid === leader);
  if (leaderProc?.comm === 'bwrap') bwrapPids.add(leader);
  const inner = alive.find((p) => p.ppid === leader && p.comm === 'bwrap');
  if (inner) bwrapPids.add(inner.pid);
  const out = new Set<number>();
  for (const p of alive) if (p.pgrp === leader && !bwrapPids.has(p.pid)) out.add(p.pid);
  const ns = inner ? pidNamespace(inner.pid) : null;
  if (ns !== null) for (const p of alive) if (!bwrapPids.has(p.pid) && !out.has(p.pid) && pidNamespace(p.pid) === ns) out.add(p.pid);
  return [...out];
}

function signal(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ESRCH') return false;
    if (code === 'EPERM') return true; // it changed owner; it is still there
    throw err;
  }
}

/** Signals the whole process group; false when nothing of it is left. */
export function killGroup(pgid: number, sig: NodeJS.Signals | 0): boolean {
  return signal(-pgid, sig);
}

/**
 * True while anything of the sandbox (or plain process group) led by `leader` lives. Zombies
 * waiting for a lazy reaper count as dead.
 */
export function groupAlive(leader: number): boolean {
  if (!killGroup(leader, 0)) return false;
  const procs = listProcesses();
  if (procs === null) return true; // no /proc: trust kill(0)
  return procs.some((p) => p.pgrp === leader && p.state !== 'Z');
}

/**
 * SIGTERM to every process of the sandbox (or group), SIGKILL to all of it after the grace, and
 * wait (bounded) until it is gone. Killing the bwrap process ends the PID namespace and with it
 * everything inside, however it tried to detach.
 */
export async function terminateGroup(leader: number, graceMs: number): Promise<'gone' | 'term' | 'kill'> {
  if (!groupAlive(leader)) return 'gone';
  const targets = members(leader);
  if (targets.length === 0) killGroup(leader, 'SIGTERM');
  for (const pid of targets) signal(pid, 'SIGTERM');
  // Elapsed time, not the wall clock: a clock step must not cut the grace short (or stretch it).
  const deadline = elapsedMs() + graceMs;
  while (elapsedMs() < deadline) {
    await sleep(Math.min(25, Math.max(1, deadline - elapsedMs())));
    if (!groupAlive(leader)) return 'term';
  }
  for (const pid of members(leader)) signal(pid, 'SIGKILL');
  killGroup(leader, 'SIGKILL');
  for (let i = 0; i < 100 && groupAlive(leader); i++) await sleep(10);
  return 'kill';
}

/** SIGKILL at once: the sandbox and everything in it. */
export function killNow(leader: number): void {
  for (const pid of members(leader)) signal(pid, 'SIGKILL');
  killGroup(leader, 'SIGKILL');
}

/**
 * Sandboxes a dead daemon of this state folder left (found by SANDBOX_TAG on the bwrap process):
 * killed, and waited for, before anything is restored. Returns how many there were.
 */
export async function killOrphanSandboxes(paths: HomePaths): Promise<number> {
  const tag = `${SANDBOX_TAG}=${real(paths.state)}`;
  const tagged: Array<{ pid: number; ppid: number }> = [];
  for (const p of listProcesses() ?? []) {
    if (p.pid === process.pid || p.state === 'Z') continue;
    if (processEnv(p.pid)?.includes(tag)) tagged.push(p);
  }
  // bwrap's own init inside the sandbox inherits the tag: a sandbox is counted by its outermost process.
  const taggedPids = new Set(tagged.map((p) => p.pid));
  const leaders = tagged.filter((p) => !taggedPids.has(p.ppid)).map((p) => p.pid);
  const all = new Set<number>(taggedPids);
  for (const l of leaders) for (const m of members(l)) all.add(m);
  for (const l of leaders) for (const p of listProcesses() ?? []) if (p.ppid === l) all.add(p.pid);
  for (const pid of all) signal(pid, 'SIGKILL');
  const alive = (pid: number): boolean => listProcesses()?.some((q) => q.pid === pid && q.state !== 'Z') ?? false;
  for (let i = 0; i < 300 && [...all].some(alive); i++) await sleep(10);
  return leaders.length;
}
