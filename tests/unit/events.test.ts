import { describe, expect, it } from 'vitest';
import { Emitter } from '../../src/events.js';

type Map = { tick: number; done: { ok: boolean } };

describe('Emitter', () => {
  it('calls listeners in the order they subscribed, with the payload', () => {
    const e = new Emitter<Map>();
    const heard: string[] = [];
    e.on('tick', (n) => heard.push(`a${n}`));
    e.on('tick', (n) => heard.push(`b${n}`));
    e.on('done', (d) => heard.push(`done ${d.ok}`));
    e.emit('tick', 1);
    e.emit('done', { ok: true });
    expect(heard).toEqual(['a1', 'b1', 'done true']);
  });

  it('a listener that throws is reported with the event, and neither the others nor the emitter see it', () => {
    const reports: Array<{ err: unknown; event: string }> = [];
    const e = new Emitter<Map>((err, event) => reports.push({ err, event }));
    const heard: number[] = [];
    e.on('tick', () => {
      throw new Error('listener broke');
    });
    e.on('tick', (n) => heard.push(n));
    expect(() => e.emit('tick', 7)).not.toThrow();
    expect(heard).toEqual([7]);
    expect(reports).toHaveLength(1);
    expect(reports[0]!.event).toBe('tick');
    expect((reports[0]!.err as Error).message).toBe('listener broke');
  });

  it('a report that throws too is contained', () => {
    const e = new Emitter<Map>(() => {
      throw new Error('logger broke');
    });
    const heard: number[] = [];
    e.on('tick', () => {
      throw new Error('listener broke');
    });
    e.on('tick', (n) => heard.push(n));
    expect(() => e.emit('tick', 1)).not.toThrow();
    expect(heard).toEqual([1]);
  });

  it('on() returns the way to unsubscribe; one removed during a delivery still gets that one, not the next', () => {
    const e = new Emitter<Map>();
    const heard: string[] = [];
    let offB = (): void => {};
    const offA = e.on('tick', (n) => {
      heard.push(`a${n}`);
      offB();
    });
    offB = e.on('tick', (n) => heard.push(`b${n}`));
    e.emit('tick', 1);
    e.emit('tick', 2);
    offA();
    e.emit('tick', 3);
    expect(heard).toEqual(['a1', 'b1', 'a2']);
  });
});
