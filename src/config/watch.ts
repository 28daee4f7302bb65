// Watches the spec folders and the policy file. Events are debounced per file (editors write in
// several steps) and handed on as "this file may have changed"; the reload logic re-reads it.
import { watch, type FSWatcher } from 'chokidar';
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { isSpecFile } from './home.js';
import { coerceError } from '../errors.js';

/**
 * chokidar 4 drops a 'change' of a path that comes within 50 ms of the last one it emitted (a
 * leading-edge throttle with no trailing event): a file written again that soon would never be
 * seen. So each file handed on is looked at again once that window is over.
 */
const CHOKIDAR_CHANGE_THROTTLE_MS = 50;

/** What a write changes: size, mtime (ns) and inode (a rename over the file); null when missing. */
function fileIdentity(file: string): string | null {
  try {
    const st = statSync(file, { bigint: true });
    return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch {
    return null;
  }
}

export interface ConfigWatcherOptions {
  paths: string[];
  debounceMs?: number;
  onChange: (file: string, removed: boolean) => void;
  onError: (err: Error) => void;
}

export class ConfigWatcher {
  private watcher: FSWatcher | null = null;
  private readonly pending = new Map<string, { timer: NodeJS.Timeout; removed: boolean }>();
  private readonly rechecks = new Map<string, NodeJS.Timeout>();
  /** Set at stop: an event that arrives while the watcher closes arms nothing. */
  private stopped = false;

  constructor(private readonly opts: ConfigWatcherOptions) {}

  async start(): Promise<void> {
    const w = watch(this.opts.paths, {
      ignoreInitial: true,
      depth: 0,
      // chokidar 4 has no globs: filter files here; stats is undefined for the roots themselves.
      ignored: (p, stats) => stats?.isFile() === true && !isSpecFile(p),
    });
    const on = (removed: boolean) => (file: string) => this.schedule(file, removed);
    w.on('add', on(false));
    w.on('change', on(false));
    w.on('unlink', on(true));
    w.on('error', (err) => {
      const e = err as NodeJS.ErrnoException;
      this.opts.onError(
        e.code === 'ENOSPC'
          ? new Error(
              'the inotify watch limit is reached (ENOSPC here is not a full disk): raise fs.inotify.max_user_watches; spec changes are not seen until then',
            )
          : e,
      );
    });
    await new Promise<void>((resolve) => w.once('ready', () => resolve()));
    this.watcher = w;
  }

  private schedule(file: string, removed: boolean): void {
    if (!isSpecFile(file) || this.stopped) return;
    const prev = this.pending.get(file);
    if (prev) clearTimeout(prev.timer);
    const timer = setTimeout(() => {
      this.pending.delete(file);
      const handedOn = fileIdentity(file);
      this.opts.onChange(file, removed);
      this.recheck(file, handedOn);
    }, this.opts.debounceMs ?? 25);
    this.pending.set(file, { timer, removed });
  }

  /** Once chokidar's throttle window is over: a file that changed since it was handed on is handed on again. */
  private recheck(file: string, handedOn: string | null): void {
    clearTimeout(this.rechecks.get(file));
    const timer = setTimeout(() => {
      this.rechecks.delete(file);
      if (this.pending.has(file) || !this.watcher) return; // an event is being handled anyway, or stopped
      const now = fileIdentity(file);
      // Never a removal: chokidar reports a real one itself (unlink is not throttled), and a gap
      // it hides on purpose (an editor saving by unlink and create: its `atomic` option) must not
      // read as a deleted job or policy here.
      if (now !== null && now !== handedOn) this.schedule(file, false);
    }, CHOKIDAR_CHANGE_THROTTLE_MS + 10);
    this.rechecks.set(file, timer);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    for (const t of this.rechecks.values()) clearTimeout(t);
    this.rechecks.clear();
    const w = this.watcher;
    this.watcher = null;
    if (w) await w.close();
  }
}

/**
 * Watches individual files (the kill switch, heartbeat files) by watching their folders: a file
 * that does not exist yet still gets an event when it appears. The set of files can change.
 */
export class FileWatcher {
  private watcher: FSWatcher | null = null;
  private files = new Set<string>();
  /** Folders watched; a missing folder is replaced by its nearest existing ancestor until it appears. */
  private watched = new Set<string>();

  constructor(
    private readonly onEvent: (file: string, kind: 'add' | 'change' | 'unlink') => void,
    private readonly onError: (err: Error) => void,
  ) {}

  async start(files: Iterable<string>): Promise<void> {
    this.files = new Set(files);
    const targets = this.targets();
    // chokidar never reports "ready" for an empty list: with nothing to watch, wait for setFiles().
    if (targets.size > 0) await this.open([...targets]);
  }

  /** Each file's folder if it exists, else the nearest ancestor that does (e.g. /run for /run/nightshift/KILL). */
  private targets(): Set<string> {
    const out = new Set<string>();
    for (const f of this.files) {
      let d = dirname(f);
      while (!existsSync(d) && dirname(d) !== d) d = dirname(d);
      out.add(d);
    }
    return out;
  }

  private async open(dirs: string[]): Promise<void> {
    const w = watch(dirs, {
      ignoreInitial: true,
      depth: 0,
      // Only our files matter; folders (stats undefined for the roots) must stay watched.
      ignored: (p, stats) => stats?.isFile() === true && !this.files.has(p),
    });
    for (const kind of ['add', 'change', 'unlink'] as const) {
      w.on(kind, (p: string) => {
        if (this.files.has(p)) this.onEvent(p, kind);
      });
    }
    // A missing folder appeared: watch it, and report files that are already in it.
    w.on('addDir', () => this.refresh(true));
    w.on('error', (err) => this.onError(coerceError(err)));
    this.watcher = w;
    for (const d of dirs) this.watched.add(d);
    await new Promise<void>((resolve) => w.once('ready', () => resolve()));
  }

  private refresh(reportExisting: boolean): void {
    const targets = this.targets();
    const added = [...targets].filter((d) => !this.watched.has(d));
    const removed = [...this.watched].filter((d) => !targets.has(d));
    if (!this.watcher) {
      if (added.length) void this.open(added).catch((err: unknown) => this.onError(coerceError(err)));
      return;
    }
    if (added.length) this.watcher.add(added);
    if (removed.length) this.watcher.unwatch(removed);
    for (const d of added) this.watched.add(d);
    for (const d of removed) this.watched.delete(d);
    if (reportExisting && added.length) {
      for (const f of this.files) if (added.includes(dirname(f)) && existsSync(f)) this.onEvent(f, 'add');
    }
  }

  /** Replaces the set of watched files (heartbeat files change with job specs). */
  setFiles(files: Iterable<string>): void {
    this.files = new Set(files);
    this.refresh(false);
  }

  async stop(): Promise<void> {
    const w = this.watcher;
    this.watcher = null;
    if (w) await w.close();
  }
}
