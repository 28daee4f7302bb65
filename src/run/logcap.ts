// A run's output goes to one file capped in size: the head is written as it arrives, the tail is
// kept in a bounded ring and written at the end, with a marker saying how much was left out. A
// job printing a gigabyte costs the daemon CPU to drain the pipe but never memory or disk.
import { join } from 'node:path';
import { closeSync, openSync, writeSync } from 'node:fs';
import { coerceError } from '../errors.js';

export const DEFAULT_LOG_CAP = 1024 * 1024;
export const ROW_TAIL_BYTES = 4096;

/** Where a run's log is written, and the only place `nightshift logs` reads one from. */
export function runLogPath(logsDir: string, run: { job: string; id: number }): string {
  return join(logsDir, run.job, `${run.id}.log`);
}

export class CappedLog {
  private fd: number | null;
  private readonly headCap: number;
  private readonly tailCap: number;
  private headBytes = 0;
  private total = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  private writeError: Error | null = null;

  constructor(
    readonly path: string,
    cap = DEFAULT_LOG_CAP,
    /** Told once, at the first failed write: a full disk is worth reporting while the run goes on. */
    private readonly onError?: (err: Error) => void,
  ) {
    this.headCap = Math.floor(cap / 2);
    this.tailCap = cap - this.headCap;
    // A log that cannot even be created (disk full) must not keep the job from running: the
    // output is still kept in memory for the run's row, and the error says why the file is missing.
    try {
      this.fd = openSync(path, 'w', 0o640);
    } catch (err) {
      this.fd = null;
      this.failed(coerceError(err));
    }
  }

  private failed(err: Error): void {
    this.writeError = err;
    try {
      this.onError?.(err);
    } catch {
      // reporting is best effort; the run goes on
    }
  }

  get bytes(): number {
    return this.total;
  }

  /** The first write error (disk full, …); the run goes on without its log rather than failing. */
  get error(): Error | null {
    return this.writeError;
  }

  write(chunk: Buffer): void {
    this.total += chunk.length;
    let rest = chunk;
    if (this.headBytes < this.headCap) {
      const n = Math.min(rest.length, this.headCap - this.headBytes);
      this.writeOut(rest.subarray(0, n));
      this.headBytes += n;
      rest = rest.subarray(n);
      if (rest.length === 0) return;
    }
    this.tail.push(rest);
    this.tailBytes += rest.length;
    while (this.tail.length > 1 && this.tailBytes - this.tail[0]!.length >= this.tailCap) {
      this.tailBytes -= this.tail.shift()!.length;
    }
  }

  /** Everything after the head, up to the cap, as it will end up in the file. */
  private keptTail(): Buffer {
    const all = Buffer.concat(this.tail);
    return all.length > this.tailCap ? all.subarray(all.length - this.tailCap) : all;
  }

  /** The last bytes of output so far (for an alert raised while the run is still being stopped). */
  lastOutput(): string {
    const tail = this.keptTail();
    const last = tail.length >= ROW_TAIL_BYTES ? tail.subarray(tail.length - ROW_TAIL_BYTES) : this.lastOfHeadAndTail(tail);
    return last.toString('utf8');
  }

  /** Writes the tail and closes the file; returns the last bytes of output for the run's row. */
  close(): { bytes: number; tail: string } {
    const tail = this.keptTail();
    const omitted = this.total - this.headBytes - tail.length;
    if (omitted > 0)
      this.writeOut(
        Buffer.from(`\n[nightshift: ${omitted} bytes of output left out here; the log keeps the first and last ${this.headCap} bytes]\n`),
      );
    this.writeOut(tail);
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        // already reported through writeError if the disk is the problem
      }
      this.fd = null;
    }
    const last = tail.length >= ROW_TAIL_BYTES ? tail.subarray(tail.length - ROW_TAIL_BYTES) : this.lastOfHeadAndTail(tail);
    return { bytes: this.total, tail: last.toString('utf8') };
  }

  private headCopy: Buffer[] = [];
  private lastOfHeadAndTail(tail: Buffer): Buffer {
    const joined = Buffer.concat([...this.headCopy, tail]);
    return joined.subarray(Math.max(0, joined.length - ROW_TAIL_BYTES));
  }

  private writeOut(buf: Buffer): void {
    // Keep the last few KiB of the head in memory too: a short run's whole output is its row tail.
    if (buf.length > 0 && this.tail.length === 0) {
      this.headCopy.push(Buffer.from(buf));
      let n = this.headCopy.reduce((a, b) => a + b.length, 0);
      while (this.headCopy.length > 1 && n - this.headCopy[0]!.length >= ROW_TAIL_BYTES) n -= this.headCopy.shift()!.length;
    }
    if (this.fd === null || this.writeError) return;
    try {
      let off = 0;
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    } catch (err) {
      this.failed(coerceError(err));
    }
  }
}
