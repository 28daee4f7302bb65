// The pieces of pings over HTTP that are arithmetic, not I/O: whose address counts for the limits
// (X-Forwarded-For only from the proxy the policy names), the sliding-window limit, and the gate's
// limit on good pings. Instants are passed in; the requests are plain objects with a socket's peer
// and headers (a GET: no body is read). The real server is tested in tests/e2e/ping-http.test.ts.
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  clientAddress,
  FAILURES_PER_CLIENT,
  PingGate,
  PINGS_PER_JOB,
  PINGS_TOTAL,
  SlidingLimit,
  type PingKind,
} from '../../../src/web/ping-http.js';

const KEY = 'k'.repeat(43);

function req(peer: string, headers: Record<string, string> = {}): IncomingMessage {
  return { socket: { remoteAddress: peer }, headers } as unknown as IncomingMessage;
}

describe('clientAddress', () => {
  it('is the socket peer, whatever X-Forwarded-For says, unless the peer is this machine and a publicUrl is set', () => {
    // A peer on the network: its X-Forwarded-For is its own words.
    expect(clientAddress('198.51.100.7', '203.0.113.1', true)).toBe('198.51.100.7');
    expect(clientAddress('198.51.100.7', '203.0.113.1', false)).toBe('198.51.100.7');
    // Loopback without publicUrl: no proxy is announced, so a local process's header is not trusted.
    expect(clientAddress('127.0.0.1', '203.0.113.1', false)).toBe('127.0.0.1');
    // The proxy (loopback, publicUrl set): the last entry, the one the proxy appended.
    expect(clientAddress('127.0.0.1', '10.0.0.1, 203.0.113.1', true)).toBe('203.0.113.1');
    expect(clientAddress('::1', '2001:db8::1', true)).toBe('2001:db8::1');
    expect(clientAddress('::ffff:127.0.0.1', ' 203.0.113.9 ', true)).toBe('203.0.113.9');
    expect(clientAddress('127.0.0.1', ['10.0.0.1', '203.0.113.2'], true)).toBe('203.0.113.2');
    // A proxy that sent none (or nonsense): the proxy itself.
    expect(clientAddress('127.0.0.1', undefined, true)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', '10.0.0.1,', true)).toBe('127.0.0.1');
    expect(clientAddress('127.0.0.1', 'x'.repeat(100), true)).toBe('127.0.0.1');
    // Another loopback address is not the proxy the brief names.
    expect(clientAddress('127.0.0.2', '203.0.113.1', true)).toBe('127.0.0.2');
    expect(clientAddress(undefined, '203.0.113.1', true)).toBe('unknown');
  });
});

describe('SlidingLimit', () => {
  it('allows `limit` events in any window, and the next one only when the oldest has left it', () => {
    const l = new SlidingLimit(3, 1000);
    expect(l.idle(0)).toBe(true);
    for (const t of [0, 100, 200]) {
      expect(l.room(t)).toBe(true);
      l.take(t);
    }
    expect(l.room(999)).toBe(false);
    expect(l.room(1000)).toBe(true); // the event at 0 has left the window
    l.take(1000);
    expect(l.room(1099)).toBe(false);
    expect(l.room(1100)).toBe(true);
    expect(l.idle(1999)).toBe(false);
    expect(l.idle(2000)).toBe(true);
  });
});

describe('PingGate', () => {
  function gate(jobOfKey: (key: string) => string | null) {
    const pings: Array<[string, PingKind]> = [];
    const refused: string[] = [];
    let now = 0;
    const g = new PingGate({
      jobOfKey,
      ping: (job, kind) => {
        pings.push([job, kind]);
        return true;
      },
      behindProxy: () => false,
      monotonic: () => now,
      refused: (job, why) => refused.push(`${job}: ${why}`),
    });
    return { g, pings, refused, at: (t: number) => (now = t) };
  }

  // Keys of five jobs: the limit in all is more than one job may use.
  const KEYS = Array.from({ length: 6 }, (_, i) => String(i).repeat(43));
  const jobOfKeys = (k: string): string | null => (KEYS.includes(k) ? `ext${KEYS.indexOf(k)}` : k === KEY ? 'ext' : null);

  it("one job's key, leaked or looping, cannot use up the room of the others: each job has its own limit, and the refusal is told", async () => {
    const { g, pings, refused } = gate(jobOfKeys);
    for (let i = 0; i < PINGS_PER_JOB; i++) {
      const a = await g.answer(req('192.0.2.1'), `/ping/${KEYS[0]}`, 'GET');
      if (a.status !== 200) throw new Error(`ping ${i} refused: ${a.status}`);
    }
    expect((await g.answer(req('192.0.2.1'), `/ping/${KEYS[0]}`, 'GET')).status).toBe(429);
    expect((await g.answer(req('192.0.2.1'), `/ping/${KEYS[0]}`, 'GET')).status).toBe(429);
    // Another job's right key, from anywhere: still alive.
    expect((await g.answer(req('192.0.2.1'), `/ping/${KEYS[1]}`, 'GET')).status).toBe(200);
    expect(pings).toHaveLength(PINGS_PER_JOB + 1);
    // Told once for the minute, with the job and why.
    expect(refused).toEqual([`ext0: more than ${PINGS_PER_JOB} pings a minute of job ext0`]);
  });

  it('good pings are limited in all (a loop cannot flood the database), and never by the failures of others', async () => {
    const { g, pings, at } = gate(jobOfKeys);
    for (let i = 0; i < FAILURES_PER_CLIENT; i++)
      expect((await g.answer(req('192.0.2.1'), `/ping/${'x'.repeat(43)}`, 'GET')).status).toBe(404);
    expect((await g.answer(req('192.0.2.1'), `/ping/${'x'.repeat(43)}`, 'GET')).status).toBe(429);
    // The same client with the right key: not refused by the failure limit.
    for (let i = 0; i < PINGS_TOTAL; i++) {
      const a = await g.answer(req('192.0.2.1'), `/ping/${KEYS[i % 5]}`, 'GET');
      if (a.status !== 200) throw new Error(`ping ${i} refused: ${a.status}`);
    }
    expect(pings).toHaveLength(PINGS_TOTAL);
    // A sixth job, within its own limit: refused by the limit in all.
    const over = await g.answer(req('192.0.2.9'), `/ping/${KEYS[5]}`, 'GET');
    expect([over.status, over.headers['Retry-After']]).toEqual([429, '60']);
    expect(pings).toHaveLength(PINGS_TOTAL);
    at(60_000);
    expect((await g.answer(req('192.0.2.9'), `/ping/${KEY}/start`, 'GET')).status).toBe(200);
    expect(pings.at(-1)).toEqual(['ext', 'start']);
  });

  it('kinds from the path: /start, /fail, and an exit status (0 a success, 1-255 a failure, more is no ping)', async () => {
    const { g, pings } = gate((k) => (k === KEY ? 'ext' : null));
    for (const p of ['', '/start', '/fail', '/0', '/1', '/255'])
      expect((await g.answer(req('192.0.2.1'), `/ping/${KEY}${p}`, 'GET')).status).toBe(200);
    expect(pings.map((p) => p[1])).toEqual(['success', 'start', 'fail', 'success', 'fail', 'fail']);
    const unknown = await g.answer(req('192.0.2.1'), `/ping/${'x'.repeat(43)}`, 'GET');
    for (const p of ['/256', '/start/more', '/success', '/'])
      expect(await g.answer(req('192.0.2.1'), `/ping/${KEY}${p}`, 'GET')).toEqual(unknown);
    expect(pings).toHaveLength(6);
  });
});
