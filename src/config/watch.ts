// Watches the spec folders and the policy file. Events are debounced per file (editors write in
// several steps) and handed on as "this file may have changed"; the reload logic re-reads it.
import { watch, type FSWatcher } from 'chokidar';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { isSpecFile } from './home.js';
import { coerceError } from '../errors.js';

export interface ConfigWatcherOptions {
  paths: string[];
  debounceMs?: number;
  onChange: (file: string, removed: boolean) => void;
  onError: (err: Error) => void;
}

export class ConfigWatcher {
  private watcher: FSWatcher | null = null;
  private readonly pending = new Map<string, { timer: NodeJS.Timeout; removed: boolean }>();

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
    if (!isSpecFile(file)) return;
    const prev = this.pending.get(file);
    if (prev) clearTimeout(prev.timer);
    const timer = setTimeout(() => {
      this.pending.delete(file);
      this.opts.onChange(file, removed);
    }, this.opts.debounceMs ?? 25);
    this.pending.set(file, { timer, removed });
  }

  async stop(): Promise<void> {
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
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
