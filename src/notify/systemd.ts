// systemd's notification protocol (sd_notify) for a Type=notify service.
//
// Node has no AF_UNIX datagram socket, so this rides on the optional native addon
// `unix-dgram`. It is required lazily: the reading CLI commands never load it, and a machine
// where the addon failed to build still runs the daemon — only the systemd handshake is lost,
// and that is reported loudly once, because under Type=notify systemd would otherwise kill a
// perfectly healthy daemon after TimeoutStartSec with no hint why.
//
// We use `NotifyAccess=main` plus our own datagrams rather than the `systemd-notify` CLI: the
// CLI needs `NotifyAccess=all`, which would let any job in the service's cgroup pet the
// watchdog and make a hung daemon look alive.
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import type { UnixDgramError } from 'unix-dgram';
import { errorMessage } from '../errors.js';

type UnixDgram = typeof import('unix-dgram');

export interface Notifier {
  /** True when NOTIFY_SOCKET is usable; false means every method is a no-op. */
  readonly enabled: boolean;
  /**
   * How often to call watchdog(): half of WATCHDOG_USEC, in ms (systemd's advice, so that one
   * late tick is not yet fatal). Null when systemd expects no pings from this process.
   */
  readonly watchdogIntervalMs: number | null;
  /** READY=1 (+ STATUS) + MAINPID. Send once start-up recovery is done and the scheduler runs. */
  ready(status?: string): void;
  /** WATCHDOG=1. Call only when the scheduler has actually advanced since the last call. */
  watchdog(): void;
  stopping(status?: string): void;
  status(text: string): void;
  /** Idempotent; later calls of the other methods do nothing. */
  close(): void;
}

/**
 * What systemd hands the daemon for this protocol. The runner should delete these from job
 * environments (libsystemd's sd_notify(unset_environment=1) does the same): a job that
 * speaks sd_notify itself would otherwise make systemd log "reception only permitted for
 * main PID" on every message, or — if NotifyAccess is ever widened — pet our watchdog.
 */
export const SYSTEMD_NOTIFY_ENV = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'] as const;

export type NotifyErrorCode = 'addon-missing' | 'abstract-socket-unsupported' | 'bad-socket-path' | 'bad-watchdog' | 'send-failed';

export class NotifyError extends Error {
  override readonly name = 'NotifyError';
  constructor(
    readonly code: NotifyErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

// sun_path is 108 bytes including the terminating NUL; the addon strncpy()s silently past that,
// so a longer path would address a different, truncated socket.
const MAX_SOCKET_PATH_BYTES = 107;
// systemd drops notification datagrams larger than its receive buffer (4096 bytes in 252);
// a runaway status line must not cost us the READY or WATCHDOG next to it.
const MAX_STATUS_BYTES = 1024;

const NO_OP: Notifier = Object.freeze({
  enabled: false,
  watchdogIntervalMs: null,
  ready() {},
  watchdog() {},
  stopping() {},
  status() {},
  close() {},
});

function loadUnixDgram(): UnixDgram {
  return createRequire(import.meta.url)('unix-dgram') as UnixDgram;
}

/**
 * Build the notifier from systemd's environment. Never throws, and nothing it returns throws:
 * problems go to `onError` (default: a process warning, so they are never silent).
 * `loadAddon` exists for tests that need to simulate a missing addon.
 */
export function createNotifier(
  env: NodeJS.ProcessEnv = process.env,
  onError?: (err: Error) => void,
  loadAddon: () => UnixDgram = loadUnixDgram,
): Notifier {
  const report = (err: Error): void => {
    try {
      if (onError) onError(err);
      else process.emitWarning(err);
    } catch {
      // A throwing error handler must not take the daemon's event loop down with it.
    }
  };

  const socketPath = env.NOTIFY_SOCKET;
  if (socketPath === undefined || socketPath === '') return NO_OP;

  if (socketPath.startsWith('@')) {
    report(
      new NotifyError(
        'abstract-socket-unsupported',
        `NOTIFY_SOCKET=${socketPath} is an abstract-namespace socket, which the unix-dgram addon ` +
          'cannot address (it copies the path as a C string, so the leading NUL ends it); ' +
          'systemd will think the service failed to start. systemd itself passes a filesystem ' +
          'path such as /run/systemd/notify; set NOTIFY_SOCKET to one.',
      ),
    );
    return NO_OP;
  }
  if (!socketPath.startsWith('/')) {
    report(
      new NotifyError(
        'bad-socket-path',
        `NOTIFY_SOCKET=${socketPath} is not an absolute path (vsock: and other address kinds ` +
          'are not supported); systemd will think the service failed to start.',
      ),
    );
    return NO_OP;
  }
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    report(
      new NotifyError(
        'bad-socket-path',
        `NOTIFY_SOCKET is longer than the ${MAX_SOCKET_PATH_BYTES} bytes a unix socket path can ` +
          `hold: ${socketPath}; systemd will think the service failed to start.`,
      ),
    );
    return NO_OP;
  }

  let dgram: UnixDgram;
  try {
    dgram = loadAddon();
  } catch (err) {
    report(
      new NotifyError(
        'addon-missing',
        'NOTIFY_SOCKET is set but the unix-dgram addon is not installed; systemd will think ' +
          'the service failed to start. Reinstall with `npm ci --omit=dev` on this machine ' +
          `(it needs a C++ toolchain to build) — load error: ${errorMessage(err)}`,
        { cause: err },
      ),
    );
    return NO_OP;
  }

  const watchdogIntervalMs = parseWatchdog(env, report);
  let closed = false;
  // The watchdog fires every few seconds; when the socket is gone, one report per distinct
  // failure is news, the next thousand identical ones are noise. A success re-arms it.
  let lastFailure: string | null = null;

  const send = (fields: string[]): void => {
    if (closed) return;
    const payload = Buffer.from(fields.join('\n'), 'utf8');
    const failed = (err: unknown): void => {
      const errno = errnoName(err);
      if (errno === lastFailure) return;
      lastFailure = errno;
      report(
        new NotifyError(
          'send-failed',
          `sd_notify ${fields.map((f) => f.split('=')[0]).join('+')} to ${socketPath} failed: ` + `${errno}${errnoHint(errno)}`,
          { cause: err },
        ),
      );
    };
    // A fresh socket per message, as libsystemd does: the addon's socket holds a referenced
    // poll handle that would keep the event loop alive, and a one-shot socket has no state
    // that can go stale between watchdog ticks.
    let sock: ReturnType<UnixDgram['createSocket']>;
    try {
      sock = dgram.createSocket('unix_dgram');
    } catch (err) {
      failed(err);
      return;
    }
    sock.on('error', failed);
    try {
      sock.send(payload, 0, payload.length, socketPath, (err?: UnixDgramError) => {
        if (err) failed(err);
        else lastFailure = null;
      });
    } catch (err) {
      failed(err);
    } finally {
      try {
        sock.close();
      } catch {
        // Nothing useful to do: the datagram either left already or its failure was reported.
      }
    }
  };

  return {
    enabled: true,
    watchdogIntervalMs,
    ready(status?: string) {
      send(['READY=1', ...statusField(status), `MAINPID=${process.pid}`]);
    },
    watchdog() {
      // Without a watchdog for this PID, systemd would ignore the ping (or, from a child that
      // inherited the variables, log a complaint): stay quiet.
      if (watchdogIntervalMs === null) return;
      send(['WATCHDOG=1']);
    },
    stopping(status?: string) {
      send(['STOPPING=1', ...statusField(status)]);
    },
    status(text: string) {
      send(statusField(text));
    },
    close() {
      closed = true;
    },
  };
}

function parseWatchdog(env: NodeJS.ProcessEnv, report: (err: Error) => void): number | null {
  const usecText = env.WATCHDOG_USEC;
  if (usecText === undefined || usecText === '') return null;

  // WATCHDOG_PID names the process systemd watches. If it is someone else, we inherited the
  // variables from a parent that forgot to unset them, and our pings would be refused.
  const pidText = env.WATCHDOG_PID;
  if (pidText !== undefined && pidText !== '') {
    if (!/^[1-9][0-9]*$/.test(pidText)) {
      report(new NotifyError('bad-watchdog', `WATCHDOG_PID=${pidText} is not a PID; watchdog pings disabled.`));
      return null;
    }
    if (Number(pidText) !== process.pid) return null;
  }

  const usec = /^[0-9]+$/.test(usecText) ? Number(usecText) : NaN;
  if (!Number.isSafeInteger(usec) || usec <= 0) {
    report(
      new NotifyError(
        'bad-watchdog',
        `WATCHDOG_USEC=${usecText} is not a positive number of microseconds; watchdog pings ` +
          'disabled, so systemd will kill the service when its watchdog expires.',
      ),
    );
    return null;
  }
  return Math.max(1, Math.floor(usec / 2000));
}

function statusField(text: string | undefined): string[] {
  if (text === undefined) return [];
  // Status text is data (it may carry job names or output): a newline in it would let it
  // forge READY=1 or WATCHDOG=1, and a NUL makes systemd drop the whole datagram.
  // eslint-disable-next-line no-control-regex
  let clean = text.replace(/[\u0000-\u001f\u007f]+/g, ' ');
  if (Buffer.byteLength(clean) > MAX_STATUS_BYTES) {
    // Cut on a code point boundary so the journal shows no replacement characters.
    let bytes = 0;
    let end = 0;
    for (const ch of clean) {
      const n = Buffer.byteLength(ch);
      if (bytes + n > MAX_STATUS_BYTES - 3) break;
      bytes += n;
      end += ch.length;
    }
    clean = `${clean.slice(0, end)}...`;
  }
  return [`STATUS=${clean}`];
}

// The addon reports errno as a negative number (-2), not Node's string code ('ENOENT').
function errnoName(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'number') {
    const errno = Math.abs(code);
    for (const [name, value] of Object.entries(osConstants.errno)) {
      if (value === errno) return name;
    }
    return `errno ${errno}`;
  }
  if (typeof code === 'string') return code;
  return errorMessage(err);
}

function errnoHint(errno: string): string {
  switch (errno) {
    case 'ENOENT':
      return ' (no socket at that path: NOTIFY_SOCKET is stale, or systemd is not running this process)';
    case 'ECONNREFUSED':
      return ' (nothing is listening on that socket)';
    case 'EACCES':
    case 'EPERM':
      return ' (permission denied on the socket)';
    case 'EAGAIN':
      return " (systemd's notification queue is full; this message was lost)";
    default:
      return '';
  }
}
