// Snapshot and byte-exact rollback of the files a fix may touch (law 5: everything reversible).
//
// A snapshot is a folder:
//   pack               the content of every small file (≤ 256 KiB), one after the other
//   blobs/<sha256>     the content of every larger file, once per distinct content
//   manifest.json      every path under the roots: type, mode, owner, mtime, sha256, size, where
//                      its content is, or a link's target; written LAST and atomically (after an
//                      fsync of everything else), so a snapshot without it is incomplete — and
//                      since a fix starts only after takeSnapshot resolved, that means the fix
//                      never ran.
//
// Restoring never follows a symbolic link: a fix may have planted one where a folder was,
// pointing into the protected zone. Files are put back through a temporary file and a rename in
// a folder that was checked (lstat) to be a real folder; links are replaced, not written through;
// the folders above each root must still resolve where they did. A restore is idempotent: after
// a crash halfway (kill -9), running it again gives the same tree (leftover temporary files are
// not in the manifest, so they are removed like anything else the fix created).
//
// The event loop: small files and metadata are handled with synchronous calls in slices of a
// few milliseconds, yielding between slices (a thread-pool round trip per call costs more than
// the call itself: 3-5x slower for hundreds of small files); large files are read, hashed and
// written asynchronously, a few at a time.
//
// Special files (named pipes, sockets, devices) are recorded by kind, mode and owner: one made
// since the snapshot is removed; a named pipe that was removed is made again; a socket or device
// that was removed is reported (RestoreResult.notRestored), since only its program or mknod can
// make it. Paths under the roots that were one file (hard links) are one file again after a
// restore (a fix never sees one: fixMounts refuses touches that hold one; the zone may). Not
// covered: extended attributes and ACLs are not copied;
// owners are restored only when running as root; file names that are not valid UTF-8 cannot be
// represented; folders created ABOVE a root that did not exist are left in place.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  realpathSync,
  renameSync,
  rmdirSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { chmod, copyFile, lchown, mkdir, open, rename, rm, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { errorCode, errorMessage } from '../errors.js';
import { elapsedMs, wallNow } from '../clock.js';
import { HEAL_FILES_CHARS, HEAL_FILES_NAMED, type FileChanges } from '../model.js';

export type NodeKind = 'file' | 'dir' | 'link' | 'special' | 'absent';

/** What a special file is: a named pipe, a socket, a character or block device. */
export type SpecialKind = 'fifo' | 'socket' | 'char' | 'block';

/** What a path is: enough to tell whether it changed (content, mode, owner, type, link target). */
export interface NodeState {
  type: NodeKind;
  /** Permission bits including setuid/setgid/sticky (mode & 0o7777); not for links. */
  mode?: number;
  uid?: number;
  gid?: number;
  /** Files only. */
  sha256?: string;
  size?: number;
  /** Links only: the link's text, never followed. */
  target?: string;
  /** Special files only: which kind (their content is not a file's). */
  special?: SpecialKind;
}

/** A sha256 manifest of a tree: absolute path → state. Plain JSON, so it can be journaled. */
export type TreeState = Record<string, NodeState>;

export interface ManifestEntry extends NodeState {
  path: string;
  /** Files only: another path of the snapshot that was the same file (a hard link), restored as one again. */
  linkOf?: string;
  mtimeMs?: number;
  /** Files only: offset of the content in `pack`; absent: the content is in blobs/<sha256>. */
  at?: number;
}

export interface Manifest {
  version: 1;
  createdAt: string;
  /** Absolute roots, sorted, nested ones folded into their ancestor. */
  roots: string[];
  /** The real path of each root's folder at snapshot time (null: it did not exist). */
  parents: Record<string, string | null>;
  /** Pre-order: a folder comes before its contents. */
  entries: ManifestEntry[];
  files: number;
  bytes: number;
}

/**
 * Leaves a path out: it is not copied, not compared and never removed on restore. Called for
 * every path found under a root (not for the roots themselves); `isDir` says whether it is a
 * real folder (links are never folders here).
 */
export type ExcludeFn = (absPath: string, isDir: boolean) => boolean;

export interface WalkOptions {
  exclude?: ExcludeFn;
  /** Refuse (throw) rather than walk more entries than this. */
  maxEntries?: number;
  /** Refuse (throw) rather than copy or hash more bytes than this. */
  maxBytes?: number;
}

export interface RestoreOptions {
  exclude?: ExcludeFn;
  /**
   * Called right before each change on disk (`what` in plain words). For progress logs; tests
   * throw from it to simulate a crash at every step.
   */
  onStep?: (what: string, path: string) => void;
  /** manifestDigest() taken right after takeSnapshot: a manifest that differs is refused. */
  expectDigest?: string;
}

export interface RestoreResult {
  /** Paths that existed but differed (content, mode, owner, type or link target). */
  changed: number;
  /** Paths created since the snapshot, removed. */
  removed: number;
  /** Paths deleted since the snapshot, put back. */
  recreated: number;
  /** Special files that could not be made again (a socket, a device), in plain words. */
  notRestored: string[];
}

export class SnapshotError extends Error {
  override name = 'SnapshotError';
}

const MANIFEST = 'manifest.json';
const PACK = 'pack';
const BLOBS = 'blobs';
/** Files up to this size are read in one synchronous call and kept in the pack. */
const SMALL_MAX = 256 * 1024;
/** Longest run of synchronous file-system calls before yielding to the event loop. */
const SLICE_MS = 4;
/** Large files read or written at once. */
const BIG_PARALLEL = 4;
const CHUNK = 1 << 20;
const RESTORE_TMP = '.nightshift-restore-';
/** O_NONBLOCK: a FIFO swapped in after the lstat must not hang the open. */
const O_READ = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const O_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

// ---------------------------------------------------------------- small helpers

function why(err: unknown): string {
  return errorCode(err) ?? errorMessage(err);
}

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p, { throwIfNoEntry: false }) ?? null;
  } catch (err) {
    if (errorCode(err) === 'ENOTDIR') return null;
    throw err;
  }
}

/** Yields to the event loop once SLICE_MS of synchronous work has gone by. */
class Slicer {
  private start = elapsedMs();
  async tick(): Promise<void> {
    if (elapsedMs() - this.start < SLICE_MS) return;
    await new Promise<void>((r) => setImmediate(r));
    this.start = elapsedMs();
  }
}

/** Runs fn over items, at most n at a time; the first error stops new work and is rethrown. */
async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (failure === null && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (failure !== null) throw (failure as { err: unknown }).err;
}

function under(p: string, root: string): boolean {
  return p === root || p.startsWith(root === '/' ? '/' : `${root}/`);
}

/** Absolute, normalised, no trailing slash; nested roots folded into their ancestor. */
export function normaliseRoots(roots: readonly string[]): string[] {
  const abs = roots.map((r) => {
    if (!isAbsolute(r)) throw new SnapshotError(`snapshot roots must be absolute paths, got "${r}"`);
    return resolve(r);
  });
  const sorted = [...new Set(abs)].sort();
  const out: string[] = [];
  for (const r of sorted) if (!out.some((o) => under(r, o))) out.push(r);
  return out;
}

function kindOf(st: Stats): NodeKind {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'link';
  return 'special';
}

function specialOf(st: Stats): SpecialKind {
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'char';
  return 'block';
}

/** 1 MiB read buffers, reused: fifty files of 1 MB must not mean fifty fresh buffers for the GC. */
const spare: Buffer[] = [];
async function withChunk<T>(fn: (buf: Buffer) => Promise<T>): Promise<T> {
  const buf = spare.pop() ?? Buffer.allocUnsafe(CHUNK);
  try {
    return await fn(buf);
  } finally {
    if (spare.length < BIG_PARALLEL * 2) spare.push(buf);
  }
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** A whole (small) file in one synchronous read, with the stat of the opened file. */
function readWholeSync(path: string): { data: Buffer; st: Stats } {
  const fd = openSync(path, O_READ);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'EISDIR' });
    let buf = Buffer.allocUnsafe(st.size + 1);
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, len);
        buf = bigger;
      }
      const n = readSync(fd, buf, len, buf.length - len, len);
      len += n;
      if (n === 0 || len < buf.length) break; // a short read of a regular file is its end
    }
    return { data: buf.subarray(0, len), st };
  } finally {
    closeSync(fd);
  }
}

async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  const fh = await open(path, O_READ);
  try {
    return await withChunk(async (buf) => {
      const hash = createHash('sha256');
      let size = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
        if (bytesRead === 0) break;
        hash.update(buf.subarray(0, bytesRead));
        size += bytesRead;
      }
      return { sha256: hash.digest('hex'), size };
    });
  } finally {
    await fh.close();
  }
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function writeAll(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < data.length) off += (await fh.write(data, off, data.length - off, position + off)).bytesWritten;
}

// ---------------------------------------------------------------- walking

interface Found {
  path: string;
  type: NodeKind;
  st: Stats | null;
  target?: string;
}

/** Every path under the roots, pre-order, names sorted; absent roots are reported as such. */
async function walk(roots: readonly string[], opts: WalkOptions): Promise<Found[]> {
  const out: Found[] = [];
  const max = opts.maxEntries ?? Infinity;
  const slicer = new Slicer();
  const add = (f: Found): void => {
    out.push(f);
    if (out.length > max)
      throw new SnapshotError(`more than ${max} files and folders under ${roots.join(', ')}: too many to snapshot or hash`);
  };
  const visit = async (path: string, st: Stats): Promise<void> => {
    await slicer.tick();
    const type = kindOf(st);
    const f: Found = { path, type, st };
    if (type === 'link') f.target = readlinkSync(path);
    add(f);
    if (type !== 'dir') return;
    let names: string[];
    try {
      names = readdirSync(path).sort();
    } catch (err) {
      throw new SnapshotError(`cannot read the folder ${path}: ${why(err)}`);
    }
    for (const name of names) {
      const child = join(path, name);
      const cst = lstatOrNull(child);
      if (cst === null) continue; // deleted meanwhile
      if (opts.exclude?.(child, cst.isDirectory())) continue;
      await visit(child, cst);
    }
  };
  for (const root of roots) {
    const st = lstatOrNull(root);
    if (st === null) add({ path: root, type: 'absent', st: null });
    else await visit(root, st);
  }
  return out;
}

function baseState(f: Found): NodeState {
  if (f.type === 'absent' || f.st === null) return { type: 'absent' };
  if (f.type === 'link') return { type: 'link', uid: f.st.uid, gid: f.st.gid, target: f.target ?? '' };
  if (f.type === 'special') return { type: 'special', special: specialOf(f.st), mode: f.st.mode & 0o7777, uid: f.st.uid, gid: f.st.gid };
  return { type: f.type, mode: f.st.mode & 0o7777, uid: f.st.uid, gid: f.st.gid };
}

function checkBytes(found: Found[], opts: WalkOptions): void {
  const bytes = found.reduce((n, f) => n + (f.type === 'file' && f.st ? f.st.size : 0), 0);
  if (opts.maxBytes !== undefined && bytes > opts.maxBytes) {
    throw new SnapshotError(
      `${bytes} bytes of files under ${found[0]?.path ?? 'the roots'}${found.length > 1 ? ' and others' : ''}: more than the limit of ${opts.maxBytes}`,
    );
  }
}

const isSmall = (f: Found): boolean => f.type === 'file' && f.st !== null && f.st.size <= SMALL_MAX;
const isBig = (f: Found): boolean => f.type === 'file' && f.st !== null && f.st.size > SMALL_MAX;

/** A file that vanished or changed type between the walk and the read. */
function raced(err: unknown): boolean {
  return ['ENOENT', 'ELOOP', 'EISDIR', 'ENOTDIR'].includes(errorCode(err) ?? '');
}

/**
 * The state of every path under the roots (content sha256, mode, owner, type, link target),
 * following no link. Compare two with diffTree.
 */
export async function treeState(roots: readonly string[], opts: WalkOptions = {}): Promise<TreeState> {
  const found = await walk(normaliseRoots(roots), opts);
  checkBytes(found, opts);
  const state: TreeState = {};
  for (const f of found) state[f.path] = baseState(f);
  const onRace = (f: Found): void => {
    const st = lstatOrNull(f.path);
    if (st === null) delete state[f.path];
    else
      state[f.path] = {
        ...baseState({ path: f.path, type: kindOf(st), st, target: st.isSymbolicLink() ? readlinkSync(f.path) : undefined }),
      };
  };
  const small = async (): Promise<void> => {
    const slicer = new Slicer();
    for (const f of found.filter(isSmall)) {
      await slicer.tick();
      try {
        const { data, st } = readWholeSync(f.path);
        state[f.path] = { type: 'file', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, sha256: sha256(data), size: data.length };
      } catch (err) {
        if (!raced(err)) throw new SnapshotError(`cannot read ${f.path}: ${why(err)}`);
        onRace(f);
      }
    }
  };
  const big = pool(found.filter(isBig), BIG_PARALLEL, async (f) => {
    try {
      const h = await sha256File(f.path);
      state[f.path] = { ...state[f.path]!, sha256: h.sha256, size: h.size };
    } catch (err) {
      if (!raced(err)) throw new SnapshotError(`cannot read ${f.path}: ${why(err)}`);
      onRace(f);
    }
  });
  await Promise.all([small(), big]);
  return state;
}

export interface TreeChange {
  path: string;
  /** added | removed | type | content | mode | owner | target */
  what: string[];
  before?: NodeState;
  after?: NodeState;
}

/** Paths added, removed or changed between two tree states, sorted by path. */
export function diffTree(before: TreeState, after: TreeState): TreeChange[] {
  const out: TreeChange[] = [];
  const paths = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  for (const path of paths) {
    const a = before[path]?.type === 'absent' ? undefined : before[path];
    const b = after[path]?.type === 'absent' ? undefined : after[path];
    if (!a && !b) continue;
    if (!a) out.push({ path, what: ['added'], after: b });
    else if (!b) out.push({ path, what: ['removed'], before: a });
    else {
      const what: string[] = [];
      if (a.type !== b.type || a.special !== b.special) what.push('type');
      else {
        if (a.type === 'file' && a.sha256 !== b.sha256) what.push('content');
        if (a.type === 'link' && a.target !== b.target) what.push('target');
        if (a.mode !== b.mode) what.push('mode');
        if (a.uid !== b.uid || a.gid !== b.gid) what.push('owner');
      }
      if (what.length) out.push({ path, what, before: a, after: b });
    }
  }
  return out;
}

/** One change in plain words, e.g. "/srv/x/a.yaml: mode 644 -> 600". */
export function describeChange(c: TreeChange): string {
  const oct = (m?: number): string => (m === undefined ? '?' : m.toString(8));
  const noun = (t?: NodeKind): string => (t === 'dir' ? 'folder' : t === 'link' ? 'link' : t === 'special' ? 'special file' : 'file');
  const parts = c.what.map((w) => {
    if (w === 'added') return `added (a ${noun(c.after?.type)})`;
    if (w === 'removed') return `removed (was a ${noun(c.before?.type)})`;
    if (w === 'type') return `a ${noun(c.before?.type)} replaced by a ${noun(c.after?.type)}`;
    if (w === 'mode') return `mode ${oct(c.before?.mode)} -> ${oct(c.after?.mode)}`;
    if (w === 'target') return `link target ${c.before?.target} -> ${c.after?.target}`;
    if (w === 'owner') return `owner ${c.before?.uid}:${c.before?.gid} -> ${c.after?.uid}:${c.after?.gid}`;
    return 'content changed';
  });
  return `${c.path}: ${parts.join(', ')}`;
}

/**
 * diffTree's changes sorted for a person: created (added), removed, or changed (content, mode,
 * owner, type, link target), each list capped at `named` paths and `chars` characters of paths
 * (counts are complete). `madeForFix`: folders nightshift itself made so that a touched path had
 * somewhere to be (after the snapshot, before the fix); while still folders they are not the fix's
 * creation — what the fix put in them is.
 */
export function fileChanges(
  before: TreeState,
  after: TreeState,
  opts: { madeForFix?: readonly string[]; named?: number; chars?: number } = {},
): FileChanges {
  const named = opts.named ?? HEAL_FILES_NAMED;
  const chars = opts.chars ?? HEAL_FILES_CHARS;
  const made = new Set(opts.madeForFix ?? []);
  const out: FileChanges = { changed: [], created: [], removed: [], counts: { changed: 0, created: 0, removed: 0 } };
  const used = { changed: 0, created: 0, removed: 0 };
  // A list is full once either cap is reached: no later (shorter) name slips in out of order.
  const full = new Set<keyof typeof used>();
  for (const c of diffTree(before, after)) {
    const kind = c.what.includes('added') ? 'created' : c.what.includes('removed') ? 'removed' : 'changed';
    if (kind === 'created' && made.has(c.path) && c.after?.type === 'dir') continue;
    out.counts[kind]++;
    if (full.has(kind)) continue;
    if (out[kind].length >= named || used[kind] + c.path.length > chars) {
      full.add(kind);
      continue;
    }
    out[kind].push(c.path);
    used[kind] += c.path.length;
  }
  return out;
}

/**
 * What changed under a snapshot's roots since it was taken: its manifest against the tree now
 * (fileChanges). Reads only, never follows a link. Throws if the snapshot is incomplete, or if
 * its manifest is not the one taken (`expectDigest`, as for restoreSnapshot).
 */
export async function snapshotChanges(
  dir: string,
  opts: { expectDigest?: string; madeForFix?: readonly string[] } = {},
): Promise<FileChanges> {
  const loaded = loadManifest(dir);
  if (loaded === null) throw new SnapshotError(`the snapshot in ${dir} is incomplete (no manifest.json): there is nothing to compare with`);
  if (opts.expectDigest !== undefined && loaded.digest !== opts.expectDigest) {
    throw new SnapshotError(
      `the snapshot manifest in ${dir} was changed after the snapshot was taken (sha256 ${loaded.digest.slice(0, 12)}…, expected ${opts.expectDigest.slice(0, 12)}…)`,
    );
  }
  const m = loaded.manifest;
  return fileChanges(manifestState(m), await treeState(m.roots), { madeForFix: opts.madeForFix });
}

/** The tree state recorded in a manifest (equal to treeState() of the roots at snapshot time). */
export function manifestState(manifest: Manifest): TreeState {
  const state: TreeState = {};
  for (const e of manifest.entries) {
    const { path, mtimeMs: _m, at: _a, linkOf: _l, ...rest } = e;
    state[path] = rest;
  }
  return state;
}

// ---------------------------------------------------------------- taking a snapshot

/** Copies src into a new file dst (0600), hashing exactly the bytes copied; fsyncs dst. */
async function copyHashed(src: string, dst: string): Promise<{ sha256: string; size: number; st: Stats }> {
  const from = await open(src, O_READ);
  try {
    const st = await from.stat();
    if (!st.isFile()) throw Object.assign(new Error(`${src} is not a regular file`), { code: 'EISDIR' });
    const to = await open(dst, O_NEW, 0o600);
    try {
      return await withChunk(async (buf) => {
        const hash = createHash('sha256');
        let size = 0;
        for (;;) {
          const { bytesRead } = await from.read(buf, 0, CHUNK, null);
          if (bytesRead === 0) break;
          const chunk = buf.subarray(0, bytesRead);
          hash.update(chunk);
          await writeAll(to, chunk, size);
          size += bytesRead;
        }
        await to.sync();
        return { sha256: hash.digest('hex'), size, st };
      });
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
}

/**
 * Copies the roots (absolute paths: files, folder trees, or paths that do not exist yet) into
 * `dir`, then writes dir/manifest.json last and atomically. `dir` must not hold a complete
 * snapshot already. On failure the partial snapshot is removed and the error rethrown.
 */
export async function takeSnapshot(roots: readonly string[], dir: string, opts: WalkOptions = {}): Promise<Manifest> {
  const rootList = normaliseRoots(roots);
  const snapDir = resolve(dir);
  for (const r of rootList) {
    if (under(snapDir, r) && !opts.exclude?.(snapDir, true))
      throw new SnapshotError(`the snapshot folder ${snapDir} lies inside ${r}, which it would copy into itself`);
  }
  if (lstatOrNull(join(snapDir, MANIFEST)) !== null) throw new SnapshotError(`${snapDir} already holds a complete snapshot; drop it first`);
  const blobs = join(snapDir, BLOBS);
  await mkdir(blobs, { recursive: true, mode: 0o700 });
  let pack: FileHandle | null = null;
  try {
    const parents: Record<string, string | null> = {};
    for (const r of rootList) {
      try {
        parents[r] = realpathSync.native(dirname(r));
      } catch {
        parents[r] = null;
      }
    }
    const found = await walk(rootList, opts);
    checkBytes(found, opts);
    const entryOf = new Map<string, ManifestEntry>();
    // Paths that are one file (hard links): the first keeps the content, the others point to it.
    const firstOfInode = new Map<string, string>();
    const entries: ManifestEntry[] = found.map((f) => {
      const e: ManifestEntry = { path: f.path, ...baseState(f), ...(f.st && f.type !== 'absent' ? { mtimeMs: f.st.mtimeMs } : {}) };
      if (f.type === 'file' && f.st && f.st.nlink > 1) {
        const key = `${f.st.dev}:${f.st.ino}`;
        const first = firstOfInode.get(key);
        if (first === undefined) firstOfInode.set(key, f.path);
        else e.linkOf = first;
      }
      entryOf.set(f.path, e);
      return e;
    });
    const gone = new Set<string>();
    let bytes = 0;
    const fromOpenFile = (e: ManifestEntry, st: Stats, hash: string, size: number): void => {
      // mode and owner of the open file: they describe exactly the bytes copied
      Object.assign(e, { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtimeMs: st.mtimeMs, sha256: hash, size });
      bytes += size;
    };
    const failed = (path: string, err: unknown): never => {
      throw new SnapshotError(`cannot copy ${path} into the snapshot: ${why(err)}`);
    };

    // small files: read whole, hashed, appended to the pack in batches of about 1 MiB
    pack = await open(join(snapDir, PACK), O_NEW, 0o600);
    const packFh = pack;
    const small = async (): Promise<void> => {
      const slicer = new Slicer();
      let offset = 0;
      let batch: Buffer[] = [];
      let batchStart = 0;
      let batchLen = 0;
      const flush = async (): Promise<void> => {
        if (batchLen === 0) return;
        const data = Buffer.concat(batch, batchLen);
        const at = batchStart;
        batch = [];
        batchStart += batchLen;
        batchLen = 0;
        await writeAll(packFh, data, at);
      };
      for (const f of found.filter(isSmall)) {
        await slicer.tick();
        let r: { data: Buffer; st: Stats };
        try {
          r = readWholeSync(f.path);
        } catch (err) {
          if (errorCode(err) === 'ENOENT') {
            gone.add(f.path); // deleted between the walk and the copy: not there, so not in the snapshot
            continue;
          }
          failed(f.path, err);
        }
        const e = entryOf.get(f.path)!;
        fromOpenFile(e, r!.st, sha256(r!.data), r!.data.length);
        e.at = offset;
        offset += r!.data.length;
        batch.push(r!.data);
        batchLen += r!.data.length;
        if (batchLen >= CHUNK) await flush();
      }
      await flush();
      await packFh.sync();
    };
    // large files: streamed into blobs/<sha256>, a few at a time
    const big = pool(found.filter(isBig), BIG_PARALLEL, async (f) => {
      const tmp = join(blobs, `.tmp-${randomBytes(8).toString('hex')}`);
      let r: Awaited<ReturnType<typeof copyHashed>>;
      try {
        r = await copyHashed(f.path, tmp);
      } catch (err) {
        await unlink(tmp).catch(() => undefined);
        if (errorCode(err) === 'ENOENT') return void gone.add(f.path);
        return failed(f.path, err);
      }
      fromOpenFile(entryOf.get(f.path)!, r.st, r.sha256, r.size);
      await rename(tmp, join(blobs, r.sha256));
    });
    await Promise.all([small(), big]);
    await pack.close();
    pack = null;
    await fsyncPath(blobs);

    const kept =
      gone.size === 0
        ? entries
        : entries.flatMap((e): ManifestEntry[] =>
            !gone.has(e.path) ? [e] : rootList.includes(e.path) ? [{ path: e.path, type: 'absent' }] : [],
          );
    const manifest: Manifest = {
      version: 1,
      createdAt: new Date(wallNow()).toISOString(),
      roots: rootList,
      parents,
      entries: kept,
      files: kept.filter((e) => e.type === 'file').length,
      bytes,
    };
    const tmp = join(snapDir, `${MANIFEST}.tmp`);
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(manifest));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(snapDir, MANIFEST));
    await fsyncPath(snapDir);
    return manifest;
  } catch (err) {
    await pack?.close().catch(() => undefined);
    await rm(snapDir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * The snapshot's manifest, or null when there is none (missing, or incomplete: the snapshot was
 * interrupted before it finished, so the fix never ran). Throws if the file is there but unreadable.
 */
export function readManifest(dir: string): Manifest | null {
  return loadManifest(dir)?.manifest ?? null;
}

/**
 * sha256 of dir/manifest.json as written (null: no manifest). Keep it where a fix cannot write
 * (in memory, in SQLite) and pass it to restoreSnapshot: the snapshot folder is in the state
 * folder, which is guarded by path but not hashed, so a fix could rewrite a manifest.
 */
export function manifestDigest(dir: string): string | null {
  return loadManifest(dir)?.digest ?? null;
}

function loadManifest(dir: string): { manifest: Manifest; digest: string } | null {
  let bytes: Buffer;
  try {
    bytes = readFileSync(join(dir, MANIFEST));
  } catch (err) {
    if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return null;
    throw new SnapshotError(`cannot read the snapshot manifest in ${dir}: ${why(err)}`);
  }
  let m: Manifest;
  try {
    m = JSON.parse(bytes.toString('utf8')) as Manifest;
  } catch {
    throw new SnapshotError(`the snapshot manifest in ${dir} is damaged (not JSON)`);
  }
  if (m?.version !== 1 || !Array.isArray(m.roots) || !Array.isArray(m.entries))
    throw new SnapshotError(`the snapshot manifest in ${dir} is damaged (unknown format)`);
  return { manifest: m, digest: sha256(bytes) };
}

/** Removes a snapshot; the manifest goes first, so a half-removed snapshot reads as incomplete. */
export async function dropSnapshot(dir: string): Promise<void> {
  await rm(join(dir, MANIFEST), { force: true });
  await rm(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------- restoring

const amRoot = process.getuid?.() === 0;

interface Ctx {
  dir: string;
  /** fd of the pack, or null when the snapshot has no small files. */
  pack: number | null;
  byPath: Map<string, ManifestEntry>;
  childrenOf: Map<string, string[]>;
  exclude: ExcludeFn | undefined;
  step: (what: string, path: string) => void;
  slicer: Slicer;
  result: RestoreResult;
  /** Files written and folders whose entries changed: fsynced at the end. */
  written: Set<string>;
  touchedDirs: Set<string>;
}

function packBytes(ctx: Ctx, e: ManifestEntry): Buffer {
  const buf = Buffer.allocUnsafe(e.size!);
  let off = 0;
  while (off < buf.length) {
    const n = readSync(ctx.pack!, buf, off, buf.length - off, e.at! + off);
    if (n === 0) throw new SnapshotError(`the snapshot in ${ctx.dir} is damaged: the copy of ${e.path} is cut short`);
    off += n;
  }
  return buf;
}

function tmpBeside(path: string): string {
  return join(dirname(path), `${RESTORE_TMP}${randomBytes(6).toString('hex')}`);
}

/** A folder where a file or link is to be put back goes first, unless it holds excluded content (then the restore stops). */
async function clearFolderInTheWay(path: string, have: Stats | null, ctx: Ctx, what: string): Promise<void> {
  if (have?.isDirectory() && !(await removeTree(path, have, ctx)))
    throw new SnapshotError(`cannot put the ${what} ${path} back: a folder with excluded content is in the way`);
}

/** Removes whatever is at path, never following a link; keeps excluded paths (and their folders). */
async function removeTree(path: string, st: Stats, ctx: Ctx): Promise<boolean> {
  await ctx.slicer.tick();
  if (!st.isDirectory()) {
    ctx.step('remove', path);
    unlinkSync(path);
    ctx.result.removed++;
    ctx.touchedDirs.add(dirname(path));
    return true;
  }
  // a fix may have made the folder unwritable; we are about to empty it anyway
  if ((st.mode & 0o700) !== 0o700) {
    ctx.step('chmod', path);
    chmodSync(path, 0o700);
  }
  let empty = true;
  for (const name of readdirSync(path)) {
    const child = join(path, name);
    const cst = lstatOrNull(child);
    if (cst === null) continue;
    if (ctx.exclude?.(child, cst.isDirectory())) empty = false;
    else if (!(await removeTree(child, cst, ctx))) empty = false;
  }
  if (!empty) return false;
  ctx.step('remove folder', path);
  rmdirSync(path);
  ctx.result.removed++;
  ctx.touchedDirs.add(dirname(path));
  return true;
}

function sameMeta(st: Stats, want: ManifestEntry): boolean {
  return (st.mode & 0o7777) === want.mode && (!amRoot || (st.uid === want.uid && st.gid === want.gid));
}

/** Only root can give a file away; anyone else restores files as themselves. */
const owns = (want: ManifestEntry): boolean => amRoot && want.uid !== undefined && want.gid !== undefined;

async function restoreFile(path: string, want: ManifestEntry, have: Stats | null, ctx: Ctx): Promise<void> {
  await ctx.slicer.tick();
  const inPack = want.at !== undefined;
  if (have?.isFile() && have.size === want.size) {
    let same = false;
    try {
      same = (inPack ? sha256(readWholeSync(path).data) : (await sha256File(path)).sha256) === want.sha256;
    } catch (err) {
      if (!raced(err)) throw err;
    }
    if (same) {
      if (!sameMeta(have, want)) {
        ctx.step('chmod', path);
        if (owns(want)) lchownSync(path, want.uid!, want.gid!); // chown first: it clears setuid bits
        chmodSync(path, want.mode!);
        ctx.result.changed++;
      }
      if (want.mtimeMs !== undefined && have.mtimeMs !== want.mtimeMs) utimesSync(path, want.mtimeMs / 1000, want.mtimeMs / 1000);
      return;
    }
  }
  await clearFolderInTheWay(path, have, ctx, 'file');
  // A temporary file next to it, then a rename: the path never holds half a file, and a link
  // planted at the path is replaced, not written through. A crash leaves at most the temporary
  // file, which the next restore removes (it is not in the manifest).
  const tmp = tmpBeside(path);
  ctx.step('write', path);
  const t = (want.mtimeMs ?? wallNow()) / 1000;
  if (inPack) {
    const data = packBytes(ctx, want);
    const fd = openSync(tmp, O_NEW, 0o600);
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off, off);
      if (owns(want)) fchownSync(fd, want.uid!, want.gid!);
      fchmodSync(fd, want.mode!);
      futimesSync(fd, t, t);
    } catch (err) {
      closeSync(fd);
      unlinkSync(tmp);
      throw err;
    }
    closeSync(fd);
  } else {
    await copyFile(join(ctx.dir, BLOBS, want.sha256!), tmp, constants.COPYFILE_EXCL);
    try {
      if (owns(want)) await lchown(tmp, want.uid!, want.gid!);
      await chmod(tmp, want.mode!);
      await utimes(tmp, t, t);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }
  ctx.step('rename', path);
  renameSync(tmp, path);
  ctx.written.add(path);
  ctx.touchedDirs.add(dirname(path));
  if (have) ctx.result.changed++;
  else ctx.result.recreated++;
}

/**
 * A special file: kept when it is still the same kind (mode and owner put back); else a named
 * pipe is made again (mkfifo: node has no call for it). A socket belongs to the program that
 * listens on it and a device needs privileges no restore has: those are reported, not faked.
 */
async function restoreSpecial(path: string, want: ManifestEntry, have: Stats | null, ctx: Ctx): Promise<void> {
  await ctx.slicer.tick();
  if (have && kindOf(have) === 'special' && specialOf(have) === want.special) {
    if (!sameMeta(have, want)) {
      ctx.step('chmod', path);
      if (owns(want)) lchownSync(path, want.uid!, want.gid!);
      chmodSync(path, want.mode!);
      ctx.result.changed++;
    }
    return;
  }
  if (have?.isDirectory()) {
    if (!(await removeTree(path, have, ctx)))
      throw new SnapshotError(`cannot put the special file ${path} back: a folder with excluded content is in the way`);
  } else if (have) {
    ctx.step('remove', path);
    unlinkSync(path);
  }
  if (want.special !== 'fifo') {
    ctx.result.notRestored.push(
      `${path} (a ${want.special === 'socket' ? 'socket: its program makes it again when it restarts' : 'device: make it again with mknod'})`,
    );
    ctx.touchedDirs.add(dirname(path));
    return;
  }
  ctx.step('mkfifo', path);
  // The system's mkfifo, not the first on the daemon's PATH (a job may write a folder on that).
  const r = spawnSync('mkfifo', ['-m', want.mode!.toString(8), path], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
  if (r.status !== 0)
    throw new SnapshotError(
      `cannot make the named pipe ${path} again: ${String(r.stderr || r.error?.message || `mkfifo exit ${r.status}`).trim()}`,
    );
  if (owns(want)) lchownSync(path, want.uid!, want.gid!);
  chmodSync(path, want.mode!);
  ctx.touchedDirs.add(dirname(path));
  if (have) ctx.result.changed++;
  else ctx.result.recreated++;
}

async function restoreLink(path: string, want: ManifestEntry, have: Stats | null, ctx: Ctx): Promise<void> {
  await ctx.slicer.tick();
  if (have?.isSymbolicLink() && readlinkSync(path) === want.target) {
    if (amRoot && (have.uid !== want.uid || have.gid !== want.gid)) {
      ctx.step('chown', path);
      lchownSync(path, want.uid!, want.gid!);
      ctx.result.changed++;
    }
    return;
  }
  await clearFolderInTheWay(path, have, ctx, 'link');
  const tmp = tmpBeside(path);
  ctx.step('link', path);
  symlinkSync(want.target!, tmp);
  try {
    if (owns(want)) lchownSync(tmp, want.uid!, want.gid!);
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
  ctx.step('rename', path);
  renameSync(tmp, path);
  ctx.touchedDirs.add(dirname(path));
  if (have) ctx.result.changed++;
  else ctx.result.recreated++;
}

async function restoreDir(path: string, want: ManifestEntry, have: Stats | null, ctx: Ctx): Promise<void> {
  await ctx.slicer.tick();
  let cur = have;
  if (cur && !cur.isDirectory()) {
    // a file or a link where the folder was: remove it (a link is unlinked, never followed)
    ctx.step('remove', path);
    unlinkSync(path);
    ctx.touchedDirs.add(dirname(path));
    ctx.result.changed++;
    cur = null;
  } else if (cur && !sameMeta(cur, want)) ctx.result.changed++;
  if (!cur) {
    ctx.step('create folder', path);
    mkdirSync(path, { mode: 0o700 });
    ctx.touchedDirs.add(dirname(path));
    if (have === null) ctx.result.recreated++;
  } else if ((cur.mode & 0o700) !== 0o700) {
    // while we work inside it the folder must be ours to write; its mode is set at the end
    ctx.step('chmod', path);
    chmodSync(path, (cur.mode | 0o700) & 0o7777);
  }

  const names = new Set(readdirSync(path));
  for (const c of ctx.childrenOf.get(path) ?? []) names.add(c);
  const big: Array<{ p: string; want: ManifestEntry; have: Stats | null }> = [];
  const dirs: Array<{ p: string; want: ManifestEntry | undefined; have: Stats | null }> = [];
  for (const name of [...names].sort()) {
    const p = join(path, name);
    const w = ctx.byPath.get(p);
    const h = lstatOrNull(p);
    if (!w && (h === null || ctx.exclude?.(p, h.isDirectory()))) continue;
    if (w?.type === 'dir' || (!w && h?.isDirectory())) dirs.push({ p, want: w, have: h });
    else if (w?.type === 'file' && w.at === undefined) big.push({ p, want: w, have: h });
    else await restoreNode(p, w, h, ctx);
  }
  await pool(big, BIG_PARALLEL, (k) => restoreFile(k.p, k.want, k.have, ctx));
  for (const k of dirs) await restoreNode(k.p, k.want, k.have, ctx);

  // Only what differs: a folder that is not ours (the install's dist/, as an ordinary user) must
  // not fail a restore it was never part of.
  const now = lstatOrNull(path);
  if (!now || !sameMeta(now, want)) {
    ctx.step('chmod', path);
    if (owns(want)) lchownSync(path, want.uid!, want.gid!);
    chmodSync(path, want.mode!);
  }
  if (want.mtimeMs !== undefined && now?.mtimeMs !== want.mtimeMs) utimesSync(path, want.mtimeMs / 1000, want.mtimeMs / 1000);
}

async function restoreNode(path: string, want: ManifestEntry | undefined, have: Stats | null, ctx: Ctx): Promise<void> {
  if (!want || want.type === 'absent') {
    if (have) await removeTree(path, have, ctx);
    return;
  }
  if (want.type === 'dir') return restoreDir(path, want, have, ctx);
  if (want.type === 'link') return restoreLink(path, want, have, ctx);
  if (want.type === 'special') return restoreSpecial(path, want, have, ctx);
  return restoreFile(path, want, have, ctx);
}

/** Every copied file must still be what was copied; throws before anything is changed. */
async function verifyCopies(m: Manifest, ctx: Ctx): Promise<void> {
  const damaged = (e: ManifestEntry, how: string): SnapshotError =>
    new SnapshotError(`the snapshot in ${ctx.dir} is damaged: the copy of ${e.path} ${how}; nothing was restored`);
  const files = m.entries.filter((e) => e.type === 'file');
  const slicer = new Slicer();
  for (const e of files.filter((f) => f.at !== undefined)) {
    await slicer.tick();
    let data: Buffer;
    try {
      data = packBytes(ctx, e);
    } catch {
      throw damaged(e, 'is cut short');
    }
    if (sha256(data) !== e.sha256) throw damaged(e, 'no longer matches its sha256');
  }
  const blobs = [...new Map(files.filter((e) => e.at === undefined).map((e) => [e.sha256!, e])).values()];
  await pool(blobs, BIG_PARALLEL, async (e) => {
    let h: { sha256: string };
    try {
      h = await sha256File(join(ctx.dir, BLOBS, e.sha256!));
    } catch (err) {
      throw damaged(e, `cannot be read (${why(err)})`);
    }
    if (h.sha256 !== e.sha256) throw damaged(e, 'no longer matches its sha256');
  });
}

/**
 * The folders holding the roots must still resolve where they did (no link planted above a root);
 * all are checked before any missing one is created again. Returns the folders to create.
 */
function checkParents(m: Manifest): string[] {
  const missing: string[] = [];
  for (const root of m.roots) {
    const parent = dirname(root);
    const was = m.parents[root] ?? null;
    const rootWant = m.entries.find((e) => e.path === root);
    let now: string | null = null;
    try {
      now = realpathSync.native(parent);
    } catch {
      now = null;
    }
    if (now !== null) {
      if (was !== null && now !== was)
        throw new SnapshotError(
          `the folder holding ${root} now resolves to ${now} (it was ${was}): a link was planted above it; not restoring through it`,
        );
      continue;
    }
    if (!rootWant || rootWant.type === 'absent') continue; // nothing to remove there
    // The folder was deleted: it is created again only below an ancestor that is still real,
    // so that mkdir cannot go through a planted link either.
    let existing = dirname(parent);
    while (lstatOrNull(existing) === null && existing !== '/') existing = dirname(existing);
    let real: string | null = null;
    try {
      real = realpathSync.native(existing);
    } catch {
      real = null;
    }
    if (was !== parent || real !== existing) {
      throw new SnapshotError(
        `the folder holding ${root} is gone and ${existing} now resolves to ${real ?? 'nothing'}: not recreating it through a link`,
      );
    }
    missing.push(parent);
  }
  return missing;
}

/**
 * Puts every root of the snapshot in `dir` back byte-exact (content, mode, owner, type, link
 * targets; mtimes best-effort): changed files rewritten, paths created since removed, deleted
 * ones returned, roots that were absent removed again. Never follows a link. Idempotent, also
 * after being interrupted. Throws if the snapshot is incomplete or damaged, or if the folder
 * holding a root now resolves elsewhere (a link planted above the root): nothing is changed then.
 */
export async function restoreSnapshot(dir: string, opts: RestoreOptions = {}): Promise<RestoreResult> {
  const loaded = loadManifest(dir);
  if (loaded === null) throw new SnapshotError(`the snapshot in ${dir} is incomplete (no manifest.json): there is nothing to restore from`);
  if (opts.expectDigest !== undefined && loaded.digest !== opts.expectDigest) {
    throw new SnapshotError(
      `the snapshot manifest in ${dir} was changed after the snapshot was taken (sha256 ${loaded.digest.slice(0, 12)}…, expected ${opts.expectDigest.slice(0, 12)}…); nothing was restored`,
    );
  }
  const m = loaded.manifest;
  const hasPack = m.entries.some((e) => e.type === 'file' && e.at !== undefined);
  let packFd: number | null = null;
  if (hasPack) {
    try {
      packFd = openSync(join(dir, PACK), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      throw new SnapshotError(`the snapshot in ${dir} is damaged: its pack cannot be read (${why(err)}); nothing was restored`);
    }
  }
  try {
    const byPath = new Map(m.entries.map((e) => [e.path, e]));
    const childrenOf = new Map<string, string[]>();
    const roots = new Set(m.roots);
    for (const e of m.entries) {
      if (roots.has(e.path)) continue;
      const p = dirname(e.path);
      const name = e.path.slice(p === '/' ? 1 : p.length + 1);
      const list = childrenOf.get(p);
      if (list) list.push(name);
      else childrenOf.set(p, [name]);
    }
    const ctx: Ctx = {
      dir,
      pack: packFd,
      byPath,
      childrenOf,
      exclude: opts.exclude,
      step: opts.onStep ?? (() => undefined),
      slicer: new Slicer(),
      result: { changed: 0, removed: 0, recreated: 0, notRestored: [] },
      written: new Set(),
      touchedDirs: new Set(),
    };

    await verifyCopies(m, ctx);
    for (const parent of checkParents(m)) {
      ctx.step('create folder', parent);
      await mkdir(parent, { recursive: true });
    }
    for (const root of m.roots) await restoreNode(root, byPath.get(root), lstatOrNull(root), ctx);
    // Hard links: each path was restored with its own copy of the same bytes; made one file again.
    for (const e of m.entries) {
      if (e.linkOf === undefined) continue;
      const st = lstatOrNull(e.path);
      const first = lstatOrNull(e.linkOf);
      if (!st || !first || !first.isFile() || (st.dev === first.dev && st.ino === first.ino)) continue;
      const tmp = tmpBeside(e.path);
      ctx.step('link', e.path);
      linkSync(e.linkOf, tmp);
      renameSync(tmp, e.path);
      ctx.touchedDirs.add(dirname(e.path));
    }

    // What was written must survive a power cut before the caller records "rolled back"; a crash
    // before this point means the restore runs again at the next start.
    await pool([...ctx.written], 8, (p) => fsyncPath(p).catch(() => undefined));
    await pool([...ctx.touchedDirs], 8, (d) => fsyncPath(d).catch(() => undefined));
    return ctx.result;
  } finally {
    if (packFd !== null) closeSync(packFd);
  }
}
