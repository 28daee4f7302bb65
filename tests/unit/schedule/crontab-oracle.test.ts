// Validity as Debian's own crontab decides it, both ways: tests/fixtures/crontab-verdicts.json
// holds the verdicts of `crontab -n` (Debian's cron package) for a seeded corpus of five-field
// expressions and nicknames, recorded by tests/support/record-crontab-verdicts.mjs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CronError, nextMatchNaive, parseCron } from '../../../src/schedule/cron.js';
import { FIXTURES } from '../../support/helpers.js';

interface Verdicts {
  oracle: string;
  count: number;
  verdicts: Array<{ expr: string; valid: boolean }>;
}
const recorded = JSON.parse(readFileSync(join(FIXTURES, 'crontab-verdicts.json'), 'utf8')) as Verdicts;

function accepts(expr: string): boolean {
  try {
    parseCron(expr);
    return true;
  } catch (err) {
    if (!(err instanceof CronError)) throw err;
    return false;
  }
}

describe("cron validity matches Debian's crontab", () => {
  it(`agrees on every expression of the recorded corpus (${recorded.count}, ${recorded.oracle})`, () => {
    expect(recorded.verdicts.length).toBe(recorded.count);
    // Both kinds are in the corpus in numbers, so agreement is not one-sided by construction.
    expect(recorded.verdicts.filter((v) => v.valid).length).toBeGreaterThan(recorded.count / 5);
    expect(recorded.verdicts.filter((v) => !v.valid).length).toBeGreaterThan(recorded.count / 5);
    const disagreements = recorded.verdicts
      .filter((v) => accepts(v.expr) !== v.valid)
      .map((v) => `${JSON.stringify(v.expr)}: crontab ${v.valid ? 'accepts' : 'refuses'}, nightshift ${v.valid ? 'refuses' : 'accepts'}`);
    expect(disagreements).toEqual([]);
  });

  it('takes a step larger than its field as the first value only (1 1 */100,1-7 * MON)', () => {
    const e = parseCron('1 1 */100,1-7 * MON');
    expect(e.daysOfMonth).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(parseCron('0 0 */32 * *').daysOfMonth).toEqual([1]);
    expect(parseCron('*/60 * * * *').minutes).toEqual([0]);
  });

  it('accepts what never runs, as crontab does, and says why (validate warns)', () => {
    const backwards = parseCron('5-1 * * * *');
    expect(backwards.never).toMatch(/its minute field sets no value/);
    expect(backwards.notes.join()).toMatch(/range 5-1 goes backwards/);
    expect(nextMatchNaive(backwards, Date.UTC(2026, 0, 1), true)).toBeNull();
    expect(parseCron('0 0 30 2 *').never).toMatch(/February has no day 30/);
    // A backwards part of a list sets nothing, the rest still runs.
    const partly = parseCron('1,5-1 * * * *');
    expect(partly.never).toBeNull();
    expect(partly.minutes).toEqual([1]);
    expect(partly.notes).toHaveLength(1);
    // Both day fields restricted: either may supply the day, so an empty weekday is no harm.
    expect(parseCron('0 0 1 * 5-1').never).toBeNull();
    expect(parseCron('0 0 * * 5-1').never).toMatch(/day-of-week field sets no day/);
  });

  it('refuses what crontab refuses, with a hint', () => {
    expect(() => parseCron('17/10 * * * *')).toThrow(/a step needs a range: write 17-59\/10 or \*\/10/);
    expect(() => parseCron('@DAILY')).toThrow(/nicknames are lower case \(@daily\)/);
  });
});
