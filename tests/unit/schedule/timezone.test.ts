// Offsets come from the system's tz database (TZif files) and fall back to Intl. The two must
// agree: every offset change of well-known zones over seven decades, from the TZif tables and
// from the POSIX rule of their footer (years after the tables), is compared with Intl's.
import { readFileSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  intlYear,
  isValidTimeZone,
  offsetAt,
  parsePosixTz,
  parseTzif,
  systemTimeZone,
  transitionsBetween,
} from '../../../src/schedule/timezone.js';

// Zones whose rules did not change in recent tzdata releases, so that Node's ICU and the
// machine's tzdata agree even when their versions differ.
const ZONES = [
  'UTC',
  'Europe/Zurich',
  'Europe/London',
  'Europe/Berlin',
  'Europe/Paris',
  'Europe/Helsinki',
  'America/New_York',
  'America/Chicago',
  'America/Denver',
  'America/Los_Angeles',
  'America/Phoenix',
  'America/Halifax',
  'America/St_Johns',
  'America/Sao_Paulo',
  'Australia/Sydney',
  'Australia/Adelaide',
  'Australia/Lord_Howe',
  'Pacific/Auckland',
  'Pacific/Chatham',
  'Asia/Kolkata',
  'Asia/Kathmandu',
  'Asia/Tokyo',
  'Asia/Shanghai',
  'Africa/Johannesburg',
  'Atlantic/Azores',
  'Asia/Tehran',
];

const yearStart = (y: number): number => Date.UTC(y, 0, 1);

describe('time zones from the tz database', () => {
  it('finds every offset change Intl finds, 1970-2045, in 26 zones (tables and footer rules)', () => {
    let compared = 0;
    for (const tz of ZONES) {
      for (let y = 1970; y <= 2045; y += y < 2030 ? 3 : 1) {
        const from = yearStart(y);
        const to = yearStart(y + 1);
        const ours = transitionsBetween(tz, from, to);
        const year = intlYear(tz, from, to);
        const intl = year.transitions.filter((t) => t.at > from && t.at <= to);
        expect(ours, `${tz} ${y}`).toEqual(intl);
        expect(offsetAt(tz, from + 1), `${tz} ${y}`).toBe(year.startOffsetMs / 60_000);
        compared += intl.length;
      }
    }
    expect(compared).toBeGreaterThan(1000);
  });

  it('knows the zones of the database, and refuses names that are not zones or leave the folder', () => {
    for (const tz of ['Europe/Zurich', 'America/Argentina/Buenos_Aires', 'Etc/GMT+5', 'UTC']) expect(isValidTimeZone(tz)).toBe(true);
    const notZones = [
      'Europe/Nowhere',
      '../../etc/passwd',
      'Europe/../../etc/passwd',
      '/etc/passwd',
      'Mars/Olympus',
      '',
      'posixrules',
      'localtime',
      'Factory',
      'posix/Europe/Zurich',
      'right/Europe/Zurich',
    ];
    for (const tz of notZones) expect(isValidTimeZone(tz), tz).toBe(false);
    expect(isValidTimeZone(systemTimeZone())).toBe(true);
  });

  it('takes the machine zone from $TZ (a name, :name or a zoneinfo path), else /etc/localtime', () => {
    const saved = process.env.TZ;
    try {
      for (const [tz, zone] of [
        ['Europe/Zurich', 'Europe/Zurich'],
        [':America/New_York', 'America/New_York'],
        ['/usr/share/zoneinfo/Asia/Tokyo', 'Asia/Tokyo'],
      ]) {
        process.env.TZ = tz;
        expect(systemTimeZone(), tz).toBe(zone);
      }
      delete process.env.TZ;
      const link = /\/zoneinfo\/(.+)$/.exec(readlinkSync('/etc/localtime'))?.[1];
      expect(systemTimeZone()).toBe(link ?? new Intl.DateTimeFormat().resolvedOptions().timeZone);
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  it('reads POSIX rules: northern, southern, fixed, quoted names, J and n days, times past midnight', () => {
    expect(parsePosixTz('CET-1CEST,M3.5.0,M10.5.0/3')).toEqual({
      std: 3_600_000,
      dst: 7_200_000,
      start: { kind: 'M', month: 3, week: 5, weekday: 0, time: 7200 },
      end: { kind: 'M', month: 10, week: 5, weekday: 0, time: 10800 },
    });
    expect(parsePosixTz('<+0530>-5:30')).toBe(19_800_000);
    expect(parsePosixTz('EST5EDT,M3.2.0,M11.1.0')).toMatchObject({ std: -18_000_000, dst: -14_400_000 });
    expect(parsePosixTz('<-03>3<-02>,J60/-1,300/25')).toMatchObject({
      start: { kind: 'J', day: 60, time: -3600 },
      end: { kind: 'n', day: 300, time: 90000 },
    });
    for (const bad of [
      '',
      'CET',
      'CET-1CEST,M13.1.0,M10.5.0',
      'CET-1CEST,J0,J400',
      'X1',
      'CET-1CEST,M3.5.0/x,M10.5.0',
      'CET-1CEST,M3.5.0/,M10.5.0',
    ]) {
      expect(parsePosixTz(bad), bad).toBeNull();
    }
  });

  it('refuses TZif files that are truncated, not TZif, or count leap seconds', () => {
    const zurich = readFileSync('/usr/share/zoneinfo/Europe/Zurich');
    expect(parseTzif(zurich)).not.toBeNull();
    expect(parseTzif(Buffer.from('not a zone file at all, just some text here......'))).toBeNull();
    expect(parseTzif(zurich.subarray(0, 60))).toBeNull();
    expect(parseTzif(zurich.subarray(0, zurich.length - 200))).toBeNull();
    // Debian ships the leap-second variants in right/: their leapcnt is not 0.
    const right = readFileSync('/usr/share/zoneinfo/right/Europe/Zurich');
    expect(right.readUInt32BE(28)).toBeGreaterThan(0);
    expect(parseTzif(right)).toBeNull();
  });
});
