/**
 * A job's schedule in plain English, for an operator who does not read cron. The rule is that
 * every sentence is true of the schedule the daemon keeps: it is worked out from the parsed
 * field values (what Debian's cron does with "2#3" or "4294967297", not what the line seems to
 * say), and where no plain sentence fits, the fallback quotes the line and lists its values.
 */

import type { Job } from '../config/home.js';
import { matchesNaive, type CronExpr } from './cron.js';
import { transitionsBetween } from './timezone.js';

const DAY_S = 86_400;
const HOUR_S = 3_600;
const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;
// Below 3 h a jump forward is daylight saving (a skipped fixed time runs at the change); from 3 h
// on it is a correction, and the skipped times are skipped (instants.ts).
const CORRECTION_MIN = 180;

// A short list of times reads better than any "every … from … to …" (00:00, 06:00, 12:00, 18:00).
const LIST_FIRST = 4;
const LIST_MAX = 8;

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
// February counts 29: a day that exists in some year is said; the months that lack it are noted.
const LONGEST_MONTH = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const SHORTEST_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** What a schedule sentence needs of a job; a whole `Job` will do. */
export type ScheduledJob = Pick<Job, 'name' | 'schedule' | 'managed'> & Partial<Pick<Job, 'atBoot'>>;

/**
 * The job's schedule as one English sentence (lower case, no final stop), e.g. "at 02:30 every
 * day, Europe/Zurich". `now` only picks the clock changes worth a note: those of the zone in the
 * coming year.
 */
export function scheduleInWords(job: ScheduledJob, now: number): string {
  const s = job.schedule;
  if (s === null) {
    if (job.atBoot) return job.managed ? 'once after each boot of the machine' : 'run elsewhere, once after each boot';
    return job.managed
      ? `only when asked (nightshift run ${job.name})`
      : 'run elsewhere at no set time: nightshift records its pings and expects none';
  }
  if (s.kind === 'every') return job.managed ? intervalInWords(s.ms) : `run elsewhere, expected ${intervalInWords(s.ms)}`;
  const said = cronInWords(s.expr, s.tz, now);
  if (job.managed) return said.text;
  return said.never ? `run elsewhere; its schedule ${said.text}` : `run elsewhere, expected ${said.text}`;
}

/** A fixed interval, epoch-aligned: in real time, so in no zone, and days are 24 real hours. */
function intervalInWords(ms: number): string {
  if (ms % (HOUR_S * 1000) === 0) return `every ${amount(ms / (HOUR_S * 1000), 'hour')}`;
  if (ms % MINUTE_MS === 0) return `every ${amount(ms / MINUTE_MS, 'minute')}`;
  if (ms % 1000 === 0) return `every ${amount(ms / 1000, 'second')}`;
  return ms > 1000 ? `every ${ms / 1000} seconds` : `every ${ms} milliseconds`;
}

function amount(n: number, unit: string): string {
  return n === 1 ? unit : `${n} ${unit}s`;
}

function secondsInWords(d: number): string {
  if (d % HOUR_S === 0) return amount(d / HOUR_S, 'hour');
  if (d % 60 === 0) return amount(d / 60, 'minute');
  return amount(d, 'second');
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

function zoneName(tz: string): string {
  return /^(Etc\/)?(UTC|UCT|Zulu|Universal)$/.test(tz) ? 'UTC' : tz;
}

function list(items: readonly string[], conj: 'and' | 'or'): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} ${conj} ${items[items.length - 1]}`;
}

/** Maximal runs of consecutive values, in the order given. */
function runsOf(values: readonly number[]): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (const v of values) {
    const last = runs[runs.length - 1];
    if (last && v === last[1] + 1) last[1] = v;
    else runs.push([v, v]);
  }
  return runs;
}

/** Values as list items, a run of three or more as "a to b". */
function runItems(values: readonly number[], name: (v: number) => string): string[] {
  const items: string[] = [];
  for (const [a, b] of runsOf(values)) {
    if (b - a >= 2) items.push(`${name(a)} to ${name(b)}`);
    else for (let v = a; v <= b; v++) items.push(name(v));
  }
  return items;
}

/** The common step when the values are evenly spaced (at least two of them), else null. */
function stepOf(values: readonly number[]): number | null {
  if (values.length < 2) return null;
  const step = values[1]! - values[0]!;
  for (let i = 2; i < values.length; i++) if (values[i]! - values[i - 1]! !== step) return null;
  return step;
}

/** Any set of numbers as a true phrase, for the fallback: "5, 7 or 9", "0 to 56 in steps of 7". */
function valuesText(values: readonly number[]): string {
  const items = runItems(values, String);
  const step = stepOf(values);
  if (items.length > 12 && step !== null) return `${values[0]} to ${values[values.length - 1]} in steps of ${step}`;
  return list(items, 'or');
}

// ---------------------------------------------------------------------------------------------
// Time of day

interface TimeWords {
  text: string;
  /**
   * The spacing, in seconds, when the times go round the clock at it ("every 5 minutes"): then
   * "every day" would add nothing, and a clock change by a whole number of steps leaves it true.
   */
  allDay: number | null;
}

/** Evenly spaced times of day, in seconds since midnight. */
interface Progression {
  first: number;
  last: number;
  step: number;
  count: number;
}

function timesOfDay(e: CronExpr): { hours: readonly number[]; inHour: number[] } {
  const inHour: number[] = [];
  for (const m of e.minutes) for (const s of e.seconds) inHour.push(m * 60 + s);
  return { hours: e.hours, inHour };
}

/**
 * The day's times as evenly spaced stretches and single times, or null when they are neither.
 * A stretch crosses from one hour to the next only where the spacing carries on across it.
 */
function stretches(hours: readonly number[], inHour: readonly number[]): { runs: Progression[]; loose: number[] } | null {
  const runs: Progression[] = [];
  const loose: number[] = [];
  const keep = (p: Progression) => {
    // Two or three times are easier read as times than as a stretch.
    if (p.count >= 4) runs.push(p);
    else for (let i = 0; i < p.count; i++) loose.push(p.first + i * p.step);
  };
  if (inHour.length === 1) {
    const at = inHour[0]!;
    const first = hours[0]! * HOUR_S + at;
    let cur: Progression = { first, last: first, step: 0, count: 1 };
    for (const h of hours.slice(1)) {
      const t = h * HOUR_S + at;
      if (cur.count === 1 || t - cur.last === cur.step) {
        cur = { first: cur.first, step: t - cur.last, last: t, count: cur.count + 1 };
        continue;
      }
      keep(cur);
      cur = { first: t, last: t, step: 0, count: 1 };
    }
    keep(cur);
    return { runs, loose: loose.sort((a, b) => a - b) };
  }
  const step = stepOf(inHour);
  if (step === null) return null;
  const u0 = inHour[0]!;
  const uLast = inHour[inHour.length - 1]!;
  const acrossHours = uLast + step - HOUR_S === u0;
  for (const [a, b] of acrossHours ? runsOf(hours) : hours.map((h): [number, number] => [h, h])) {
    keep({ first: a * HOUR_S + u0, last: b * HOUR_S + uLast, step, count: (b - a + 1) * inHour.length });
  }
  return { runs, loose: loose.sort((x, y) => x - y) };
}

/** Wall-clock times, to the second where the line has seconds other than 0. */
function clockOf(e: CronExpr): (secondOfDay: number) => string {
  const withSeconds = e.seconds.some((s) => s !== 0);
  return (t) => `${pad(Math.floor(t / HOUR_S))}:${pad(Math.floor((t % HOUR_S) / 60))}${withSeconds ? `:${pad(t % 60)}` : ''}`;
}

function timeWords(e: CronExpr): TimeWords | null {
  const clock = clockOf(e);
  const { hours, inHour } = timesOfDay(e);
  const count = hours.length * inHour.length;
  const all = (): number[] => hours.flatMap((h) => inHour.map((u) => h * HOUR_S + u));
  if (count <= LIST_FIRST) return { text: `at ${list(all().map(clock), 'and')}`, allDay: null };

  const parts = stretches(hours, inHour);
  if (parts) {
    const { runs, loose } = parts;
    const only = runs.length === 1 && loose.length === 0 ? runs[0]! : null;
    // The whole day at one spacing, wrapping over midnight at the same spacing.
    if (only && only.step * only.count === DAY_S) {
      const { first, step } = only;
      if (step === HOUR_S) {
        const m = Math.floor(first / 60);
        const s = first % 60;
        const text = first === 0 ? 'every hour on the hour' : `every hour at minute ${m}${s ? ` and second ${s}` : ''}`;
        return { text, allDay: step };
      }
      if (HOUR_S % step === 0 && first === 0) return { text: `every ${secondsInWords(step)}`, allDay: step };
      if (step === 60) return { text: `every minute at second ${first}`, allDay: step };
    }
    if (runs.length <= 2 && loose.length <= 3 && runs.length > 0) {
      const said: string[] = [];
      let prevStep = 0;
      for (const r of runs) {
        const span = `from ${clock(r.first)} to ${clock(r.last)}`;
        said.push(r.step === prevStep ? span : `every ${secondsInWords(r.step)} ${span}`);
        prevStep = r.step;
      }
      if (loose.length > 0) said.push(`at ${list(loose.map(clock), 'and')}`);
      return { text: list(said, 'and'), allDay: null };
    }
  }
  if (count <= LIST_MAX) return { text: `at ${list(all().map(clock), 'and')}`, allDay: null };
  return null;
}

// ---------------------------------------------------------------------------------------------
// Days

const isAll = (values: readonly number[], size: number) => values.length === size;

function monthItems(months: readonly number[]): string[] {
  return runItems(months, (m) => MONTHS[m - 1]!);
}

/** " in January and July", " from March to May", or "" for every month. */
function inMonths(months: readonly number[]): string {
  if (isAll(months, 12)) return '';
  const runs = runsOf(months);
  if (runs.length === 1 && runs[0]![1] - runs[0]![0] >= 2) return ` from ${MONTHS[runs[0]![0] - 1]} to ${MONTHS[runs[0]![1] - 1]}`;
  return ` in ${list(monthItems(months), 'and')}`;
}

/** Monday first, as a work week is read; a run may not wrap from Sunday to Monday. */
function weekdayItems(days: readonly number[]): { items: string[]; ranges: number } {
  const keys = days.map((d) => (d === 0 ? 7 : d)).sort((a, b) => a - b);
  const items = runItems(keys, (k) => WEEKDAYS[k % 7]!);
  return { items, ranges: items.filter((i) => i.includes(' to ')).length };
}

/** "on Monday and Wednesday", "Monday to Friday". */
function onWeekdays(days: readonly number[]): string {
  const { items, ranges } = weekdayItems(days);
  return ranges === 1 && items.length === 1 ? items[0]! : `on ${list(items, 'and')}`;
}

/** "any Monday or Friday", "any day from Monday to Friday". */
function anyWeekday(days: readonly number[]): string {
  const { items, ranges } = weekdayItems(days);
  if (ranges === 0) return `any ${list(items, 'or')}`;
  if (items.length === 1) return `any day from ${items[0]}`;
  return list(items, 'or');
}

/** "day 1", "days 1 to 7 and 15", or all the odd (even) days the allowed months have. */
function dayNumbers(days: readonly number[], months: readonly number[]): string {
  const longest = Math.max(...months.map((m) => LONGEST_MONTH[m]!));
  const last = days[days.length - 1]!;
  if (days.length >= 4 && stepOf(days) === 2 && longest - last < 2) {
    if (days[0] === 1) return 'odd-numbered days';
    if (days[0] === 2) return 'even-numbered days';
  }
  const items = runItems(days, String);
  return `${days.length === 1 ? 'day' : 'days'} ${list(items, 'and')}`;
}

/** Days of the month that some allowed month has; cron never matches the others. */
function possibleDays(e: CronExpr): number[] {
  const longest = Math.max(...e.months.map((m) => LONGEST_MONTH[m]!));
  return e.daysOfMonth.filter((d) => d <= longest);
}

/** Days that some allowed month lacks (February counted at 28), for a note. */
function partialDays(days: readonly number[], months: readonly number[]): number[] {
  const shortest = Math.min(...months.map((m) => SHORTEST_MONTH[m]!));
  return days.filter((d) => d > shortest);
}

function partialNote(days: readonly number[], months: readonly number[]): string {
  const partial = partialDays(days, months);
  if (partial.length === 0) return '';
  if (partial.length === 1) return ` (day ${partial[0]} only in months that have one)`;
  return ` (days ${list(partial.map(String), 'and')} only in months that have them)`;
}

/** "on day 1 of every month", "on 1 January", "on days 1 and 15 of January and July". */
function onDaysOfMonth(days: readonly number[], months: readonly number[]): string {
  if (!isAll(months, 12)) {
    const dates = months.flatMap((m) => days.filter((d) => d <= LONGEST_MONTH[m]!).map((d) => ({ d, m })));
    if (dates.length <= 3) {
      const leap = dates.some(({ d, m }) => d === 29 && m === 2) ? ' (29 February only in leap years)' : '';
      return `on ${list(
        dates.map(({ d, m }) => `${d} ${MONTHS[m - 1]}`),
        'and',
      )}${leap}`;
    }
  }
  const of = isAll(months, 12) ? 'every month' : list(monthItems(months), 'and');
  return `on ${dayNumbers(days, months)} of ${of}${partialNote(days, months)}`;
}

interface DayWords {
  text: string;
  everyDay: boolean;
}

function dayWords(e: CronExpr): DayWords | null {
  const months = e.months;
  const days = possibleDays(e);
  // All the days any allowed month has ("1-30" in April and June) is every day.
  let upTo = 0;
  while (days[upTo] === upTo + 1) upTo++;
  const allDom = months.every((m) => upTo >= LONGEST_MONTH[m]!);
  const allDow = isAll(e.daysOfWeek, 7);
  // Vixie's rule: with both day fields restricted ("*" at the start of neither) a day matches
  // either of them; otherwise it must match both.
  const either = !e.domStar && !e.dowStar;
  const everyDay = either ? allDom || allDow : allDom && allDow;
  if (everyDay) return { text: `every day${inMonths(months)}`, everyDay: isAll(months, 12) };
  // Days of the month no allowed month has leave the weekdays alone to match (OR), as if "*".
  const weekdaysOnly = either ? days.length === 0 : allDom;
  if (weekdaysOnly) return { text: `${onWeekdays(e.daysOfWeek)}${inMonths(months)}`, everyDay: false };
  if (!either && allDow) return { text: onDaysOfMonth(days, months), everyDay: false };
  if (either) {
    const of = isAll(months, 12) ? 'of every month' : 'of the month';
    const inM = isAll(months, 12) ? '' : `,${inMonths(months)} only`;
    return {
      text: `on ${dayNumbers(days, months)} ${of}${partialNote(days, months)} or on ${anyWeekday(e.daysOfWeek)}${inM}`,
      everyDay: false,
    };
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// The sentence

interface CronWords {
  text: string;
  never: boolean;
}

function cronInWords(e: CronExpr, tz: string, now: number): CronWords {
  if (e.never !== null) {
    const prefix = `"${e.source}" never runs: `;
    const reason = e.never.startsWith(prefix) ? e.never.slice(prefix.length) : e.never;
    return { text: `never comes due: ${reason} (cron ${quoted(e.source)})`, never: true };
  }
  const zone = `, ${zoneName(tz)}`;
  const time = timeWords(e);
  const days = dayWords(e);
  let text: string;
  if (time && days) {
    text = time.allDay !== null && days.everyDay ? time.text : `${time.text} ${days.text}`;
  } else {
    text = fallback(e, days);
  }
  const note = clockChangeNote(e, tz, now, time?.allDay ?? null);
  return { text: `${text}${zone}${note}${e.notes.length > 0 ? NOTES : ''}`, never: false };
}

const NOTES = '; cron reads part of this line unlike it looks (nightshift validate says how)';

// Cron stops reading a field at a character it does not know, so the line may hold a quote.
function quoted(source: string): string {
  return JSON.stringify(source);
}

/** The line and its values, field by field: true by construction, if not pretty. */
function fallback(e: CronExpr, days: DayWords | null): string {
  const sec =
    e.seconds.length === 1 && e.seconds[0] === 0 ? '' : isAll(e.seconds, 60) ? 'every second of ' : `second ${valuesText(e.seconds)} of `;
  const min = isAll(e.minutes, 60) ? 'every minute' : `minute ${valuesText(e.minutes)}`;
  const hour = isAll(e.hours, 24) ? 'every hour' : `hour ${valuesText(e.hours)}`;
  let day: string;
  if (days) day = days.text;
  else {
    // Only both day fields restricted with a "*" at the start of one ("*/2"): both must match.
    const weekdays = list(weekdayItems(e.daysOfWeek).items, 'or');
    day = `on day ${valuesText(possibleDays(e))} of the month when that is a ${weekdays}${inMonths(e.months)}`;
  }
  return `cron ${quoted(e.source)} (${sec}${min} of ${hour}, ${day})`;
}

/**
 * What a change of the zone's clock does to the job's times (instants.ts). Forward: the skipped
 * times do not exist that night; a fixed-time job runs at the change instead, a wildcard one not
 * at all. Back: the repeated times happen twice; a fixed-time job runs once, a wildcard one
 * twice. Only changes of the coming year on a day the job runs are said, and as a condition, so
 * that the note stays true whatever year it is read in.
 */
function clockChangeNote(e: CronExpr, tz: string, now: number, roundTheClock: number | null): string {
  const notes = new Set<string>();
  const clock = clockOf(e);
  for (const tr of transitionsBetween(tz, now, now + 366 * DAY_MS)) {
    const shift = tr.after - tr.before;
    if (shift === 0) continue;
    const fixed = e.fixedTime && Math.abs(shift) < CORRECTION_MIN;
    // A wildcard job follows the real clock, so "every 5 minutes" keeps its spacing across the
    // change; a fixed-time one keeps to the wall clock, and that does not.
    if (!fixed && roundTheClock !== null && (Math.abs(shift) * 60) % roundTheClock === 0) continue;
    const forward = shift > 0;
    // The span of wall-clock time skipped, or seen twice.
    const wallFrom = tr.at + (forward ? tr.before : tr.after) * MINUTE_MS;
    const dayStart = Math.floor(wallFrom / DAY_MS) * DAY_MS;
    const from = (wallFrom - dayStart) / 1000;
    const to = from + Math.abs(shift) * 60;
    // A span across midnight holds the end of one day and the start of the next.
    const hits = [
      ...timesBetween(e, from, Math.min(to, DAY_S)).map((t) => dayStart + t * 1000),
      ...timesBetween(e, 0, to - DAY_S).map((t) => dayStart + DAY_MS + t * 1000),
    ].filter((naive) => matchesNaive(e, naive));
    if (hits.length === 0) continue;
    const end = clock(to % DAY_S);
    if (!forward) {
      const back = `when the clock goes back from ${end} to ${clock(from)}, the runs due between ${clock(from)} and ${end} happen`;
      // Once is what "at 02:30 every day" leads one to expect, not what "every hour" does.
      if (!fixed) notes.add(`${back} twice`);
      else if (roundTheClock !== null) notes.add(`${back} once`);
      continue;
    }
    const jump = `when the clock jumps from ${clock(from)} to ${end}`;
    if (!fixed) {
      notes.add(`${jump}, the runs due in between do not happen`);
      continue;
    }
    // The run made up at the change is the one due right after it too: the schedule is asked
    // for its next instant strictly after that run.
    const atEnd = matchesNaive(e, dayStart + to * 1000);
    const merged = [...hits.map((naive) => (naive - dayStart) / 1000), ...(atEnd ? [to] : [])];
    const which =
      merged.length <= 3
        ? `the ${list(
            merged.map((t) => clock(t % DAY_S)),
            'and',
          )} ${merged.length === 1 ? 'run starts' : 'runs are one run'}`
        : `the runs due from ${clock(from)} ${atEnd ? 'to' : 'up to'} ${end} are one run`;
    notes.add(`${jump}, ${which} at ${end}`);
  }
  return [...notes].map((n) => `; ${n}`).join('');
}

/** The job's times of day in [from, to) seconds since midnight, whatever the day. */
function timesBetween(e: CronExpr, from: number, to: number): number[] {
  const out: number[] = [];
  for (const h of e.hours) {
    if ((h + 1) * HOUR_S <= from || h * HOUR_S >= to) continue;
    for (const m of e.minutes) {
      const base = h * HOUR_S + m * 60;
      if (base + 60 <= from || base >= to) continue;
      for (const s of e.seconds) {
        const t = base + s;
        if (t >= from && t < to) out.push(t);
      }
    }
  }
  return out;
}
