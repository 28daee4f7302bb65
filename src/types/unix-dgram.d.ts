// Minimal types for the optional native addon `unix-dgram` (2.x), which ships none.
// Only what nightshift uses; see node_modules/unix-dgram/lib/unix_dgram.js.
declare module 'unix-dgram' {
  import type { EventEmitter } from 'node:events';

  export interface UnixDgramRemoteInfo {
    size: number;
    /** Sender's bound path; undefined for an unbound (anonymous) sender. */
    path?: string;
  }

  /**
   * Errors from the addon carry the NEGATIVE errno number in `errno` and `code`
   * (e.g. -2 for ENOENT), not Node's usual string code.
   */
  export interface UnixDgramError extends Error {
    errno: number;
    code: number;
    syscall: string;
  }

  export interface UnixDgramSocket extends EventEmitter {
    /** Synchronous; failure is emitted as 'error', not thrown. */
    bind(path: string): void;
    connect(path: string): void;
    /**
     * sendto(2). With a callback, the callback runs synchronously with the error,
     * and no 'error' event is emitted; without one, failures are emitted as 'error'.
     */
    send(buf: Buffer, offset: number, length: number, path: string, callback?: (err?: UnixDgramError) => void): void;
    /** Throws on failure. Calling it twice closes a stale fd number: don't. */
    close(): void;
  }

  /** Throws if socket(2) fails (e.g. EMFILE). */
  export function createSocket(type: 'unix_dgram', listener?: (msg: Buffer, rinfo: UnixDgramRemoteInfo) => void): UnixDgramSocket;
}
