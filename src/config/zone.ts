// The protected zone (law 4: the leash is out of reach): what no fix may change, from the home's
// paths and the policy. The heal loop checks it by hashes (heal/zone.ts); the launcher hides or
// mounts it read-only (run/launch.ts); validate refuses a rule whose touches reach it.
//
// The zone is: the home's jobs/, rules/ and protected/; the state folder; the nightshift install
// itself (only its own files: dist/, src/, node_modules/, package.json, package-lock.json — the
// example home lives at the package root, so the root as a whole is not protected); the kill
// switch file when the policy moves it out of the state folder; and policy.protect globs.
//
// guardTouches, before a fix and at validate: every `touches` path, resolved through every link,
// must lie outside the zone and must not contain any of it. Synchronous and cheap.
import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compilePathGlob, globCovers, globOverlaps, type PathGlob } from '../glob.js';
import type { HomePaths } from './paths.js';
import type { Policy } from './schema.js';
import { errorMessage } from '../errors.js';

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
  variants: PathGlob[];
}

export interface Zone {
  home: string;
  state: string;
  installDir: string;
  entries: ZoneEntry[];
  globs: ZoneGlob[];
}

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
    return { ok: false, reason: `cannot be resolved: ${errorMessage(err)}` };
  }
}

/** The path is the root or lies inside it. */
export function under(p: string, root: string): boolean {
  return p === root || p.startsWith(root === '/' ? '/' : `${root}${sep}`);
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
    const first = compilePathGlob(abs);
    const variants = [first];
    const realBase = resolveReal(first.base);
    if (realBase !== first.base) {
      const rest = abs.split('/').filter(Boolean).slice(first.base.split('/').filter(Boolean).length);
      variants.push(compilePathGlob(join(realBase, ...rest)));
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
      return {
        ok: false,
        reason: `touches[${i}] "${t}" ${via}, ${rel} the protected zone: ${hit.what}. No fix may change jobs/, rules/, protected/, the state folder, nightshift itself or policy.protect paths.`,
      };
    }
    if (!paths.includes(r.path)) paths.push(r.path);
  }
  return { ok: true, paths };
}
