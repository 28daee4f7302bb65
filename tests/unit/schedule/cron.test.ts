import { describe, it, expect } from 'vitest';
import cron from 'node-cron';
import { CronError, matchesNaive, nextMatchNaive, parseCron, type CronExpr } from '../../../src/schedule/cron.js';
import { mulberry32, randomExpr } from '../../support/random-cron.js';

const iso = (naive: number): string => new Date(naive).toISOString().slice(0, 19);
const naiveOf = (s: string): number => Date.parse(`${s}Z`);

/** The next `count` naive matches strictly after `from` (a "YYYY-MM-DDTHH:MM:SS" string). */
function naiveRuns(expr: string, from: string, count: number): string[] {
  const e = parseCron(expr);
  const out: string[] = [];
  let t = naiveOf(from);
  for (let i = 0; i < count; i++) {
    const n = nextMatchNaive(e, t, false);
    if (n === null) break;
    out.push(iso(n));
    t = n;
  }
  return out;
}

function errorOf(expr: string): string {
  try {
    parseCron(expr);
  } catch (err) {
    expect(err).toBeInstanceOf(CronError);
    return (err as Error).message;
  }
  throw new Error(`expected "${expr}" to be refused`);
}

describe('parseCron: fields', () => {
  it('reads the five standard fields and defaults seconds to 0', () => {
    const e = parseCron('5 4 * * *');
    expect(e.hasSeconds).toBe(false);
    expect(e.seconds).toEqual([0]);
    expect(e.minutes).toEqual([5]);
    expect(e.hours).toEqual([4]);
    expect(e.daysOfMonth).toHaveLength(31);
    expect(e.months).toHaveLength(12);
    expect(e.daysOfWeek).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(e.source).toBe('5 4 * * *');
  });

  it('reads an optional leading seconds field', () => {
    const e = parseCron('*/20 0 12 * * *');
    expect(e.hasSeconds).toBe(true);
    expect(e.seconds).toEqual([0, 20, 40]);
    expect(e.minutes).toEqual([0]);
    expect(e.hours).toEqual([12]);
    expect(naiveRuns('*/20 0 12 * * *', '2026-05-01T12:00:00', 4)).toEqual([
      '2026-05-01T12:00:20',
      '2026-05-01T12:00:40',
      '2026-05-02T12:00:00',
      '2026-05-02T12:00:20',
    ]);
  });

  it('understands ranges, steps and lists', () => {
    expect(parseCron('*/15 * * * *').minutes).toEqual([0, 15, 30, 45]);
    expect(parseCron('10-30/10 * * * *').minutes).toEqual([10, 20, 30]);
    expect(parseCron('5-59/20 * * * *').minutes).toEqual([5, 25, 45]);
    expect(parseCron('0 1,2,5-7,22 * * *').hours).toEqual([1, 2, 5, 6, 7, 22]);
    expect(parseCron('0 0 1-31/10 * *').daysOfMonth).toEqual([1, 11, 21, 31]);
    expect(parseCron('0 0 * */3 *').months).toEqual([1, 4, 7, 10]);
    expect(parseCron('0 0 * * 1-5/2').daysOfWeek).toEqual([1, 3, 5]);
    expect(parseCron('0 0 * * */2').daysOfWeek).toEqual([0, 2, 4, 6]);
    expect(parseCron('07 08 * * *').minutes).toEqual([7]); // leading zeros
    expect(parseCron('  0   0\t* *  *  ').source).toBe('0   0\t* *  *');
  });

  it('understands month and day names, in any case', () => {
    expect(parseCron('0 0 * JAN,mar-May,Dec *').months).toEqual([1, 3, 4, 5, 12]);
    expect(parseCron('0 0 * * Mon-FRI').daysOfWeek).toEqual([1, 2, 3, 4, 5]);
    expect(parseCron('0 0 * * sun,sat').daysOfWeek).toEqual([0, 6]);
    expect(parseCron('0 0 * jan-dec/6 *').months).toEqual([1, 7]);
  });

  it('treats 7 as Sunday, alone and in ranges', () => {
    expect(parseCron('0 0 * * 7').daysOfWeek).toEqual([0]);
    expect(parseCron('0 0 * * 5-7').daysOfWeek).toEqual([0, 5, 6]);
    expect(parseCron('0 0 * * 0,7').daysOfWeek).toEqual([0]);
    expect(naiveRuns('0 9 * * 7', '2026-05-01T00:00:00', 2)).toEqual(['2026-05-03T09:00:00', '2026-05-10T09:00:00']);
  });

  it('expands the nicknames', () => {
    const same = (nick: string, expr: string) => {
      const a = parseCron(nick);
      const b = parseCron(expr);
      expect({ ...a, source: '' }).toEqual({ ...b, source: '', fixedTime: a.fixedTime });
    };
    same('@yearly', '0 0 1 1 *');
    same('@annually', '0 0 1 1 *');
    same('@monthly', '0 0 1 * *');
    same('@weekly', '0 0 * * 0');
    same('@daily', '0 0 * * *');
    same('@midnight', '0 0 * * *');
    same('@hourly', '0 * * * *');
    expect(parseCron('@weekly').source).toBe('@weekly');
    expect(naiveRuns('@monthly', '2026-01-15T00:00:00', 2)).toEqual(['2026-02-01T00:00:00', '2026-03-01T00:00:00']);
    expect(naiveRuns('@yearly', '2026-01-01T00:00:00', 1)).toEqual(['2027-01-01T00:00:00']);
  });

  it('marks fixed-time jobs as Debian does (no "*" first in minute/hour/second, not @hourly)', () => {
    expect(parseCron('30 2 * * *').fixedTime).toBe(true);
    expect(parseCron('0,30 1-3 * * *').fixedTime).toBe(true);
    expect(parseCron('@daily').fixedTime).toBe(true);
    expect(parseCron('@weekly').fixedTime).toBe(true);
    expect(parseCron('@hourly').fixedTime).toBe(false);
    expect(parseCron('*/30 * * * *').fixedTime).toBe(false);
    expect(parseCron('30 * * * *').fixedTime).toBe(false);
    expect(parseCron('* 2 * * *').fixedTime).toBe(false);
    expect(parseCron('*/5 2 * * *').fixedTime).toBe(false);
    expect(parseCron('0 30 2 * * *').fixedTime).toBe(true);
    expect(parseCron('*/10 30 2 * * *').fixedTime).toBe(false);
  });

  it('records whether day-of-month / day-of-week start with "*"', () => {
    const e = parseCron('0 0 */2 * fri');
    expect(e.domStar).toBe(true);
    expect(e.dowStar).toBe(false);
    const f = parseCron('0 0 13 * *');
    expect(f.domStar).toBe(false);
    expect(f.dowStar).toBe(true);
  });
});

describe('Vixie day-of-month / day-of-week rule', () => {
  it('ORs them when both are restricted: "0 0 13 * fri" runs on every 13th and every Friday', () => {
    // April 2026: the 13th is a Monday.
    expect(naiveRuns('0 0 13 * fri', '2026-04-01T00:00:00', 6)).toEqual([
      '2026-04-03T00:00:00',
      '2026-04-10T00:00:00',
      '2026-04-13T00:00:00',
      '2026-04-17T00:00:00',
      '2026-04-24T00:00:00',
      '2026-05-01T00:00:00',
    ]);
    // February and March 2026 both have a Friday the 13th: one run, not two.
    expect(naiveRuns('0 0 13 * fri', '2026-02-12T00:00:00', 3)).toEqual([
      '2026-02-13T00:00:00',
      '2026-02-20T00:00:00',
      '2026-02-27T00:00:00',
    ]);
  });

  it('ANDs them when day-of-week is "*"', () => {
    expect(naiveRuns('0 0 13 * *', '2026-04-01T00:00:00', 2)).toEqual(['2026-04-13T00:00:00', '2026-05-13T00:00:00']);
  });

  it('ANDs them when day-of-month is "*"', () => {
    expect(naiveRuns('0 0 * * fri', '2026-04-01T00:00:00', 2)).toEqual(['2026-04-03T00:00:00', '2026-04-10T00:00:00']);
  });

  it('ANDs them when a field starts with "*" even if it has a step', () => {
    // Odd days that are Fridays: Apr 3, 17, May 1, 15, 29 ...
    expect(naiveRuns('0 0 */2 * fri', '2026-04-01T00:00:00', 4)).toEqual([
      '2026-04-03T00:00:00',
      '2026-04-17T00:00:00',
      '2026-05-01T00:00:00',
      '2026-05-15T00:00:00',
    ]);
  });
});

describe('nextMatchNaive', () => {
  const e = parseCron('30 2 * * *');

  it('is inclusive or exclusive as asked, at minute or second granularity', () => {
    const t = naiveOf('2026-05-01T02:30:00');
    expect(iso(nextMatchNaive(e, t, true)!)).toBe('2026-05-01T02:30:00');
    expect(iso(nextMatchNaive(e, t, false)!)).toBe('2026-05-02T02:30:00');
    expect(iso(nextMatchNaive(e, t - 1, false)!)).toBe('2026-05-01T02:30:00');
    expect(iso(nextMatchNaive(e, t + 1, true)!)).toBe('2026-05-02T02:30:00');
    const every = parseCron('* * * * *');
    expect(iso(nextMatchNaive(every, naiveOf('2026-05-01T10:00:30'), true)!)).toBe('2026-05-01T10:01:00');
    const secs = parseCron('* * * * * *');
    expect(iso(nextMatchNaive(secs, naiveOf('2026-05-01T10:00:30') + 1, true)!)).toBe('2026-05-01T10:00:31');
  });

  it('carries over hour, day, month and year ends', () => {
    expect(naiveRuns('59 23 31 12 *', '2026-12-31T23:58:00', 2)).toEqual(['2026-12-31T23:59:00', '2027-12-31T23:59:00']);
    expect(naiveRuns('0 0 31 * *', '2026-01-31T00:00:00', 3)).toEqual([
      '2026-03-31T00:00:00',
      '2026-05-31T00:00:00',
      '2026-07-31T00:00:00',
    ]);
    expect(naiveRuns('58-59/1 59 23 * * *', '2026-02-28T23:59:58', 2)).toEqual(['2026-02-28T23:59:59', '2026-03-01T23:59:58']);
  });

  it('finds leap days and gives up after ten years', () => {
    expect(naiveRuns('0 0 29 2 *', '2026-01-01T00:00:00', 2)).toEqual(['2028-02-29T00:00:00', '2032-02-29T00:00:00']);
    // Feb 29 that is a Sunday or Thursday (AND, because dow starts with "*"): 2032, then 2052.
    const rare = parseCron('0 0 29 2 */4');
    expect(iso(nextMatchNaive(rare, naiveOf('2026-01-01T00:00:00'), true)!)).toBe('2032-02-29T00:00:00');
    expect(nextMatchNaive(rare, naiveOf('2033-01-01T00:00:00'), true)).toBeNull();
  });

  it('agrees with a unit-by-unit brute force on random expressions', () => {
    const rand = mulberry32(42);
    let compared = 0;
    for (let i = 0; i < 150; i++) {
      const expr = randomExpr(rand, { seconds: i % 5 === 0, allowOr: true });
      let e: CronExpr;
      try {
        e = parseCron(expr);
      } catch {
        continue;
      }
      const unit = e.hasSeconds ? 1000 : 60_000;
      let t = naiveOf('2026-01-01T00:00:00') + Math.floor((rand() * 365 * 86_400_000) / unit) * unit;
      const end = t + (e.hasSeconds ? 3 : 40) * 86_400_000;
      let expected = t + unit;
      for (let found = 0; found < 3; found++) {
        const got = nextMatchNaive(e, t, false);
        while (expected < end && !bruteMatch(e, expected)) expected += unit;
        if (expected >= end) {
          expect(got === null || got >= end, `${expr} after ${iso(t)}`).toBe(true);
          break;
        }
        expect(got === null ? null : iso(got), `${expr} after ${iso(t)}`).toBe(iso(expected));
        expect(matchesNaive(e, expected)).toBe(true);
        compared++;
        t = expected;
        expected += unit;
      }
    }
    expect(compared).toBeGreaterThan(200);
  });
});

describe('parseCron: refusals an operator can act on', () => {
  it.each([
    ['', 'empty cron expression'],
    ['* * * *', 'expected 5 or 6 fields (optional seconds first), got 4'],
    ['0 0 0 * * * *', 'expected 5 or 6 fields (optional seconds first), got 7'],
    ['0 25 * * *', 'hour field "25": 25 is out of range 0-23'],
    ['60 * * * *', 'minute field "60": 60 is out of range 0-59'],
    ['60 0 * * * *', 'second field "60": 60 is out of range 0-59'],
    ['0 0 0 * *', 'day-of-month field "0": 0 is out of range 1-31'],
    ['0 0 32 * *', 'day-of-month field "32": 32 is out of range 1-31'],
    ['0 0 * 13 *', 'month field "13": 13 is out of range 1-12'],
    ['0 0 * * 8', 'day-of-week field "8": 8 is out of range 0-7'],
    ['0 1,25 * * *', 'hour field "1,25": 25 is out of range 0-23'],
    ['0 0 * foo *', 'month field "foo": unknown month name "foo" (use jan-dec or 1-12)'],
    ['0 0 * * monday', 'day-of-week field "monday": unknown day name "monday" (use sun-sat or 0-7)'],
    ['x * * * *', 'minute field "x": "x" is not a number'],
    ['0 mon * * *', 'hour field "mon": "mon" is not a number'],
    ['*/0 * * * *', 'minute field "*/0": step must be at least 1'],
    ['*/x * * * *', 'minute field "*/x": the step after "*/" is not a number'],
    ['5/20 * * * *', 'minute field "5/20": a step needs a range: write 5-59/20 or */20'],
    ['1,,2 * * * *', 'minute field "1,,2": a number is missing before ","'],
    ['-5 * * * *', 'minute field "-5": a number is missing before "-" (negative numbers are not allowed)'],
    ['0 1- * * *', 'hour field "1-": a number is missing before the end'],
    ['0 0 ? * *', 'day-of-month field "?": "?" is Quartz syntax, which Debian cron does not support'],
    ['0 0 L * *', 'day-of-month field "L": "L" is Quartz syntax, which Debian cron does not support'],
    ['0 0 15W * *', 'day-of-month field "15W": "15W" is Quartz syntax, which Debian cron does not support'],
    ['@DAILY', 'unknown nickname "@DAILY": nicknames are lower case (@daily)'],
    ['@reboot', '@reboot is not a time: it is a whole schedule of its own (a job\'s schedule: "@reboot" runs once after each boot)'],
    ['@reboot 5', '@reboot stands alone: remove "5" after it'],
    ['@weekdays', 'unknown nickname "@weekdays" (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)'],
    ['@daily 5', '@daily stands alone: remove "5" after it'],
  ])('refuses %j', (expr, message) => {
    expect(errorOf(expr)).toBe(message);
  });

  // Debian's crontab takes these (tests/unit/schedule/crontab-oracle.test.ts holds the parser to
  // it); validate warns with the note, or with why it never runs.
  it.each([
    ['*/61 * * * *', { minutes: [0] }, null, []],
    [
      '0 5-2 * * *',
      { hours: [] },
      '"0 5-2 * * *" never runs: its hour field sets no value',
      ['hour field "5-2": range 5-2 goes backwards (start 5 is after end 2); Debian\'s cron sets no value for it'],
    ],
    [
      '*5 * * * *',
      { minutes: Array.from({ length: 60 }, (_, i) => i) },
      null,
      ['minute field "*5": Debian\'s cron reads it up to "*" and ignores "5"'],
    ],
    [
      '0 0 * * 5#2',
      { daysOfWeek: [5] },
      null,
      ['day-of-week field "5#2": Debian\'s cron reads it up to "5" and ignores "#2" (the "nth weekday" of Quartz is not cron syntax)'],
    ],
    ['4294967297 * * * *', { minutes: [1] }, null, ['minute field "4294967297": Debian\'s cron reads 4294967297 as 1']],
    ['0 0 30 2 *', { daysOfMonth: [30] }, '"0 0 30 2 *" never runs: February has no day 30', []],
    ['0 0 31 4,6 *', { months: [4, 6] }, '"0 0 31 4,6 *" never runs: April and June have no day 31', []],
    ['0 0 30,31 feb *', { months: [2] }, '"0 0 30,31 feb *" never runs: February has no days 30,31', []],
    [
      '0 0 * * fri-sun',
      { daysOfWeek: [] },
      '"0 0 * * fri-sun" never runs: its day-of-week field sets no day',
      [
        'day-of-week field "fri-sun": range fri-sun goes backwards (start 5 is after end 0; Sunday can also be written 7, as in fri-7); Debian\'s cron sets no value for it',
      ],
    ],
  ] as const)('accepts %j as Debian does, and says what it means', (expr, values, never, notes) => {
    const e = parseCron(expr);
    expect(e).toMatchObject(values);
    expect(e.never).toBe(never);
    expect(e.notes).toEqual(notes);
    if (never !== null) expect(nextMatchNaive(e, Date.UTC(2026, 0, 1), true)).toBeNull();
  });

  it('accepts dates that exist at least in leap years, and OR-ed impossible days', () => {
    expect(() => parseCron('0 0 29 2 *')).not.toThrow();
    expect(() => parseCron('0 0 31 * *')).not.toThrow();
    // Both restricted: Fridays in February still match, so this is valid in Vixie cron.
    expect(naiveRuns('0 0 30 2 fri', '2026-02-01T00:00:00', 1)).toEqual(['2026-02-06T00:00:00']);
  });
});

describe('cross-check with node-cron validate()', () => {
  // node-cron's parser is a different code base; where both should agree, they do. It is more
  // lenient than Debian cron (Quartz L/W/#/?, full day names, reversed ranges, impossible
  // dates), so those are not compared.
  it.each([
    '* * * * *',
    '*/5 * * * *',
    '0 0 * * *',
    '30 2 * * 1-5',
    '0 9-17/2 * * mon-fri',
    '15 14 1 * *',
    '0 0 1 jan,jul *',
    '*/10 * * * * *',
    '0 0 12 * * sun',
    '0 22 * * 7',
    '5,10,15 * * * *',
    '@daily',
    '@hourly',
  ])('both accept %j', (expr) => {
    expect(cron.validate(expr)).toBe(true);
    expect(() => parseCron(expr)).not.toThrow();
  });

  it.each(['60 * * * *', '* 24 * * *', '* * 32 * *', '* * * 13 *', '* * * * 8', '* * * *', 'a b c d e', '0 0 * foo *', '* * * * * * *'])(
    'both refuse %j',
    (expr) => {
      expect(cron.validate(expr)).toBe(false);
      expect(() => parseCron(expr)).toThrow(CronError);
    },
  );
});

// ---- helpers ---------------------------------------------------------------------------

/** Independent matcher straight from the parsed value lists and Vixie's rule. */
function bruteMatch(e: CronExpr, naive: number): boolean {
  const d = new Date(naive);
  const dom = e.daysOfMonth.includes(d.getUTCDate());
  const dow = e.daysOfWeek.includes(d.getUTCDay());
  const day = !e.domStar && !e.dowStar ? dom || dow : dom && dow;
  return (
    day &&
    e.months.includes(d.getUTCMonth() + 1) &&
    e.hours.includes(d.getUTCHours()) &&
    e.minutes.includes(d.getUTCMinutes()) &&
    e.seconds.includes(d.getUTCSeconds())
  );
}
