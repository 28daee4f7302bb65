/**
 * UTC offsets and their changes for IANA zones, from the ICU data inside Node (Intl).
 * Intl is slow (about a microsecond per call), so each zone's offset changes are worked out
 * once per calendar year and cached; offsetAt and the schedule then read the cache.
 */

export interface Transition {
  /** The first instant (epoch ms) at which the new offset applies. */
  at: number;
  /** Offset before, in minutes (local - UTC). */
  before: number;
  /** Offset from `at` on, in minutes. */
  after: number;
}

// Building a formatter costs ~50 µs; 10,000 specs name a handful of zones.
const validZones = new Map<string, boolean>();

export function isValidTimeZone(tz: string): boolean {
  if (typeof tz !== 'string' || tz === '') return false;
  const known = validZones.get(tz);
  if (known !== undefined) return known;
  let ok: boolean;
  try {
    // Intl.supportedValuesOf('timeZone') omits "UTC", so ask the formatter instead.
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    ok = true;
  } catch {
    ok = false;
  }
  if (validZones.size < 1000) validZones.set(tz, ok);
  return ok;
}

export function systemTimeZone(): string {
  return new Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone: tz,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      throw new RangeError(`unknown time zone "${tz}" (use an IANA name such as Europe/Zurich, or UTC)`);
    }
    formatters.set(tz, f);
  }
  return f;
}

// format() is about three times faster than formatToParts(); en-US with these options is
// stable: "3/29/2026, 03:00:00".
const EN_US = /^(\d+)\/(\d+)\/(\d+),? (\d+):(\d+):(\d+)$/;

/** Offset in ms straight from Intl, at whole-second resolution. */
function intlOffsetMs(tz: string, instant: number): number {
  const at = Math.floor(instant / 1000) * 1000;
  const f = formatterFor(tz);
  const m = EN_US.exec(f.format(at));
  let y: number, mo: number, d: number, h: number, mi: number, s: number;
  if (m) {
    [mo, d, y, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as
      [number, number, number, number, number, number];
  } else {
    const parts: Record<string, number> = {};
    for (const p of f.formatToParts(at)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
    y = parts['year'] ?? 0; mo = parts['month'] ?? 1; d = parts['day'] ?? 1;
    h = parts['hour'] ?? 0; mi = parts['minute'] ?? 0; s = parts['second'] ?? 0;
  }
  const local = new Date(Date.UTC(2000, mo - 1, d, h % 24, mi, s));
  local.setUTCFullYear(y); // Date.UTC maps years 0-99 to 1900-1999
  return local.getTime() - at;
}

interface YearTable {
  /** Offset (ms) in force at the first instant of the year (UTC). */
  startOffsetMs: number;
  /** Changes with start < at <= end, where start/end are Jan 1 of this and the next year. */
  transitions: Transition[];
}

const tables = new Map<string, Map<number, YearTable>>();
const DAY_MS = 86_400_000;

function yearStart(year: number): number {
  const d = new Date(Date.UTC(2000, 0, 1));
  d.setUTCFullYear(year);
  return d.getTime();
}

function buildYear(tz: string, year: number): YearTable {
  const start = yearStart(year);
  const end = yearStart(year + 1);
  const startOffsetMs = intlOffsetMs(tz, start);
  const transitions: Transition[] = [];
  let prevAt = start;
  let prevOff = startOffsetMs;
  // Offsets change at most a few times a year and never twice within a day in any zone
  // that matters here; the inner loop still copes with several changes in one sample gap.
  for (let p = Math.min(start + DAY_MS, end); ; p = Math.min(p + DAY_MS, end)) {
    const offP = intlOffsetMs(tz, p);
    while (offP !== prevOff) {
      let lo = prevAt;
      let hi = p;
      let offHi = offP;
      while (hi - lo > 1000) {
        const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
        const offMid = intlOffsetMs(tz, mid);
        if (offMid === prevOff) {
          lo = mid;
        } else {
          hi = mid;
          offHi = offMid;
        }
      }
      transitions.push({ at: hi, before: prevOff / 60_000, after: offHi / 60_000 });
      prevAt = hi;
      prevOff = offHi;
    }
    prevAt = p;
    if (p >= end) break;
  }
  return { startOffsetMs, transitions };
}

function yearTable(tz: string, year: number): YearTable {
  let zone = tables.get(tz);
  if (!zone) {
    formatterFor(tz); // fail early with a clear message for an unknown zone
    zone = new Map();
    tables.set(tz, zone);
  }
  let t = zone.get(year);
  if (!t) {
    t = buildYear(tz, year);
    zone.set(year, t);
  }
  return t;
}

function utcYear(instant: number): number {
  return new Date(instant).getUTCFullYear();
}

/** Offset in ms (local - UTC) at the instant. */
export function offsetMsAt(tz: string, instant: number): number {
  const table = yearTable(tz, utcYear(instant));
  let off = table.startOffsetMs;
  for (const tr of table.transitions) {
    if (tr.at > instant) break;
    off = tr.after * 60_000;
  }
  return off;
}

/** Offset in minutes (local - UTC) at the instant, e.g. 120 for CEST. */
export function offsetAt(tz: string, instant: number): number {
  return offsetMsAt(tz, instant) / 60_000;
}

/** Offset changes with from < at <= to, in order. */
export function transitionsBetween(tz: string, from: number, to: number): Transition[] {
  const out: Transition[] = [];
  if (!(to > from)) return out;
  // A change exactly on Jan 1 00:00Z sits in the previous year's table, but then at <= from.
  for (let y = utcYear(from), last = utcYear(to); y <= last; y++) {
    for (const tr of yearTable(tz, y).transitions) {
      if (tr.at > from && tr.at <= to) out.push(tr);
    }
  }
  return out;
}

/** The first offset change with from < at <= to, or null. */
export function firstTransitionBetween(tz: string, from: number, to: number): Transition | null {
  if (!(to > from)) return null;
  for (let y = utcYear(from), last = utcYear(to); y <= last; y++) {
    for (const tr of yearTable(tz, y).transitions) {
      if (tr.at > from && tr.at <= to) return tr;
    }
  }
  return null;
}

/** The last offset change with from < at <= to, or null. */
export function lastTransitionBetween(tz: string, from: number, to: number): Transition | null {
  if (!(to > from)) return null;
  for (let y = utcYear(to), first = utcYear(from); y >= first; y--) {
    const trs = yearTable(tz, y).transitions;
    for (let i = trs.length - 1; i >= 0; i--) {
      const tr = trs[i]!;
      if (tr.at > from && tr.at <= to) return tr;
    }
  }
  return null;
}
