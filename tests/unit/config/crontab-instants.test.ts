// Every imported line runs when cron ran it: the job file, loaded as the daemon loads it, gives over a
// whole year (2026, with its daylight-saving nights) the instants of the original line's five fields
// in the zone cron used — computed with the cron module (which follows Debian's DST rule, man 8
// cron) and, away from the DST changes, by a brute-force walk over every minute of the year with a
// matcher written here from crontab(5). A mapping bug (a dropped Sunday 7, @hourly read as a fixed
// time, a lost CRON_TZ, a shifted field) changes the instants and fails this test.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planImport, type ImportOptions, type PlannedJob } from '../../../src/import/plan.js';
import { parseCron } from '../../../src/schedule/cron.js';
import { nextAfter, type Schedule } from '../../../src/schedule/instants.js';
import { DEFAULT_POLICY, jobFromText } from '../../../src/config/home.js';

const FIXTURES = resolve(import.meta.dirname, '..', '..', 'fixtures', 'crontabs');
const FROM = Date.UTC(2026, 0, 1);
const TO = Date.UTC(2027, 0, 1);
const MINUTE = 60_000;
const HOUR = 3_600_000;

function instants(s: Schedule): number[] {
  const out: number[] = [];
  let t = FROM - 1;
  for (;;) {
    const n = nextAfter(s, t);
    if (n === null || n >= TO) return out;
    out.push(n);
    t = n;
  }
}

// ---- an independent reading of crontab(5), for the brute-force walk ----

const NICK: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};
const NAMES: Record<string, number> = Object.fromEntries([
  ...'jan feb mar apr may jun jul aug sep oct nov dec'.split(' ').map((m, i) => [m, i + 1]),
  ...'sun mon tue wed thu fri sat'.split(' ').map((d, i) => [d, i]),
]);

function field(text: string, min: number, max: number): Set<number> {
  const set = new Set<number>();
  const num = (s: string) => NAMES[s.toLowerCase()] ?? Number(s);
  for (const item of text.split(',')) {
    const [range = '', step = '1'] = item.split('/');
    const [a, b] = range === '*' ? [min, max] : range.includes('-') ? range.split('-').map(num) : [num(range), num(range)];
    for (let v = a!; v <= b!; v += Number(step)) set.add(v);
  }
  return set;
}

/** The five fields of a crontab line as written (after the user column is not needed: fields come first). */
function fieldsOf(lineText: string): string[] {
  const words = lineText.trim().split(/[ \t]+/);
  return words[0]!.startsWith('@') ? NICK[words[0]!]!.split(' ') : words.slice(0, 5);
}

type Local = { month: Int8Array; dom: Int8Array; dow: Int8Array; hour: Int8Array; minute: Int8Array; changes: number[] };
const locals = new Map<string, Local>();

/** The wall clock of every minute of the year in a zone (offsets from Intl, once per hour), and its offset changes. */
function localClock(tz: string): Local {
  const cached = locals.get(tz);
  if (cached) return cached;
  const n = (TO - FROM) / MINUTE;
  const l: Local = {
    month: new Int8Array(n),
    dom: new Int8Array(n),
    dow: new Int8Array(n),
    hour: new Int8Array(n),
    minute: new Int8Array(n),
    changes: [],
  };
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone: tz,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
  });
  let prev: number | null = null;
  for (let h = FROM; h < TO; h += HOUR) {
    const p = Object.fromEntries(fmt.formatToParts(h).map((x) => [x.type, x.value]));
    const offset = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute)) - h;
    if (prev !== null && offset !== prev) l.changes.push(h);
    prev = offset;
    for (let m = 0; m < 60; m++) {
      const i = (h - FROM) / MINUTE + m;
      const d = new Date(h + m * MINUTE + offset);
      l.month[i] = d.getUTCMonth() + 1;
      l.dom[i] = d.getUTCDate();
      l.dow[i] = d.getUTCDay();
      l.hour[i] = d.getUTCHours();
      l.minute[i] = d.getUTCMinutes();
    }
  }
  locals.set(tz, l);
  return l;
}

function bruteForce(fields: string[], tz: string): number[] {
  const [mi, h, dom, mon, dow] = fields as [string, string, string, string, string];
  const sm = field(mi, 0, 59);
  const sh = field(h, 0, 23);
  const sd = field(dom, 1, 31);
  const sM = field(mon, 1, 12);
  const sw = field(dow, 0, 7);
  if (sw.has(7)) sw.add(0);
  const or = !dom.startsWith('*') && !dow.startsWith('*');
  const l = localClock(tz);
  const out: number[] = [];
  for (let i = 0; i < l.month.length; i++) {
    if (!sm.has(l.minute[i]!) || !sh.has(l.hour[i]!) || !sM.has(l.month[i]!)) continue;
    const d = sd.has(l.dom[i]!);
    const w = sw.has(l.dow[i]!);
    if (or ? d || w : d && w) out.push(FROM + i * MINUTE);
  }
  return out;
}

/** Away from the offset changes (3 hours either side), where Debian's DST rule does not apply. */
const away = (xs: number[], changes: number[]) => xs.filter((t) => changes.every((c) => Math.abs(t - c) > 3 * HOUR));

// ---- the zone cron ran each line in: CRON_TZ above it (cronie), else the system's ----

function zoneOfLine(text: string, line: number, systemZone: string): string {
  let zone = systemZone;
  text.split('\n').forEach((l, i) => {
    const m = /^\s*CRON_TZ\s*=\s*(.*?)\s*$/.exec(l);
    if (m && i + 1 < line) zone = m[1]!.replace(/^(["'])(.*)\1$/, '$2') || systemZone;
  });
  return zone;
}

function load(j: PlannedJob) {
  const r = jobFromText(`/srv/home/jobs/${j.name}.yaml`, j.yaml, '/srv/home', DEFAULT_POLICY);
  if (!r.ok) throw new Error(r.problems.map((p) => `${p.line}: ${p.message}`).join('\n'));
  return r.value;
}

function opts(kind: 'user' | 'system', systemZone: string): ImportOptions {
  return {
    kind,
    source: 'fixture',
    owner: kind === 'user' ? { name: 'kevin', home: '/home/kevin' } : null,
    userField: null,
    account: (n) => (n === 'root' ? { name: 'root', home: '/root' } : null),
    systemZone,
    exists: () => true,
  };
}

const CASES: Array<[string, 'user' | 'system', string]> = [
  ['user-100', 'user', 'Europe/Zurich'],
  ['user-100', 'user', 'America/New_York'],
  ['debian-etc-crontab', 'system', 'Europe/Zurich'],
  ['debian-etc-crontab', 'system', 'America/New_York'],
];

describe('imported jobs run at the instants of their crontab lines, over 2026', () => {
  it.each(CASES)('%s (%s crontab, system zone %s)', (fixture, kind, systemZone) => {
    const text = readFileSync(join(FIXTURES, fixture), 'utf8');
    const plan = planImport(text, opts(kind, systemZone));
    expect(plan.problems).toEqual([]);
    let compared = 0;
    for (const j of plan.jobs) {
      const job = load(j);
      if (j.schedule === '@reboot') {
        expect(job.atBoot).toBe(true);
        continue;
      }
      const tz = zoneOfLine(text, j.line, systemZone);
      expect(job.schedule, `line ${j.line}`).toMatchObject({ kind: 'cron', tz });
      const fields = fieldsOf(j.text);
      const got = instants(job.schedule!);
      const cronModule = instants({
        kind: 'cron',
        expr: parseCron(j.text.trim().startsWith('@') ? j.text.trim().split(/[ \t]+/)[0]! : fields.join(' ')),
        tz,
      });
      expect(got, `line ${j.line}: ${j.text}`).toEqual(cronModule);
      const changes = localClock(tz).changes;
      expect(away(got, changes), `line ${j.line} away from DST: ${j.text}`).toEqual(away(bruteForce(fields, tz), changes));
      compared++;
    }
    // every line with a time was compared
    expect(compared).toBe(plan.jobs.filter((j) => j.schedule !== '@reboot').length);
    expect(compared).toBeGreaterThan(kind === 'user' ? 50 : 3);
  });

  it("follows Debian's rule on the DST nights of Zurich and New York (man 8 cron)", () => {
    const text = readFileSync(join(FIXTURES, 'user-100'), 'utf8');
    const plan = planImport(text, opts('user', 'Europe/Zurich'));
    const at = (name: string, from: string, to: string) =>
      instants(load(plan.jobs.find((j) => j.name === name)!).schedule!)
        .filter((t) => t >= Date.parse(from) && t < Date.parse(to))
        .map((t) => new Date(t).toISOString().slice(0, 16));
    // Zurich, 2026-03-29: 02:00-03:00 is skipped; a fixed-time job due then runs at 03:00 CEST (01:00Z)
    expect(at('zurich-0230', '2026-03-28T00:00Z', '2026-03-30T00:00Z')).toEqual(['2026-03-28T01:30', '2026-03-29T01:00']);
    expect(at('zurich-0200', '2026-03-28T00:00Z', '2026-03-30T00:00Z')).toEqual(['2026-03-28T01:00', '2026-03-29T01:00']);
    // 2026-10-25: 02:00-03:00 happens twice; a fixed-time job runs once, the first time
    expect(at('zurich-0230', '2026-10-24T00:00Z', '2026-10-26T00:00Z')).toEqual(['2026-10-24T00:30', '2026-10-25T00:30']);
    // every 15 minutes keeps its real interval across both changes
    expect(at('zurich-quarter', '2026-03-29T00:30Z', '2026-03-29T01:31Z')).toEqual([
      '2026-03-29T00:30',
      '2026-03-29T00:45',
      '2026-03-29T01:00',
      '2026-03-29T01:15',
      '2026-03-29T01:30',
    ]);
    expect(at('zurich-quarter', '2026-10-25T00:00Z', '2026-10-25T02:01Z')).toHaveLength(9);
    // New York, 2026-11-01: 01:00-02:00 happens twice; 01:30 runs once (EDT, 05:30Z)
    expect(at('ny-0130', '2026-10-31T00:00Z', '2026-11-02T00:00Z')).toEqual(['2026-10-31T05:30', '2026-11-01T05:30']);
    // 2026-03-08: 02:00-03:00 is skipped; 02:30 runs at 03:00 EDT (07:00Z)
    expect(at('ny-0230', '2026-03-07T00:00Z', '2026-03-09T00:00Z')).toEqual(['2026-03-07T07:30', '2026-03-08T07:00']);
    // @hourly is not a fixed time: it follows the clock
    expect(at('zurich-hourly', '2026-03-29T00:00Z', '2026-03-29T02:01Z')).toEqual([
      '2026-03-29T00:00',
      '2026-03-29T01:00',
      '2026-03-29T02:00',
    ]);
    // a Sunday written 7 (Debian's /etc/crontab) still runs on Sundays
    expect(at('zurich-sunday', '2026-06-01T00:00Z', '2026-06-15T00:00Z')).toEqual(['2026-06-07T00:30', '2026-06-14T00:30']);
  });
});
