// The names a person reads and types for alerts and heal attempts, and the one way a time is shown.
// `approve` acts on what parseRef returns: anything it reads wrongly approves the wrong thing.
import { describe, expect, it } from 'vitest';
import { parseRef, refOf } from '../../src/model.js';
import { readableTime } from '../../src/schedule/instants.js';

describe('alert and heal IDs', () => {
  it('are written with a letter that says which series they are from', () => {
    expect(refOf('alert', 12)).toBe('A-12');
    expect(refOf('heal', 4)).toBe('H-4');
  });

  it.each([
    ['H-4', 4],
    ['h-4', 4],
    ['H4', 4],
    ['4', 4],
    ['#4', 4],
    [' H-4 ', 4],
    ['H-9007199254740991', 9007199254740991],
  ])('reads %j as heal %d', (text, id) => {
    expect(parseRef('heal', text)).toEqual({ id });
  });

  it.each(['', 'H-', 'H-0', '0', 'H-4x', '4.5', '--4', 'H--4', 'HH-4', 'H-9007199254740992', 'H-1e3', 'heal 4'])(
    'refuses %j as a heal ID, saying what one looks like',
    (text) => {
      const r = parseRef('heal', text);
      expect(r).toHaveProperty('error');
      expect((r as { error: string }).error).toMatch(/H-4|A- \(alerts\) or H-/);
    },
  );

  it("refuses the other series' ID, naming what it is, so `approve A-12` approves nothing", () => {
    expect(parseRef('heal', 'A-12')).toEqual({ error: 'A-12 is an alert, not a heal attempt: this command takes a heal ID (H-…)' });
    expect(parseRef('heal', 'a12')).toEqual({ error: 'A-12 is an alert, not a heal attempt: this command takes a heal ID (H-…)' });
    expect(parseRef('alert', 'H-4')).toEqual({ error: 'H-4 is a heal attempt, not an alert: this command takes an alert ID (A-…)' });
    expect(parseRef('heal', 'X-4')).toEqual({ error: '"X-4": IDs start with A- (alerts) or H- (heal attempts)' });
  });
});

describe('readableTime', () => {
  const t = Date.UTC(2026, 11, 4, 22, 41, 7);
  it("shows the zone's wall clock with its offset, to the minute or the second", () => {
    expect(readableTime(t, 'Europe/Berlin')).toBe('2026-12-04 23:41 +01:00');
    expect(readableTime(t, 'Europe/Berlin', true)).toBe('2026-12-04 23:41:07 +01:00');
    expect(readableTime(t, 'Asia/Kolkata')).toBe('2026-12-05 04:11 +05:30');
    expect(readableTime(t, 'America/New_York')).toBe('2026-12-04 17:41 -05:00');
  });

  it('says UTC for the UTC zones, and the offset for a zone that is only at +00:00 in winter', () => {
    for (const z of ['UTC', 'Etc/UTC', 'GMT', 'Etc/GMT']) expect(readableTime(t, z)).toBe('2026-12-04 22:41 UTC');
    expect(readableTime(t, 'Europe/London')).toBe('2026-12-04 22:41 +00:00');
  });
});
