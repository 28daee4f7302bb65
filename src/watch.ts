// Watches the spec folders and the policy file. Events are debounced per file (editors write in
// several steps) and handed on as "this file may have changed"; the reload logic re-reads it.
import { watch, type FSWatcher } from 'chokidar';
import { isSpecFile } from './home.js';

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
          ? new Error('the inotify watch limit is reached (ENOSPC here is not a full disk): raise fs.inotify.max_user_watches; spec changes are not seen until then')
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
    }, this.opts.debounceMs ?? 50);
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
