// Many generated days, each composed into a digest and read back as an operator reads it: the
// headline must agree with the body. Found in use: a digest said "All 3 jobs healthy" over "heals
// blocked, waiting for a person: 3" (proposals for alerts that had recovered on their own).
// The facts are written by hand (composeDigest is pure), drawn from a seeded generator so that a
// failure names the seed and the day can be composed again.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { composeDigest, digestWindow, type DigestFacts, type DigestInput, type HealLine } from '../../../src/report/digest.js';
import { compileJob, type Job } from '../../../src/config/home.js';
import type { KillState } from '../../../src/control/killswitch.js';
import { JobSpecSchema, PolicySchema } from '../../../src/config/schema.js';
import type { AlertRow, EventRow, JobStateRow, PageRow, RunRow, DigestRow } from '../../../src/store/store.js';
import { ALERT_KINDS, RUN_OUTCOMES, type RunOutcome } from '../../../src/model.js';
import type { SpecProblem } from '../../../src/config/parse.js';
import { mulberry32 } from '../../support/random-cron.js';

const H = 3_600_000;
const NAMES = ['orders-export', 'backup', 'db-backup', 'report', 'inbox-sweep', 'cleanup', 'agent-sync', 'pinger'];
const HEAL_OUTCOMES = [
  'fixed-verified',
  'rolled-back',
  'awaiting-approval',
  'blocked',
  'needs-human',
  'proposed',
  'refused',
  'rollback-failed',
  'self-recovered',
  'halted',
  'uncontained',
  'denied',
  'expired',
  'interrupted-rolled-back',
];
const HOSTILE = ['<script>alert(1)</script>', '"onerror=alert(1) x="', "it's & done", 'exit 3'];

const pol = PolicySchema.parse({ timezone: 'Europe/Zurich', digest: { at: '07:00' }, deadman: ['true'] });
const date = '2026-03-29';
const w = digestWindow(pol, date);

/** One day of a small server: jobs, runs, alerts (open, closed, folded), heals of every outcome, switches. */
function generateDay(seed: number): DigestInput {
  const r = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const chance = (p: number): boolean => r() < p;
  const inWindow = (): number => w.from + Math.floor(r() * (w.to - w.from));
  const names = NAMES.filter(() => chance(0.6));
  if (names.length === 0 && chance(0.8)) names.push(pick(NAMES));
  const home = '/srv/ns';
  const jobs = new Map<string, Job>();
  for (const name of names) {
    const spec = JobSpecSchema.parse({
      ...(chance(0.5)
        ? { every: pick(['15m', '1h', '30m']) }
        : chance(0.8)
          ? { schedule: pick(['0 2 * * *', '*/5 * * * *', '30 6 * * 1']) }
          : {}),
      command: ['true'],
      ...(chance(0.1) ? { enabled: false } : {}),
    });
    jobs.set(name, compileJob(name, join(home, 'jobs', `${name}.yaml`), home, spec, pol, 'h'));
  }

  const alerts: AlertRow[] = [];
  let alertId = 0;
  for (const job of names) {
    for (let i = 0, n = Math.floor(r() * 3); i < n; i++) {
      const kind = pick(ALERT_KINDS);
      const opened = chance(0.2) ? w.from - Math.floor(r() * 48 * H) : inWindow();
      const resolved = chance(0.7) ? Math.min(w.to - 1, opened + Math.floor(r() * 6 * H)) : null;
      const others = names.filter((x) => x !== job);
      const folded = resolved === null && others.length && chance(0.3) ? `${pick(others)}:${pick(ALERT_KINDS)}` : null;
      const count = 1 + Math.floor(r() * 4);
      alerts.push({
        id: ++alertId,
        fingerprint: `${job}:${kind}`,
        job,
        kind,
        opened_at: opened,
        last_seen_at: opened + (count - 1) * H,
        count,
        message: pick(HOSTILE),
        run_id: null,
        exit_code: null,
        output_tail: null,
        folded_under: folded,
        resolved_at: resolved,
        resolution: resolved === null ? null : pick(['self-recovered', 'fixed-verified', 'job-removed']),
      });
    }
  }

  const runs: RunRow[] = [];
  let runId = 0;
  for (const job of names) {
    for (let i = 0, n = Math.floor(r() * 8); i < n; i++) {
      const outcome: RunOutcome | null = chance(0.05) ? null : chance(0.6) ? 'ok' : pick(RUN_OUTCOMES);
      const at = inWindow();
      runs.push({
        id: ++runId,
        job,
        trigger: 'schedule',
        scheduled_for: at,
        created_at: at,
        started_at: at,
        ended_at: outcome === null ? null : at + 1000,
        outcome,
        exit_code: null,
        signal: null,
        duration_ms: null,
        pgid: null,
        log_path: null,
        output_tail: null,
        output_bytes: null,
        reason: chance(0.5) ? pick(HOSTILE) : null,
        attempt: 1,
        parent_id: null,
        retry_at: null,
        spec_hash: null,
      });
    }
  }
  runs.sort((a, b) => a.created_at - b.created_at || a.id - b.id);

  // Heals for open and for closed alerts alike: a proposal for an alert that recovered asks nobody.
  const heals: HealLine[] = [];
  let healId = 0;
  for (const a of alerts) {
    if (!chance(0.6)) continue;
    heals.push({
      at: inWindow(),
      job: a.job,
      rule: chance(0.7) ? 'clear-lock' : null,
      outcome: pick(HEAL_OUTCOMES),
      detail: chance(0.5) ? pick(HOSTILE) : null,
      id: ++healId,
      alert: a.id,
    });
  }
  if (chance(0.3))
    heals.push({ at: inWindow(), job: 'the ladder', rule: 'clear-lock', outcome: 'demoted to gated', detail: 'rolled back' });
  heals.sort((a, b) => a.at - b.at);

  const jobStates = new Map<string, JobStateRow>();
  for (const job of names) jobStates.set(job, { job, cursor: 0, paused: chance(0.15) ? 1 : 0, paused_at: inWindow(), first_seen: 0 });
  const event = (kind: string, message: string, data: unknown, id: number): EventRow => ({
    id,
    at: inWindow(),
    kind,
    job: null,
    message,
    data: JSON.stringify(data),
  });
  const killFlips = Array.from({ length: chance(0.2) ? 1 + Math.floor(r() * 3) : 0 }, (_, i) =>
    event('kill-switch', 'kill switch turned on', { on: true }, i),
  );
  const deadmanPings = Array.from({ length: Math.floor(r() * 4) }, (_, i) => event('deadman', 'deadman ping', { ok: chance(0.8) }, i));
  const pages: PageRow[] = chance(0.2)
    ? [{ id: 1, fingerprint: `${pick(NAMES)}:failed`, event: 'alert', at: inWindow(), outcome: pick(['sent', 'failed']), detail: null }]
    : [];
  const unsentDigests: DigestRow[] = chance(0.15)
    ? [
        {
          date: '2026-03-27',
          created_at: w.from - 20 * H,
          verdict: 'x',
          body_text: 'x',
          body_html: 'x',
          sent_at: null,
          attempts: 2,
          next_attempt_at: null,
          last_error: 'connection refused',
        },
      ]
    : [];
  const lastRuns = new Map<string, RunRow>();
  for (const run of runs) if (run.ended_at !== null) lastRuns.set(run.job, run);

  const problems: SpecProblem[] = [];
  for (const f of ['jobs/broken.yaml', 'rules/fix.yaml', 'protected/policy.yaml']) {
    if (chance(0.04)) problems.push({ file: join(home, f), line: 3, field: 'schedule', message: 'not a schedule' });
  }
  const switchOn = chance(0.1);
  const kill: KillState = { halted: switchOn || chance(0.05), switchOn, reason: 'the kill switch is on', path: '/x/KILL', since: null };
  const facts: DigestFacts = {
    openAlerts: alerts.filter((a) => a.resolved_at === null),
    windowAlerts: alerts.filter(
      (a) => (a.opened_at >= w.from && a.opened_at < w.to) || (a.resolved_at !== null && a.resolved_at >= w.from),
    ),
    runs,
    jobStates,
    killFlips,
    deadmanPings,
    pages,
    unsentDigests,
    lastRuns,
    lastSuccesses: new Map(),
    // A run under way: its outcome will tell, so a failed last run before it is not counted.
    running: new Set(names.filter(() => chance(0.1))),
  };
  return {
    facts,
    jobs,
    policy: pol,
    kill,
    date,
    window: w,
    now: w.to + 1000,
    heals,
    containment: chance(0.1) ? { ok: false, reason: 'bwrap is missing' } : { ok: true, bwrap: '/usr/bin/bwrap' },
    config: { problems, lastGood: [] },
  };
}

/** The sections of the text part: title → its lines. */
function sectionsOf(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/^-+$/.test(lines[i + 1] ?? '') || lines[i]!.length !== lines[i + 1]!.length) continue;
    const body: string[] = [];
    for (let j = i + 2; j < lines.length && lines[j] !== ''; j++) body.push(lines[j]!);
    out.set(lines[i]!, body);
  }
  return out;
}

/** The number the headline says need you: the sum of its "N job(s)" and "N spec file(s)", or 0. */
function headlineCount(headline: string): number {
  const m = /^(.*?) needs? you/.exec(headline);
  if (!m || m[1]!.startsWith('Nothing')) return 0;
  return [...m[1]!.matchAll(/(\d+) (?:jobs?|spec files?)\b/g)].reduce((n, x) => n + Number(x[1]), 0);
}

/** Run outcomes that mean the job did not do its work (as `status` counts them). */
const FAILED = new Set(['failed', 'timeout', 'wrong', 'interrupted']);
/** A job nightshift runs, enabled, unpaused, not running now, whose last run failed. */
const failedLast = (input: DigestInput, job: string): boolean =>
  input.jobs.get(job)!.managed &&
  !input.facts.running.has(job) &&
  input.jobs.get(job)!.spec.enabled &&
  input.facts.jobStates.get(job)?.paused !== 1 &&
  FAILED.has(input.facts.lastRuns.get(job)?.outcome ?? '');

/**
 * What needs a person, worked out here from the generated rows as status's verdict counts it:
 * each configured job with an open alert that is not folded under a job that has an unfolded open
 * alert itself; each enabled, unpaused job whose last run failed with no alert open; and each spec
 * file with errors.
 */
function expectedNeeds(input: DigestInput): number {
  const open = input.facts.openAlerts.filter((a) => input.jobs.has(a.job));
  const unfolded = new Set(open.filter((a) => a.folded_under === null).map((a) => a.job));
  const jobs = new Set(open.filter((a) => a.folded_under === null || !unfolded.has(a.folded_under.split(':')[0]!)).map((a) => a.job));
  for (const name of input.jobs.keys()) if (!open.some((a) => a.job === name) && failedLast(input, name)) jobs.add(name);
  return jobs.size + new Set(input.config!.problems.map((p) => p.file)).size;
}

const DAYS = 400;
const JARGON = /needs-human|flipped|LLM runs saved|fixed-verified|rolled-back|awaiting-approval|self-recovered|skipped-\w+|rollback-failed/;

describe('generated days: the headline and the body agree', () => {
  it(`over ${DAYS} days, the headline counts exactly the items of "Needs you", and says "Nothing needs you" only when there are none`, () => {
    let withNeeds = 0;
    let healthyWithMootHeals = 0;
    for (let seed = 1; seed <= DAYS; seed++) {
      const input = generateDay(seed);
      const d = composeDigest(input);
      const headline = d.text.split('\n')[0]!;
      const needs = sectionsOf(d.text).get('Needs you') ?? [];
      const items = needs.filter((l) => l.startsWith('- ')).length;
      const expected = expectedNeeds(input);
      const at = `seed ${seed}: ${headline}`;
      expect(items, at).toBe(expected);
      expect(headlineCount(headline), at).toBe(items);
      expect(d.needsYou, at).toBe(items);
      expect(d.verdict, at).toBe(headline);
      if (items > 0) {
        withNeeds++;
        expect(headline, at).not.toMatch(/healthy|^Nothing/i);
      } else {
        expect(headline, at).toMatch(/^Nothing needs you/);
        // The case that was seen: heals that would wait for a person, for alerts that have closed.
        const open = new Set(input.facts.openAlerts.map((a) => a.id));
        if (input.heals!.some((h) => ['blocked', 'awaiting-approval', 'needs-human'].includes(h.outcome) && !open.has(h.alert!)))
          healthyWithMootHeals++;
      }
    }
    // The generator reaches both sides, and the case that was seen in use.
    expect(withNeeds).toBeGreaterThan(DAYS / 4);
    expect(DAYS - withNeeds).toBeGreaterThan(DAYS / 10);
    expect(healthyWithMootHeals).toBeGreaterThan(5);
  });

  it('no jargon, no empty section, and every run count names the jobs it counts', () => {
    let counted = 0;
    for (let seed = 1; seed <= DAYS; seed++) {
      const input = generateDay(seed);
      const d = composeDigest(input);
      const at = `seed ${seed}`;
      // The word itself in the message, with its line: a failure says what to rewrite.
      expect(d.text.split('\n').find((l) => JARGON.test(l)) ?? null, at).toBeNull();
      expect(JARGON.exec(d.html)?.[0] ?? null, at).toBeNull();
      const sections = sectionsOf(d.text);
      for (const [title, lines] of sections) {
        expect(lines.length, `${at}: ${title}`).toBeGreaterThan(0);
        for (const l of lines) expect(l, `${at}: ${title}`).not.toMatch(/^\s*- (nothing|none|no \w+ in this window)$/i);
      }
      // "Nothing else happened." stands alone, and only when no section between needs and jobs is there.
      const middle = [...sections.keys()].filter((k) => k !== 'Needs you' && k !== 'Jobs');
      expect(d.text.includes('\nNothing else happened.\n'), at).toBe(middle.length === 0);
      // "3 runs failed: orders-export (2), backup (1)": the jobs and their numbers add up, and are the rows'.
      const runs = input.facts.runs;
      for (const line of sections.get('Runs') ?? []) {
        const m = /^- (\d+) runs? (.+): (.+)$/.exec(line);
        if (!m || /went fine/.test(line)) continue;
        const parts = [...m[3]!.matchAll(/([a-z0-9-]+) \((\d+)\)/g)].map((x) => [x[1]!, Number(x[2])] as const);
        expect(
          parts.reduce((n, [, k]) => n + k, 0),
          `${at}: ${line}`,
        ).toBe(Number(m[1]));
        const outcome = outcomeOf(m[2]!);
        counted++;
        for (const [job, k] of parts)
          expect(runs.filter((x) => x.job === job && (x.outcome ?? 'running') === outcome).length, `${at}: ${line}`).toBe(k);
      }
      const total = /^- (\d+) runs? in this window/.exec(sections.get('Runs')?.[0] ?? '');
      expect(Number(total?.[1] ?? 0), at).toBe(runs.length);
    }
    expect(counted).toBeGreaterThan(DAYS);
  });
});

/** What a mail client renders safely: these tags, these attributes, styles inline, nothing fetched (links only with publicUrl). */
const TAGS = new Set(['html', 'head', 'meta', 'title', 'body', 'h1', 'h2', 'p', 'ul', 'li', 'table', 'tr', 'th', 'td', 'a']);
const ATTRS = new Set(['charset', 'style', 'data-health', 'cellspacing', 'cellpadding', 'colspan', 'href']);

function checkMailHtml(html: string, at: string): void {
  expect(html.startsWith('<!doctype html>\n'), at).toBe(true);
  for (const m of html.slice('<!doctype html>'.length).matchAll(/<\/?([a-zA-Z0-9]+)([^>]*)>/g)) {
    expect(TAGS.has(m[1]!.toLowerCase()), `${at}: <${m[1]}>`).toBe(true);
    for (const a of m[2]!.matchAll(/([a-zA-Z-]+)="[^"]*"/g)) expect(ATTRS.has(a[1]!), `${at}: ${a[1]}=`).toBe(true);
    // Every attribute is name="value": nothing left over that a browser would read as one more.
    expect(m[2]!.replace(/\s*[a-zA-Z-]+="[^"]*"/g, '').trim(), `${at}: ${m[0]}`).toBe('');
  }
  expect(html, at).not.toMatch(/url\(|@import|https?:|<script|<style|<img|<link/i);
}

describe('the HTML part', () => {
  it('on every generated day: only allowed tags and attributes, inline styles, nothing fetched, job text escaped', () => {
    let hostile = 0;
    const seen = new Set<string>();
    // green ok, red failing, amber waiting or paused, grey turned off
    const BG: Record<string, string> = { ok: '#e6f4ea', failing: '#fce8e6', waiting: '#fef7e0', paused: '#fef7e0', disabled: '#f1f3f4' };
    for (let seed = 1; seed <= DAYS; seed++) {
      const input = generateDay(seed);
      const d = composeDigest(input);
      checkMailHtml(d.html, `seed ${seed}`);
      const rows = [...d.html.matchAll(/<tr data-health="(\w+)" style="background: (#\w+);[^>]*><td[^>]*>([^<]*)<\/td>/g)];
      expect(
        rows.map((m) => m[3]),
        `seed ${seed}`,
      ).toEqual([...input.jobs.keys()].sort());
      for (const [, health, bg, name] of rows) {
        seen.add(health!);
        expect(bg, `seed ${seed}: ${name}`).toBe(BG[health!]);
        const job = input.jobs.get(name!)!;
        if (!job.spec.enabled) expect(health, `seed ${seed}: ${name}`).toBe('disabled');
        else if (input.facts.jobStates.get(name!)?.paused === 1) expect(health, `seed ${seed}: ${name}`).toBe('paused');
        else if (input.facts.openAlerts.some((a) => a.job === name && a.folded_under === null))
          expect(health, `seed ${seed}: ${name}`).toBe('failing');
        else if (!input.facts.openAlerts.some((a) => a.job === name))
          expect(health, `seed ${seed}: ${name}`).toBe(failedLast(input, name!) ? 'failing' : 'ok');
      }
      if (d.text.includes('<script>')) {
        hostile++;
        expect(d.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
      }
      if (d.text.includes('"onerror=')) expect(d.html).toContain('&quot;onerror=alert(1) x=&quot;');
    }
    expect(hostile).toBeGreaterThan(DAYS / 4);
    expect([...seen].sort()).toEqual(['disabled', 'failing', 'ok', 'paused', 'waiting']);
  });

  it('a home of 60 jobs: the table stops at 50 rows and says how many more, each cell carrying its colour', () => {
    const input = generateDay(3);
    input.jobs.clear();
    for (let i = 0; i < 60; i++) {
      const n = `job-${String(i).padStart(2, '0')}`;
      input.jobs.set(
        n,
        compileJob(n, `/srv/ns/jobs/${n}.yaml`, '/srv/ns', JobSpecSchema.parse({ every: '1h', command: ['true'] }), pol, 'h'),
      );
    }
    input.facts.openAlerts.length = 0;
    input.facts.lastRuns.clear();
    input.facts.jobStates.clear();
    const d = composeDigest(input);
    checkMailHtml(d.html, '60 jobs');
    const rows = [...d.html.matchAll(/<tr data-health="ok"[^>]*>(.*?)<\/tr>/g)];
    expect(rows).toHaveLength(50);
    // job, state, last run, next run, and the strip of its last runs
    for (const r of rows) expect([...r[1]!.matchAll(/<td style="[^"]*background: #e6f4ea; color: #137333">/g)]).toHaveLength(5);
    expect(d.html).toContain('>10 more jobs: nightshift status lists them all</td></tr>');
  });

  it('a job named like markup and its alert come out as text, in the list and in the coloured table row', () => {
    const input = generateDay(7);
    const name = '<script>x()</script>"onerror=y()';
    const job = compileJob(name, '/srv/ns/jobs/x.yaml', '/srv/ns', JobSpecSchema.parse({ every: '1h', command: ['true'] }), pol, 'h');
    input.jobs.set(name, job);
    input.facts.openAlerts.push({
      id: 99,
      fingerprint: `${name}:failed`,
      job: name,
      kind: 'failed',
      opened_at: w.from + H,
      last_seen_at: w.from + H,
      count: 1,
      message: '<img src=x "onerror=alert(2)>',
      run_id: null,
      exit_code: 1,
      output_tail: null,
      folded_under: null,
      resolved_at: null,
      resolution: null,
    });
    const d = composeDigest(input);
    checkMailHtml(d.html, 'markup name');
    const esc = '&lt;script&gt;x()&lt;/script&gt;&quot;onerror=y()';
    expect(d.html).toContain(`<li>${esc}: failing since`);
    expect(d.html).toContain('&lt;img src=x &quot;onerror=alert(2)&gt;');
    expect(d.html).toMatch(
      new RegExp(
        `<tr data-health="failing" style="background: #fce8e6; color: #a50e0e"><td[^>]*>${esc.replace(/[()]/g, '\\$&')}</td><td[^>]*>failing</td>`,
      ),
    );
  });
});

/** Which outcome a "N runs …" line counts, by its words (each outcome has its own sentence). */
function outcomeOf(words: string): string {
  const table: Array<[RegExp, string]> = [
    [/^failed$/, 'failed'],
    [/time limit/, 'timeout'],
    [/wrong result/, 'wrong'],
    [/nightshift stopped/, 'interrupted'],
    [/stopped on purpose/, 'killed'],
    [/pre-check/, 'skipped-precheck'],
    [/run before/, 'skipped-overlap'],
    [/paused/, 'skipped-paused'],
    [/kill switch/, 'skipped-halted'],
    [/still running/, 'running'],
  ];
  const hit = table.find(([re]) => re.test(words));
  if (!hit) throw new Error(`a run count in words nobody expects: "${words}"`);
  return hit[1];
}
