// The job page's chart: how long each of the job's last runs took, over time. Drawn here as inline
// SVG (no library, nothing fetched; the Content-Security-Policy allows no inline style, so every
// colour comes from classes in style.css, and so from its light and dark variables). chartModel
// is pure (runs in, marks and axes out) and tested on its own; chartSvg only writes it down.
//
// The expected window: the watchdog has no rule of a typical duration (src/watch judges a run only
// by its `timeout`: past it the run is stopped and `hung` is raised). So the chart draws the two
// figures the job has: its timeout as a line (the limit the watchdog enforces) with the band below
// it shaded, and the median of its ok runs in the chart as a dashed line (what it usually takes).
import { formatInstant, readableTime } from '../schedule/instants.js';
import type { RunBrief } from '../store/store.js';
import { runTone, toneCounts, type Tone } from '../report/tones.js';
import { html, type Html } from './html.js';

/** Runs the job page charts. */
export const CHART_RUNS = 200;

/** The drawing's own units (viewBox); it is scaled to the page's width. */
export const CHART = { width: 400, height: 230, left: 46, right: 10, top: 22, bottom: 36 } as const;
/** Marks keep this far from the plot's left and right edges, so a whole dot shows at either end. */
export const INSET = 6;
const PLOT_W = CHART.width - CHART.left - CHART.right - 2 * INSET;
const PLOT_H = CHART.height - CHART.top - CHART.bottom;

export interface ChartMark {
  id: number;
  /** Centre, in viewBox units. */
  cx: number;
  cy: number;
  tone: Tone;
  /** ok, failed, … or running. */
  outcome: string;
  /** How long it took (so far, while running), in ms. */
  durationMs: number;
  /** When it started (created, when it never started). */
  at: number;
  /** "#12 ok · 3.1 s · 2026-12-04 23:41 +01:00": the mark's tooltip. */
  label: string;
}

export interface ChartTick {
  /** Position along its axis, in viewBox units. */
  at: number;
  label: string;
}

export interface ChartModel {
  marks: ChartMark[];
  xTicks: ChartTick[];
  yTicks: ChartTick[];
  /** The top of the y axis, in ms. */
  yMaxMs: number;
  /** The median duration of the ok runs (null without any), and its y. */
  medianMs: number | null;
  medianY: number | null;
  /** The job's timeout and its y; y is null when the timeout is above the chart (runs far shorter). */
  timeoutMs: number;
  timeoutY: number | null;
  /** The shaded band of durations within the timeout, from y to the axis; null when the timeout is above the chart. */
  bandTop: number | null;
  /** "200 runs: 190 ok, 6 failed, 4 wrong; median 12 s". */
  summary: string;
}

/** "850 ms", "12 s", "4.5 min", "2 h": a duration on an axis or in a summary. */
export function durationLabel(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${round1(ms / 1000)} s`;
  if (ms < 3_600_000) return `${round1(ms / 60_000)} min`;
  return `${round1(ms / 3_600_000)} h`;
}

const round1 = (x: number): string => String(x >= 10 ? Math.round(x) : Math.round(x * 10) / 10);

/** Tops of the y axis: the first one at or above the longest run. */
const NICE_MS = [1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800].map(
  (s) => s * 1000,
);

function niceTop(ms: number): number {
  return NICE_MS.find((n) => n >= ms) ?? Math.ceil(ms / 86_400_000) * 86_400_000;
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const r2 = (x: number): number => Math.round(x * 100) / 100;

/**
 * The chart of `runs` (newest first, as the store gives them): one mark per run, oldest on the
 * left; x = when it started, y = how long it took (a running run: how long so far; a run that never
 * started: 0). The y axis reaches the longest run, and the timeout when that is near (within a
 * quarter above it); a timeout far above the runs is said, not drawn.
 */
export function chartModel(runs: RunBrief[], o: { now: number; timeoutMs: number; tz: string }): ChartModel {
  const points = [...runs].reverse().map((r) => {
    const at = r.started_at ?? r.created_at;
    const running = r.ended_at === null;
    const durationMs = running ? (r.started_at !== null ? Math.max(0, o.now - r.started_at) : 0) : Math.max(0, r.duration_ms ?? 0);
    return { r, at, durationMs, outcome: r.outcome ?? 'running' };
  });
  const okDurations = points.filter((p) => p.r.outcome === 'ok' && p.r.duration_ms !== null).map((p) => p.durationMs);
  const medianMs = median(okDurations);
  const longest = Math.max(1000, ...points.map((p) => p.durationMs));
  const yMaxMs = niceTop(o.timeoutMs <= longest * 1.25 ? Math.max(longest, o.timeoutMs) : longest);
  const y = (ms: number): number => r2(CHART.top + PLOT_H - (Math.min(ms, yMaxMs) / yMaxMs) * PLOT_H);

  let xMin = Math.min(...points.map((p) => p.at));
  let xMax = Math.max(...points.map((p) => p.at));
  if (points.length === 0) [xMin, xMax] = [o.now - 3_600_000, o.now];
  // One run, or runs all at one instant: that instant in the middle.
  if (xMax === xMin) [xMin, xMax] = [xMin - 60_000, xMax + 60_000];
  const x = (t: number): number => r2(CHART.left + INSET + ((t - xMin) / (xMax - xMin)) * PLOT_W);

  const marks: ChartMark[] = points.map((p) => ({
    id: p.r.id,
    cx: x(p.at),
    cy: y(p.durationMs),
    tone: runTone(p.r.outcome),
    outcome: p.outcome,
    durationMs: p.durationMs,
    at: p.at,
    label: `#${p.r.id} ${p.outcome}${p.r.ended_at === null ? ' (so far)' : ''} · ${durationLabel(p.durationMs)} · ${readableTime(p.at, o.tz)}`,
  }));

  // Times on the x axis in the job's zone: seconds within a few minutes, hours within a day, dates beyond.
  const span = xMax - xMin;
  const timeLabel = (t: number): string => {
    const s = formatInstant(t, o.tz);
    return span <= 600_000 ? s.slice(11, 19) : span <= 86_400_000 ? s.slice(11, 16) : s.slice(5, 10);
  };
  const xTicks = [xMin, (xMin + xMax) / 2, xMax].map((t) => ({ at: x(t), label: timeLabel(t) }));
  const yTicks = [0, yMaxMs / 2, yMaxMs].map((ms) => ({ at: y(ms), label: durationLabel(ms) }));

  const counts = runs.length
    ? `${runs.length} ${runs.length === 1 ? 'run' : 'runs'}: ${toneCounts(runs.map((r) => r.outcome))}`
    : 'no runs yet';
  const summary = `${counts}${medianMs !== null ? `; median ${durationLabel(medianMs)}` : ''}`;
  return {
    marks,
    xTicks,
    yTicks,
    yMaxMs,
    medianMs,
    medianY: medianMs !== null ? y(medianMs) : null,
    timeoutMs: o.timeoutMs,
    timeoutY: o.timeoutMs <= yMaxMs ? y(o.timeoutMs) : null,
    bandTop: o.timeoutMs <= yMaxMs ? y(o.timeoutMs) : null,
    summary,
  };
}

/** The chart as inline SVG with its legend; `id` names its title for aria-labelledby. */
export function chartSvg(m: ChartModel, tz: string, id = 'chart'): Html {
  const { left, top, width, height, right, bottom } = CHART;
  const x0 = left;
  const x1 = width - right;
  const yAxis = height - bottom;
  const r = m.marks.length > 60 ? 3 : 4;
  const anchor = (i: number, n: number): string => (i === 0 ? 'start' : i === n - 1 ? 'end' : 'middle');
  return html`<figure class="chart-figure">
    <svg class="chart" id="${id}" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="${id}-title" data-y-max="${m.yMaxMs}">
      <title id="${id}-title">${m.summary}</title>
      ${m.bandTop !== null ? html`<rect class="band" x="${x0}" y="${m.bandTop}" width="${x1 - x0}" height="${r2(yAxis - m.bandTop)}"></rect>` : ''}
      <path class="axis" d="M${x0} ${top}V${yAxis}H${x1}"></path>
      ${m.yTicks.map((t) => html`<text x="${x0 - 4}" y="${t.at + 4}" text-anchor="end">${t.label}</text>`)}
      ${m.xTicks.map((t, i) => html`<text x="${t.at}" y="${yAxis + 14}" text-anchor="${anchor(i, m.xTicks.length)}">${t.label}</text>`)}
      <text x="${(x0 + x1) / 2}" y="${height - 4}" text-anchor="middle">start time (${tz})</text>
      <text x="2" y="12">duration</text>
      ${m.timeoutY !== null ? html`<path class="limit" d="M${x0} ${m.timeoutY}H${x1}"></path>` : ''}
      ${m.medianY !== null ? html`<path class="median" d="M${x0} ${m.medianY}H${x1}"></path>` : ''}
      ${m.marks.map(
        (k) =>
          html`<circle class="mark ${k.tone}" data-run="${k.id}" data-outcome="${k.outcome}" cx="${k.cx}" cy="${k.cy}" r="${r}"
            ><title>${k.label}</title></circle
          >`,
      )}
    </svg>
    <figcaption>
      <ul class="legend">
        <li><span class="key ok"></span>ok</li>
        <li><span class="key bad"></span>failed</li>
        <li><span class="key warn"></span>wrong result</li>
        <li><span class="key running"></span>running</li>
        <li><span class="key"></span>skipped or stopped</li>
        ${m.medianMs !== null ? html`<li><span class="key median"></span>median of ok runs: ${durationLabel(m.medianMs)}</li>` : ''}
        <li>
          <span class="key limit"></span>timeout:
          ${durationLabel(m.timeoutMs)}${m.timeoutY === null ? ' (far above these runs)' : '; shaded: within it'}
        </li>
      </ul>
    </figcaption>
  </figure>`;
}
