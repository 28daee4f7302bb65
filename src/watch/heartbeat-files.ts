// heartbeat.file: a job (external, or long-running and managed) proves it is alive by touching a
// file. This watches those files and hands each touch to the watchdog as a success heartbeat —
// throttled, since a worker may touch its file every 200 ms and each write is an fsync.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Clock } from '../clock.js';
import type { Job } from '../config/home.js';
import { FileWatcher } from '../config/watch.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import type { Watchdog } from './watchdog.js';

/** Heartbeat-file touches are written at most this often per job. */
const WRITE_MS = 1000;

export interface HeartbeatFilesDeps {
  home: string;
  clock: Clock;
  log: Logger;
  store: Store;
  watchdog: Watchdog;
  /** The daemon's jobs as they are now. */
  jobs: () => ReadonlyMap<string, Job>;
}

export class HeartbeatFiles {
  private readonly watcher: FileWatcher;
  /** Resolved file → job name: rebuilt when jobs change, read at every touch. */
  private byFile = new Map<string, string>();
  private readonly throttle = new Map<string, { last: number; touched: number; trailing: NodeJS.Timeout | null }>();

  constructor(private readonly deps: HeartbeatFilesDeps) {
    this.watcher = new FileWatcher(
      (file, kind) => {
        if (kind !== 'unlink') this.touched(file);
      },
      (err) => deps.log.error({ err: err.message }, 'watching heartbeat files failed'),
    );
  }

  /** Watches the files of the jobs there are now; a file touched while the daemon was down counts once. */
  async start(): Promise<void> {
    await this.watcher.start(this.refresh());
    this.catchUp();
  }

  /** Jobs changed: watch their files as they are now. */
  jobsChanged(): void {
    this.watcher.setFiles(this.refresh());
  }

  async stop(): Promise<void> {
    await this.watcher.stop().catch(() => {});
    for (const t of this.throttle.values()) if (t.trailing) clearTimeout(t.trailing);
  }

  private refresh(): IterableIterator<string> {
    this.byFile = new Map();
    for (const job of this.deps.jobs().values()) {
      const f = job.spec.heartbeat?.file;
      if (f) this.byFile.set(resolve(this.deps.home, f), job.name);
    }
    return this.byFile.keys();
  }

  /**
   * At most one write a second per job, and a trailing one, so that the last touch is always on
   * record within a second — less than any grace, so no deadline is armed from a touch that is
   * too old.
   */
  private touched(file: string): void {
    const name = this.byFile.get(file);
    const job = name ? this.deps.jobs().get(name) : undefined;
    if (!job) return;
    const t = this.throttle.get(job.name) ?? { last: 0, touched: 0, trailing: null };
    this.throttle.set(job.name, t);
    const now = this.deps.clock.now();
    t.touched = now;
    if (now - t.last >= WRITE_MS) {
      t.last = now;
      this.deps.watchdog.heartbeat(job, 'success', 'file');
      return;
    }
    // The trailing write carries the time of the last touch, not its own.
    t.trailing ??= setTimeout(
      () => {
        t.trailing = null;
        t.last = this.deps.clock.now();
        const current = this.deps.jobs().get(job.name);
        if (current) this.deps.watchdog.heartbeat(current, 'success', 'file', undefined, t.touched);
      },
      WRITE_MS - (now - t.last),
    );
  }

  private catchUp(): void {
    for (const [file, name] of this.byFile) {
      try {
        const mtime = statSync(file).mtimeMs;
        const last = this.deps.store.heartbeats.last(name, 'success')?.at ?? 0;
        const job = this.deps.jobs().get(name);
        if (job && mtime > last) this.deps.watchdog.heartbeat(job, 'success', 'file');
      } catch {
        // not there yet
      }
    }
  }
}
