// The protected zone (law 4: the leash is out of reach), enforced by code and checked by hashes.
//
// The zone is: the home's jobs/, rules/ and protected/; the state folder; the nightshift install
// itself (only its own files: dist/, src/, node_modules/, package.json, package-lock.json — the
// example home lives at the package root, so the root as a whole is not protected); the kill
// switch file when the policy moves it out of the state folder; and policy.protect globs.
//
// Two checks use it:
// - guardTouches, before a fix: every `touches` path, resolved through every link, must lie
//   outside the zone and must not contain any of it. Synchronous and cheap (validation uses it).
// - hashZone before and after the fix, diffZone between: any change is an emergency.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HomePaths } from '../config/home.js';
import { diffTree, normaliseRoots, treeState, type ExcludeFn, type TreeState } from './snapshot.js';
import type { Policy } from '../config/schema.js';

export interface ZoneEntry {
  /** Plain words, e.g. `rules/ (/home/x/rules)`. */
  label: string;
  /** Real path (links resolved as far as the path exists). */
  path: string;
  /** Its content is hashed before and after a fix; false: guarded by path only. */
  hashed: boolean;
}

export interface ZoneGlob {
  /** As written in policy.protect. */
  pattern: string;
  /** Plain words, e.g. `policy.protect "/etc/nginx/**"`. */
  label: string;
  /** The absolute pattern, and its real-path form when a link lies in its literal part. */
  variants: CompiledGlob[];
}

export interface CompiledGlob {
  /** Absolute pattern. */
  text: string;
  /** Segment matchers; null is `**`. */
  segs: Array<RegExp | null>;
  /** The literal folder (or file) the pattern starts from: where hashing walks. */
  base: string;
}

export interface Zone {
  home: string;
  state: string;
  installDir: string;
  entries: ZoneEntry[];
  globs: ZoneGlob[];
}

/** A sha256 manifest of the zone's hashable files (see hashZone). */
export type ZoneHash = TreeState;

/**
 * Files in the state folder the daemon itself writes while a fix runs: not hashed (they change by
 * design), still guarded by path (a fix may not touch them). Names directly under the state folder.
 */
export const STATE_UNHASHED: readonly string[] = [
  'nightshift.db',
  'nightshift.db-wal',
  'nightshift.db-shm',
  'nightshift.db-journal',
  'daemon.lock',
  'daemon.pid',
  'nightshift.sock',
  'logs',
  'snapshots',
  'heal-alerts',
  'digests',
  'KILL',
];

/** Entries beyond this in the hashed zone are refused: a policy.protect glob that wide is a mistake. */
export const ZONE_MAX_ENTRIES = 50_000;

// ---------------------------------------------------------------- paths

/** The nightshift package root: the folder holding package.json above this module (dist/ or src/). */
export function installRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  let dir = resolve(here, '..');
  for (let d = dir; ; d = dirname(d)) {
    if (lstatSync(join(d, 'package.json'), { throwIfNoEntry: false })?.isFile()) {
      dir = d;
      break;
    }
    if (d === dirname(d)) break;
  }
  return realOrSelf(dir);
}

function realOrSelf(p: string): string {
  try {
    return realpathSync.native(p);
  } catch {
    return p;
  }
}

/**
 * The real form of an absolute path: every link along it followed (also a dangling one, which a
 * write would follow too); the part that does not exist yet is appended as written.
 */
export function resolveReal(abs: string): string {
  try {
    return realpathSync.native(abs);
  } catch {
    // walk it ourselves below
  }
  let done = '/';
  let rest = abs.split('/').filter(Boolean);
  let hops = 0;
  while (rest.length > 0) {
    const seg = rest.shift()!;
    if (seg === '.') continue;
    if (seg === '..') {
      done = dirname(done); // only from a link's text: `done` has no links, so this is exact
      continue;
    }
    const next = join(done, seg);
    let st;
    try {
      st = lstatSync(next, { throwIfNoEntry: false });
    } catch {
      st = undefined; // ENOTDIR, EACCES: does not exist for us
    }
    if (!st) return resolve(next, ...rest);
    if (st.isSymbolicLink()) {
      if (++hops > 40) throw Object.assign(new Error(`too many levels of symbolic links in ${abs}`), { code: 'ELOOP' });
      const target = readlinkSync(next);
      if (isAbsolute(target)) done = '/';
      rest = [...target.split('/').filter(Boolean), ...rest];
      continue;
    }
    done = next;
  }
  return done;
}

export type Resolved = { ok: true; path: string } | { ok: false; reason: string };

/**
 * A `touches` entry as the real absolute path a fix would change: relative to the home, links
 * followed as far as the path exists, the rest appended. Refuses '..' (it would make the path
 * mean something else than it reads) and empty text.
 */
export function resolveTouch(p: string, home: string): Resolved {
  if (typeof p !== 'string' || p.trim() === '') return { ok: false, reason: 'is empty' };
  if (p.includes('\0')) return { ok: false, reason: 'contains a NUL character' };
  if (p.split('/').includes('..')) return { ok: false, reason: "uses '..': write the path without it" };
  const abs = isAbsolute(p) ? resolve(p) : resolve(home, p);
  try {
    return { ok: true, path: resolveReal(abs) };
  } catch (err) {
    return { ok: false, reason: `cannot be resolved: ${(err as Error).message}` };
  }
}

function under(p: string, root: string): boolean {
  return p === root || p.startsWith(root === '/' ? '/' : `${root}${sep}`);
}

// ---------------------------------------------------------------- globs

function segRegExp(seg: string): RegExp {
  let re = '';
  for (const ch of seg) {
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re.replace(/(\[\^\/\]\*)+/g, '[^/]*')}$`);
}

const hasWild = (seg: string): boolean => seg.includes('*') || seg.includes('?');

function compileGlob(text: string): CompiledGlob {
  const parts = text.split('/').filter(Boolean);
  const lit: string[] = [];
  for (const p of parts) {
    if (hasWild(p)) break;
    lit.push(p);
  }
  return { text, segs: parts.map((p) => (p === '**' ? null : segRegExp(p))), base: `/${lit.join('/')}` };
}

function segsOf(p: string): string[] {
  return p.split('/').filter(Boolean);
}

/** Full match, `**` spanning zero or more segments. */
function matchFrom(g: Array<RegExp | null>, i: number, p: string[], j: number): boolean {
  for (;;) {
    if (i === g.length) return j === p.length;
    const s = g[i] as RegExp | null;
    if (s === null) {
      for (let k = j; k <= p.length; k++) if (matchFrom(g, i + 1, p, k)) return true;
      return false;
    }
    if (j === p.length || !s.test(p[j]!)) return false;
    i++;
    j++;
  }
}

/** The path matches the glob, or lies inside something that does (protecting a folder protects its content). */
function globCovers(g: CompiledGlob, p: string): boolean {
  return matchFrom([...g.segs, null], 0, segsOf(p), 0);
}

/**
 * The path and the glob overlap: the path matches, lies inside a match, or is a folder that could
 * hold a match (an ancestor). Used by the guard: a touched path may be or become a folder.
 */
function globOverlaps(g: CompiledGlob, p: string): boolean {
  const ps = segsOf(p);
  for (let i = 0; i < g.segs.length && i < ps.length; i++) {
    const s = g.segs[i] as RegExp | null;
    if (s === null) return true;
    if (!s.test(ps[i]!)) return false;
  }
  return true;
}

// ---------------------------------------------------------------- the zone

/**
 * The protected zone of a home. `installDir` defaults to the running nightshift's package root.
 * Every path is real (links resolved) so that a home reached through a link is still protected.
 */
export function protectedZone(paths: HomePaths, policy: Policy, opts: { installDir?: string } = {}): Zone {
  const home = resolveReal(resolve(paths.home));
  const state = resolveReal(resolve(paths.state));
  const installDir = resolveReal(resolve(opts.installDir ?? installRoot()));
  const entry = (label: string, p: string, hashed: boolean): ZoneEntry => {
    const real = resolveReal(resolve(p));
    return { label: `${label} (${real})`, path: real, hashed };
  };
  const entries: ZoneEntry[] = [
    entry('jobs/', paths.jobsDir, true),
    entry('rules/', paths.rulesDir, true),
    entry('protected/', paths.protectedDir, true),
    entry('the state folder', paths.state, true),
    entry('the nightshift install: dist/', join(installDir, 'dist'), true),
    entry('the nightshift install: src/', join(installDir, 'src'), false),
    // thousands of files that change only with an upgrade: guarded by path, not hashed
    entry('the nightshift install: node_modules/', join(installDir, 'node_modules'), false),
    entry('the nightshift install: package.json', join(installDir, 'package.json'), true),
    entry('the nightshift install: package-lock.json', join(installDir, 'package-lock.json'), true),
  ];
  if (policy.killSwitch !== undefined) {
    const ks = isAbsolute(policy.killSwitch) ? policy.killSwitch : resolve(paths.home, policy.killSwitch);
    if (!under(resolveReal(ks), state)) entries.push(entry('the kill switch', ks, false));
  }
  const globs: ZoneGlob[] = policy.protect.map((pattern) => {
    const abs = isAbsolute(pattern) ? resolve(pattern) : resolve(paths.home, pattern);
    const first = compileGlob(abs);
    const variants = [first];
    const realBase = resolveReal(first.base);
    if (realBase !== first.base) {
      const rest = segsOf(abs).slice(segsOf(first.base).length);
      variants.push(compileGlob(join(realBase, ...rest)));
    }
    return { pattern, label: `policy.protect "${pattern}"`, variants };
  });
  return { home, state, installDir, entries, globs };
}

export type ZoneHitKind = 'inside' | 'contains';

/** Which protected thing the real path is in, or contains; null when it is outside the zone. */
export function zoneCheck(zone: Zone, absRealPath: string): { what: string; kind: ZoneHitKind } | null {
  const p = resolve(absRealPath);
  for (const e of zone.entries) {
    if (under(p, e.path)) return { what: e.label, kind: 'inside' };
  }
  for (const e of zone.entries) {
    // restoring or rewriting a tree that holds a protected root would rewrite the zone
    if (under(e.path, p)) return { what: e.label, kind: 'contains' };
  }
  for (const g of zone.globs) {
    for (const v of g.variants) {
      if (globCovers(v, p)) return { what: g.label, kind: 'inside' };
      if (globOverlaps(v, p)) return { what: g.label, kind: 'contains' };
    }
  }
  return null;
}

/** Plain-words name of the protected thing the path is in (or contains), else null. */
export function zoneHit(zone: Zone, absRealPath: string): string | null {
  return zoneCheck(zone, absRealPath)?.what ?? null;
}

export type Guarded = { ok: true; paths: string[] } | { ok: false; reason: string };

/**
 * Every `touches` entry, resolved (relative to the home, links followed), must lie outside the
 * protected zone and hold none of it. The reason names the entry, what it resolved to and which
 * protected thing it hits.
 */
export function guardTouches(touches: readonly string[], home: string, zone: Zone): Guarded {
  const paths: string[] = [];
  for (const [i, t] of touches.entries()) {
    const r = resolveTouch(t, home);
    if (!r.ok) return { ok: false, reason: `touches[${i}] "${t}" ${r.reason}` };
    const hit = zoneCheck(zone, r.path);
    if (hit) {
      const via = r.path === resolve(isAbsolute(t) ? t : join(home, t)) ? `is ${r.path}` : `resolves to ${r.path}`;
      const rel = hit.kind === 'inside' ? 'which is inside' : 'which contains';
      return { ok: false, reason: `touches[${i}] "${t}" ${via}, ${rel} the protected zone: ${hit.what}. No fix may change jobs/, rules/, protected/, the state folder, nightshift itself or policy.protect paths.` };
    }
    if (!paths.includes(r.path)) paths.push(r.path);
  }
  return { ok: true, paths };
}

// ---------------------------------------------------------------- hashing and copying the zone

/**
 * The roots whose content is hashed (and copied for an emergency restore): jobs/, rules/,
 * protected/, the state folder, the install's dist/, package.json and package-lock.json, and the
 * literal folder each policy.protect glob starts from. Not node_modules/ or src/: thousands of
 * files (resp. sources the daemon does not run) — guarded by path only.
 */
export function zoneRoots(zone: Zone): string[] {
  return normaliseRoots([...zone.entries.filter((e) => e.hashed).map((e) => e.path), ...zone.globs.flatMap((g) => g.variants.map((v) => v.base))]);
}

/**
 * What hashing and the zone snapshot leave out under zoneRoots: the daemon's own live files in
 * the state folder (STATE_UNHASHED), and under a glob's folder whatever the glob does not cover
 * (folders are walked only where they could hold a match).
 */
export function zoneExclude(zone: Zone): ExcludeFn {
  const hashed = zone.entries.filter((e) => e.hashed).map((e) => e.path);
  const unhashed = new Set(STATE_UNHASHED.map((n) => join(zone.state, n)));
  const variants = zone.globs.flatMap((g) => g.variants);
  return (p, isDir) => {
    if (under(p, zone.state)) {
      for (let a = p; a !== zone.state && a !== dirname(a); a = dirname(a)) if (unhashed.has(a)) return true;
      return false;
    }
    if (hashed.some((h) => under(p, h))) return false;
    if (hashed.some((h) => under(h, p))) return false; // a folder on the way to a hashed root
    for (const v of variants) if (isDir ? globOverlaps(v, p) : globCovers(v, p)) return false;
    return true;
  };
}

/**
 * sha256 manifest of the zone's hashable files (content, mode, owner, type, link target; links are
 * never followed). Compare a hash taken before a fix with one taken after it using diffZone.
 */
export async function hashZone(zone: Zone): Promise<ZoneHash> {
  return treeState(zoneRoots(zone), { exclude: zoneExclude(zone), maxEntries: ZONE_MAX_ENTRIES });
}

/** Paths added, removed or changed (content, mode, owner, type, link target), sorted. */
export function diffZone(before: ZoneHash, after: ZoneHash): string[] {
  return diffTree(before, after).map((c) => c.path);
}


// ---------------------------------------------------------------- the install's node_modules

/** Folders inside node_modules/ that tools write at run time (caches), not part of the install. */
const INSTALL_SCRATCH = new Set(['.cache', '.vite', '.vite-temp', '.vitest']);

/**
 * What node_modules/ of the install holds, by metadata: path → type, mode, size, mtime, ctime,
 * inode (link targets for links). Content is not read: thousands of files, tens of megabytes,
 * at every heal. A write cannot hide from it: the kernel sets ctime on every change of content or
 * metadata, and setting it back takes setting the clock (no sandbox may). Compare two with
 * installChanges.
 */
export async function installState(installDir: string = installRoot(), parts: readonly string[] = ['node_modules']): Promise<Map<string, string>> {
  const base = resolveReal(resolve(installDir));
  const root = join(base, 'node_modules');
  const out = new Map<string, string>();
  let sinceYield = 0;
  const walk = async (dir: string): Promise<void> => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      if (dir === root && INSTALL_SCRATCH.has(n)) continue;
      const p = join(dir, n);
      let st;
      try {
        st = lstatSync(p, { bigint: true });
      } catch {
        continue;
      }
      const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? `l>${readlinkSync(p)}` : 'f';
      out.set(p, `${kind} ${st.mode} ${st.size} ${st.mtimeNs} ${st.ctimeNs} ${st.ino}`);
      if (++sinceYield >= 500) {
        sinceYield = 0;
        await new Promise<void>((r) => setImmediate(r));
      }
      if (st.isDirectory()) await walk(p);
    }
  };
  for (const part of parts) {
    const p = join(base, part);
    let st;
    try {
      st = lstatSync(p, { bigint: true });
    } catch {
      out.set(p, 'absent');
      continue;
    }
    if (st.isDirectory()) await walk(p);
    else out.set(p, `f ${st.mode} ${st.size} ${st.mtimeNs} ${st.ctimeNs} ${st.ino}`);
  }
  return out;
}

/** What an upgrade changes: node_modules/, dist/ and the package files (recorded at each start). */
export const INSTALL_PARTS = ['node_modules', 'dist', 'package.json', 'package-lock.json'] as const;

/** Paths of node_modules/ added, removed or changed between two installState()s, sorted. */
export function installChanges(before: Map<string, string>, after: Map<string, string>): string[] {
  const changed = new Set<string>();
  for (const [p, v] of before) if (after.get(p) !== v) changed.add(p);
  for (const p of after.keys()) if (!before.has(p)) changed.add(p);
  return [...changed].sort();
}

/** One sha256 for an installState (recorded at each start: a change is an upgrade, or a rebuild). */
export function installDigest(state: Map<string, string>): string {
  const h = createHash('sha256');
  for (const p of [...state.keys()].sort()) h.update(`${p}\0${state.get(p)}\n`);
  return h.digest('hex');
}
