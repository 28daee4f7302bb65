import { describe, it, expect } from 'vitest';
import { CronError, parseCron } from '../../../src/schedule/cron.js';
import { formatInstant, nextAfter, nextInstants, type Schedule } from '../../../src/schedule/instants.js';
import { scheduleInWords, type ScheduledJob } from '../../../src/schedule/words.js';
import { compileJob } from '../../../src/config/home.js';
import { JobSpecSchema, PolicySchema } from '../../../src/config/schema.js';
import { mulberry32, randomExpr } from '../../support/random-cron.js';

// A fixed "now": the clock-change notes look at the zone's changes in the year after it.
const NOW = Date.parse('2026-01-10T00:00:00Z');

const cronJob = (expr: string, tz = 'UTC', managed = true): ScheduledJob => ({
  name: 'export',
  managed,
  schedule: { kind: 'cron', expr: parseCron(expr), tz },
});

const words = (expr: string, tz = 'UTC'): string => scheduleInWords(cronJob(expr, tz), NOW);

describe('scheduleInWords: the examples', () => {
  it.each([
    ['30 2 * * *', 'Asia/Tokyo', 'at 02:30 every day, Asia/Tokyo'],
    ['0 */6 * * *', 'UTC', 'at 00:00, 06:00, 12:00 and 18:00 every day, UTC'],
    ['*/5 * * * *', 'UTC', 'every 5 minutes, UTC'],
    ['*/5 * * * *', 'Europe/Zurich', 'every 5 minutes, Europe/Zurich'],
    ['15 3 * * 1-5', 'Europe/Zurich', 'at 03:15 Monday to Friday, Europe/Zurich'],
    ['0 9 * * 1,3', 'UTC', 'at 09:00 on Monday and Wednesday, UTC'],
    ['0 0 1 * *', 'UTC', 'at 00:00 on day 1 of every month, UTC'],
    ['0 8,12,18 * * *', 'UTC', 'at 08:00, 12:00 and 18:00 every day, UTC'],
    ['0 0 1 1 *', 'UTC', 'at 00:00 on 1 January, UTC'],
  ])('%s (%s)', (expr, tz, want) => {
    expect(words(expr, tz)).toBe(want);
  });

  it('says a zone with daylight saving as it is, with what happens when the clock skips the time', () => {
    expect(words('30 2 * * *', 'Europe/Zurich')).toBe(
      'at 02:30 every day, Europe/Zurich; when the clock jumps from 02:00 to 03:00, the 02:30 run starts at 03:00',
    );
  });

  it('says the nicknames as what they expand to', () => {
    expect(words('@hourly')).toBe('every hour on the hour, UTC');
    expect(words('@daily')).toBe('at 00:00 every day, UTC');
    expect(words('@midnight')).toBe('at 00:00 every day, UTC');
    expect(words('@weekly')).toBe('at 00:00 on Sunday, UTC');
    expect(words('@monthly')).toBe('at 00:00 on day 1 of every month, UTC');
    expect(words('@yearly')).toBe('at 00:00 on 1 January, UTC');
    expect(words('@annually')).toBe('at 00:00 on 1 January, UTC');
  });

  it('says "or" where both day fields are restricted (cron runs on either)', () => {
    expect(words('0 0 1,15 * 1')).toBe('at 00:00 on days 1 and 15 of every month or on any Monday, UTC');
    // The classic trap: not "the first Monday of the month".
    expect(words('0 0 1-7 * 1')).toBe('at 00:00 on days 1 to 7 of every month or on any Monday, UTC');
    expect(words('0 0 5-7 * 5-7')).toBe('at 00:00 on days 5 to 7 of every month or on any day from Friday to Sunday, UTC');
    expect(words('0 0 13 6 5')).toBe('at 00:00 on day 13 of the month or on any Friday, in June only, UTC');
  });

  it('quotes the line and lists its values where no plain sentence fits', () => {
    expect(words('5-10/2 1-3 * 2 *', 'Europe/Zurich')).toBe(
      'cron "5-10/2 1-3 * 2 *" (minute 5, 7 or 9 of hour 1 to 3, every day in February), Europe/Zurich',
    );
    expect(words('0,15 9-17 * * *')).toBe('cron "0,15 9-17 * * *" (minute 0 or 15 of hour 9 to 17, every day), UTC');
    // Every 7 minutes would be false at each hour: 56 is followed by 0, four minutes later.
    expect(words('*/7 * * * *')).toBe('cron "*/7 * * * *" (minute 0, 7, 14, 21, 28, 35, 42, 49 or 56 of every hour, every day), UTC');
    // "*/2" makes the day-of-month field count as "*": both day fields must match.
    expect(words('0 0 */2 * 1')).toBe(
      'cron "0 0 */2 * 1" (minute 0 of hour 0, on day 1 to 31 in steps of 2 of the month when that is a Monday), UTC',
    );
  });
});

describe('scheduleInWords: times of day', () => {
  it.each([
    ['* * * * *', 'every minute, UTC'],
    ['0 */2 * * *', 'every 2 hours from 00:00 to 22:00 every day, UTC'],
    ['15 * * * *', 'every hour at minute 15, UTC'],
    ['7-59/10 * * * *', 'every 10 minutes from 00:07 to 23:57 every day, UTC'],
    ['*/5 9-17 * * 1-5', 'every 5 minutes from 09:00 to 17:55 Monday to Friday, UTC'],
    ['0,30 9-17 * * *', 'every 30 minutes from 09:00 to 17:30 every day, UTC'],
    ['*/15 9-11,14-16 * * *', 'every 15 minutes from 09:00 to 11:45 and from 14:00 to 16:45 every day, UTC'],
    ['0 9-17 * * *', 'every hour from 09:00 to 17:00 every day, UTC'],
    ['30 1,3,5,9 * * *', 'at 01:30, 03:30, 05:30 and 09:30 every day, UTC'],
    ['0,20,40 9,17 * * *', 'at 09:00, 09:20, 09:40, 17:00, 17:20 and 17:40 every day, UTC'],
    ['0 1,3,5,7,12 * * *', 'every 2 hours from 01:00 to 07:00 and at 12:00 every day, UTC'],
    ['15 */1 * * 6,0', 'every hour at minute 15 on Saturday and Sunday, UTC'],
  ])('%s', (expr, want) => {
    expect(words(expr)).toBe(want);
  });

  it('reads a seconds field', () => {
    expect(words('30 15 10 * * *')).toBe('at 10:15:30 every day, UTC');
    expect(words('0 30 2 * * *')).toBe('at 02:30 every day, UTC');
    expect(words('*/15 * * * * *')).toBe('every 15 seconds, UTC');
    expect(words('* * * * * *')).toBe('every second, UTC');
    expect(words('30 * * * * *')).toBe('every minute at second 30, UTC');
    expect(words('30 15 * * * *')).toBe('every hour at minute 15 and second 30, UTC');
    expect(words('*/20 0 12 * * *')).toBe('at 12:00:00, 12:00:20 and 12:00:40 every day, UTC');
    expect(words('10 */5 8 * * *')).toBe('every 5 minutes from 08:00:10 to 08:55:10 every day, UTC');
    expect(words('0,30 * 8 * * *')).toBe('every 30 seconds from 08:00:00 to 08:59:30 every day, UTC');
  });

  it('writes UTC for its aliases and any other zone by its name', () => {
    expect(words('0 9 * * *', 'Etc/UTC')).toBe('at 09:00 every day, UTC');
    expect(words('0 9 * * *', 'America/New_York')).toBe('at 09:00 every day, America/New_York');
  });
});

describe('scheduleInWords: days', () => {
  it.each([
    ['0 9 * * MON-FRI', 'at 09:00 Monday to Friday, UTC'],
    ['0 9 * * sat,sun', 'at 09:00 on Saturday and Sunday, UTC'],
    ['0 9 * * 7', 'at 09:00 on Sunday, UTC'],
    ['0 9 * * 5-7', 'at 09:00 Friday to Sunday, UTC'],
    ['0 12 * * 1,2,3,5', 'at 12:00 on Monday to Wednesday and Friday, UTC'],
    ['0 0 1 JAN,JUL *', 'at 00:00 on 1 January and 1 July, UTC'],
    ['0 0 1,15 1,4,7,10 *', 'at 00:00 on days 1 and 15 of January, April, July and October, UTC'],
    ['0 0 * 3-5 *', 'at 00:00 every day from March to May, UTC'],
    ['0 0 * jun *', 'at 00:00 every day in June, UTC'],
    ['0 8 * jan-mar,dec mon', 'at 08:00 on Monday in January to March and December, UTC'],
    ['0 0 */2 * *', 'at 00:00 on odd-numbered days of every month (days 29 and 31 only in months that have them), UTC'],
    ['0 0 2-31/2 * *', 'at 00:00 on even-numbered days of every month (day 30 only in months that have one), UTC'],
    ['0 0 31 * *', 'at 00:00 on day 31 of every month (day 31 only in months that have one), UTC'],
    ['0 0 29 2 *', 'at 00:00 on 29 February (29 February only in leap years), UTC'],
    // 31 February never comes: the day is left to the weekday alone.
    ['0 0 31 2 1', 'at 00:00 on Monday in February, UTC'],
    // Every day April has: every day.
    ['0 0 1-30 4 1', 'at 00:00 every day in April, UTC'],
  ])('%s', (expr, want) => {
    expect(words(expr)).toBe(want);
  });

  it('says what cron makes of a Quartz "#": the rest of the field is ignored, so every such weekday', () => {
    const e = parseCron('0 9 * * 2#3');
    expect(e.notes.length).toBeGreaterThan(0);
    expect(words('0 9 * * 2#3')).toBe(
      'at 09:00 on Tuesday, UTC; cron reads part of this line unlike it looks (nightshift validate says how)',
    );
  });

  it('has no sentence for L and W: the cron module refuses them, so no job carries them', () => {
    for (const expr of ['0 6 L * *', '0 6 1W * *', '0 6 LW * *', '0 6 * * 5L']) expect(() => parseCron(expr)).toThrow(CronError);
  });

  it('says a line that never comes due, from the cron module reason', () => {
    expect(words('0 0 30 2 *')).toBe('never comes due: February has no day 30 (cron "0 0 30 2 *")');
    expect(words('0 0 31 4,6 *')).toBe('never comes due: April and June have no day 31 (cron "0 0 31 4,6 *")');
    // Debian's crontab takes a range written backwards, and sets nothing for it.
    expect(words('0 8 * dec-feb mon')).toBe('never comes due: its month field sets no value (cron "0 8 * dec-feb mon")');
  });
});

describe('scheduleInWords: kinds of job', () => {
  it('says an every-interval in the unit that divides it', () => {
    const every = (ms: number, managed = true) => scheduleInWords({ name: 'x', managed, schedule: { kind: 'every', ms } }, NOW);
    expect(every(90_000)).toBe('every 90 seconds');
    expect(every(7_200_000)).toBe('every 2 hours');
    expect(every(3_600_000)).toBe('every hour');
    expect(every(5_400_000)).toBe('every 90 minutes');
    expect(every(86_400_000)).toBe('every 24 hours');
    expect(every(1000)).toBe('every second');
    expect(every(1500)).toBe('every 1.5 seconds');
    expect(every(60_000, false)).toBe('run elsewhere, expected every minute');
  });

  it('says a job with no schedule: on demand, or an external one whose pings are only recorded', () => {
    expect(scheduleInWords({ name: 'export', managed: true, schedule: null }, NOW)).toBe('only when asked (nightshift run export)');
    expect(scheduleInWords({ name: 'legacy', managed: false, schedule: null }, NOW)).toBe(
      'run elsewhere at no set time: nightshift records its pings and expects none',
    );
  });

  it('says when an external job is expected', () => {
    expect(scheduleInWords(cronJob('0 6 * * 1-5', 'Europe/Zurich', false), NOW)).toBe(
      'run elsewhere, expected at 06:00 Monday to Friday, Europe/Zurich',
    );
    expect(scheduleInWords(cronJob('0 0 30 2 *', 'UTC', false), NOW)).toBe(
      'run elsewhere; its schedule never comes due: February has no day 30 (cron "0 0 30 2 *")',
    );
  });

  it('takes a loaded Job, in the zone it inherits from the policy', () => {
    const policy = PolicySchema.parse({ timezone: 'America/New_York' });
    const job = (spec: object) => compileJob('report', '/home/jobs/report.yaml', '/home', JobSpecSchema.parse(spec), policy, 'h');
    expect(scheduleInWords(job({ command: ['true'], schedule: '0 9 * * 1-5' }), NOW)).toBe('at 09:00 Monday to Friday, America/New_York');
    expect(scheduleInWords(job({ command: ['true'], every: '90s' }), NOW)).toBe('every 90 seconds');
    expect(scheduleInWords(job({ command: ['true'] }), NOW)).toBe('only when asked (nightshift run report)');
    expect(scheduleInWords(job({ schedule: '30 7 * * *', timezone: 'Asia/Tokyo' }), NOW)).toBe(
      'run elsewhere, expected at 07:30 every day, Asia/Tokyo',
    );
  });
});

describe('scheduleInWords: clock changes, checked against the schedule', () => {
  const zurich = (expr: string): Schedule => ({ kind: 'cron', expr: parseCron(expr), tz: 'Europe/Zurich' });
  // The night of 29 March 2026, when Zurich's clocks go from 02:00 to 03:00.
  const night = (expr: string) =>
    nextInstants(zurich(expr), Date.parse('2026-03-28T21:00:00Z'), 3)
      .map((t) => formatInstant(t, 'Europe/Zurich'))
      .filter((s) => s.startsWith('2026-03-29'));

  it('a fixed time that does not exist runs at the change', () => {
    expect(words('30 2 * * *', 'Europe/Zurich')).toContain('the 02:30 run starts at 03:00');
    expect(night('30 2 * * *')).toEqual(['2026-03-29T03:00:00+02:00']);
  });

  it('several such times, and one at the change itself, are one run', () => {
    expect(words('15,45 2 * * *', 'Europe/Zurich')).toContain('the 02:15 and 02:45 runs are one run at 03:00');
    expect(night('15,45 2 * * *')).toEqual(['2026-03-29T03:00:00+02:00']);
    expect(words('0 2,3 * * *', 'Europe/Zurich')).toContain('the 02:00 and 03:00 runs are one run at 03:00');
    expect(night('0 2,3 * * *')).toEqual(['2026-03-29T03:00:00+02:00']);
  });

  it('a wildcard time that does not exist is skipped', () => {
    expect(words('*/10 2 * * *', 'Europe/Zurich')).toContain('the runs due in between do not happen');
    expect(night('*/10 2 * * *')).toEqual([]);
    expect(words('0 */2 * * *', 'Europe/Zurich')).toContain('the runs due in between do not happen');
  });

  it('a wildcard time the clock goes back over runs twice, a fixed one once', () => {
    const autumn = (expr: string) =>
      nextInstants(zurich(expr), Date.parse('2026-10-24T22:00:00Z'), 8)
        .map((t) => formatInstant(t, 'Europe/Zurich'))
        .filter((s) => s.startsWith('2026-10-25'));
    expect(words('*/20 2 * * *', 'Europe/Zurich')).toBe(
      'at 02:00, 02:20 and 02:40 every day, Europe/Zurich; when the clock jumps from 02:00 to 03:00, the runs due in between do not happen; ' +
        'when the clock goes back from 03:00 to 02:00, the runs due between 02:00 and 03:00 happen twice',
    );
    expect(autumn('*/20 2 * * *')).toHaveLength(6);
    expect(words('0,20,40 2 * * *', 'Europe/Zurich')).toContain('the 02:00, 02:20 and 02:40 runs are one run at 03:00');
    expect(words('0,20,40 2 * * *', 'Europe/Zurich')).not.toContain('twice');
    expect(autumn('0,20,40 2 * * *')).toHaveLength(3);
  });

  it('a fixed time round the clock keeps to the wall clock, so the change is said', () => {
    expect(words('0 0-23 * * *', 'Europe/Zurich')).toBe(
      'every hour on the hour, Europe/Zurich; when the clock jumps from 02:00 to 03:00, the 02:00 and 03:00 runs are one run at 03:00; ' +
        'when the clock goes back from 03:00 to 02:00, the runs due between 02:00 and 03:00 happen once',
    );
    const autumn = nextInstants(zurich('0 0-23 * * *'), Date.parse('2026-10-24T23:30:00Z'), 2).map((t) =>
      formatInstant(t, 'Europe/Zurich'),
    );
    expect(autumn).toEqual(['2026-10-25T02:00:00+02:00', '2026-10-25T03:00:00+01:00']);
    // A wildcard hour follows the real clock: every hour stays every hour.
    expect(words('0 * * * *', 'Europe/Zurich')).toBe('every hour on the hour, Europe/Zurich');
  });

  it('says nothing where the jump misses the job: a day it does not run, a time it does not have, a spacing it keeps', () => {
    // Zurich changes on a Sunday.
    expect(words('0 2 * * 1-5', 'Europe/Zurich')).toBe('at 02:00 Monday to Friday, Europe/Zurich');
    expect(words('0 2 * * 0', 'Europe/Zurich')).toContain('the 02:00 run starts at 03:00');
    expect(words('0 3 * * *', 'Europe/Zurich')).toBe('at 03:00 every day, Europe/Zurich');
    expect(words('*/5 * * * *', 'Europe/Zurich')).toBe('every 5 minutes, Europe/Zurich');
    expect(words('5-10/2 1-3 * 2 *', 'Europe/Zurich')).not.toContain('clock');
  });
});

// ---------------------------------------------------------------------------------------------
// The property: read each sentence back, as an operator would, into the instants it promises, and
// compare them with the schedule's real instants. The reader below knows only the sentences'
// words, not the cron module; a sentence it cannot read fails the test, so every kind of sentence
// the module can say is checked, fallbacks included.

const WEEKDAY = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTH = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

type DayRule = (month: number, day: number, weekday: number) => boolean;
interface Reading {
  /** Seconds since midnight, ascending. */
  times: number[];
  day: DayRule;
  fallback: boolean;
}

const CLOCK = String.raw`\d\d:\d\d(?::\d\d)?`;
const CLOCKS = String.raw`${CLOCK}(?:(?:, | and )${CLOCK})*`;
const DUR = String.raw`second|minute|hour|\d+ (?:seconds|minutes|hours)`;

function clockValue(text: string): number {
  const [h, m, s = '0'] = text.split(':');
  return Number(h) * 3600 + Number(m) * 60 + Number(s);
}

function durValue(text: string): number {
  const m = /^(?:(\d+) )?(second|minute|hour)s?$/.exec(text);
  if (!m) throw new Error(`not a duration: ${text}`);
  return Number(m[1] ?? 1) * { second: 1, minute: 60, hour: 3600 }[m[2] as 'second' | 'minute' | 'hour'];
}

const items = (text: string, conj: string): string[] => text.split(new RegExp(`, | ${conj} `));

/** "1, 3 to 5 and 9" (or "or"); "0 to 56 in steps of 7". */
function numbers(text: string, conj: 'and' | 'or'): number[] {
  const steps = /^(\d+) to (\d+) in steps of (\d+)$/.exec(text);
  if (steps) {
    const out: number[] = [];
    for (let v = Number(steps[1]); v <= Number(steps[2]); v += Number(steps[3])) out.push(v);
    return out;
  }
  return items(text, conj).flatMap((item) => {
    const range = /^(\d+) to (\d+)$/.exec(item);
    if (!range) {
      if (!/^\d+$/.test(item)) throw new Error(`not a number: ${item}`);
      return [Number(item)];
    }
    const out: number[] = [];
    for (let v = Number(range[1]); v <= Number(range[2]); v++) out.push(v);
    return out;
  });
}

/** "Monday to Wednesday and Friday" → weekday numbers (0 = Sunday); a range runs Monday first. */
function weekdays(text: string, conj: 'and' | 'or'): Set<number> {
  const key = (name: string) => {
    const i = WEEKDAY.indexOf(name);
    if (i < 0) throw new Error(`not a weekday: ${name}`);
    return i === 0 ? 7 : i;
  };
  const out = new Set<number>();
  for (const item of items(text, conj)) {
    const [a, b = a] = item.split(' to ') as [string, string?];
    for (let k = key(a); k <= key(b); k++) out.add(k % 7);
  }
  return out;
}

function months(text: string): Set<number> {
  const out = new Set<number>();
  for (const item of items(text, 'and')) {
    const [a, b = a] = item.split(' to ') as [string, string?];
    const from = MONTH.indexOf(a) + 1;
    const to = MONTH.indexOf(b) + 1;
    if (from < 1 || to < 1) throw new Error(`not a month: ${item}`);
    for (let m = from; m <= to; m++) out.add(m);
  }
  return out;
}

/** " in January and July", " from March to May", or "" (every month). */
function monthSuffix(text: string): Set<number> | null {
  if (text === '') return null;
  const from = /^ from (\w+) to (\w+)$/.exec(text);
  if (from) return months(`${from[1]} to ${from[2]}`);
  const inm = /^ in (.+)$/.exec(text);
  if (inm) return months(inm[1]!);
  throw new Error(`not a month phrase: "${text}"`);
}

function dayNumbers(text: string): number[] {
  if (text === 'odd-numbered days') return numbers('1 to 31 in steps of 2', 'and');
  if (text === 'even-numbered days') return numbers('2 to 30 in steps of 2', 'and');
  const m = /^days? (.+)$/.exec(text);
  if (!m) throw new Error(`not days of the month: ${text}`);
  return numbers(m[1]!, 'and');
}

const NOTE = String.raw`(?: \((?:days?|29 February) [^)]*\))?`;

function readDays(text: string): DayRule {
  const inMonths = (set: Set<number> | null) => (m: number) => set === null || set.has(m);
  let m = /^every day(.*)$/.exec(text);
  if (m) {
    const ok = inMonths(monthSuffix(m[1]!));
    return (month) => ok(month);
  }
  m = new RegExp(String.raw`^on (\d+ [A-Z][a-z]+(?:(?:, | and )\d+ [A-Z][a-z]+)*)${NOTE}$`).exec(text);
  if (m) {
    const dates = new Set(items(m[1]!, 'and').map((d) => `${MONTH.indexOf(d.split(' ')[1]!) + 1}-${d.split(' ')[0]}`));
    return (month, day) => dates.has(`${month}-${day}`);
  }
  m = new RegExp(String.raw`^on (.+?) (?:of every month|of the month)${NOTE} or on (.+?)(?:,( (?:in|from) .+) only)?$`).exec(text);
  if (m) {
    const dom = new Set(dayNumbers(m[1]!));
    const w = m[2]!;
    const dow = w.startsWith('any day from ') ? weekdays(w.slice('any day from '.length), 'or') : weekdays(w.replace(/^any /, ''), 'or');
    const ok = inMonths(m[3] === undefined ? null : monthSuffix(m[3]));
    return (month, day, weekday) => ok(month) && (dom.has(day) || dow.has(weekday));
  }
  m = new RegExp(String.raw`^on (.+?) of (every month|[A-Z].*?)${NOTE}$`).exec(text);
  if (m) {
    const dom = new Set(dayNumbers(m[1]!));
    const ok = inMonths(m[2] === 'every month' ? null : months(m[2]!));
    return (month, day) => ok(month) && dom.has(day);
  }
  m = /^on day (.+) of the month when that is a (.+?)((?: in| from) .+)?$/.exec(text);
  if (m) {
    const dom = new Set(numbers(m[1]!, 'or'));
    const dow = weekdays(m[2]!, 'or');
    const ok = inMonths(monthSuffix(m[3] ?? ''));
    return (month, day, weekday) => ok(month) && dom.has(day) && dow.has(weekday);
  }
  m =
    /^(?:on )?((?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)(?:(?:, | and | to )(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday))*)(.*)$/.exec(
      text,
    );
  if (m) {
    const dow = weekdays(m[1]!, 'and');
    const ok = inMonths(monthSuffix(m[2]!));
    return (month, _day, weekday) => ok(month) && dow.has(weekday);
  }
  throw new Error(`cannot read the days: "${text}"`);
}

const every = (step: number, from = 0, to = 86_399): number[] => {
  const out: number[] = [];
  for (let t = from; t <= to; t += step) out.push(t);
  return out;
};

/** The time part at the start of a sentence, and what is left. */
function readTimes(text: string): { times: number[]; rest: string; roundTheClock: boolean } {
  let m = new RegExp(`^at (${CLOCKS})`).exec(text);
  if (m) return { times: items(m[1]!, 'and').map(clockValue), rest: text.slice(m[0].length), roundTheClock: false };
  m = /^every hour on the hour/.exec(text);
  if (m) return { times: every(3600), rest: text.slice(m[0].length), roundTheClock: true };
  m = /^every hour at minute (\d+)(?: and second (\d+))?/.exec(text);
  if (m) return { times: every(3600, Number(m[1]) * 60 + Number(m[2] ?? 0)), rest: text.slice(m[0].length), roundTheClock: true };
  m = /^every minute at second (\d+)/.exec(text);
  if (m) return { times: every(60, Number(m[1])), rest: text.slice(m[0].length), roundTheClock: true };
  m = new RegExp(`^every (${DUR}) from (${CLOCK}) to (${CLOCK})`).exec(text);
  if (m) {
    let step = durValue(m[1]!);
    const times = every(step, clockValue(m[2]!), clockValue(m[3]!));
    let rest = text.slice(m[0].length);
    for (;;) {
      const more = new RegExp(`^ and (?:every (${DUR}) )?from (${CLOCK}) to (${CLOCK})`).exec(rest);
      if (!more) break;
      if (more[1]) step = durValue(more[1]);
      times.push(...every(step, clockValue(more[2]!), clockValue(more[3]!)));
      rest = rest.slice(more[0].length);
    }
    const loose = new RegExp(`^ and at (${CLOCKS})`).exec(rest);
    if (loose) {
      times.push(...items(loose[1]!, 'and').map(clockValue));
      rest = rest.slice(loose[0].length);
    }
    return { times: times.sort((a, b) => a - b), rest, roundTheClock: false };
  }
  m = new RegExp(`^every (${DUR})`).exec(text);
  if (m) return { times: every(durValue(m[1]!)), rest: text.slice(m[0].length), roundTheClock: true };
  throw new Error(`cannot read the times: "${text}"`);
}

/** "second 0 or 30 of minute 5 of every hour": the fallback's times, field by field. */
function readFieldTimes(text: string): number[] {
  const parts = text.split(/ of (?=(?:every )?(?:minute|hour)\b)/);
  const field = (part: string, unit: string, size: number): number[] => {
    if (part === `every ${unit}`) return every(1, 0, size - 1);
    if (!part.startsWith(`${unit} `)) throw new Error(`not a ${unit} field: ${part}`);
    return numbers(part.slice(unit.length + 1), 'or');
  };
  const [sec, min, hour] = parts.length === 3 ? parts : ['second 0', ...parts];
  const out: number[] = [];
  for (const h of field(hour!, 'hour', 24))
    for (const m of field(min!, 'minute', 60)) for (const s of field(sec!, 'second', 60)) out.push(h * 3600 + m * 60 + s);
  return out.sort((a, b) => a - b);
}

function readSentence(sentence: string, zone: string): Reading | 'never' {
  if (sentence.startsWith('never comes due: ')) return 'never';
  const end = sentence.indexOf(`, ${zone}`);
  if (end < 0) throw new Error(`no zone in "${sentence}"`);
  const core = sentence.slice(0, end);
  const fb = /^cron ("(?:[^"\\]|\\.)*") \((.*?), ((?:every day|on |Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday).*)\)$/.exec(
    core,
  );
  if (fb) return { times: readFieldTimes(fb[2]!), day: readDays(fb[3]!), fallback: true };
  const { times, rest, roundTheClock } = readTimes(core);
  if (rest === '' && !roundTheClock) throw new Error(`times without days: "${sentence}"`);
  return { times, day: rest === '' ? () => true : readDays(rest.replace(/^ /, '')), fallback: false };
}

const DAY_MS = 86_400_000;

/** The instants a reading promises in (from, to], for a zone at a fixed offset over that span. */
function promised(r: Reading, from: number, to: number, offsetMs: number): number[] {
  const out: number[] = [];
  for (let day = Math.floor((from + offsetMs) / DAY_MS) * DAY_MS; day <= to + offsetMs; day += DAY_MS) {
    const d = new Date(day);
    if (!r.day(d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCDay())) continue;
    for (const t of r.times) {
      const at = day + t * 1000 - offsetMs;
      if (at > from && at <= to) out.push(at);
    }
  }
  return out;
}

/** The schedule's own instants in (from, to], at most `cap`: where the cap is reached, `to` moves back to the last. */
function actual(s: Schedule, from: number, to: number, cap: number): { instants: number[]; to: number } {
  const instants: number[] = [];
  let t = from;
  for (;;) {
    const n = nextAfter(s, t);
    if (n === null || n > to) return { instants, to };
    instants.push(n);
    if (instants.length === cap) return { instants, to: n };
    t = n;
  }
}

function check(expr: string, tz: string, from: number, days: number, offsetMs: number): Reading | 'never' {
  const schedule: Schedule = { kind: 'cron', expr: parseCron(expr), tz };
  const sentence = scheduleInWords({ name: 'x', managed: true, schedule }, NOW);
  let reading: Reading | 'never';
  try {
    reading = readSentence(sentence, tz);
  } catch (err) {
    throw new Error(`${expr}: "${sentence}": ${(err as Error).message}`);
  }
  const real = actual(schedule, from, from + days * DAY_MS, 400);
  if (reading === 'never') {
    expect(real.instants, `${expr}: "${sentence}"`).toEqual([]);
    return reading;
  }
  const iso = (ts: number[]) => ts.map((t) => new Date(t).toISOString());
  expect(iso(promised(reading, from, real.to, offsetMs)), `${expr}: "${sentence}"`).toEqual(iso(real.instants));
  return reading;
}

const HAND_PICKED = [
  '30 2 * * *',
  '0 */6 * * *',
  '0 */2 * * *',
  '*/5 * * * *',
  '*/7 * * * *',
  '15 3 * * 1-5',
  '0 9 * * 1,3',
  '0 0 1 * *',
  '0 0 1,15 * 1',
  '0 0 1-7 * 1',
  '0 0 13 * 5',
  '@hourly',
  '@daily',
  '@weekly',
  '@monthly',
  '@yearly',
  '0 8,12,18 * * *',
  '5-10/2 1-3 * 2 *',
  '0 0 1 1 *',
  '30 15 10 * * *',
  '*/15 * * * * *',
  '* * * * *',
  '30 * * * * *',
  '0 9 * * MON-FRI',
  '0 0 1 JAN,JUL *',
  '0 9 * * 2#3',
  '*/5 9-17 * * 1-5',
  '*/15 9-11,14-16 * * *',
  '0,15 9-17 * * *',
  '0,30 9-17 * * *',
  '30 1,3,5,9 * * *',
  '0 1,3,5,7,12 * * *',
  '0 0 31 * *',
  '0 0 30 * *',
  '0 0 29 2 *',
  '0 0 30 2 *',
  '0 0 */2 * *',
  '0 0 */2 * 1',
  '0 0 1 * */2',
  '0 0 * 3-5 *',
  '7-59/10 * * * *',
  '15 * * * *',
  '15 */1 * * 6,0',
  '0 0 31 2 1',
  '0 0 1-30 4 1',
  '0 0 5-7 * 5-7',
  '0 12 * * 1,2,3,5',
  '0 8 * jan-mar,dec mon',
  '0 8 * dec-feb mon',
  '10 */5 8 * * *',
  '0,30 * 8 * * *',
  '0 0 13 6 5',
  '0 0 1,15 1,4,7,10 *',
];

describe('scheduleInWords: every sentence holds against the real instants', () => {
  it('hand-picked lines, from days across a year and a leap day, in UTC', () => {
    const starts = ['2026-01-01T00:00:00Z', '2026-05-17T13:00:00Z', '2027-12-20T00:00:00Z', '2028-02-20T00:00:00Z'].map(Date.parse);
    for (const expr of HAND_PICKED) for (const from of starts) check(expr, 'UTC', from, 70, 0);
  });

  it('random lines (five and six fields, both day rules), in UTC and in a winter of Europe/Zurich', () => {
    const rand = mulberry32(20260110);
    let said = 0;
    let fallback = 0;
    for (let i = 0; i < 1500; i++) {
      const expr = randomExpr(rand, { seconds: i % 3 === 0, allowOr: true });
      const from = Date.parse('2026-01-01T00:00:00Z') + Math.floor(rand() * 700) * DAY_MS + Math.floor(rand() * 86_400) * 1000;
      const reading = check(expr, 'UTC', from, 35, 0);
      // Zurich is at +01:00 without a change from 5 January to 28 February.
      check(expr, 'Europe/Zurich', Date.parse('2027-01-05T00:00:00Z'), 50, 3_600_000);
      if (reading !== 'never') {
        if (reading.fallback) fallback++;
        else said++;
      }
    }
    // The check is only as strong as the share of plain sentences it reads back.
    expect(said).toBeGreaterThan(300);
    expect(fallback).toBeGreaterThan(100);
  });

  it('random lines with the days only some months have (randomExpr keeps to 1-28)', () => {
    const rand = mulberry32(31);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const DOM = [
      '29',
      '30',
      '31',
      '29-31',
      '30,31',
      '1,31',
      '1-29/2',
      '1-31/2',
      '2-30/2',
      '2-31/2',
      '*/2',
      '15-31',
      '1-31/3',
      '28-31/2',
      '1-30',
    ];
    for (let i = 0; i < 600; i++) {
      const fields = randomExpr(rand, { seconds: false, allowOr: true }).split(' ');
      fields[2] = pick(DOM);
      const expr = fields.join(' ');
      const from = Date.parse('2026-01-01T00:00:00Z') + Math.floor(rand() * 1100) * DAY_MS;
      check(expr, 'UTC', from, 130, 0);
    }
  });

  it('the simple kinds, at every hour and minute, on every set of weekdays', () => {
    const rand = mulberry32(7);
    for (let i = 0; i < 300; i++) {
      const h = Math.floor(rand() * 24);
      const m = Math.floor(rand() * 60);
      const dow = [0, 1, 2, 3, 4, 5, 6].filter(() => rand() < 0.5);
      const expr = `${m} ${h} * * ${dow.length === 0 ? '*' : dow.join(',')}`;
      const sentence = words(expr);
      expect(sentence).toMatch(/^at \d\d:\d\d (every day|on [A-Z]|[A-Z][a-z]+day to )/);
      check(expr, 'UTC', Date.parse('2026-03-01T00:00:00Z') + i * 3_600_000, 28, 0);
    }
  });
});
