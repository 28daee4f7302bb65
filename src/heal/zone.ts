// The protected zone checked by hashes (law 4): a sha256 manifest of its hashable files before
// and after each fix (any change is an emergency), and the install's node_modules/ recorded by
// metadata. What the zone is lives in config/zone.ts.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { globCovers, globOverlaps } from '../glob.js';
import { installRoot, resolveReal, STATE_UNHASHED, under, type Zone } from '../config/zone.js';
import { diffTree, normaliseRoots, treeState, type ExcludeFn, type TreeState } from './snapshot.js';

/** Entries beyond this in the hashed zone are refused: a policy.protect glob that wide is a mistake. */
export const ZONE_MAX_ENTRIES = 50_000;

/** A sha256 manifest of the zone's hashable files (see hashZone). */
export type ZoneHash = TreeState;

// ---------------------------------------------------------------- hashing and copying the zone

/**
 * The roots whose content is hashed (and copied for an emergency restore): jobs/, rules/,
 * protected/, the state folder, the install's dist/, package.json and package-lock.json, and the
 * literal folder each policy.protect glob starts from. Not node_modules/ or src/: thousands of
 * files (resp. sources the daemon does not run) — guarded by path only.
 */
export function zoneRoots(zone: Zone): string[] {
  return normaliseRoots([
    ...zone.entries.filter((e) => e.hashed).map((e) => e.path),
    ...zone.globs.flatMap((g) => g.variants.map((v) => v.base)),
  ]);
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
export async function installState(
  installDir: string = installRoot(),
  parts: readonly string[] = ['node_modules'],
): Promise<Map<string, string>> {
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
