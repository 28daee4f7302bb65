// The job page's chart as a pure function: runs in, marks and axes out (no store, no browser).
import { describe, expect, it } from 'vitest';
import { CHART, chartModel, chartSvg, durationLabel, INSET } from '../../../src/web/chart.js';
import type { RunBrief } from '../../../src/store/store.js';

const NOW = Date.parse('2026-12-05T12:00:00Z');
const MIN = 60_000;
const TOP = CHART.top;
const BOTTOM = CHART.height - CHART.bottom;
const LEFT = CHART.left + INSET;
const RIGHT = CHART.width - CHART.right - INSET;

let nextId = 1;
/** A run that started `ago` ms before NOW and took `ms` (null: still running). Newest first is the caller's order. */
function run(ago: number, ms: number | null, outcome: RunBrief['outcome'] = 'ok'): RunBrief {
  const started = NOW - ago;
  return {
    id: nextId++,
    job: 'j',
    trigger: 'schedule',
    outcome: ms === null ? null : outcome,
    created_at: started,
    started_at: started,
    ended_at: ms === null ? null : started + ms,
    duration_ms: ms,
  };
}
const newestFirst = (runs: RunBrief[]): RunBrief[] => [...runs].sort((a, b) => b.id - a.id);

describe('chartModel', () => {
  it('no runs: no marks, a summary that says so, axes still drawn', () => {
    const m = chartModel([], { now: NOW, timeoutMs: 10 * MIN, tz: 'UTC' });
    expect(m.marks).toEqual([]);
    expect(m.summary).toBe('no runs yet');
    expect(m.medianMs).toBeNull();
    expect(m.medianY).toBeNull();
    expect(m.xTicks).toHaveLength(3);
    expect(m.yTicks.map((t) => t.label)).toEqual(['0 ms', '500 ms', '1 s']);
    const svg = chartSvg(m, 'UTC').text;
    expect(svg).not.toContain('<circle');
  });

  it('one run: one mark in the middle of the x axis, its height its duration', () => {
    const r = run(5 * MIN, 30_000);
    const m = chartModel([r], { now: NOW, timeoutMs: 10 * MIN, tz: 'Europe/Zurich' });
    expect(m.marks).toHaveLength(1);
    const [k] = m.marks;
    expect(k!.cx).toBeCloseTo((LEFT + RIGHT) / 2, 1);
    expect(m.yMaxMs).toBe(30_000);
    expect(k!.cy).toBe(TOP); // the longest run reaches the top
    expect(k!.tone).toBe('ok');
    expect(m.summary).toBe('1 run: 1 ok; median 30 s');
    // the timeout (10 min) is far above a 30 s run: said, not drawn
    expect(m.timeoutY).toBeNull();
    expect(m.bandTop).toBeNull();
    // a span of minutes: times with seconds, in the job's zone
    expect(m.xTicks.map((t) => t.label)).toEqual(['12:54:00', '12:55:00', '12:56:00']);
    expect(k!.label).toBe(`#${r.id} ok · 30 s · 2026-12-05 12:55 +01:00`);
  });

  it('all equal durations: one height, the axis above them, the median on them; oldest on the left', () => {
    const runs = newestFirst([run(30 * MIN, 4000), run(20 * MIN, 4000), run(10 * MIN, 4000)]);
    const m = chartModel(runs, { now: NOW, timeoutMs: 5000, tz: 'UTC' });
    expect(new Set(m.marks.map((k) => k.cy)).size).toBe(1);
    expect(m.marks.map((k) => k.id)).toEqual([...runs].reverse().map((r) => r.id));
    expect(m.marks[0]!.cx).toBe(LEFT);
    expect(m.marks[2]!.cx).toBe(RIGHT);
    expect(m.medianMs).toBe(4000);
    expect(m.medianY).toBe(m.marks[0]!.cy);
    // a timeout near the runs is drawn (the axis reaches it), above them
    expect(m.yMaxMs).toBe(5000);
    expect(m.timeoutY).toBe(TOP);
    expect(m.bandTop).toBe(TOP);
    expect(m.marks[0]!.cy).toBeGreaterThan(m.timeoutY!);
    expect(m.marks[0]!.cy).toBeLessThan(BOTTOM);
    expect(m.xTicks.map((t) => t.label)).toEqual(['11:30', '11:40', '11:50']);
  });

  it('a run still running is charted with how long it has run so far, in its own tone', () => {
    const runs = newestFirst([run(10 * MIN, 2000), run(9 * MIN, 3000, 'failed'), run(8 * MIN, 1000, 'wrong'), run(45_000, null)]);
    const m = chartModel(runs, { now: NOW, timeoutMs: MIN, tz: 'UTC' });
    const running = m.marks.find((k) => k.outcome === 'running')!;
    expect(running.tone).toBe('running');
    expect(running.durationMs).toBe(45_000);
    expect(running.label).toContain('running (so far) · 45 s');
    expect(m.marks.map((k) => k.tone)).toEqual(['ok', 'bad', 'warn', 'running']);
    // the axis reaches the timeout (1 min, near the 45 s run); the median is of ok runs only
    expect(m.yMaxMs).toBe(MIN);
    expect(m.medianMs).toBe(2000);
    expect(m.summary).toBe('4 runs: 1 ok, 1 failed, 1 wrong, 1 running; median 2 s');
    // longer runs are higher (smaller y)
    const y = (o: string) => m.marks.find((k) => k.outcome === o)!.cy;
    expect(y('running')).toBeLessThan(y('failed'));
    expect(y('failed')).toBeLessThan(y('ok'));
    expect(y('ok')).toBeLessThan(y('wrong'));
  });

  it('skipped runs (0 ms) sit on the axis; a run that never started is at its creation; runs a year apart get dates', () => {
    const skipped: RunBrief = { ...run(400 * 86_400_000, 0, 'skipped-overlap') };
    const never: RunBrief = { ...run(MIN, null), started_at: null };
    const m = chartModel(newestFirst([skipped, never]), { now: NOW, timeoutMs: MIN, tz: 'UTC' });
    expect(m.marks.map((k) => [k.tone, k.cy])).toEqual([
      ['idle', BOTTOM],
      ['running', BOTTOM],
    ]);
    expect(m.marks[1]!.at).toBe(never.created_at);
    expect(m.xTicks[0]!.label).toMatch(/^\d\d-\d\d$/);
    expect(m.summary).toBe('2 runs: 1 running, 1 skipped or stopped');
  });

  it('200 runs: as many marks, inside the plot; the SVG has a title with the summary and a class per tone', () => {
    const outcomes = ['ok', 'ok', 'ok', 'failed', 'wrong', 'timeout'] as const;
    const runs = newestFirst(Array.from({ length: 200 }, (_, i) => run((200 - i) * MIN, 1000 + ((i * 7919) % 20_000), outcomes[i % 6])));
    const m = chartModel(runs, { now: NOW, timeoutMs: 15 * MIN, tz: 'UTC' });
    expect(m.marks).toHaveLength(200);
    for (const k of m.marks) {
      expect(k.cx).toBeGreaterThanOrEqual(LEFT);
      expect(k.cx).toBeLessThanOrEqual(RIGHT);
      expect(k.cy).toBeGreaterThanOrEqual(TOP);
      expect(k.cy).toBeLessThanOrEqual(BOTTOM);
    }
    const svg = chartSvg(m, 'UTC').text;
    expect(svg.match(/<circle /g)).toHaveLength(200);
    expect(svg).toContain('role="img"');
    expect(svg).toMatch(/<title id="chart-title">200 runs: 101 ok, 66 failed, 33 wrong; median \d+(\.\d)? s<\/title>/);
    for (const tone of ['ok', 'bad', 'warn']) expect(svg).toContain(`class="mark ${tone}"`);
    expect(svg).not.toMatch(/style=/);
  });

  it('durations read as a person says them', () => {
    expect([850, 1000, 12_345, 90_000, 45 * MIN, 3 * 60 * MIN].map(durationLabel)).toEqual([
      '850 ms',
      '1 s',
      '12 s',
      '1.5 min',
      '45 min',
      '3 h',
    ]);
  });
});
