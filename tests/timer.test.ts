// Pure deadline arithmetic: fake timers are allowed here (and only here).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeadlineTimer } from '../src/timer.js';

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
