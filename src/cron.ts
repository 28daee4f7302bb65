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
const MONTH_LONG = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August',
  'September', 'October', 'November', 'December'];

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

const NUMBER = /^\d+$/;

function parseValue(token: string, spec: FieldSpec, raw: string): number {
  let value: number;
  if (NUMBER.test(token)) {
    value = Number(token);
  } else if (/^[a-z]+$/i.test(token) && spec.names) {
    const index = spec.names.indexOf(token.toLowerCase());
    if (index < 0) {
      const kind = spec === MONTH ? 'month' : 'day';
      throw new CronError(
        `${spec.name} field "${raw}": unknown ${kind} name "${token}" (use ${spec.namesHint} or ${spec.min}-${spec.max})`,
      );
    }
    // Months are named from 1; days from 0 (sun).
    value = spec === MONTH ? index + 1 : index;
  } else if (token === '') {
    throw new CronError(`${spec.name} field "${raw}": a number is missing`);
  } else if (token === '?' || /^(\d*L|L-?\d*|\d+W|LW)$/i.test(token) || token.includes('#')) {
    throw new CronError(
      `${spec.name} field "${raw}": "${token}" is Quartz syntax, which Debian cron does not support`,
    );
  } else {
    throw new CronError(`${spec.name} field "${raw}": "${token}" is not a number${spec.names ? ' or name' : ''}`);
  }
  if (value < spec.min || value > spec.max) {
    throw new CronError(`${spec.name} field "${raw}": ${value} is out of range ${spec.min}-${spec.max}`);
  }
  return value;
}

/** Returns a mask indexed by value (length max + 1). */
function parseField(raw: string, spec: FieldSpec): Uint8Array {
  const allowed = new Uint8Array(spec.max + 1);
  for (const item of raw.split(',')) {
    if (item === '') {
      throw new CronError(`${spec.name} field "${raw}": empty item in the list`);
    }
    const slash = item.indexOf('/');
    const rangePart = slash < 0 ? item : item.slice(0, slash);
    let step = 1;
    if (slash >= 0) {
      const stepText = item.slice(slash + 1);
      if (!NUMBER.test(stepText)) {
        throw new CronError(`${spec.name} field "${raw}": step "${stepText}" is not a number`);
      }
      step = Number(stepText);
      const span = spec.max - spec.min + 1;
      if (step < 1) {
        throw new CronError(`${spec.name} field "${raw}": step must be at least 1`);
      }
      if (step > span) {
        throw new CronError(`${spec.name} field "${raw}": step ${step} is larger than the range ${spec.min}-${spec.max}`);
      }
    }
    let low: number;
    let high: number;
    if (rangePart === '*') {
      low = spec.min;
      high = spec.max;
    } else if (rangePart.startsWith('*')) {
      throw new CronError(`${spec.name} field "${raw}": "*" can only stand alone or with a step, like "*/5"`);
    } else {
      const dash = rangePart.indexOf('-');
      if (dash === 0) {
        throw new CronError(`${spec.name} field "${raw}": "${rangePart}" has no start (negative numbers are not allowed)`);
      }
      if (dash > 0) {
        low = parseValue(rangePart.slice(0, dash), spec, raw);
        high = parseValue(rangePart.slice(dash + 1), spec, raw);
        if (low > high) {
          // Vixie cron silently ignores such a range; an operator would rather hear about it.
          const hint = spec === DOW && high === 0 ? '; Sunday can also be written 7, as in fri-7' : '';
          throw new CronError(
            `${spec.name} field "${raw}": range ${rangePart} goes backwards (start ${low} is after end ${high}${hint})`,
          );
        }
      } else {
        low = parseValue(rangePart, spec, raw);
        // "a/n" means a through the maximum (cronie and most modern crons).
        high = slash >= 0 ? spec.max : low;
      }
    }
    for (let v = low; v <= high; v += step) allowed[v] = 1;
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

export function parseCron(expr: string): CronExpr {
  const source = expr.trim();
  if (source === '') throw new CronError('empty cron expression');

  let body = source;
  let hourly = false;
  if (source.startsWith('@')) {
    const [first = '', ...rest] = source.split(/\s+/);
    if (rest.length > 0 && NICKNAMES[first.toLowerCase()] !== undefined) {
      throw new CronError(`${first} stands alone: remove "${rest.join(' ')}" after it`);
    }
    const nick = source.toLowerCase();
    if (nick === '@reboot') {
      throw new CronError(
        '@reboot is not supported: nightshift schedules by time; start work at boot with a systemd unit instead',
      );
    }
    const expanded = NICKNAMES[nick];
    if (expanded === undefined) {
      throw new CronError(
        `unknown nickname "${source}" (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)`,
      );
    }
    body = expanded;
    hourly = nick === '@hourly';
  }

  const parts = body.split(/\s+/);
  if (parts.length !== 5 && parts.length !== 6) {
    throw new CronError(`expected 5 or 6 fields (optional seconds first), got ${parts.length}`);
  }
  const hasSeconds = parts.length === 6;
  const [secText, minText, hourText, domText, monText, dowText] = hasSeconds
    ? (parts as [string, string, string, string, string, string])
    : (['0', ...parts] as [string, string, string, string, string, string]);

  const sec = parseField(secText, SECOND);
  const min = parseField(minText, MINUTE);
  const hour = parseField(hourText, HOUR);
  const dom = parseField(domText, DOM);
  const mon = parseField(monText, MONTH);
  const dowRaw = parseField(dowText, DOW);
  const dow = dowRaw.slice(0, 7);
  if (dowRaw[7]) dow[0] = 1;

  const domStar = domText.startsWith('*');
  const dowStar = dowText.startsWith('*');
  const fixedTime = !hourly && !minText.startsWith('*') && !hourText.startsWith('*')
    && !(hasSeconds && secText.startsWith('*'));

  const months = valuesOf(mon, 1);
  const daysOfMonth = valuesOf(dom, 1);

  // With OR (both restricted) the weekday always supplies days. Otherwise the day of month
  // must exist in some allowed month; every such date recurs on every weekday eventually.
  if (domStar || dowStar) {
    const possible = months.some((m) => daysOfMonth.some((d) => d <= (MAX_DAYS_IN_MONTH[m] ?? 0)));
    if (!possible) {
      const days = daysOfMonth.length === 1 ? `day ${daysOfMonth[0]}` : `days ${daysOfMonth.join(',')}`;
      const names = months.map((m) => MONTH_LONG[m - 1] ?? String(m));
      throw new CronError(
        `"${source}" never matches any date: ${listNames(names)} ${names.length === 1 ? 'has' : 'have'} no ${days}`,
      );
    }
  }

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
  return c.dayOr ? (c.dom[day] === 1 || c.dow[w] === 1) : (c.dom[day] === 1 && c.dow[w] === 1);
}

/** Whether the naive time (ms, wall clock as if UTC) matches, ignoring sub-unit parts. */
export function matchesNaive(e: CronExpr, naive: number): boolean {
  const c = compiledOf(e);
  const d = new Date(naive);
  return c.nextMonth[d.getUTCMonth() + 1] === d.getUTCMonth() + 1
    && dayMatches(c, d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate())
    && c.nextHour[d.getUTCHours()] === d.getUTCHours()
    && c.nextMin[d.getUTCMinutes()] === d.getUTCMinutes()
    && c.nextSec[d.getUTCSeconds()] === d.getUTCSeconds();
}

/**
 * The first naive time >= fromNaive (inclusive) or > fromNaive that matches, at whole-second
 * (6 fields) or whole-minute (5 fields) granularity; null if none within 10 years.
 */
export function nextMatchNaive(e: CronExpr, fromNaive: number, inclusive: boolean): number | null {
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
