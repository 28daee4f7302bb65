// One timer for many deadlines: a min-heap of (deadline, key) and a single setTimeout armed to
// the earliest. Idle is free — nothing wakes up until something is due — and each change is
// O(log n), so a hundred or ten thousand jobs cost the same per deadline.
//
// Deadlines are wall-clock instants but setTimeout waits on the monotonic clock, so a step of the
// wall clock (NTP, an operator's `date -s`, a VM resumed from a snapshot) would leave every armed
// timer pointing at the old time. A ClockWatch per clock notices a step by comparing the wall
// clock with the monotonic one whenever any timer fires — and at least once a minute, since each
// timer caps its wait at CHECK_MS — and tells every timer on that clock, which re-plans its
// deadlines (see JumpPolicy) before anything due is fired.

import { elapsedMs, systemClock, type Clock } from '../clock.js';

/**
 * The longest a timer waits without looking at the clock: also how late a deadline can be after
 * a forward step nobody else noticed. One wake-up a minute per timer costs a few microseconds
 * (bench/idle.mjs). Longer waits are re-armed when it expires, which also keeps every delay
 * within setTimeout's signed 32-bit limit.
 */
export const CHECK_MS = 60_000;

/**
 * Wall and monotonic clocks drift apart slowly (NTP slews at most 0.5 ms/s, so under 30 ms
 * between two checks); a difference above this between two checks is a step.
 */
export const JUMP_THRESHOLD_MS = 1_000;

export interface ClockJump {
  /** The wall time it would be without the step. */
  before: number;
  /** The wall time it is. */
  after: number;
  /** after - before: positive when the clock jumped forward. */
  deltaMs: number;
}

/**
 * What a timer does with its deadlines when the wall clock steps:
 * - 'shift' (default): every deadline moves with the clock, so a wait of N ms stays a wait of
 *   N ms of real time (retry delays, approval TTLs, hourly pings, hang timeouts);
 * - 'wall': deadlines keep their wall-clock time (a forward step makes them due at once);
 * - a function: the owner re-plans its deadlines itself (calendar instants: schedules, digests).
 * In every case the armed setTimeout is re-armed from the new time afterwards.
 */
export type JumpPolicy = 'shift' | 'wall' | ((jump: ClockJump) => void);

export function monoOf(clock: Clock): number {
  return elapsedMs(clock);
}

/** Notices steps of one clock and tells every timer and listener on it. */
export class ClockWatch {
  private offset: number;
  readonly timers = new Set<DeadlineTimer<unknown>>();
  private readonly listeners = new Set<(jump: ClockJump) => void>();
  private broadcasting = false;

  constructor(private readonly clock: Clock) {
    this.offset = clock.now() - monoOf(clock);
  }

  /** Called before re-planning timers (for example to journal the step first). Returns an unsubscribe. */
  onJump(fn: (jump: ClockJump) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Compares the wall clock with the monotonic one; on a step, tells every listener and timer
   * (synchronously, before the caller fires anything) and returns the step.
   */
  check(): ClockJump | null {
    if (this.broadcasting) return null;
    const mono = monoOf(this.clock);
    const after = this.clock.now();
    const before = this.offset + mono;
    // Re-based on every check: a slow slew never adds up to a step.
    this.offset = after - mono;
    const deltaMs = after - before;
    if (Math.abs(deltaMs) < JUMP_THRESHOLD_MS) return null;
    const jump: ClockJump = { before, after, deltaMs };
    this.broadcasting = true;
    try {
      for (const fn of [...this.listeners]) {
        try {
          fn(jump);
        } catch {
          // a listener's failure must not keep the timers on the old time
        }
      }
      for (const t of [...this.timers]) t.clockJumped(jump);
    } finally {
      this.broadcasting = false;
    }
    return jump;
  }
}

const watches = new WeakMap<Clock, ClockWatch>();

/** The one watch of a clock object: every timer on the same clock hears about the same step. */
export function clockWatch(clock: Clock): ClockWatch {
  let w = watches.get(clock);
  if (!w) watches.set(clock, (w = new ClockWatch(clock)));
  return w;
}

interface Entry<K> {
  key: K;
  at: number;
  seq: number;
}

export class DeadlineTimer<K> {
  private heap: Entry<K>[] = [];
  private live = new Map<K, Entry<K>>();
  private seq = 0;
  private handle: NodeJS.Timeout | null = null;
  private armedFor: number | null = null;
  private armedMono: number | null = null;
  private armedDelay = 0;
  private stopped = false;
  /** Deadline of the most recent fire that found nothing late, for the liveness check. */
  private lastFireAt: number | null = null;
  private readonly watch: ClockWatch;

  constructor(
    private readonly onDue: (key: K, at: number) => void,
    private readonly clock: Clock = systemClock,
    private readonly onError: (err: unknown, key: K) => void = () => {},
    private readonly onJump: JumpPolicy = 'shift',
  ) {
    this.watch = clockWatch(clock);
    this.watch.timers.add(this as DeadlineTimer<unknown>);
  }

  get size(): number {
    return this.live.size;
  }

  keys(): K[] {
    return [...this.live.keys()];
  }

  get(key: K): number | undefined {
    return this.live.get(key)?.at;
  }

  set(key: K, at: number): void {
    const e: Entry<K> = { key, at, seq: this.seq++ };
    this.live.set(key, e);
    this.push(e);
    this.compact();
    this.arm();
  }

  delete(key: K): void {
    if (this.live.delete(key)) {
      this.compact();
      this.arm();
    }
  }

  peek(): { key: K; at: number } | undefined {
    this.dropStale();
    const top = this.heap[0];
    return top ? { key: top.key, at: top.at } : undefined;
  }

  /**
   * True unless the armed timer is overdue by more than `slackMs` (the event loop is stuck).
   * Measured on the monotonic clock: a wall-clock step is not a stall.
   */
  healthy(slackMs: number): boolean {
    if (!this.handle || this.armedMono === null) return true;
    return elapsedMs() - this.armedMono <= this.armedDelay + slackMs;
  }

  stop(): void {
    this.stopped = true;
    this.watch.timers.delete(this as DeadlineTimer<unknown>);
    if (this.handle) clearTimeout(this.handle);
    this.handle = null;
    this.armedFor = null;
  }

  start(): void {
    this.stopped = false;
    this.watch.timers.add(this as DeadlineTimer<unknown>);
    this.arm();
  }

  /** Looks for a wall-clock step now (the watch re-plans every timer on this clock if there was one). */
  checkClock(): ClockJump | null {
    return this.watch.check();
  }

  /** Called by the ClockWatch: re-plan by the policy, then wait from the new time. */
  clockJumped(jump: ClockJump): void {
    try {
      if (this.onJump === 'shift') {
        // Stale entries too: a uniform shift keeps the heap in order.
        for (const e of this.heap) e.at += jump.deltaMs;
      } else if (typeof this.onJump === 'function') {
        this.onJump(jump);
      }
    } catch (err) {
      this.onError(err, undefined as K);
    }
    this.rearm();
  }

  private rearm(): void {
    if (this.handle) clearTimeout(this.handle);
    this.handle = null;
    this.armedFor = null;
    this.arm();
  }

  private arm(): void {
    if (this.stopped) return;
    const top = this.peek();
    if (!top) {
      if (this.handle) clearTimeout(this.handle);
      this.handle = null;
      this.armedFor = null;
      return;
    }
    if (this.handle && this.armedFor === top.at) return;
    if (this.handle) clearTimeout(this.handle);
    this.armedFor = top.at;
    // Capped so that a step of the wall clock is noticed within CHECK_MS even when idle.
    const delay = Math.min(Math.max(0, top.at - this.clock.now()), CHECK_MS);
    this.armedMono = elapsedMs();
    this.armedDelay = delay;
    this.handle = setTimeout(() => this.fire(), delay);
  }

  private fire(): void {
    this.handle = null;
    this.armedFor = null;
    // First: after a step, deadlines are re-planned from the new time before any of them fires.
    this.watch.check();
    const now = this.clock.now();
    // Node may fire a millisecond early relative to the wall clock; that deadline is due.
    for (;;) {
      this.dropStale();
      const top = this.heap[0];
      if (!top || top.at > now + 1) break;
      this.pop();
      this.live.delete(top.key);
      try {
        this.onDue(top.key, top.at);
      } catch (err) {
        this.onError(err, top.key);
      }
    }
    this.lastFireAt = now;
    this.arm();
  }

  get lastFire(): number | null {
    return this.lastFireAt;
  }

  // ---- heap with lazy deletion: stale entries (replaced or deleted keys) are skipped on the way out ----

  private isStale(e: Entry<K>): boolean {
    return this.live.get(e.key) !== e;
  }

  private dropStale(): void {
    while (this.heap.length > 0 && this.isStale(this.heap[0]!)) this.pop();
  }

  private compact(): void {
    if (this.heap.length > 64 && this.heap.length > 2 * this.live.size) {
      this.heap = [...this.live.values()];
      for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
    }
  }

  private less(a: Entry<K>, b: Entry<K>): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(e: Entry<K>): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      this.down(0);
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
