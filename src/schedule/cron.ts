/**
 * Cron expressions as Debian's cron (Vixie cron) reads them, plus an optional leading
 * seconds field. This module knows nothing about time zones: it matches "naive" wall-clock
 * times, encoded as milliseconds as if the wall clock were UTC. The daylight-saving rules
 * live in schedule.ts, which maps naive times to real instants.
 */

export class CronError extends Error {
  override name = 'CronError';
}

export interface CronExpr {
  /** The expression as written (trimmed), for messages and display. */
  readonly source: string;
  readonly hasSeconds: boolean;
  /** Allowed values, ascending. Five-field expressions have seconds = [0]. */
  readonly seconds: readonly number[];
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  readonly daysOfMonth: readonly number[];
  readonly months: readonly number[];
  /** 0 = Sunday; a 7 in the source is folded into 0. */
  readonly daysOfWeek: readonly number[];
  /** The day-of-month field starts with "*" (Vixie's DOM_STAR). */
  readonly domStar: boolean;
  /** The day-of-week field starts with "*" (Vixie's DOW_STAR). */
  readonly dowStar: boolean;
  /**
   * Runs at a particular wall-clock time: no "*" at the start of the second, minute or hour
   * field and not @hourly. Only such jobs get Debian's daylight-saving treatment.
   */
  readonly fixedTime: boolean;
  /**
   * Debian's crontab accepts some expressions that never run (a range written backwards sets no
   * value; "30 2" is a day February lacks). They are valid, as there, but `never` says why they
   * never run, and `notes` names each part that sets nothing, for validate to warn about.
   */
  readonly never: string | null;
  readonly notes: readonly string[];
}

interface FieldSpec {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
  readonly namesHint?: string;
}

const MONTH_NAMES = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const MONTH_LONG = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

const SECOND: FieldSpec = { name: 'second', min: 0, max: 59 };
const MINUTE: FieldSpec = { name: 'minute', min: 0, max: 59 };
const HOUR: FieldSpec = { name: 'hour', min: 0, max: 23 };
const DOM: FieldSpec = { name: 'day-of-month', min: 1, max: 31 };
const MONTH: FieldSpec = { name: 'month', min: 1, max: 12, names: MONTH_NAMES, namesHint: 'jan-dec' };
// 7 is accepted as Sunday, as in Vixie cron; it is folded into 0 after parsing.
const DOW: FieldSpec = { name: 'day-of-week', min: 0, max: 7, names: DAY_NAMES, namesHint: 'sun-sat' };

const NICKNAMES: Readonly<Record<string, string>> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

/** Vixie's get_number reads a word into a buffer of 1000 bytes and refuses a longer one. */
const MAX_WORD = 999;

/** A word of letters and digits at `at` (Vixie's get_number reads exactly that), and where it ends. */
function wordAt(raw: string, at: number, spec: FieldSpec): { word: string; end: number } {
  let end = at;
  while (end < raw.length && /[A-Za-z0-9]/.test(raw[end]!)) end++;
  if (end - at > MAX_WORD)
    throw new CronError(`${spec.name} field: a word of ${end - at} characters (Debian's cron takes at most ${MAX_WORD})`);
  return { word: raw.slice(at, end), end };
}

/**
 * A string of digits as Debian's cron reads it: atoi, i.e. (int) strtol on a 64-bit machine — the
 * value saturates at 2^63-1 and keeps its low 32 bits, signed. 4294967297 reads as 1.
 */
function atoi(digits: string): number {
  let n = BigInt(digits);
  const LONG_MAX = (1n << 63n) - 1n;
  if (n > LONG_MAX) n = LONG_MAX;
  return Number(BigInt.asIntN(32, n));
}

/** The number a word of digits is to Debian's cron, with a note when that is not what it says. */
function numberOf(word: string, spec: FieldSpec, raw: string, notes: string[]): number {
  const n = atoi(word);
  if (String(n) !== word.replace(/^0+(?=\d)/, '')) notes.push(`${spec.name} field "${raw}": Debian's cron reads ${word} as ${n}`);
  return n;
}

/** A value (a number, or a name where the field has names) at `at`. */
function valueAt(raw: string, at: number, spec: FieldSpec, notes: string[]): { value: number; end: number } {
  const { word, end } = wordAt(raw, at, spec);
  if (word === '' && raw[at] === '?') {
    throw new CronError(`${spec.name} field "${raw}": "?" is Quartz syntax, which Debian cron does not support`);
  }
  if (word === '') {
    const what = raw[at] === undefined ? 'the end' : `"${raw[at]}"`;
    throw new CronError(
      `${spec.name} field "${raw}": a number is missing before ${what}${raw[at] === '-' && at === 0 ? ' (negative numbers are not allowed)' : ''}`,
    );
  }
  let value: number;
  const index = spec.names?.indexOf(word.toLowerCase()) ?? -1;
  if (index >= 0) {
    // Months are named from 1; days from 0 (sun).
    value = spec === MONTH ? index + 1 : index;
  } else if (/^\d+$/.test(word)) {
    value = numberOf(word, spec, raw, notes);
  } else if (/^(\d*L|L\d*|\d+W|LW)$/i.test(word)) {
    throw new CronError(`${spec.name} field "${raw}": "${word}" is Quartz syntax, which Debian cron does not support`);
  } else if (spec.names && /^[a-z]+$/i.test(word)) {
    const kind = spec === MONTH ? 'month' : 'day';
    throw new CronError(`${spec.name} field "${raw}": unknown ${kind} name "${word}" (use ${spec.namesHint} or ${spec.min}-${spec.max})`);
  } else {
    throw new CronError(`${spec.name} field "${raw}": "${word}" is not a number${spec.names ? ' or name' : ''}`);
  }
  if (value < spec.min || value > spec.max) {
    throw new CronError(`${spec.name} field "${raw}": ${value} is out of range ${spec.min}-${spec.max}`);
  }
  return { value, end };
}

/**
 * One field, read as Debian's cron reads it: a list of `*`, a value or a range `a-b`, each
 * optionally with `/step`, separated by commas. Where an item ends in something else ("2#3",
 * "1-3-5", "**"), Debian's cron stops reading the field there and ignores the rest; so does
 * this, and says so in `notes` for validate to warn about. A range written backwards sets no
 * value there either (noted). A step larger than the range keeps the first value only.
 * Returns a mask indexed by value (length max + 1).
 */
function parseField(raw: string, spec: FieldSpec, notes: string[]): Uint8Array {
  const allowed = new Uint8Array(spec.max + 1);
  let at = 0;
  for (;;) {
    let low: number;
    let high: number;
    let single = false;
    const start = at;
    if (raw[at] === '*') {
      low = spec.min;
      high = spec.max;
      at++;
    } else {
      const a = valueAt(raw, at, spec, notes);
      low = a.value;
      at = a.end;
      if (raw[at] === '-') {
        const b = valueAt(raw, at + 1, spec, notes);
        high = b.value;
        at = b.end;
      } else {
        high = low;
        single = true;
      }
    }
    let step = 1;
    if (raw[at] === '/') {
      const item = raw.slice(start, at);
      // cronie reads "a/n" as a through the maximum; Debian's crontab refuses it.
      if (single)
        throw new CronError(
          `${spec.name} field "${raw}": a step needs a range: write ${item}-${spec.max}/${wordAt(raw, at + 1, spec).word || 'N'} or */${wordAt(raw, at + 1, spec).word || 'N'}`,
        );
      const w = wordAt(raw, at + 1, spec);
      if (!/^\d+$/.test(w.word)) throw new CronError(`${spec.name} field "${raw}": the step after "${item}/" is not a number`);
      step = numberOf(w.word, spec, raw, notes);
      if (step < 1) throw new CronError(`${spec.name} field "${raw}": step must be at least 1`);
      at = w.end;
    }
    if (low > high) {
      const part = raw.slice(start, at);
      const hint = spec === DOW && high === 0 ? '; Sunday can also be written 7, as in fri-7' : '';
      notes.push(
        `${spec.name} field "${raw}": range ${part} goes backwards (start ${low} is after end ${high}${hint}); Debian's cron sets no value for it`,
      );
    }
    for (let v = low; v <= high; v += step) allowed[v] = 1;
    if (raw[at] !== ',') break;
    at++;
  }
  if (at < raw.length) {
    const quartz = raw[at] === '#' ? ' (the "nth weekday" of Quartz is not cron syntax)' : '';
    notes.push(`${spec.name} field "${raw}": Debian's cron reads it up to "${raw.slice(0, at)}" and ignores "${raw.slice(at)}"${quartz}`);
  }
  return allowed;
}

function valuesOf(mask: Uint8Array, from: number): number[] {
  const out: number[] = [];
  for (let v = from; v < mask.length; v++) if (mask[v]) out.push(v);
  return out;
}

const MAX_DAYS_IN_MONTH = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function listNames(names: string[]): string {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

interface Sets {
  sec: number[];
  min: number[];
  hour: number[];
  months: number[];
  daysOfMonth: number[];
  daysOfWeek: number[];
  domStar: boolean;
  dowStar: boolean;
}

/** Why an expression can never match (a field with no value, days no allowed month has), or null. */
function neverReason(source: string, s: Sets): string | null {
  const empty = (
    [
      ['second', s.sec],
      ['minute', s.min],
      ['hour', s.hour],
      ['month', s.months],
    ] as const
  ).find(([, v]) => v.length === 0);
  if (empty) return `"${source}" never runs: its ${empty[0]} field sets no value`;
  const domPossible = s.months.some((m) => s.daysOfMonth.some((d) => d <= (MAX_DAYS_IN_MONTH[m] ?? 0)));
  // Vixie's rule: with both day fields restricted a day matches either; otherwise both.
  const dayOr = !s.domStar && !s.dowStar;
  const days = dayOr ? domPossible || s.daysOfWeek.length > 0 : domPossible && s.daysOfWeek.length > 0;
  if (days) return null;
  if (s.daysOfWeek.length === 0 && (dayOr || s.daysOfMonth.length === 0)) return `"${source}" never runs: its day fields set no day`;
  if (s.daysOfWeek.length === 0) return `"${source}" never runs: its day-of-week field sets no day`;
  if (s.daysOfMonth.length === 0) return `"${source}" never runs: its day-of-month field sets no day`;
  const dayText = s.daysOfMonth.length === 1 ? `day ${s.daysOfMonth[0]}` : `days ${s.daysOfMonth.join(',')}`;
  const names = s.months.map((m) => MONTH_LONG[m - 1] ?? String(m));
  return `"${source}" never runs: ${listNames(names)} ${names.length === 1 ? 'has' : 'have'} no ${dayText}`;
}

export function parseCron(expr: string): CronExpr {
  // Blanks are spaces and tabs, as in a crontab line; anything else (a vertical tab, a no-break
  // space) belongs to a field.
  const source = expr.replace(/^[ \t]+|[ \t]+$/g, '');
  if (source === '') throw new CronError('empty cron expression');

  let body = source;
  let hourly = false;
  if (source.startsWith('@')) {
    const [first = '', ...rest] = source.split(/[ \t]+/);
    if (rest.length > 0 && NICKNAMES[first.toLowerCase()] !== undefined) {
      throw new CronError(`${first} stands alone: remove "${rest.join(' ')}" after it`);
    }
    const nick = source;
    if (NICKNAMES[nick.toLowerCase()] !== undefined && NICKNAMES[nick] === undefined) {
      // Debian's crontab compares nicknames as written.
      throw new CronError(`unknown nickname "${source}": nicknames are lower case (${source.toLowerCase()})`);
    }
    if (first === '@reboot') {
      throw new CronError(
        rest.length > 0
          ? `@reboot stands alone: remove "${rest.join(' ')}" after it`
          : '@reboot is not a time: it is a whole schedule of its own (a job\'s schedule: "@reboot" runs once after each boot)',
      );
    }
    const expanded = NICKNAMES[nick];
    if (expanded === undefined) {
      throw new CronError(`unknown nickname "${source}" (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)`);
    }
    body = expanded;
    hourly = nick === '@hourly';
  }

  // Fields are separated by blanks (spaces and tabs), as in a crontab line.
  const parts = body.split(/[ \t]+/);
  if (parts.length !== 5 && parts.length !== 6) {
    throw new CronError(`expected 5 or 6 fields (optional seconds first), got ${parts.length}`);
  }
  const hasSeconds = parts.length === 6;
  const [secText, minText, hourText, domText, monText, dowText] = hasSeconds
    ? (parts as [string, string, string, string, string, string])
    : (['0', ...parts] as [string, string, string, string, string, string]);

  const notes: string[] = [];
  const sec = parseField(secText, SECOND, notes);
  const min = parseField(minText, MINUTE, notes);
  const hour = parseField(hourText, HOUR, notes);
  const dom = parseField(domText, DOM, notes);
  const mon = parseField(monText, MONTH, notes);
  const dowRaw = parseField(dowText, DOW, notes);
  const dow = dowRaw.slice(0, 7);
  if (dowRaw[7]) dow[0] = 1;

  const domStar = domText.startsWith('*');
  const dowStar = dowText.startsWith('*');
  const fixedTime = !hourly && !minText.startsWith('*') && !hourText.startsWith('*') && !(hasSeconds && secText.startsWith('*'));

  const months = valuesOf(mon, 1);
  const daysOfMonth = valuesOf(dom, 1);

  const never = neverReason(source, {
    sec: valuesOf(sec, 0),
    min: valuesOf(min, 0),
    hour: valuesOf(hour, 0),
    months,
    daysOfMonth,
    daysOfWeek: valuesOf(dow, 0),
    domStar,
    dowStar,
  });

  const e: CronExpr = {
    source,
    hasSeconds,
    seconds: valuesOf(sec, 0),
    minutes: valuesOf(min, 0),
    hours: valuesOf(hour, 0),
    daysOfMonth,
    months,
    daysOfWeek: valuesOf(dow, 0),
    domStar,
    dowStar,
    fixedTime,
    never,
    notes,
  };
  compiled.set(e, compile(e));
  return e;
}

/**
 * Lookup tables: next[v] is the smallest allowed value >= v, or -1. They let the matcher
 * jump straight to the next candidate instead of stepping one unit at a time.
 */
interface Compiled {
  nextSec: Int8Array;
  nextMin: Int8Array;
  nextHour: Int8Array;
  nextMonth: Int8Array;
  dom: Uint8Array;
  dow: Uint8Array;
  firstSec: number;
  firstMin: number;
  firstHour: number;
  firstMonth: number;
  dayOr: boolean;
}

// Keyed by object so that a CronExpr stays a plain, serialisable value; an expression that
// did not come from parseCron (e.g. structured-cloned) is compiled on first use.
const compiled = new WeakMap<CronExpr, Compiled>();

function nextTable(values: readonly number[], size: number): Int8Array {
  const mask = new Uint8Array(size);
  for (const v of values) mask[v] = 1;
  const t = new Int8Array(size + 1).fill(-1);
  for (let v = size - 1; v >= 0; v--) t[v] = mask[v] ? v : (t[v + 1] ?? -1);
  return t;
}

function compile(e: CronExpr): Compiled {
  const dom = new Uint8Array(32);
  for (const d of e.daysOfMonth) dom[d] = 1;
  const dow = new Uint8Array(7);
  for (const d of e.daysOfWeek) dow[d] = 1;
  const c: Compiled = {
    nextSec: nextTable(e.seconds, 60),
    nextMin: nextTable(e.minutes, 60),
    nextHour: nextTable(e.hours, 24),
    nextMonth: nextTable(e.months, 13),
    dom,
    dow,
    firstSec: e.seconds[0] ?? -1,
    firstMin: e.minutes[0] ?? -1,
    firstHour: e.hours[0] ?? -1,
    firstMonth: e.months[0] ?? -1,
    dayOr: !e.domStar && !e.dowStar,
  };
  return c;
}

function compiledOf(e: CronExpr): Compiled {
  let c = compiled.get(e);
  if (!c) {
    c = compile(e);
    compiled.set(e, c);
  }
  return c;
}

const DAY_MS = 86_400_000;
const SEARCH_YEARS = 10;

const DAYS_IN_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  if (month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) return 29;
  return DAYS_IN_MONTH[month] ?? 31;
}

/** Whether the date matches day-of-month/day-of-week, with Vixie's OR/AND rule. */
function dayMatches(c: Compiled, year: number, month: number, day: number): boolean {
  const weekday = (Math.floor(Date.UTC(year, month - 1, day) / DAY_MS) + 4) % 7; // 1970-01-01 was a Thursday
  const w = weekday < 0 ? weekday + 7 : weekday;
  return c.dayOr ? c.dom[day] === 1 || c.dow[w] === 1 : c.dom[day] === 1 && c.dow[w] === 1;
}

/** Whether the naive time (ms, wall clock as if UTC) matches, ignoring sub-unit parts. */
export function matchesNaive(e: CronExpr, naive: number): boolean {
  if (e.never !== null) return false;
  const c = compiledOf(e);
  const d = new Date(naive);
  return (
    c.nextMonth[d.getUTCMonth() + 1] === d.getUTCMonth() + 1 &&
    dayMatches(c, d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()) &&
    c.nextHour[d.getUTCHours()] === d.getUTCHours() &&
    c.nextMin[d.getUTCMinutes()] === d.getUTCMinutes() &&
    c.nextSec[d.getUTCSeconds()] === d.getUTCSeconds()
  );
}

/**
 * The first naive time >= fromNaive (inclusive) or > fromNaive that matches, at whole-second
 * (6 fields) or whole-minute (5 fields) granularity; null if none within 10 years.
 */
export function nextMatchNaive(e: CronExpr, fromNaive: number, inclusive: boolean): number | null {
  if (e.never !== null) return null;
  const c = compiledOf(e);
  const unit = e.hasSeconds ? 1000 : 60_000;
  const start = inclusive ? Math.ceil(fromNaive / unit) * unit : Math.floor(fromNaive / unit) * unit + unit;
  const d = new Date(start);
  let year = d.getUTCFullYear();
  let month = d.getUTCMonth() + 1;
  let day = d.getUTCDate();
  let hour = d.getUTCHours();
  let minute = d.getUTCMinutes();
  let second = d.getUTCSeconds();
  const lastYear = year + SEARCH_YEARS;
  const limit = start + SEARCH_YEARS * 365.25 * DAY_MS;

  // Each branch either returns or moves to a strictly later candidate and resets the
  // smaller units to their first allowed value, so the loop visits at most a few
  // candidates per allowed month/day/hour/minute.
  for (;;) {
    if (year > lastYear) return null;

    const m = c.nextMonth[month] ?? -1;
    if (m < 0) {
      year++;
      month = c.firstMonth;
      day = 1;
      hour = c.firstHour;
      minute = c.firstMin;
      second = c.firstSec;
      continue;
    }
    if (m !== month) {
      month = m;
      day = 1;
      hour = c.firstHour;
      minute = c.firstMin;
      second = c.firstSec;
    }

    const dim = daysInMonth(year, month);
    while (day <= dim && !dayMatches(c, year, month, day)) {
      day++;
      hour = c.firstHour;
      minute = c.firstMin;
      second = c.firstSec;
    }
    if (day > dim) {
      month++;
      if (month > 12) {
        month = 1;
        year++;
      }
      day = 1;
      hour = c.firstHour;
      minute = c.firstMin;
      second = c.firstSec;
      continue;
    }

    const h = c.nextHour[hour] ?? -1;
    if (h < 0) {
      ({ year, month, day } = nextDay(year, month, day));
      hour = c.firstHour;
      minute = c.firstMin;
      second = c.firstSec;
      continue;
    }
    if (h !== hour) {
      hour = h;
      minute = c.firstMin;
      second = c.firstSec;
    }

    const mi = c.nextMin[minute] ?? -1;
    if (mi < 0) {
      hour++;
      minute = c.firstMin;
      second = c.firstSec;
      if (hour > 23) {
        ({ year, month, day } = nextDay(year, month, day));
        hour = c.firstHour;
      }
      continue;
    }
    if (mi !== minute) {
      minute = mi;
      second = c.firstSec;
    }

    const s = c.nextSec[second] ?? -1;
    if (s < 0) {
      minute++;
      second = c.firstSec;
      if (minute > 59) {
        minute = c.firstMin;
        hour++;
        if (hour > 23) {
          ({ year, month, day } = nextDay(year, month, day));
          hour = c.firstHour;
        }
      }
      continue;
    }

    const found = Date.UTC(year, month - 1, day, hour, minute, s);
    return found <= limit ? found : null;
  }
}

function nextDay(year: number, month: number, day: number): { year: number; month: number; day: number } {
  if (day < 28 || day < daysInMonth(year, month)) return { year, month, day: day + 1 };
  return month === 12 ? { year: year + 1, month: 1, day: 1 } : { year, month: month + 1, day: 1 };
}
