#!/usr/bin/env node
// Draws an SVG bar chart for each CSV in bench/results/ (zero dependencies: plain string SVG).
//
//   node bench/chart.mjs                    every bench/results/*.csv -> bench/results/NAME.svg
//   node bench/chart.mjs a.csv b.csv        only these (each SVG is written next to its CSV)
//
// CSV convention (keep it this simple; other scripts write these files):
//
//   # title: Idle cost, 101 jobs, 600 s window         <- chart title (default: the file name)
//   # subtitle: 2 CPU, 3.8 GB, 2026-12-01 16:20 UTC     <- optional, one line under the title
//   # note: cron cannot express seconds                <- optional, any number, printed under the chart
//   # scale: log                                       <- optional: log axes (all values must be > 0)
//   tool,RSS tree [MB],RSS main [MB],CPU [ms],wakeups [count]
//   nightshift,61.2,58.0,118,302
//   cron,3.1,3.1,0,12
//   pm2,,,,                                            <- empty or non-numeric cells: "n/a" (e.g. skipped)
//
// - Lines starting with "#" are "# key: value" headers; blank lines are ignored.
// - The first non-comment line is the header row; first column = category (one group of bars per
//   row, e.g. the tool), every other column = one series. Fields may be double-quoted ("a,b").
// - A series' unit is written in square brackets at the end of its column name: "p99 [ms]".
//   Series that share a unit are drawn as grouped horizontal bars in one panel on one axis; each
//   distinct unit gets its own panel with its own axis (so MB and ms are never on the same scale).
//   A column without a unit shares the panel of the other unit-less columns.
// - Every bar is labelled with its value, so the chart can be read without the axis.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// A --quick run writes its CSVs and charts to bench/out/results-quick/ (gitignored), so that it
// never overwrites the committed figures of a full run in bench/results/.
export const RESULTS_DIR = process.argv.includes('--quick')
  ? join(dirname(fileURLToPath(import.meta.url)), 'out', 'results-quick')
  : join(dirname(fileURLToPath(import.meta.url)), 'results');

const COLORS = ['#3366cc', '#dc7633', '#2e8b57', '#8e44ad', '#c0392b', '#16a085', '#7f8c8d', '#b7950b'];
const FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"';

/** Splits one CSV line, honouring double quotes ("" inside quotes is a quote). */
function splitCsv(line) {
  const out = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out.map((s) => s.trim());
}

/** Parses the convention above: { meta: {title, subtitle, notes[], scale}, categories[], series[{name, unit, values[]}] }. */
export function parseCsv(text, fallbackTitle = '') {
  const meta = { title: fallbackTitle, subtitle: '', notes: [], scale: 'linear' };
  let header = null;
  const rows = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith('#')) {
      const m = /^#\s*([\w-]+)\s*:\s*(.*)$/.exec(line);
      if (!m) continue;
      const key = m[1].toLowerCase();
      if (key === 'note') meta.notes.push(m[2]);
      else if (key === 'title' || key === 'subtitle' || key === 'scale') meta[key] = m[2];
      continue;
    }
    const cells = splitCsv(line);
    if (!header) header = cells;
    else rows.push(cells);
  }
  if (!header || header.length < 2) throw new Error('needs a header row with a category column and at least one series column');
  const series = header.slice(1).map((col, i) => {
    const m = /^(.*?)\s*\[([^\]]*)\]\s*$/.exec(col);
    return {
      name: m ? m[1] : col,
      unit: m ? m[2] : '',
      values: rows.map((r) => {
        const v = r[i + 1];
        return v === undefined || v === '' || !Number.isFinite(Number(v)) ? null : Number(v);
      }),
    };
  });
  return { meta, categoryLabel: header[0], categories: rows.map((r) => r[0]), series };
}

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function fmt(v) {
  if (v === null) return 'n/a';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return String(Math.round(v));
  if (a >= 10) return String(Math.round(v * 10) / 10);
  if (a >= 1) return String(Math.round(v * 100) / 100);
  return String(Number(v.toPrecision(2)));
}

/** Round axis maximum and ticks (1, 2, 2.5, 5 × 10^k). */
function niceTicks(max) {
  if (!(max > 0)) return { top: 1, ticks: [0, 0.25, 0.5, 0.75, 1] };
  const rawStep = max / 5;
  const pow = 10 ** Math.floor(Math.log10(rawStep));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= rawStep);
  const top = Math.ceil(max / step) * step;
  const ticks = [];
  for (let t = 0; t <= top + step / 2; t += step) ticks.push(Number(t.toPrecision(12)));
  return { top, ticks };
}

function logTicks(min, max) {
  // A decade of room below the smallest value when it sits just above one (bars must not vanish).
  const lo = Math.floor(Math.log10(min / 2));
  const hi = Math.ceil(Math.log10(max));
  const ticks = [];
  for (let k = lo; k <= Math.max(hi, lo + 1); k++) ticks.push(10 ** k);
  return { lo: ticks[0], hi: ticks[ticks.length - 1], ticks };
}

/** Renders the parsed chart as an SVG string. */
export function renderSvg(chart) {
  const { meta, categories, series } = chart;
  const W = 960;
  const padL = 16;
  const labelW = Math.min(260, 20 + 7.2 * Math.max(...categories.map((c) => c.length), 4));
  const plotX = padL + labelW;
  const valueRoom = 70;
  const plotW = W - plotX - valueRoom - 16;
  const log = meta.scale === 'log';

  // One panel per unit, in column order.
  const units = [...new Set(series.map((s) => s.unit))];
  const panels = units.map((unit) => ({ unit, series: series.map((s, i) => ({ ...s, color: COLORS[i % COLORS.length] })).filter((s) => s.unit === unit) }));

  const barH = 16;
  const barGap = 3;
  const groupGap = 12;
  const parts = [];
  let y = 0;
  parts.push(`<text x="${W / 2}" y="${(y += 30)}" text-anchor="middle" font-size="19" font-weight="bold" ${FONT}>${esc(meta.title)}</text>`);
  if (meta.subtitle) parts.push(`<text x="${W / 2}" y="${(y += 22)}" text-anchor="middle" font-size="13" fill="#555" ${FONT}>${esc(meta.subtitle)}</text>`);
  y += 14;

  // Legend: every series once (colour + name + unit).
  let lx = plotX;
  let ly = y + 6;
  for (const [i, s] of series.entries()) {
    const label = `${s.name}${s.unit ? ` [${s.unit}]` : ''}`;
    const w = 26 + label.length * 7.2;
    if (lx + w > W - 10) {
      lx = plotX;
      ly += 20;
    }
    parts.push(`<rect x="${lx}" y="${ly}" width="14" height="14" fill="${COLORS[i % COLORS.length]}"/>`);
    parts.push(`<text x="${lx + 19}" y="${ly + 12}" font-size="13" ${FONT}>${esc(label)}</text>`);
    lx += w + 12;
  }
  y = ly + 30;

  for (const panel of panels) {
    const vals = panel.series.flatMap((s) => s.values).filter((v) => v !== null);
    const usable = log ? vals.filter((v) => v > 0) : vals;
    let scaleX;
    let tickList;
    if (log && usable.length) {
      const t = logTicks(Math.min(...usable), Math.max(...usable));
      const a = Math.log10(t.lo);
      const b = Math.log10(t.hi);
      scaleX = (v) => (v > 0 ? ((Math.log10(v) - a) / (b - a)) * plotW : 0);
      tickList = t.ticks;
    } else {
      const t = niceTicks(Math.max(0, ...vals));
      scaleX = (v) => (Math.max(0, v) / t.top) * plotW;
      tickList = t.ticks;
    }
    if (units.length > 1 || panel.unit) {
      // Series names when they fit on one line (the legend names them anyway), else the unit alone.
      const names = panel.series.map((s) => s.name).join(', ');
      const head = `${names.length * 8 <= W - plotX - 150 ? names : ''}${panel.unit ? (names.length * 8 <= W - plotX - 150 ? ` (${panel.unit})` : panel.unit) : ''}${log ? ', log scale' : ''}`;
      parts.push(`<text x="${plotX}" y="${y}" font-size="14" font-weight="bold" ${FONT}>${esc(head)}</text>`);
      y += 10;
    }
    const n = panel.series.length;
    const groupH = n * barH + (n - 1) * barGap;
    const top = y;
    const height = categories.length * (groupH + groupGap) + groupGap;
    // grid + tick labels
    for (const t of tickList) {
      const x = plotX + scaleX(t);
      parts.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + height}" stroke="#e3e3e3"/>`);
      parts.push(`<text x="${x}" y="${top + height + 14}" text-anchor="middle" font-size="11" fill="#666" ${FONT}>${esc(fmt(t))}</text>`);
    }
    let gy = top + groupGap;
    for (const [ci, cat] of categories.entries()) {
      parts.push(`<text x="${plotX - 8}" y="${gy + groupH / 2 + 5}" text-anchor="end" font-size="13" ${FONT}>${esc(cat)}</text>`);
      for (const [si, s] of panel.series.entries()) {
        const by = gy + si * (barH + barGap);
        const v = s.values[ci];
        if (v === null || (log && v <= 0)) {
          parts.push(`<text x="${plotX + 4}" y="${by + barH - 4}" font-size="11" fill="#999" ${FONT}>${v === null ? 'n/a' : `${esc(fmt(v))} (not on log axis)`}</text>`);
          continue;
        }
        const w = Math.max(1, scaleX(v));
        parts.push(`<rect x="${plotX}" y="${by}" width="${w.toFixed(1)}" height="${barH}" fill="${s.color}"><title>${esc(`${cat} — ${s.name}: ${v}${s.unit ? ` ${s.unit}` : ''}`)}</title></rect>`);
        parts.push(`<text x="${(plotX + w + 4).toFixed(1)}" y="${by + barH - 4}" font-size="11" ${FONT}>${esc(fmt(v))}</text>`);
      }
      gy += groupH + groupGap;
    }
    parts.push(`<line x1="${plotX}" y1="${top}" x2="${plotX}" y2="${top + height}" stroke="#444"/>`);
    y = top + height + 40;
  }
  // Notes wrap at about the chart's width (12 px text: ~6.6 px per character).
  const perLine = Math.floor((W - 2 * padL) / 6.6);
  for (const note of meta.notes) {
    let rest = note;
    while (rest) {
      let cut = rest.length <= perLine ? rest.length : rest.lastIndexOf(' ', perLine);
      if (cut <= 0) cut = Math.min(rest.length, perLine);
      parts.push(`<text x="${padL}" y="${y}" font-size="12" fill="#444" ${FONT}>${esc(rest.slice(0, cut))}</text>`);
      rest = rest.slice(cut).trimStart();
      y += 17;
    }
  }
  const H = Math.ceil(y + 8);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">\n<rect width="${W}" height="${H}" fill="#fff"/>\n${parts.join('\n')}\n</svg>\n`;
}

/** CSV file -> SVG file next to it; returns the SVG path. */
export function drawChart(csvPath) {
  const svgPath = csvPath.replace(/\.csv$/i, '') + '.svg';
  const chart = parseCsv(readFileSync(csvPath, 'utf8'), basename(csvPath, '.csv'));
  writeFileSync(svgPath, renderSvg(chart));
  return svgPath;
}

/** Draws every CSV of bench/results/; a broken CSV is reported and skipped, never fatal to the others. */
export function drawAll(dir = RESULTS_DIR) {
  let files = [];
  try {
    files = readdirSync(dir).filter((f) => f.toLowerCase().endsWith('.csv')).sort();
  } catch {
    return [];
  }
  const drawn = [];
  for (const f of files) {
    try {
      drawn.push(drawChart(join(dir, f)));
    } catch (err) {
      console.error(`chart: ${join(dir, f)}: ${err.message}`);
    }
  }
  return drawn;
}

/** Writes a CSV in the convention above (cells with commas or quotes are quoted). */
export function writeCsv(path, { title, subtitle, notes = [], scale }, header, rows) {
  const cell = (v) => {
    const s = v === null || v === undefined ? '' : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [];
  if (title) lines.push(`# title: ${title}`);
  if (subtitle) lines.push(`# subtitle: ${subtitle}`);
  if (scale) lines.push(`# scale: ${scale}`);
  for (const n of notes) lines.push(`# note: ${n}`);
  lines.push(header.map(cell).join(','));
  for (const r of rows) lines.push(r.map(cell).join(','));
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  let failed = false;
  const drawn = args.length
    ? args.flatMap((a) => {
        try {
          return [drawChart(a)];
        } catch (err) {
          console.error(`chart: ${a}: ${err.message}`);
          failed = true;
          return [];
        }
      })
    : drawAll();
  for (const p of drawn) console.log(`chart: ${p}`);
  if (!drawn.length && !failed) console.log(`chart: no CSV in ${RESULTS_DIR}`);
  process.exitCode = failed ? 1 : 0;
}
