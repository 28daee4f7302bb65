import { describe, it, expect, vi, afterEach } from 'vitest';
import cron from 'node-cron';
import { matchesNaive, parseCron } from '../../../src/schedule/cron.js';
import { mulberry32, randomExpr } from '../../support/random-cron.js';
import { formatInstant, nextAfter, nextInstants, type Schedule } from '../../../src/schedule/instants.js';
import { isValidTimeZone, offsetAt, systemTimeZone, transitionsBetween } from '../../../src/schedule/timezone.js';

const at = (isoWithOffset: string): number => {
  const t = Date.parse(isoWithOffset);
  if (Number.isNaN(t)) throw new Error(`bad test date ${isoWithOffset}`);
  return t;
};

const cronIn = (expr: string, tz: string): Schedule => ({ kind: 'cron', expr: parseCron(expr), tz });

/** The next `count` runs strictly after `from`, as ISO strings in the job's zone. */
function runs(expr: string, tz: string, from: string, count: number): string[] {
  return nextInstants(cronIn(expr, tz), at(from), count).map((t) => formatInstant(t, tz));
}

describe('timezone', () => {
  it('validates zone names, including UTC', () => {
    expect(isValidTimeZone('UTC')).toBe(true);
    expect(isValidTimeZone('Europe/Zurich')).toBe(true);
    expect(isValidTimeZone('America/New_York')).toBe(true);
    expect(isValidTimeZone('Mars/Olympus_Mons')).toBe(false);
    expect(isValidTimeZone('')).toBe(false);
    expect(isValidTimeZone(systemTimeZone())).toBe(true);
  });

  it('gives offsets in minutes', () => {
    expect(offsetAt('UTC', at('2026-07-01T00:00Z'))).toBe(0);
    expect(offsetAt('Europe/Zurich', at('2026-01-15T12:00Z'))).toBe(60);
    expect(offsetAt('Europe/Zurich', at('2026-07-15T12:00Z'))).toBe(120);
    expect(offsetAt('America/New_York', at('2026-01-15T12:00Z'))).toBe(-300);
    expect(offsetAt('Asia/Kolkata', at('2026-01-15T12:00Z'))).toBe(330);
    expect(offsetAt('Australia/Lord_Howe', at('2026-01-15T12:00Z'))).toBe(660);
    expect(offsetAt('Australia/Lord_Howe', at('2026-07-15T12:00Z'))).toBe(630);
    // Exactly at a change the new offset applies; one second before, the old one.
    expect(offsetAt('Europe/Zurich', at('2026-03-29T01:00:00Z'))).toBe(120);
    expect(offsetAt('Europe/Zurich', at('2026-03-29T00:59:59Z'))).toBe(60);
  });

  it('finds the exact changes', () => {
    const year = (tz: string) =>
      transitionsBetween(tz, at('2026-01-01T00:00Z'), at('2027-01-01T00:00Z')).map(
        (t) => `${new Date(t.at).toISOString()} ${t.before}->${t.after}`,
      );
    expect(year('Europe/Zurich')).toEqual(['2026-03-29T01:00:00.000Z 60->120', '2026-10-25T01:00:00.000Z 120->60']);
    expect(year('America/New_York')).toEqual(['2026-03-08T07:00:00.000Z -300->-240', '2026-11-01T06:00:00.000Z -240->-300']);
    expect(year('Australia/Lord_Howe')).toEqual(['2026-04-04T15:00:00.000Z 660->630', '2026-10-03T15:30:00.000Z 630->660']);
    expect(year('UTC')).toEqual([]);
    expect(year('Asia/Tokyo')).toEqual([]);
    // Across year boundaries, and (from, to] bounds.
    const z = transitionsBetween('Europe/Zurich', at('2025-06-01T00:00Z'), at('2027-06-01T00:00Z'));
    expect(z).toHaveLength(4);
    expect(transitionsBetween('Europe/Zurich', at('2026-03-29T01:00Z'), at('2026-10-25T01:00Z')).map((t) => t.after)).toEqual([60]);
  });

  it('agrees with Intl at random instants', () => {
    const rand = mulberry32(7);
    for (const tz of ['Europe/Zurich', 'America/New_York', 'Australia/Lord_Howe', 'America/Sao_Paulo', 'Asia/Tehran']) {
      const f = new Intl.DateTimeFormat('en-US', { timeZone: tz, timeZoneName: 'longOffset' });
      for (let i = 0; i < 200; i++) {
        const t = at('2015-01-01T00:00Z') + Math.floor(rand() * 15 * 365 * 86_400) * 1000;
        const name = f.formatToParts(t).find((p) => p.type === 'timeZoneName')!.value; // "GMT+05:30" or "GMT"
        const m = /^GMT(?:([+-])(\d\d):(\d\d))?$/.exec(name)!;
        const expected = m[1] ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
        expect(offsetAt(tz, t), `${tz} ${new Date(t).toISOString()}`).toBe(expected);
      }
    }
  });

  it('refuses an unknown zone with a clear message', () => {
    expect(() => offsetAt('Europe/Atlantis', 0)).toThrow('unknown time zone "Europe/Atlantis"');
  });
});

describe('formatInstant', () => {
  it('writes ISO 8601 with the zone offset and seconds, never Z', () => {
    expect(formatInstant(at('2026-03-29T01:00:00Z'), 'Europe/Zurich')).toBe('2026-03-29T03:00:00+02:00');
    expect(formatInstant(at('2026-01-05T08:09:07.999Z'), 'UTC')).toBe('2026-01-05T08:09:07+00:00');
    expect(formatInstant(at('2026-01-05T08:09:07Z'), 'America/New_York')).toBe('2026-01-05T03:09:07-05:00');
    expect(formatInstant(at('2026-01-05T08:09:07Z'), 'Asia/Kolkata')).toBe('2026-01-05T13:39:07+05:30');
    expect(formatInstant(at('2026-12-31T23:30:00Z'), 'Asia/Tokyo')).toBe('2027-01-01T08:30:00+09:00');
  });
});

describe('every', () => {
  it('is aligned to the Unix epoch and strictly after', () => {
    const s: Schedule = { kind: 'every', ms: 30_000 };
    expect(nextAfter(s, 0)).toBe(30_000);
    expect(nextAfter(s, 29_999)).toBe(30_000);
    expect(nextAfter(s, 30_000)).toBe(60_000);
    expect(nextAfter(s, at('2026-05-01T10:00:10.500Z'))).toBe(at('2026-05-01T10:00:30Z'));
    const hourly: Schedule = { kind: 'every', ms: 3_600_000 };
    expect(nextInstants(hourly, at('2026-05-01T10:20Z'), 3).map((t) => formatInstant(t, 'Europe/Zurich'))).toEqual([
      '2026-05-01T13:00:00+02:00',
      '2026-05-01T14:00:00+02:00',
      '2026-05-01T15:00:00+02:00',
    ]);
    // A 7-minute interval does not line up with the hour: still the same instants after a restart.
    const seven: Schedule = { kind: 'every', ms: 7 * 60_000 };
    const a = nextInstants(seven, at('2026-05-01T10:00Z'), 5);
    const b = nextInstants(seven, a[1]! - 1, 3);
    expect(b).toEqual(a.slice(1, 4));
    expect(a.every((t) => t % (7 * 60_000) === 0)).toBe(true);
  });

  it('ignores daylight saving: a real interval', () => {
    const s: Schedule = { kind: 'every', ms: 3_600_000 };
    expect(nextInstants(s, at('2026-10-25T00:30+02:00'), 4).map((t) => formatInstant(t, 'Europe/Zurich'))).toEqual([
      '2026-10-25T01:00:00+02:00',
      '2026-10-25T02:00:00+02:00',
      '2026-10-25T02:00:00+01:00',
      '2026-10-25T03:00:00+01:00',
    ]);
  });

  it('refuses a non-positive interval', () => {
    expect(() => nextAfter({ kind: 'every', ms: 0 }, 0)).toThrow(RangeError);
  });
});

describe('cron in UTC and without transitions', () => {
  it('counts instants and is strictly after', () => {
    expect(runs('0 9 * * mon-fri', 'UTC', '2026-05-01T09:00:00Z', 3)).toEqual([
      '2026-05-04T09:00:00+00:00',
      '2026-05-05T09:00:00+00:00',
      '2026-05-06T09:00:00+00:00',
    ]);
    expect(nextInstants(cronIn('* * * * *', 'UTC'), 0, 0)).toEqual([]);
    expect(nextInstants(cronIn('* * * * *', 'UTC'), 0, 120)).toHaveLength(120);
    expect(runs('*/20 * * * * *', 'UTC', '2026-05-01T09:00:00.500Z', 2)).toEqual([
      '2026-05-01T09:00:20+00:00',
      '2026-05-01T09:00:40+00:00',
    ]);
    expect(runs('0 0 1 1 *', 'Asia/Tokyo', '2026-06-01T00:00Z', 2)).toEqual(['2027-01-01T00:00:00+09:00', '2028-01-01T00:00:00+09:00']);
  });

  it('returns fewer instants when the schedule ends within the horizon', () => {
    // Feb 29 on a Sunday or Thursday: 2032-02-29 (Sun), then nothing until 2052.
    expect(runs('0 0 29 2 */4', 'UTC', '2026-01-01T00:00Z', 3)).toEqual(['2032-02-29T00:00:00+00:00']);
    expect(nextAfter(cronIn('0 0 29 2 */4', 'UTC'), at('2033-01-01T00:00Z'))).toBeNull();
  });
});

describe('Europe/Zurich daylight saving (Debian rule)', () => {
  const tz = 'Europe/Zurich';

  it('spring forward 2026-03-29: a fixed-time job in the skipped hour runs right after the change', () => {
    expect(runs('30 2 * * *', tz, '2026-03-28T12:00+01:00', 3)).toEqual([
      '2026-03-29T03:00:00+02:00',
      '2026-03-30T02:30:00+02:00',
      '2026-03-31T02:30:00+02:00',
    ]);
    // Several skipped times coalesce into one run; a job at 03:00 is not run twice either.
    expect(runs('0,15,30,45 2 * * *', tz, '2026-03-29T01:50+01:00', 2)).toEqual(['2026-03-29T03:00:00+02:00', '2026-03-30T02:00:00+02:00']);
    expect(runs('30 2,3 * * *', tz, '2026-03-29T00:00+01:00', 3)).toEqual([
      '2026-03-29T03:00:00+02:00',
      '2026-03-29T03:30:00+02:00',
      '2026-03-30T02:30:00+02:00',
    ]);
    // A 6-field fixed-time job (seconds) too.
    expect(runs('15 30 2 * * *', tz, '2026-03-29T00:00+01:00', 1)).toEqual(['2026-03-29T03:00:00+02:00']);
  });

  it('spring forward: wildcard jobs keep the real interval and have no runs in the gap', () => {
    expect(runs('*/30 * * * *', tz, '2026-03-29T01:00+01:00', 3)).toEqual([
      '2026-03-29T01:30:00+01:00',
      '2026-03-29T03:00:00+02:00',
      '2026-03-29T03:30:00+02:00',
    ]);
    // Wildcard in the minute: "every minute of 2 o'clock" has no 2 o'clock that day.
    expect(runs('* 2 * * *', tz, '2026-03-29T00:00+01:00', 1)).toEqual(['2026-03-30T02:00:00+02:00']);
  });

  it('fall back 2026-10-25: a fixed-time job in the repeated hour runs once, at the first pass', () => {
    expect(runs('30 2 * * *', tz, '2026-10-24T12:00+02:00', 3)).toEqual([
      '2026-10-25T02:30:00+02:00',
      '2026-10-26T02:30:00+01:00',
      '2026-10-27T02:30:00+01:00',
    ]);
    // From inside the second pass: already ran this wall-clock time.
    expect(runs('30 2 * * *', tz, '2026-10-25T02:10+01:00', 1)).toEqual(['2026-10-26T02:30:00+01:00']);
    // From inside the first pass, before 02:30.
    expect(runs('30 2 * * *', tz, '2026-10-25T02:10+02:00', 2)).toEqual(['2026-10-25T02:30:00+02:00', '2026-10-26T02:30:00+01:00']);
    // A fixed-time job after the repeated span still runs normally.
    expect(runs('15 3 * * *', tz, '2026-10-25T02:10+01:00', 1)).toEqual(['2026-10-25T03:15:00+01:00']);
  });

  it('fall back: wildcard jobs run in both passes, every real half hour', () => {
    expect(runs('*/30 * * * *', tz, '2026-10-25T01:50+02:00', 5)).toEqual([
      '2026-10-25T02:00:00+02:00',
      '2026-10-25T02:30:00+02:00',
      '2026-10-25T02:00:00+01:00',
      '2026-10-25T02:30:00+01:00',
      '2026-10-25T03:00:00+01:00',
    ]);
    expect(runs('*/30 * * * *', tz, '2026-10-25T02:10+01:00', 2)).toEqual(['2026-10-25T02:30:00+01:00', '2026-10-25T03:00:00+01:00']);
    expect(runs('@hourly', tz, '2026-10-25T01:30+02:00', 3)).toEqual([
      '2026-10-25T02:00:00+02:00',
      '2026-10-25T02:00:00+01:00',
      '2026-10-25T03:00:00+01:00',
    ]);
  });
});

describe('America/New_York daylight saving (Debian rule)', () => {
  const tz = 'America/New_York';

  it('spring forward 2026-03-08 (02:00 EST -> 03:00 EDT)', () => {
    expect(runs('30 2 * * *', tz, '2026-03-07T12:00-05:00', 2)).toEqual(['2026-03-08T03:00:00-04:00', '2026-03-09T02:30:00-04:00']);
    expect(runs('30 1 * * *', tz, '2026-03-07T12:00-05:00', 2)).toEqual(['2026-03-08T01:30:00-05:00', '2026-03-09T01:30:00-04:00']);
    expect(runs('*/15 * * * *', tz, '2026-03-08T01:30-05:00', 3)).toEqual([
      '2026-03-08T01:45:00-05:00',
      '2026-03-08T03:00:00-04:00',
      '2026-03-08T03:15:00-04:00',
    ]);
  });

  it('fall back 2026-11-01 (02:00 EDT -> 01:00 EST)', () => {
    expect(runs('30 1 * * *', tz, '2026-10-31T12:00-04:00', 2)).toEqual(['2026-11-01T01:30:00-04:00', '2026-11-02T01:30:00-05:00']);
    expect(runs('30 1 * * *', tz, '2026-11-01T01:10-05:00', 1)).toEqual(['2026-11-02T01:30:00-05:00']);
    // 02:30 exists once (in EST); it is not part of the repeated hour.
    expect(runs('30 2 * * *', tz, '2026-10-31T12:00-04:00', 2)).toEqual(['2026-11-01T02:30:00-05:00', '2026-11-02T02:30:00-05:00']);
    expect(runs('*/15 * * * *', tz, '2026-11-01T00:50-04:00', 10)).toEqual([
      '2026-11-01T01:00:00-04:00',
      '2026-11-01T01:15:00-04:00',
      '2026-11-01T01:30:00-04:00',
      '2026-11-01T01:45:00-04:00',
      '2026-11-01T01:00:00-05:00',
      '2026-11-01T01:15:00-05:00',
      '2026-11-01T01:30:00-05:00',
      '2026-11-01T01:45:00-05:00',
      '2026-11-01T02:00:00-05:00',
      '2026-11-01T02:15:00-05:00',
    ]);
    expect(runs('*/15 * * * *', tz, '2026-11-01T01:40-05:00', 2)).toEqual(['2026-11-01T01:45:00-05:00', '2026-11-01T02:00:00-05:00']);
  });
});

describe('other zones', () => {
  it('Australia/Lord_Howe shifts by 30 minutes', () => {
    const tz = 'Australia/Lord_Howe';
    // 2026-10-04 02:00 +10:30 -> 02:30 +11:00
    expect(runs('15 2 * * *', tz, '2026-10-03T12:00+10:30', 2)).toEqual(['2026-10-04T02:30:00+11:00', '2026-10-05T02:15:00+11:00']);
    // 2026-04-05 02:00 +11:00 -> 01:30 +10:30
    expect(runs('45 1 * * *', tz, '2026-04-04T12:00+11:00', 2)).toEqual(['2026-04-05T01:45:00+11:00', '2026-04-06T01:45:00+10:30']);
    expect(runs('*/20 * * * *', tz, '2026-04-05T01:30+11:00', 4)).toEqual([
      '2026-04-05T01:40:00+11:00',
      '2026-04-05T01:40:00+10:30',
      '2026-04-05T02:00:00+10:30',
      '2026-04-05T02:20:00+10:30',
    ]);
  });

  it('a change of 3 hours or more is a correction: no catch-up (Samoa skipped 2011-12-30)', () => {
    expect(runs('0 12 * * *', 'Pacific/Apia', '2011-12-29T00:00-10:00', 2)).toEqual([
      '2011-12-29T12:00:00-10:00',
      '2011-12-31T12:00:00+14:00',
    ]);
  });
});

describe('Debian rule against a minute-by-minute reference', () => {
  // The reference asks, for every whole minute, "does the job run now?" using only offsets,
  // independently of the segment walk.
  function reference(expr: string, tz: string, from: number, to: number): number[] {
    const e = parseCron(expr);
    const off = (t: number) => offsetAt(tz, t) * 60_000;
    const out: number[] = [];
    for (let t = from + 60_000; t <= to; t += 60_000) {
      const naive = t + off(t);
      let run = matchesNaive(e, naive);
      if (e.fixedTime) {
        // Wall-clock time already seen before clocks went back (by < 3 h).
        for (const back of [30, 60, 120]) {
          if (off(t - back * 60_000) - off(t) === back * 60_000) run = false;
        }
        // First instant after a forward jump (< 3 h): catch up the skipped wall-clock times.
        const jump = off(t) - off(t - 60_000);
        if (jump > 0 && jump < 3 * 3_600_000) {
          for (let n = t - 60_000 + off(t - 60_000) + 60_000; n < naive; n += 60_000) {
            if (matchesNaive(e, n)) run = true;
          }
        }
      }
      if (run) out.push(t);
    }
    return out;
  }

  const hourFields = ['1', '2', '3', '1-3', '2,3', '0-4/2', '*', '*/2', '1,2'];
  const minuteFields = ['0', '30', '15,45', '*/20', '*/30', '*', '5-10', '59'];
  const cases: [string, string][] = [
    ['Europe/Zurich', '2026-03-29T01:00Z'],
    ['Europe/Zurich', '2026-10-25T01:00Z'],
    ['America/New_York', '2026-03-08T07:00Z'],
    ['America/New_York', '2026-11-01T06:00Z'],
    ['Australia/Lord_Howe', '2026-04-04T15:00Z'],
    ['Australia/Lord_Howe', '2026-10-03T15:30Z'],
  ];

  it.each(cases)('%s around %s', (tz, change) => {
    const from = at(change) - 6 * 3_600_000;
    const to = at(change) + 6 * 3_600_000;
    for (const h of hourFields) {
      for (const m of minuteFields) {
        const expr = `${m} ${h} * * *`;
        const expected = reference(expr, tz, from, to);
        const got = nextInstants(cronIn(expr, tz), from, expected.length + 1).filter((t) => t <= to);
        const fmt = (ts: number[]) => ts.map((t) => formatInstant(t, tz));
        expect(fmt(got), expr).toEqual(fmt(expected));
        // Each instant found again from just before it, and from an arbitrary point in between.
        for (let i = 1; i < got.length; i++) {
          expect(nextAfter(cronIn(expr, tz), got[i]! - 1000), expr).toBe(got[i]);
        }
      }
    }
  });
});

describe('cross-check with node-cron 4 where no daylight-saving change intervenes', () => {
  // node-cron's getNextRuns(n) counts from "now", so "now" is set with a fake Date. It ANDs
  // day-of-month and day-of-week, so expressions here keep at least one of them "*".
  afterEach(() => {
    vi.useRealTimers();
  });

  it.each([
    ['Europe/Zurich', '2026-04-01T00:00Z', '2026-10-20T00:00Z'],
    ['America/New_York', '2026-03-15T00:00Z', '2026-10-25T00:00Z'],
    ['Asia/Kolkata', '2026-01-01T00:00Z', '2027-01-01T00:00Z'],
  ])('random expressions in %s', async (tz, startIso, endIso) => {
    const rand = mulberry32(tz.length * 1000 + 1);
    const start = at(startIso);
    const end = at(endIso);
    let compared = 0;
    vi.useFakeTimers({ toFake: ['Date'] });
    for (let i = 0; i < 120; i++) {
      const expr = randomExpr(rand, { seconds: i % 4 === 0, allowOr: false });
      let ours: ReturnType<typeof parseCron>;
      try {
        ours = parseCron(expr);
      } catch {
        continue;
      }
      const from = start + Math.floor((rand() * (end - start - 30 * 86_400_000)) / 1000) * 1000;
      vi.setSystemTime(from);
      const task = cron.createTask(expr, () => undefined, { timezone: tz });
      let theirs: number[];
      try {
        theirs = task
          .getNextRuns(5)
          .map((d) => d.getTime())
          .filter((t) => t < end);
      } finally {
        await task.destroy();
      }
      const mine = nextInstants({ kind: 'cron', expr: ours, tz }, from, 5).filter((t) => t < end);
      expect(
        mine.map((t) => formatInstant(t, tz)),
        `${expr} from ${formatInstant(from, tz)}`,
      ).toEqual(theirs.map((t) => formatInstant(t, tz)));
      compared += mine.length;
    }
    expect(compared).toBeGreaterThan(200);
  });
});

describe('many schedules', () => {
  // Timing lives in bench/ (no timed assertions in tests); this checks that warm caches change nothing.
  it('gives the same instants cold and warm for 10,000 random cron jobs in 3 zones', () => {
    const zones = ['Europe/Berlin', 'America/Chicago', 'Australia/Sydney'];
    const rand = mulberry32(2026);
    const exprs: string[] = [];
    while (exprs.length < 10_000) {
      const expr = randomExpr(rand, { seconds: exprs.length % 10 === 0, allowOr: true });
      try {
        parseCron(expr);
        exprs.push(expr);
      } catch {
        // random fields can form an impossible date; skip those
      }
    }
    const afters = exprs.map(() => at('2026-01-01T00:00Z') + Math.floor(rand() * 365 * 86_400_000));
    const schedules = exprs.map((expr, i): Schedule => ({ kind: 'cron', expr: parseCron(expr), tz: zones[i % 3]! }));
    const first = schedules.map((s, i) => nextAfter(s, afters[i]!));
    const second = schedules.map((s, i) => nextAfter(s, afters[i]!));
    expect(second).toEqual(first);
    for (let i = 0; i < schedules.length; i++) if (first[i] !== null) expect(first[i]!).toBeGreaterThan(afters[i]!);
    expect(first.filter((t) => t === null).length).toBeLessThan(100);
  });
});
