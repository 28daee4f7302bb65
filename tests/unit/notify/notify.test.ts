// sd_notify against a real AF_UNIX datagram socket, standing in for systemd's
// /run/systemd/notify: what the daemon sends is exactly what systemd would receive.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UnixDgramSocket } from 'unix-dgram';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createNotifier, NotifyError, type Notifier } from '../../../src/notify/systemd.js';

const unix = createRequire(import.meta.url)('unix-dgram') as typeof import('unix-dgram');

interface Receiver {
  path: string;
  messages: string[];
  /** Resolves with the first `n` datagrams received since the receiver was created. */
  take(n: number): Promise<string[]>;
  close(): void;
}

let dir: string;
const cleanups: (() => void)[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ns-notify-'));
});

afterEach(() => {
  for (const fn of cleanups.splice(0).reverse()) fn();
  rmSync(dir, { recursive: true, force: true });
});

function receiver(name = 'notify.sock'): Receiver {
  const path = join(dir, name);
  const messages: string[] = [];
  let wake: (() => void) | null = null;
  const sock: UnixDgramSocket = unix.createSocket('unix_dgram', (buf) => {
    messages.push(buf.toString('utf8'));
    wake?.();
  });
  let bindError: Error | null = null;
  sock.on('error', (err: Error) => {
    bindError = err;
  });
  sock.bind(path);
  if (bindError !== null) throw bindError as Error; // set in the callback: the compiler still thinks null
  let open = true;
  const close = (): void => {
    if (open) sock.close();
    open = false;
  };
  cleanups.push(close);
  return {
    path,
    messages,
    close,
    take(n) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`expected ${n} datagrams, got ${JSON.stringify(messages)}`)), 5000);
        const check = (): void => {
          if (messages.length < n) return;
          clearTimeout(timer);
          wake = null;
          resolve(messages.slice(0, n));
        };
        wake = check;
        check();
      });
    },
  };
}

function track(n: Notifier): Notifier {
  cleanups.push(() => n.close());
  return n;
}

describe('createNotifier with a real NOTIFY_SOCKET', () => {
  it('sends the exact datagrams systemd expects, one per call', async () => {
    const rx = receiver();
    const onError = vi.fn();
    const n = track(createNotifier({ NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '2000000' }, onError));

    expect(n.enabled).toBe(true);
    expect(n.watchdogIntervalMs).toBe(1000);

    n.ready('running 12 jobs');
    n.ready();
    n.watchdog();
    n.status('2 alerts open');
    n.stopping('stopping 3 jobs');
    n.stopping();

    expect(await rx.take(6)).toEqual([
      `READY=1\nSTATUS=running 12 jobs\nMAINPID=${process.pid}`,
      `READY=1\nMAINPID=${process.pid}`,
      'WATCHDOG=1',
      'STATUS=2 alerts open',
      'STOPPING=1\nSTATUS=stopping 3 jobs',
      'STOPPING=1',
    ]);
    expect(onError).not.toHaveBeenCalled();
  });

  it('keeps status text on one line, so it cannot forge READY=1 or WATCHDOG=1', async () => {
    const rx = receiver();
    const n = track(createNotifier({ NOTIFY_SOCKET: rx.path }, vi.fn()));

    n.status('job said:\nWATCHDOG=1\r\nREADY=1\u0000end');

    expect(await rx.take(1)).toEqual(['STATUS=job said: WATCHDOG=1 READY=1 end']);
  });

  it('caps a runaway status line well under systemd’s datagram limit', async () => {
    const rx = receiver();
    const n = track(createNotifier({ NOTIFY_SOCKET: rx.path }, vi.fn()));

    n.status('é'.repeat(5000));

    const [msg] = await rx.take(1);
    expect(Buffer.byteLength(msg ?? '')).toBeLessThanOrEqual('STATUS='.length + 1024);
    expect(msg).toMatch(/^STATUS=(é)+\.\.\.$/);
  });

  it('honours the watchdog when WATCHDOG_PID is this process', () => {
    const n = track(
      createNotifier({ NOTIFY_SOCKET: receiver().path, WATCHDOG_USEC: '30000000', WATCHDOG_PID: String(process.pid) }, vi.fn()),
    );
    expect(n.watchdogIntervalMs).toBe(15_000);
  });

  it('disables the watchdog when WATCHDOG_PID names another process, and sends no pings', async () => {
    const rx = receiver();
    const env = { NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '2000000', WATCHDOG_PID: String(process.ppid) };
    const onError = vi.fn();
    const n = track(createNotifier(env, onError));

    expect(n.enabled).toBe(true);
    expect(n.watchdogIntervalMs).toBeNull();

    n.watchdog();
    // Datagrams on one socket arrive in order: if a ping had been sent, it would come first.
    n.status('sentinel');
    expect(await rx.take(1)).toEqual(['STATUS=sentinel']);
    expect(onError).not.toHaveBeenCalled();
  });

  it('has no watchdog without WATCHDOG_USEC, and reports a malformed one', () => {
    const path = receiver().path;
    expect(track(createNotifier({ NOTIFY_SOCKET: path }, vi.fn())).watchdogIntervalMs).toBeNull();

    for (const bad of ['abc', '0', '-5', '1e6']) {
      const onError = vi.fn();
      const n = track(createNotifier({ NOTIFY_SOCKET: path, WATCHDOG_USEC: bad }, onError));
      expect(n.watchdogIntervalMs).toBeNull();
      expect(onError).toHaveBeenCalledTimes(1);
      expect((onError.mock.calls[0]?.[0] as NotifyError).code).toBe('bad-watchdog');
    }
  });

  it('sends nothing after close(), and close() is idempotent', async () => {
    const rx = receiver();
    const n = createNotifier({ NOTIFY_SOCKET: rx.path, WATCHDOG_USEC: '2000000' }, vi.fn());
    n.close();
    n.close();
    expect(() => {
      n.ready();
      n.watchdog();
      n.status('x');
      n.stopping();
    }).not.toThrow();

    track(createNotifier({ NOTIFY_SOCKET: rx.path }, vi.fn())).status('sentinel');
    expect(await rx.take(1)).toEqual(['STATUS=sentinel']);
  });
});

describe('createNotifier without systemd', () => {
  it('is a silent no-op without NOTIFY_SOCKET, and does not even load the addon', () => {
    const onError = vi.fn();
    const loadAddon = vi.fn(() => {
      throw new Error('must not be called');
    });
    const n = createNotifier({ WATCHDOG_USEC: '2000000' }, onError, loadAddon);

    expect(n.enabled).toBe(false);
    expect(n.watchdogIntervalMs).toBeNull();
    expect(() => {
      n.ready('x');
      n.watchdog();
      n.status('x');
      n.stopping('x');
      n.close();
      n.close();
    }).not.toThrow();
    expect(onError).not.toHaveBeenCalled();
    expect(loadAddon).not.toHaveBeenCalled();
  });

  it('reports, once, that a missing addon means systemd will think the start failed', () => {
    const onError = vi.fn();
    const missing = Object.assign(new Error("Cannot find module 'unix-dgram'"), { code: 'MODULE_NOT_FOUND' });
    const n = createNotifier({ NOTIFY_SOCKET: join(dir, 'notify.sock'), WATCHDOG_USEC: '2000000' }, onError, () => {
      throw missing;
    });

    expect(n.enabled).toBe(false);
    expect(n.watchdogIntervalMs).toBeNull();
    expect(() => {
      n.ready();
      n.watchdog();
      n.status('x');
      n.stopping();
      n.close();
    }).not.toThrow();

    expect(onError).toHaveBeenCalledTimes(1);
    const err = onError.mock.calls[0]?.[0] as NotifyError;
    expect(err).toBeInstanceOf(NotifyError);
    expect(err.code).toBe('addon-missing');
    expect(err.message).toContain(
      'NOTIFY_SOCKET is set but the unix-dgram addon is not installed; systemd will think the service failed to start',
    );
    expect(err.cause).toBe(missing);
  });

  it('reports an abstract-namespace NOTIFY_SOCKET, which the addon cannot address, and disables itself', () => {
    const onError = vi.fn();
    const n = createNotifier({ NOTIFY_SOCKET: '@/org/freedesktop/systemd1/notify' }, onError);

    expect(n.enabled).toBe(false);
    expect(() => n.ready()).not.toThrow();
    expect(onError).toHaveBeenCalledTimes(1);
    expect((onError.mock.calls[0]?.[0] as NotifyError).code).toBe('abstract-socket-unsupported');
  });

  it('rejects relative and over-long socket paths instead of sending somewhere else', () => {
    for (const path of ['run/notify', 'vsock:2:1234', `/${'x'.repeat(120)}`]) {
      const onError = vi.fn();
      const n = createNotifier({ NOTIFY_SOCKET: path }, onError);
      expect(n.enabled).toBe(false);
      expect((onError.mock.calls[0]?.[0] as NotifyError).code).toBe('bad-socket-path');
    }
  });
});

describe('createNotifier when nothing listens', () => {
  it('reports a socket path that does not exist, without throwing, once per failure', () => {
    const onError = vi.fn();
    const path = join(dir, 'nobody-here.sock');
    const n = track(createNotifier({ NOTIFY_SOCKET: path, WATCHDOG_USEC: '2000000' }, onError));

    expect(n.enabled).toBe(true);
    expect(() => {
      n.ready('up');
      n.watchdog();
      n.watchdog();
      n.status('x');
      n.stopping();
    }).not.toThrow();

    // The watchdog would repeat the same failure every few seconds; one report says it all.
    expect(onError).toHaveBeenCalledTimes(1);
    const err = onError.mock.calls[0]?.[0] as NotifyError;
    expect(err.code).toBe('send-failed');
    expect(err.message).toContain(path);
    expect(err.message).toContain('ENOENT');
  });

  it('reports a socket file with no listener behind it (ECONNREFUSED), and reports again after a recovery', async () => {
    const rx = receiver();
    const onError = vi.fn();
    const n = track(createNotifier({ NOTIFY_SOCKET: rx.path }, onError));

    n.status('one');
    expect(await rx.take(1)).toEqual(['STATUS=one']);
    rx.close(); // the socket file stays behind, unbound: like a dead systemd

    n.status('two');
    n.status('three');
    expect(onError).toHaveBeenCalledTimes(1);
    expect((onError.mock.calls[0]?.[0] as NotifyError).message).toContain('ECONNREFUSED');

    rmSync(rx.path);
    const rx2 = receiver();
    n.status('four');
    expect(await rx2.take(1)).toEqual(['STATUS=four']);
    rx2.close();
    rmSync(rx2.path);
    n.status('five');
    expect(onError).toHaveBeenCalledTimes(2);
    expect((onError.mock.calls[1]?.[0] as NotifyError).message).toContain('ENOENT');
  });

  it('survives an onError handler that throws', () => {
    const onError = vi.fn(() => {
      throw new Error('logger broke');
    });
    const n = track(createNotifier({ NOTIFY_SOCKET: join(dir, 'missing.sock') }, onError));
    expect(() => n.ready()).not.toThrow();
    expect(onError).toHaveBeenCalledTimes(1);
  });
});
