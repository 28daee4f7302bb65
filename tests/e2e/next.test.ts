// `nightshift next` prints the instants the scheduler will use (one source of instants).
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, cli, makeHome } from '../support/helpers.js';

const home = makeHome({
  'zurich-fixed': 'schedule: "30 2 * * *"\ntimezone: Europe/Zurich\ncommand: ["true"]\n',
  'zurich-wild': 'schedule: "*/30 * * * *"\ntimezone: Europe/Zurich\ncommand: ["true"]\n',
  'ny-fixed': 'schedule: "30 1 * * *"\ntimezone: America/New_York\ncommand: ["true"]\n',
  'ny-skipped': 'schedule: "30 2 * * *"\ntimezone: America/New_York\ncommand: ["true"]\n',
  'ny-wild': 'schedule: "*/30 * * * *"\ntimezone: America/New_York\ncommand: ["true"]\n',
  seconds: 'schedule: "*/20 * * * * *"\ntimezone: UTC\ncommand: ["true"]\n',
  interval: 'every: 90m\ncommand: ["true"]\n',
  manual: 'command: ["true"]\n',
});
afterAll(() => cleanup(home));

const next = async (job: string, from: string, count: number) => {
  const r = await cli(['--home', home, 'next', job, '--from', from, '--count', String(count)]);
  expect(r.exitCode, r.stderr).toBe(0);
  return r.stdout.trim().split('\n');
};

describe('nightshift next', () => {
  it('Zurich spring forward: the 02:30 job runs at 03:00, wildcard jobs keep their real interval', async () => {
    expect(await next('zurich-fixed', '2026-03-28T12:00:00+01:00', 3)).toEqual([
      '2026-03-29T03:00:00+02:00',
      '2026-03-30T02:30:00+02:00',
      '2026-03-31T02:30:00+02:00',
    ]);
    expect(await next('zurich-wild', '2026-03-29T01:00:00+01:00', 4)).toEqual([
      '2026-03-29T01:30:00+01:00',
      '2026-03-29T03:00:00+02:00',
      '2026-03-29T03:30:00+02:00',
      '2026-03-29T04:00:00+02:00',
    ]);
  });

  it('Zurich fall back: the 02:30 job runs once, wildcard jobs run in both passes of the hour', async () => {
    expect(await next('zurich-fixed', '2026-10-24T12:00:00+02:00', 3)).toEqual([
      '2026-10-25T02:30:00+02:00',
      '2026-10-26T02:30:00+01:00',
      '2026-10-27T02:30:00+01:00',
    ]);
    expect(await next('zurich-wild', '2026-10-25T01:45:00+02:00', 6)).toEqual([
      '2026-10-25T02:00:00+02:00',
      '2026-10-25T02:30:00+02:00',
      '2026-10-25T02:00:00+01:00',
      '2026-10-25T02:30:00+01:00',
      '2026-10-25T03:00:00+01:00',
      '2026-10-25T03:30:00+01:00',
    ]);
  });

  it('New York spring forward and fall back', async () => {
    expect(await next('ny-skipped', '2026-03-07T12:00:00-05:00', 2)).toEqual(['2026-03-08T03:00:00-04:00', '2026-03-09T02:30:00-04:00']);
    expect(await next('ny-wild', '2026-03-08T01:15:00-05:00', 3)).toEqual([
      '2026-03-08T01:30:00-05:00',
      '2026-03-08T03:00:00-04:00',
      '2026-03-08T03:30:00-04:00',
    ]);
    expect(await next('ny-fixed', '2026-10-31T12:00:00-04:00', 2)).toEqual(['2026-11-01T01:30:00-04:00', '2026-11-02T01:30:00-05:00']);
    expect(await next('ny-wild', '2026-11-01T00:45:00-04:00', 5)).toEqual([
      '2026-11-01T01:00:00-04:00',
      '2026-11-01T01:30:00-04:00',
      '2026-11-01T01:00:00-05:00',
      '2026-11-01T01:30:00-05:00',
      '2026-11-01T02:00:00-05:00',
    ]);
  });

  it('seconds field, every, and jobs without a schedule', async () => {
    expect(await next('seconds', '2026-01-01T00:00:00Z', 3)).toEqual([
      '2026-01-01T00:00:20+00:00',
      '2026-01-01T00:00:40+00:00',
      '2026-01-01T00:01:00+00:00',
    ]);
    const iv = await next('interval', '2026-01-01T00:00:00Z', 2);
    expect(Date.parse(iv[1]!) - Date.parse(iv[0]!)).toBe(90 * 60_000);
    const m = await cli(['--home', home, 'next', 'manual']);
    expect(m.stdout).toContain('runs only when asked');
    const json = JSON.parse(
      (await cli(['--home', home, 'next', 'zurich-fixed', '--from', '2026-03-29T00:00:00Z', '--count', '1', '--json'])).stdout,
    );
    expect(json).toEqual({
      job: 'zurich-fixed',
      timezone: 'Europe/Zurich',
      instants: ['2026-03-29T03:00:00+02:00'],
      lastGoodVersionFrom: null,
    });
    const unknown = await cli(['--home', home, 'next', 'ghost']);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toContain('no valid job named "ghost"');
  });
});
