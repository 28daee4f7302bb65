// Pure deadline arithmetic: fake timers are allowed here (and only here).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CHECK_MS, clockWatch, DeadlineTimer, type ClockJump } from '../../../src/schedule/timer.js';
import { type Clock } from '../../../src/clock.js';

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

const clock = { now: () => Date.now() };

describe('DeadlineTimer', () => {
  it('arms one timer to the earliest deadline and fires keys in deadline order', () => {
    const fired: Array<[string, number]> = [];
    const t = new DeadlineTimer<string>((k, at) => fired.push([k, at]), clock);
    t.start();
    t.set('c', 1_003_000);
    t.set('a', 1_001_000);
    t.set('b', 1_002_000);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(2_500);
    expect(fired).toEqual([
      ['a', 1_001_000],
      ['b', 1_002_000],
    ]);
    vi.advanceTimersByTime(1_000);
    expect(fired.map((f) => f[0])).toEqual(['a', 'b', 'c']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('no timer is pending when nothing is due; replacing and deleting keys re-arms', () => {
    const fired: string[] = [];
    const t = new DeadlineTimer<string>((k) => fired.push(k), clock);
    t.start();
    expect(vi.getTimerCount()).toBe(0);
    t.set('x', 1_005_000);
    t.set('x', 1_010_000); // replaced: the old deadline must not fire
    vi.advanceTimersByTime(6_000);
    expect(fired).toEqual([]);
    t.delete('x');
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(fired).toEqual([]);
  });

  it('a deadline further away than setTimeout allows (24.8 days) still fires on time', () => {
    const fired: number[] = [];
    const t = new DeadlineTimer<string>((_k, at) => fired.push(Date.now() - at), clock);
    t.start();
    const at = Date.now() + 40 * 86_400_000;
    t.set('far', at);
    vi.advanceTimersByTime(40 * 86_400_000 - 1);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual([0]);
  });

  it('a callback that throws is reported and does not stop the others', () => {
    const errors: unknown[] = [];
    const fired: string[] = [];
    const t = new DeadlineTimer<string>(
      (k) => {
        if (k === 'bad') throw new Error('boom');
        fired.push(k);
      },
      clock,
      (err) => errors.push(err),
    );
    t.start();
    t.set('bad', 1_000_100);
    t.set('good', 1_000_100);
    vi.advanceTimersByTime(200);
    expect(fired).toEqual(['good']);
    expect(errors).toHaveLength(1);
  });

  it('with 10,000 keys the heap stays compact under churn', () => {
    const t = new DeadlineTimer<number>(() => {}, clock);
    t.start();
    for (let i = 0; i < 10_000; i++) t.set(i, 2_000_000 + i);
    for (let r = 0; r < 5; r++) for (let i = 0; i < 10_000; i++) t.set(i, 3_000_000 + i * 7 + r);
    expect(t.size).toBe(10_000);
    expect(t.peek()).toEqual({ key: 0, at: 3_000_004 });
    expect(vi.getTimerCount()).toBe(1);
  });
});

describe('DeadlineTimer across steps of the wall clock', () => {
  // The wall clock is the faked Date plus a step the test sets; the monotonic clock (the faked
  // performance.now) knows nothing of the step, as on a real machine.
  function steppingClock(): { clock: Clock; step: (ms: number) => void } {
    let offset = 0;
    return { clock: { now: () => Date.now() + offset }, step: (ms) => (offset += ms) };
  }
  const HOUR = 3_600_000;
  const DAY = 24 * HOUR;

  it('a forward step is noticed when a timer fires; waits move with the clock (default policy)', () => {
    const { clock, step } = steppingClock();
    const jumps: ClockJump[] = [];
    clockWatch(clock).onJump((j) => jumps.push(j));
    const fired: Array<[string, number]> = [];
    const t = new DeadlineTimer<string>((k, at) => fired.push([k, clock.now() - at]), clock);
    t.set('soon', clock.now() + 1_000);
    t.set('later', clock.now() + 10_000);
    step(2 * HOUR);
    vi.advanceTimersByTime(999);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    // Both deadlines moved by the step: 'soon' fires on time in real time, 'later' still waits.
    expect(fired).toEqual([['soon', 0]]);
    expect(jumps).toHaveLength(1);
    expect(jumps[0]!.deltaMs).toBe(2 * HOUR);
    vi.advanceTimersByTime(9_000);
    expect(fired).toEqual([
      ['soon', 0],
      ['later', 0],
    ]);
    expect(jumps).toHaveLength(1);
    t.stop();
  });

  it("'wall' policy: deadlines keep their wall time, so a forward step makes them due at once", () => {
    const { clock, step } = steppingClock();
    const fired: string[] = [];
    const t = new DeadlineTimer<string>((k) => fired.push(k), clock, undefined, 'wall');
    t.set('a', clock.now() + 5_000);
    t.set('b', clock.now() + HOUR);
    t.set('c', clock.now() + 3 * HOUR);
    step(2 * HOUR);
    vi.advanceTimersByTime(5_000);
    expect(fired).toEqual(['a', 'b']);
    t.stop();
  });

  it('an idle timer notices a backward step within CHECK_MS and its owner re-plans from the new time', () => {
    const { clock, step } = steppingClock();
    const fired: string[] = [];
    const seen: number[] = [];
    const t: DeadlineTimer<string> = new DeadlineTimer<string>(
      (k) => fired.push(k),
      clock,
      undefined,
      (j) => {
        seen.push(j.deltaMs);
        // A calendar owner works its next instant out again from the new wall time.
        t.set('next', clock.now() + 2_000);
      },
    );
    t.set('next', clock.now() + 10 * HOUR);
    vi.advanceTimersByTime(1_000);
    step(-DAY);
    vi.advanceTimersByTime(CHECK_MS - 1_001);
    expect(seen).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(seen).toEqual([-DAY]);
    vi.advanceTimersByTime(2_000);
    // Without the re-plan it would have waited 10 h + 1 day.
    expect(fired).toEqual(['next']);
    t.stop();
  });

  it('one step is reported once, to every running timer on that clock, before anything due fires', () => {
    const { clock, step } = steppingClock();
    const order: string[] = [];
    clockWatch(clock).onJump(() => order.push('listener'));
    const a = new DeadlineTimer<string>(
      (k) => order.push(`a fired ${k}`),
      clock,
      undefined,
      () => order.push('a re-plans'),
    );
    const b = new DeadlineTimer<string>(
      (k) => order.push(`b fired ${k}`),
      clock,
      undefined,
      () => order.push('b re-plans'),
    );
    const stopped = new DeadlineTimer<string>(
      () => {},
      clock,
      undefined,
      () => order.push('stopped timer re-plans'),
    );
    stopped.stop();
    a.set('x', clock.now() + 1_000);
    b.set('y', clock.now() + 20 * HOUR);
    step(3 * HOUR);
    vi.advanceTimersByTime(1_000);
    expect(order).toEqual(['listener', 'a re-plans', 'b re-plans', 'a fired x']);
    a.stop();
    b.stop();
  });

  it('slow drift between the clocks (NTP slewing) is not a step', () => {
    const { clock, step } = steppingClock();
    const jumps: ClockJump[] = [];
    clockWatch(clock).onJump((j) => jumps.push(j));
    const t = new DeadlineTimer<string>(() => {}, clock);
    t.set('far', clock.now() + DAY);
    // 0.5 ms per second, the most NTP slews, for ten hours, checked once a minute.
    for (let i = 0; i < 600; i++) {
      step(30);
      vi.advanceTimersByTime(CHECK_MS);
    }
    expect(jumps).toEqual([]);
    expect(t.checkClock()).toBeNull();
    step(-1_500);
    expect(t.checkClock()?.deltaMs).toBe(-1_500);
    expect(jumps).toHaveLength(1);
    t.stop();
  });
});
