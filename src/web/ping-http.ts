// Pings over HTTP, as Healthchecks takes them: an external job on this or another host proves life
// with `curl -fsS -m 10 --retry 3 https://ops.shop.example/ping/KEY` (and /start, /fail, or /N
// with its exit status). The key is the only credential: no session, no CSRF token, no Origin
// check (curl sends none); the dashboard's Host check still applies. What this file decides:
// - a wrong key and an unknown one (or the key of a job that is not external any more) get the
//   very same answer, so an answer tells nothing but "this key is good";
// - failures are limited per client and in all, as login attempts are; a good key is never
//   refused by that limit (it counts only failures), so noise cannot lock out the job;
// - good pings are limited in all, so a sender in a loop cannot flood the state database;
// - a POSTed body is the ping's output: the first PING_OUTPUT_MAX bytes are kept, the rest is
//   read and dropped as it comes (never held in memory).
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { elapsedMs } from '../clock.js';
import { oneLine } from '../text.js';

export type PingKind = 'start' | 'success' | 'fail';

/** A key: 256 random bits in base64url (43 characters), as a login link's token. */
export const newPingKey = (): string => randomBytes(32).toString('base64url');
export const pingKeyHash = (key: string): string => createHash('sha256').update(key).digest('hex');
export const PING_KEY = /^[A-Za-z0-9_-]{43}$/;
export const pingPath = (key: string): string => `/ping/${key}`;

/** Bytes of a POSTed body kept as the ping's output. */
export const PING_OUTPUT_MAX = 10 * 1024;
/** What ends an output that was longer than PING_OUTPUT_MAX. */
export const CUT_MARK = '\n(cut)';

/** Wrong keys a minute from one client, and from all together; then 429 until the minute has passed. */
export const FAILURES_PER_CLIENT = 30;
export const FAILURES_TOTAL = 600;
/** Good pings a minute, of all jobs together: 100 a second is far beyond any honest use. */
export const PINGS_TOTAL = 6000;
/**
 * Good pings a minute of one job: a key proves the life of one job and nothing else, so one key
 * (leaked, or its job in a loop) must not use up the others' room and make them look dead.
 */
export const PINGS_PER_JOB = 1200;
const WINDOW_MS = 60_000;
/** Clients remembered for their failures; beyond that, the ones idle for a minute are forgotten. */
const MAX_CLIENTS = 10_000;

export interface PingAnswer {
  status: number;
  body: string;
  headers: Record<string, string>;
}

// Every refusal of a key reads the same, whatever the reason: one constant.
const NOT_FOUND: PingAnswer = { status: 404, body: 'not found\n', headers: {} };
const OK: PingAnswer = { status: 200, body: 'OK\n', headers: {} };
const TOO_MANY_FAILURES: PingAnswer = {
  status: 429,
  body: 'too many wrong ping keys from here; wait a minute\n',
  headers: { 'Retry-After': '60' },
};
const TOO_MANY_PINGS: PingAnswer = {
  status: 429,
  body: 'too many pings this minute; wait a minute\n',
  headers: { 'Retry-After': '60' },
};

export interface PingGateDeps {
  /** The external job this key belongs to; null for any key that proves nothing. */
  jobOfKey(key: string): string | null;
  /** Records the ping as `nightshift ping` does; false when the job went away meanwhile. */
  ping(job: string, kind: PingKind, output: string | null, message: string | null): boolean;
  /** Whether a reverse proxy stands in front (policy.dashboard.publicUrl is set). */
  behindProxy(): boolean;
  /** A monotonic clock (ms) for the limits: a step of the wall clock must not lock anyone out. */
  monotonic?: () => number;
  /** Told (at most once a minute per job) when good pings of a job are refused: the operator must see why it looks dead. */
  refused?: (job: string, why: string) => void;
}

/**
 * Who a ping comes from, for the limits: the socket's peer. The one exception is the reverse
 * proxy the policy announces (publicUrl set) talking from this machine (127.0.0.1 or ::1): every
 * client would then be the proxy, so the last entry of X-Forwarded-For counts instead — the one
 * Caddy or nginx appended for the peer it saw; entries before it are whatever the client wrote.
 * No other header is trusted, and from any other peer not even this one: anyone can send it.
 * (A process on this machine can write it too; the limits in all still hold for it.)
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, behindProxy: boolean): string {
  const addr = peer ?? 'unknown';
  if (!behindProxy || !LOOPBACK_PEERS.has(addr)) return addr;
  const list = Array.isArray(forwardedFor) ? forwardedFor.join(',') : (forwardedFor ?? '');
  const last = list.split(',').at(-1)!.trim();
  // An address is short; anything else is not what a proxy wrote.
  return last !== '' && last.length <= 64 ? last : addr;
}
const LOOPBACK_PEERS = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/**
 * At most `limit` events in any window of `windowMs`: the times of the last `limit` events taken,
 * in a ring (constant time and memory per event, exact over a sliding window).
 */
export class SlidingLimit {
  private readonly times: Float64Array;
  private next = 0;
  private count = 0;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {
    this.times = new Float64Array(limit);
  }

  /** Whether one more event fits now. */
  room(now: number): boolean {
    return this.count < this.limit || now - this.times[this.next]! >= this.windowMs;
  }

  take(now: number): void {
    this.times[this.next] = now;
    this.next = (this.next + 1) % this.limit;
    if (this.count < this.limit) this.count++;
  }

  /** Nothing taken within the window: the limit can be forgotten. */
  idle(now: number): boolean {
    const last = this.times[(this.next + this.limit - 1) % this.limit]!;
    return this.count === 0 || now - last >= this.windowMs;
  }
}

export class PingGate {
  private readonly failures = new SlidingLimit(FAILURES_TOTAL, WINDOW_MS);
  private readonly failuresBy = new Map<string, SlidingLimit>();
  private readonly pings = new SlidingLimit(PINGS_TOTAL, WINDOW_MS);
  private readonly pingsBy = new Map<string, SlidingLimit>();
  private readonly refusedAt = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly deps: PingGateDeps) {
    this.now = deps.monotonic ?? (() => elapsedMs());
  }

  /** The answer to a GET or POST of a path under /ping/. */
  async answer(req: IncomingMessage, path: string, method: 'GET' | 'POST'): Promise<PingAnswer> {
    const m = /^\/ping\/([^/]+)(?:\/(start|fail|\d{1,3}))?$/.exec(path);
    const key = m && PING_KEY.test(m[1]!) ? m[1]! : null;
    const job = key !== null ? this.deps.jobOfKey(key) : null;
    const exit = m?.[2] !== undefined && /^\d+$/.test(m[2]) ? Number(m[2]) : null;
    const now = this.now();
    if (job === null || (exit !== null && exit > 255)) {
      // The same answer for every bad key; only its count differs, and only once over the limit.
      return this.failed(clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], this.deps.behindProxy()), now);
    }
    let mine = this.pingsBy.get(job);
    if (!mine) {
      if (this.pingsBy.size > MAX_CLIENTS) for (const [j, l] of this.pingsBy) if (l.idle(now)) this.pingsBy.delete(j);
      this.pingsBy.set(job, (mine = new SlidingLimit(PINGS_PER_JOB, WINDOW_MS)));
    }
    if (!mine.room(now) || !this.pings.room(now)) {
      const why = mine.room(now)
        ? `more than ${PINGS_TOTAL} pings a minute of all jobs together`
        : `more than ${PINGS_PER_JOB} pings a minute of job ${job}`;
      if (now - (this.refusedAt.get(job) ?? -Infinity) >= WINDOW_MS) {
        this.refusedAt.set(job, now);
        this.deps.refused?.(job, why);
      }
      return TOO_MANY_PINGS;
    }
    mine.take(now);
    this.pings.take(now);
    let output: string | null = null;
    if (method === 'POST') {
      const body = await readPingBody(req);
      // The sender went away mid-body: it sees no answer, and half a ping is not recorded.
      if (body === CUT_OFF) return CUT_OFF_ANSWER;
      output = body;
    }
    const kind: PingKind = m![2] === 'start' ? 'start' : m![2] === 'fail' || (exit !== null && exit !== 0) ? 'fail' : 'success';
    const message =
      kind !== 'fail'
        ? null
        : [exit !== null ? `exit status ${exit}` : null, output ? oneLine(output, 200) : null].filter(Boolean).join(': ');
    return this.deps.ping(job, kind, output, message || null) ? OK : NOT_FOUND;
  }

  private failed(client: string, now: number): PingAnswer {
    let mine = this.failuresBy.get(client);
    if (!mine) {
      if (this.failuresBy.size >= MAX_CLIENTS) {
        for (const [c, l] of this.failuresBy) if (l.idle(now)) this.failuresBy.delete(c);
        // Still full: many addresses at once (IPv6 makes them cheap); the limit in all still holds.
        if (this.failuresBy.size >= MAX_CLIENTS) this.failuresBy.clear();
      }
      mine = new SlidingLimit(FAILURES_PER_CLIENT, WINDOW_MS);
      this.failuresBy.set(client, mine);
    }
    if (!mine.room(now) || !this.failures.room(now)) return TOO_MANY_FAILURES;
    mine.take(now);
    this.failures.take(now);
    return NOT_FOUND;
  }
}

/**
 * A POSTed body as text: the first PING_OUTPUT_MAX bytes, and CUT_MARK when more came (read and
 * dropped as it arrives). Null when it was empty. Any content type: it is kept as data.
 */
export function readPingBody(req: IncomingMessage): Promise<string | null | typeof CUT_OFF> {
  return new Promise((resolve) => {
    const kept: Buffer[] = [];
    let size = 0;
    let cut = false;
    req.on('data', (chunk: Buffer) => {
      if (size >= PING_OUTPUT_MAX) {
        cut = true;
        return;
      }
      const part = chunk.length > PING_OUTPUT_MAX - size ? chunk.subarray(0, PING_OUTPUT_MAX - size) : chunk;
      if (part.length < chunk.length) cut = true;
      kept.push(part);
      size += part.length;
    });
    req.on('end', () => {
      if (size === 0) return resolve(null);
      // A cut in the middle of a character leaves a U+FFFD, as any cut of bytes must.
      resolve(`${Buffer.concat(kept).toString('utf8')}${cut ? CUT_MARK : ''}`);
    });
    // After 'end' these settle nothing: a promise resolves once.
    req.on('error', () => resolve(CUT_OFF));
    req.on('close', () => resolve(CUT_OFF));
  });
}

/** A body whose sender hung up before its end. */
export const CUT_OFF = Symbol('cut off');
const CUT_OFF_ANSWER: PingAnswer = { status: 400, body: 'the request ended before its body did\n', headers: {} };
