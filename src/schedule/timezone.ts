/**
 * UTC offsets and their changes for IANA zones. The source is the system's tz database
 * (/usr/share/zoneinfo, or $TZDIR: the TZif files glibc reads), so that nightshift keeps the
 * same clock as cron, systemd and the jobs themselves, updated with the OS's tzdata package (read
 * when the daemon starts). The rule in a file's footer is applied by calendar year in UTC, as
 * glibc applies it. Intl
 * (the ICU data inside Node) is the fallback for a zone without a readable file. Not Intl alone:
 * its first use maps about 7 MB of ICU data into the daemon for good, a quarter of its idle
 * memory budget. Each zone's offset changes are worked out once per calendar year and cached;
 * offsetAt and the schedule read the cache.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

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
  let ok = tzifZone(tz) !== null;
  if (!ok) {
    try {
      // Intl.supportedValuesOf('timeZone') omits "UTC", so ask the formatter instead.
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
      ok = true;
    } catch {
      ok = false;
    }
  }
  if (validZones.size < 1000) validZones.set(tz, ok);
  return ok;
}

let systemZone: { tz: string | undefined; zone: string } | undefined;

/**
 * The machine's zone by name: $TZ when it names a zone (`Europe/Zurich`, `:Europe/Zurich` or a
 * path into the zoneinfo folder), else the zone /etc/localtime links to; otherwise (a POSIX
 * string in $TZ such as JST-9, /etc/localtime a copy rather than a link) Intl's answer, which
 * maps the ICU data after all. Worked out again when $TZ changes.
 */
export function systemTimeZone(): string {
  const tz = process.env['TZ'];
  if (systemZone && systemZone.tz === tz) return systemZone.zone;
  const fromPath = (p: string): string | undefined => (p.startsWith('/') ? /\/zoneinfo\/(.+)$/.exec(p)?.[1] : p);
  const candidates: Array<() => string | undefined> = [
    () => (tz === undefined ? undefined : fromPath(tz.replace(/^:/, ''))),
    () => (tz === undefined ? fromPath(readlinkSync('/etc/localtime')) : undefined),
  ];
  let zone: string | undefined;
  for (const c of candidates) {
    try {
      const name = c();
      if (name && tzifZone(name)) zone = name;
    } catch {
      // not this way
    }
    if (zone) break;
  }
  zone ??= new Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  systemZone = { tz, zone };
  return zone;
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
    [mo, d, y, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
  } else {
    const parts: Record<string, number> = {};
    for (const p of f.formatToParts(at)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
    y = parts['year'] ?? 0;
    mo = parts['month'] ?? 1;
    d = parts['day'] ?? 1;
    h = parts['hour'] ?? 0;
    mi = parts['minute'] ?? 0;
    s = parts['second'] ?? 0;
  }
  const local = new Date(Date.UTC(2000, mo - 1, d, h % 24, mi, s));
  local.setUTCFullYear(y); // Date.UTC maps years 0-99 to 1900-1999
  return local.getTime() - at;
}

export interface YearTable {
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
  const zone = tzifZone(tz);
  return zone ? zoneYear(zone, start, end) : intlYear(tz, start, end);
}

/** A year's table straight from the tz database: its transitions, and the rule's after the last. */
function zoneYear(zone: TzifZone, start: number, end: number): YearTable {
  const startOffsetMs = zoneOffsetMs(zone, start);
  const candidates = zone.times.filter((t) => t > start && t <= end);
  if (zone.rule) {
    const y = utcYear(start);
    for (const ry of [y - 1, y, y + 1]) {
      for (const t of ruleChanges(zone.rule, ry)) if (t > start && t <= end && t > (zone.times.at(-1) ?? -Infinity)) candidates.push(t);
    }
    candidates.sort((a, b) => a - b);
  }
  const transitions: Transition[] = [];
  let prev = startOffsetMs;
  for (const at of candidates) {
    const off = zoneOffsetMs(zone, at);
    // A TZif transition may change only the abbreviation or the DST flag; only offsets matter here.
    if (off !== prev) transitions.push({ at, before: prev / 60_000, after: off / 60_000 });
    prev = off;
  }
  return { startOffsetMs, transitions };
}

/** A year's table from Intl: sampled daily, each change found to the second by bisection. */
export function intlYear(tz: string, start: number, end: number): YearTable {
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
    if (!tzifZone(tz)) formatterFor(tz); // fail early with a clear message for an unknown zone
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

// ---- the tz database: TZif files (RFC 8536) and the POSIX TZ rule of their footer ----

interface PosixRule {
  /** Offsets in ms (local - UTC), standard and daylight-saving time. */
  std: number;
  dst: number;
  start: RuleDate;
  end: RuleDate;
}

/** A day of the year by one of POSIX's three forms, and the local time (s, may be negative or > 24 h) of the change. */
type RuleDate =
  | { kind: 'J'; day: number; time: number }
  | { kind: 'n'; day: number; time: number }
  | { kind: 'M'; month: number; week: number; weekday: number; time: number };

interface TzifZone {
  /** Transition instants (ms), ascending, and the offset (ms) from each on. */
  times: number[];
  offsets: number[];
  /** Offset before the first transition (RFC 8536: time type 0). */
  initial: number;
  /** After the last transition: the footer's rule, or null when the last offset stays. */
  rule: PosixRule | null;
  /** The footer's fixed offset when it names no daylight-saving time. */
  fixed: number | null;
}

// Read once per zone: like Intl before, a tzdata upgrade takes effect at the next start.
const TZDIR = process.env['TZDIR'] || '/usr/share/zoneinfo';
const zoneFiles = new Map<string, TzifZone | null>();
// IANA names: letters, digits and - + _ in /-separated parts; never a way out of the folder.
const ZONE_NAME = /^[A-Za-z0-9_+-]+(?:\/[A-Za-z0-9_+-]+)*$/;
// Files of the folder that are not zones of the IANA list (Intl refuses them too).
const NOT_A_ZONE = /^(?:posix|right)\/|^(?:posixrules|localtime|Factory)$/;

/** The zone's data from its TZif file, or null (no such zone file, unreadable, leap seconds, or malformed). */
function tzifZone(tz: string): TzifZone | null {
  let z = zoneFiles.get(tz);
  if (z !== undefined) return z;
  z = null;
  if (ZONE_NAME.test(tz) && !NOT_A_ZONE.test(tz) && tz.length < 100) {
    try {
      z = parseTzif(readFileSync(join(TZDIR, tz)));
    } catch {
      z = null;
    }
  }
  if (zoneFiles.size < 1000) zoneFiles.set(tz, z);
  return z;
}

/** A TZif file's zone, or null when the file is not one (or counts leap seconds, or is cut short). */
export function parseTzif(buf: Buffer): TzifZone | null {
  try {
    return readTzif(buf);
  } catch {
    return null; // a read past the end: the file is cut short
  }
}

function readTzif(buf: Buffer): TzifZone | null {
  if (buf.length < 44 || buf.toString('latin1', 0, 4) !== 'TZif') return null;
  const version = buf[4]!;
  const counts = (at: number): [number, number, number, number, number, number] =>
    [0, 1, 2, 3, 4, 5].map((i) => buf.readUInt32BE(at + 20 + 4 * i)) as [number, number, number, number, number, number];
  let [isut, isstd, leap, timecnt, typecnt, charcnt] = counts(0);
  let at = 44;
  let timeSize = 4;
  if (version >= 0x32) {
    // Skip the 32-bit block: the 64-bit one follows with its own header.
    at += timecnt * 4 + timecnt + typecnt * 6 + charcnt + leap * 8 + isstd + isut;
    if (buf.toString('latin1', at, at + 4) !== 'TZif') return null;
    [isut, isstd, leap, timecnt, typecnt, charcnt] = counts(at);
    at += 44;
    timeSize = 8;
  }
  // Zones counting leap seconds ("right/...") are not civil time as cron sees it.
  if (leap > 0 || typecnt === 0) return null;
  const times: number[] = [];
  for (let i = 0; i < timecnt; i++) {
    times.push(1000 * (timeSize === 8 ? Number(buf.readBigInt64BE(at + 8 * i)) : buf.readInt32BE(at + 4 * i)));
  }
  at += timecnt * timeSize;
  const idx = [...buf.subarray(at, at + timecnt)];
  at += timecnt;
  const utoff: number[] = [];
  for (let i = 0; i < typecnt; i++) utoff.push(buf.readInt32BE(at + 6 * i) * 1000);
  at += typecnt * 6 + charcnt + leap * (timeSize + 4) + isstd + isut;
  if (idx.some((i) => i >= typecnt)) return null;
  let rule: PosixRule | null = null;
  let fixed: number | null = null;
  if (timeSize === 8) {
    const footer = buf.toString('latin1', at).split('\n')[1] ?? '';
    if (footer !== '') {
      const p = parsePosixTz(footer);
      if (p === null) return null;
      if (typeof p === 'number') fixed = p;
      else rule = p;
    }
  }
  return { times, offsets: idx.map((i) => utoff[i]!), initial: utoff[0]!, rule, fixed };
}

function zoneOffsetMs(z: TzifZone, instant: number): number {
  const n = z.times.length;
  if (n === 0 || instant < z.times[0]!) return n === 0 && (z.rule || z.fixed !== null) ? afterTable(z, instant) : z.initial;
  if (instant >= z.times[n - 1]!) return z.rule || z.fixed !== null ? afterTable(z, instant) : z.offsets[n - 1]!;
  let lo = 0;
  let hi = n - 1; // times[lo] <= instant < times[hi]
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (z.times[mid]! <= instant) lo = mid;
    else hi = mid;
  }
  return z.offsets[lo]!;
}

function afterTable(z: TzifZone, instant: number): number {
  if (!z.rule) return z.fixed!;
  const [s, e] = ruleChanges(z.rule, utcYear(instant));
  // Northern zones switch to DST before they switch back in a calendar year; southern ones after.
  const dst = s < e ? instant >= s && instant < e : instant < e || instant >= s;
  return dst ? z.rule.dst : z.rule.std;
}

/** The year's two changes (ms): into daylight-saving time and out of it. */
function ruleChanges(r: PosixRule, year: number): [number, number] {
  return [ruleDay(r.start, year) + r.start.time * 1000 - r.std, ruleDay(r.end, year) + r.end.time * 1000 - r.dst];
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Local midnight (as if UTC, ms) of the rule's day in the year. */
function ruleDay(d: RuleDate, year: number): number {
  const jan1 = yearStart(year);
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  // Jn counts 1..365 and never Feb 29; n counts 0..365 and does.
  if (d.kind === 'J') return jan1 + (d.day - 1 + (leap && d.day >= 60 ? 1 : 0)) * DAY_MS;
  if (d.kind === 'n') return jan1 + d.day * DAY_MS;
  const first = new Date(jan1);
  first.setUTCMonth(d.month - 1);
  const days = d.month === 2 && leap ? 29 : MONTH_DAYS[d.month - 1]!;
  // Week 5 means the last such weekday of the month.
  let day = 1 + ((d.weekday - first.getUTCDay() + 7) % 7) + (d.week - 1) * 7;
  while (day > days) day -= 7;
  return first.getTime() + (day - 1) * DAY_MS;
}

/**
 * A POSIX TZ string as in a TZif footer, e.g. "CET-1CEST,M3.5.0,M10.5.0/3": a rule, a fixed
 * offset (ms) when it has no daylight-saving part, or null when it is not understood.
 */
export function parsePosixTz(text: string): PosixRule | number | null {
  const m =
    /^(<[^>]+>|[A-Za-z]{3,})([-+]?\d{1,2}(?::\d{2}){0,2})(?:(<[^>]+>|[A-Za-z]{3,})([-+]?\d{1,2}(?::\d{2}){0,2})?(?:,([^,]+),([^,]+))?)?$/.exec(
      text,
    );
  if (!m) return null;
  // POSIX offsets count west of Greenwich; ours are local - UTC.
  const std = 0 - seconds(m[2]!) * 1000;
  if (m[3] === undefined) return std;
  const dst = m[4] !== undefined ? 0 - seconds(m[4]) * 1000 : std + 3_600_000;
  // Without a rule POSIX leaves it to the implementation; glibc uses the US rule.
  const start = ruleDate(m[5] ?? 'M3.2.0');
  const end = ruleDate(m[6] ?? 'M11.1.0');
  return start && end ? { std, dst, start, end } : null;
}

function seconds(text: string): number {
  const sign = text.startsWith('-') ? -1 : 1;
  const [h = 0, mi = 0, s = 0] = text.replace(/^[-+]/, '').split(':').map(Number);
  return sign * (h * 3600 + mi * 60 + s);
}

function ruleDate(text: string): RuleDate | null {
  const [date = '', timeText, extra] = text.split('/');
  if (extra !== undefined || (timeText !== undefined && !/^[-+]?\d{1,3}(?::\d{2}){0,2}$/.test(timeText))) return null;
  const time = timeText === undefined ? 7200 : seconds(timeText);
  let m: RegExpExecArray | null;
  if ((m = /^J(\d{1,3})$/.exec(date)) && Number(m[1]) >= 1 && Number(m[1]) <= 365) return { kind: 'J', day: Number(m[1]), time };
  if ((m = /^(\d{1,3})$/.exec(date)) && Number(m[1]) <= 365) return { kind: 'n', day: Number(m[1]), time };
  if ((m = /^M(\d{1,2})\.([1-5])\.([0-6])$/.exec(date)) && Number(m[1]) >= 1 && Number(m[1]) <= 12) {
    return { kind: 'M', month: Number(m[1]), week: Number(m[2]), weekday: Number(m[3]), time };
  }
  return null;
}
