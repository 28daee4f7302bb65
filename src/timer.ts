// One timer for many deadlines: a min-heap of (deadline, key) and a single setTimeout armed to
// the earliest. Idle is free — nothing wakes up until something is due — and each change is
// O(log n), so a hundred or ten thousand jobs cost the same per deadline.

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

// setTimeout takes a signed 32-bit delay; longer waits are re-armed when the clamp expires.
const MAX_DELAY = 2 ** 31 - 1;

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

  constructor(
    private readonly onDue: (key: K, at: number) => void,
    private readonly clock: Clock = systemClock,
    private readonly onError: (err: unknown, key: K) => void = () => {},
  ) {}

  get size(): number {
    return this.live.size;
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
    return performance.now() - this.armedMono <= this.armedDelay + slackMs;
  }

  stop(): void {
    this.stopped = true;
    if (this.handle) clearTimeout(this.handle);
    this.handle = null;
    this.armedFor = null;
  }

  start(): void {
    this.stopped = false;
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
    const delay = Math.min(Math.max(0, top.at - this.clock.now()), MAX_DELAY);
    this.armedMono = performance.now();
    this.armedDelay = delay;
    this.handle = setTimeout(() => this.fire(), delay);
  }

  private fire(): void {
    this.handle = null;
    this.armedFor = null;
    const now = this.clock.now();
    // Node may fire a millisecond early relative to Date.now(); that deadline is due.
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
