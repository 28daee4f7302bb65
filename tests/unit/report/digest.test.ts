// The digest: composed from a real SQLite store filled through the store's own methods, written
// to its folder, and sent to a real SMTP server on loopback (Law 9) or a fake sendmail.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import {
  addDays,
  composeDigest,
  countFlips,
  digestDate,
  digestFacts,
  digestInstant,
  digestWindow,
  oneLine,
  type DigestInput,
} from '../../../src/report/digest.js';
import { DigestService, digestFile, type DigestRunResult } from '../../../src/notify/digester.js';
import { compileJob, type Job } from '../../../src/config/home.js';
import { homePaths, type HomePaths } from '../../../src/config/paths.js';
import type { KillState } from '../../../src/control/killswitch.js';
import { silentLogger } from '../../../src/log.js';
import { sendDigestMail } from '../../../src/notify/mail.js';
import { JobSpecSchema, PolicySchema, type Policy } from '../../../src/config/schema.js';
import { Store, type RunRow } from '../../../src/store/store.js';
import { type RunOutcome } from '../../../src/model.js';
import { runTone, TONE_COLOURS } from '../../../src/report/tones.js';
import { cleanup, ROOT, tempDir, testLeash, waitFor } from '../../support/helpers.js';
import { execa } from 'execa';

const H = 3_600_000;
const dirs: string[] = [];
const stores: Store[] = [];
const services: DigestService[] = [];
const mailboxes: Mailbox[] = [];
afterEach(async () => {
  for (const s of services.splice(0)) await s.stop();
  for (const m of mailboxes.splice(0)) await m.close();
  for (const s of stores.splice(0)) s.close();
});
afterAll(() => {
  for (const d of dirs) cleanup(d);
});

function dir(): string {
  const d = tempDir('ns-digest-');
  dirs.push(d);
  return d;
}

function policy(p: Record<string, unknown>): Policy {
  return PolicySchema.parse(p);
}

function openStore(paths: HomePaths): Store {
  const s = Store.open(paths.db);
  stores.push(s);
  return s;
}

function jobsOf(home: string, pol: Policy, specs: Record<string, Record<string, unknown>>): Map<string, Job> {
  const m = new Map<string, Job>();
  for (const [name, spec] of Object.entries(specs))
    m.set(name, compileJob(name, join(home, 'jobs', `${name}.yaml`), home, JobSpecSchema.parse(spec), pol, 'h'));
  return m;
}

const KILL_OFF: KillState = { halted: false, switchOn: false, reason: 'the kill switch is off', path: '/x/KILL', since: null };

function run(store: Store, job: string, outcome: RunOutcome, at: number, reason?: string): number {
  if (outcome.startsWith('skipped-')) return store.runs.insert({ job, trigger: 'manual', now: at, outcome, reason })!;
  const id = store.runs.insert({ job, trigger: 'manual', now: at })!;
  store.runs.finish(id, job, { outcome, endedAt: at + 1000, reason: reason ?? null });
  return id;
}

/** The text line that contains `needle`, or undefined. */
function lineWith(text: string, needle: string): string | undefined {
  return text.split('\n').find((l) => l.includes(needle));
}

/** The digest of what the store holds now (the way the service and the command read it). */
const compose = ({ store, ...rest }: Omit<DigestInput, 'facts'> & { store: Store }): ReturnType<typeof composeDigest> =>
  composeDigest({ ...rest, facts: digestFacts(store, rest.window) });

describe('the digest window', () => {
  const zurich = policy({ timezone: 'Europe/Zurich', digest: { at: '07:00' } });

  it('is the 24 real hours ending at digest.at: 23 h across spring-forward, 25 h across fall-back', () => {
    const spring = digestWindow(zurich, '2026-03-29');
    expect(spring.from).toBe(Date.parse('2026-03-28T07:00:00+01:00'));
    expect(spring.to).toBe(Date.parse('2026-03-29T07:00:00+02:00'));
    expect(spring.to - spring.from).toBe(23 * H);
    const normal = digestWindow(zurich, '2026-03-30');
    expect(normal.from).toBe(spring.to);
    expect(normal.to - normal.from).toBe(24 * H);
    const autumn = digestWindow(zurich, '2026-10-25');
    expect(autumn.to - autumn.from).toBe(25 * H);
  });

  it('a digest time skipped by the change is sent right at the change, as cron would', () => {
    const early = policy({ timezone: 'Europe/Zurich', digest: { at: '02:30' } });
    const w = digestWindow(early, '2026-03-29');
    expect(w.to).toBe(Date.parse('2026-03-29T03:00:00+02:00'));
    expect(w.from).toBe(Date.parse('2026-03-28T02:30:00+01:00'));
    expect(w.to - w.from).toBe(23.5 * H);
  });

  it('dates are wall-clock dates of the policy zone, and bad dates are refused in plain words', () => {
    expect(digestDate('Europe/Zurich', Date.parse('2026-03-28T23:30:00Z'))).toBe('2026-03-29');
    expect(digestDate('UTC', Date.parse('2026-03-28T23:30:00Z'))).toBe('2026-03-28');
    expect(addDays('2026-02-28', 1)).toBe('2026-03-01');
    expect(addDays('2026-03-01', -1)).toBe('2026-02-28');
    expect(digestInstant(policy({ timezone: 'America/New_York', digest: { at: '07:00' } }), '2026-03-08')).toBe(
      Date.parse('2026-03-08T07:00:00-04:00'),
    );
    expect(() => digestWindow(zurich, '2026-02-30')).toThrow(/YYYY-MM-DD/);
    expect(() => digestWindow(zurich, '29.03.2026')).toThrow(/YYYY-MM-DD/);
  });
});

describe('composing the digest from SQLite rows', () => {
  const pol = policy({ timezone: 'Europe/Zurich', digest: { at: '07:00' }, deadman: ['true'] });
  const date = '2026-03-29';
  const w = digestWindow(pol, date);
  const at = (iso: string): number => Date.parse(iso);

  function fill(): { store: Store; jobs: Map<string, Job>; home: string; marker: string } {
    const home = dir();
    const store = openStore(homePaths(home));
    const jobs = jobsOf(home, pol, {
      export: { schedule: '0 * * * *', command: ['true'] },
      'db-backup': { schedule: '0 2 * * *', command: ['true'] },
      report: { schedule: '30 2 * * *', command: ['true'], dependsOn: ['db-backup'] },
      cleanup: { every: '30m', command: ['true'] },
      'agent-sync': { every: '15m', command: ['true'], precheck: ['./has-work'] },
      pinger: { schedule: '0 * * * *', heartbeat: { grace: '5m' } },
      old: { schedule: '0 1 * * *', command: ['true'], enabled: false },
    });
    const marker = join(home, 'pwned');
    // Before the window: must not be counted.
    run(store, 'export', 'failed', w.from - 60_000);
    store.journal.record(w.from - 60_000, 'kill-switch', null, 'kill switch turned on: before', { on: true });
    // export: ok, failed, failed, ok, timeout, ok -> 4 flips
    const seq: RunOutcome[] = ['ok', 'failed', 'failed', 'ok', 'timeout', 'ok'];
    seq.forEach((o, i) => run(store, 'export', o, w.from + (i + 1) * H, o === 'ok' ? undefined : `exit ${i}`));
    run(store, 'db-backup', 'failed', at('2026-03-29T02:00:00+02:00') - 30 * 60_000, 'pg_dump: connection refused');
    run(store, 'report', 'ok', w.from + 2 * H);
    for (let i = 0; i < 3; i++) run(store, 'agent-sync', 'skipped-precheck', w.from + (i + 1) * 15 * 60_000, 'pre-check said IDLE');
    run(store, 'agent-sync', 'ok', w.from + 5 * H);

    const evil = `lock held\n<script>alert(1)</script> $(touch ${marker}) \`touch ${marker}\` & "q" 'q'`;
    store.alerts.raise({ job: 'export', kind: 'failed', at: w.from + 2 * H, message: 'first' });
    store.alerts.raise({ job: 'export', kind: 'failed', at: w.from + 5 * H, message: evil });
    store.alerts.raise({ job: 'db-backup', kind: 'failed', at: w.from + 18 * H, message: 'pg_dump: connection refused' });
    store.alerts.raise({
      job: 'report',
      kind: 'missed',
      at: w.from + 19 * H,
      message: 'report did not run',
      foldedUnder: 'db-backup:failed',
    });
    store.alerts.raise({ job: 'cleanup', kind: 'missed', at: w.from + 3 * H, message: 'late' });
    store.alerts.resolve('cleanup', w.from + 4 * H, 'self-recovered');
    store.alerts.raise({ job: 'pinger', kind: 'missed', at: w.from - 5 * H, message: 'no ping' });
    store.alerts.resolve('pinger', w.from + H, 'self-recovered');

    store.jobStates.setPaused('cleanup', true, w.from + 6 * H);
    store.journal.record(w.from + 7 * H, 'kill-switch', null, 'kill switch turned on: the kill switch is on', { on: true });
    store.journal.record(w.from + 8 * H, 'kill-switch', null, 'kill switch turned off', { on: false });
    store.journal.record(w.from + 1 * H, 'deadman', null, 'deadman ping ok (hourly)', { ok: true });
    store.journal.record(w.from + 2 * H, 'deadman', null, 'deadman ping ok (hourly)', { ok: true });
    store.journal.record(w.from + 3 * H, 'deadman', null, 'deadman ping failed (hourly): curl exited with code 6', { ok: false });
    const page = store.pages.record('db-backup:failed', 'alert', w.from + 18 * H);
    store.pages.finish(page, 'sent', 'done in 120ms');

    store.digests.save({ date: '2026-03-27', createdAt: w.from - 20 * H, verdict: 'x', text: 'x', html: 'x' });
    store.digests.markFailed('2026-03-27', 'could not e-mail the digest via SMTP 127.0.0.1:25: connection refused', null);
    store.digests.save({ date: '2026-03-26', createdAt: w.from - 40 * H, verdict: 'x', text: 'x', html: 'x' });
    store.digests.save({ date, createdAt: w.to, verdict: 'x', text: 'x', html: 'x' });
    store.digests.markFailed(date, 'this date itself', null);
    return { store, jobs, home, marker };
  }

  it('is composed from the facts alone: rows written by hand, no store, give the same sections', () => {
    const home = dir();
    const jobs = jobsOf(home, pol, { export: { schedule: '0 * * * *', command: ['true'] }, idle: { command: ['true'] } });
    const alert = {
      id: 1,
      fingerprint: 'export:failed',
      job: 'export',
      kind: 'failed' as const,
      opened_at: at('2026-03-29T01:00:00Z'),
      last_seen_at: at('2026-03-29T01:00:00Z'),
      count: 1,
      message: 'exit 3',
      run_id: null,
      exit_code: 3,
      output_tail: null,
      folded_under: null,
      resolved_at: null,
      resolution: null,
    };
    const d = composeDigest({
      facts: {
        openAlerts: [alert],
        windowAlerts: [alert],
        runs: [],
        jobStates: new Map([['idle', { job: 'idle', cursor: 0, paused: 1, paused_at: at('2026-03-28T12:00:00Z'), first_seen: 0 }]]),
        killFlips: [],
        deadmanPings: [],
        pages: [{ id: 1, fingerprint: 'export:failed', event: 'alert', at: at('2026-03-29T01:00:05Z'), outcome: 'sent', detail: null }],
        unsentDigests: [],
        lastRuns: new Map(),
        lastSuccesses: new Map(),
        running: new Set(),
      },
      jobs,
      policy: pol,
      kill: KILL_OFF,
      date,
      window: w,
      now: w.to,
    });
    expect(d.verdict).toBe('1 job needs you');
    expect(lineWith(d.text, 'idle: paused since')).toContain('2026-03-28 13:00 +01:00');
    expect(d.text).toContain('1 opened, 0 closed');
    expect(lineWith(d.text, '1 page')).toContain('1 sent');
  });

  it('opens with a verdict a non-coder understands: jobs with an open, unfolded alert need you', () => {
    const { store, jobs } = fill();
    const d = compose({ store, jobs, policy: pol, kill: KILL_OFF, date, window: w, now: w.to + 1000 });
    // export and db-backup; report is folded under db-backup and is not counted on its own.
    expect(d.verdict).toBe('2 jobs need you');
    expect(d.text.split('\n')[0]).toBe('2 jobs need you');
    expect(d.needsYou).toBe(2);
    expect(d.text).toContain('covering 2026-03-28 07:00 +01:00 to 2026-03-29 07:00 +02:00 (23 hours; times in Europe/Zurich)');

    const home = dir();
    const empty = openStore(homePaths(home));
    const three = jobsOf(home, pol, { a: { command: ['true'] }, b: { command: ['true'] }, c: { command: ['true'] } });
    const ok = compose({ store: empty, jobs: three, policy: pol, kill: KILL_OFF, date, window: w, now: w.to });
    expect(ok.text.split('\n')[0]).toBe('Nothing needs you: all 3 jobs healthy');
    const halted = compose({
      store: empty,
      jobs: three,
      policy: pol,
      kill: { ...KILL_OFF, halted: true, switchOn: true, reason: 'the kill switch is on' },
      date,
      window: w,
      now: w.to,
    });
    expect(halted.verdict).toBe('Nothing needs you: all 3 jobs healthy; kill switch is ON');
  });

  it('every number matches the rows: runs by outcome, flips, pre-check skips, alerts, kill switch, deadman, pages', () => {
    const { store, jobs } = fill();
    const d = compose({ store, jobs, policy: pol, kill: KILL_OFF, date, window: w, now: w.to + 1000 });
    const inWindow = store.runs.between(w.from, w.to);
    expect(inWindow).toHaveLength(12);
    expect(d.text).toContain(
      '- 12 runs in this window; 5 went fine.\n- 3 runs failed: export (2), db-backup (1)\n- 1 run ran past its time limit and was stopped: export (1)\n- 3 runs were skipped: their pre-check found nothing to do: agent-sync (3)',
    );
    const exportRuns = inWindow.filter((r: RunRow) => r.job === 'export');
    expect(countFlips(exportRuns)).toBe(4);
    expect(lineWith(d.text, '- export: last failure')).toMatch(
      /^- export: last failure 2026-03-28 \d\d:\d\d \+01:00: "exit 4"; it went from working to failing or back 4 times$/,
    );
    expect(d.text).toContain('- db-backup: last failure 2026-03-29 00:30 +01:00: "pg_dump: connection refused"\n');
    // Jobs that only ran fine are not listed one by one: report and agent-sync have no failure line.
    expect(lineWith(d.text, '- report: last failure')).toBeUndefined();
    expect(lineWith(d.text, '- agent-sync: last failure')).toBeUndefined();
    // Opened in the window: export, db-backup, report, cleanup; resolved: cleanup and pinger (opened before).
    expect(d.text).toContain('- 4 opened, 2 closed (2 recovered on their own)');
    expect(d.text).toContain('- export failing (A-1): opened 2026-03-28 09:00 +01:00, still open');
    expect(d.text).toContain('- pinger late (A-5): opened 2026-03-28 02:00 +01:00, closed 2026-03-28 08:00 +01:00: recovered on its own');
    expect(d.text).toContain(
      '- The kill switch was turned on or off 2 times in this window; it is off now:\n    - 2026-03-28 14:00 +01:00: kill switch turned on',
    );
    expect(d.text).toContain('- 1 page: 1 sent');
    expect(d.text).toContain('- The outside watcher (deadman in policy.yaml) was pinged 3 times: 2 ok, 1 failed');
    expect(d.text).toContain('- cleanup: paused since 2026-03-28 13:00 +01:00; resume with: nightshift resume cleanup');
    expect(d.text).toContain('- old: turned off in its file (enabled: false)');
    expect(d.text).toMatch(/- 2026-03-27: not sent after 1 attempt \(no more attempts\); .*connection refused/);
    expect(d.text).not.toContain('2026-03-26:');
    expect(d.text).not.toContain('this date itself');
    // No heal happened: no heal section, not an empty one.
    expect(d.text).not.toMatch(/^Heals$/m);
    expect(d.text).not.toMatch(/^- (nothing|none)$/m);
  });

  it('folded alerts are shown under their dependency, as "blocked by"', () => {
    const { store, jobs } = fill();
    const d = compose({ store, jobs, policy: pol, kill: KILL_OFF, date, window: w, now: w.to + 1000 });
    const lines = d.text.split('\n');
    const dep = lines.findIndex((l) => l.startsWith('- db-backup: failing since'));
    expect(dep).toBeGreaterThan(0);
    expect(lines[dep + 1]).toMatch(
      /^ {4}- held up by db-backup: report: late since 2026-03-29 03:00 \+02:00 \(A-3\): "report did not run"$/,
    );
    expect(lineWith(d.text, '- export: failing since')).toMatch(
      /since 2026-03-28 09:00 \+01:00 \(A-1, 2 times, last 2026-03-28 12:00 \+01:00\)/,
    );
    expect(d.html).toMatch(/<li>db-backup: failing since [^<]*<ul><li>held up by db-backup: report: late/);

    // The dependency's alert closed first: its folded alerts stay visible, still under its name, and
    // the job they belong to now needs you itself (export + report). db-backup's alert closed with
    // no run succeeding (as when a heal's probe finds the problem gone): its last run did fail, so
    // it still needs you, as status counts it.
    store.alerts.resolve('db-backup', w.to - 1000, 'self-recovered');
    const later = compose({ store, jobs, policy: pol, kill: KILL_OFF, date, window: w, now: w.to + 1000 });
    expect(later.verdict).toBe('3 jobs need you');
    expect(later.text).toMatch(
      /\n- db-backup: its last run \(#\d+\) failed at [^\n]*; no alert is open for it \(it was closed, or the run ended before one could be raised\), and no run has succeeded since\n/,
    );
    expect(later.text).toMatch(
      /- report: late since 2026-03-29 03:00 \+02:00 \(A-3\): "report did not run"\n {4}- it was held up by db-backup, which has no open alert now\n/,
    );
  });

  it('alert text is data: one line in the text part, escaped in HTML, never run', () => {
    const { store, jobs, marker } = fill();
    const d = compose({ store, jobs, policy: pol, kill: KILL_OFF, date, window: w, now: w.to + 1000 });
    const line = lineWith(d.text, '- export: failing since')!;
    expect(line).toContain(`lock held ⏎ <script>alert(1)</script> $(touch ${marker}) \`touch ${marker}\` & "q" 'q'`);
    expect(d.html).not.toContain('<script>');
    expect(d.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(d.html).toContain('&amp; &quot;q&quot; &#39;q&#39;');
    expect(existsSync(marker)).toBe(false);

    const long = 'x'.repeat(5000);
    expect(oneLine(long)).toHaveLength(301);
    // The escape shown as its picture (the colour code stays inert text), the override as �.
    expect(oneLine('a\r\nb\x1b[31mc\u202ed')).toBe('a ⏎ b\u241b[31mc\ufffdd');
    // Characters a terminal may break lines on or hide: the line and paragraph separators, the soft hyphen, annotations.
    expect(oneLine('a\u2028b\u2029c\u00add\ufff9e')).toBe('a\ufffdb\ufffdc\ufffdd\ufffde');
  });

  it("the HTML part carries each job's strip of last runs, in the dashboard's colours; links to the dashboard only with publicUrl", () => {
    const { store, jobs } = fill();
    run(store, 'report', 'wrong', w.from + 3 * H, 'expect failed');
    const heals = [{ at: w.from + 9 * H, job: 'cleanup', rule: 'clear-lock', outcome: 'fixed-verified', id: 4, alert: 999 }];
    const withUrl = policy({
      timezone: 'Europe/Zurich',
      digest: { at: '07:00' },
      deadman: ['true'],
      dashboard: { publicUrl: 'https://ops.shop.example' },
    });
    const input = { jobs, kill: KILL_OFF, date, window: w, now: w.to + 1000, heals };
    const linked = composeDigest({ ...input, policy: withUrl, facts: digestFacts(store, w, jobs.keys()) });
    const plain = composeDigest({ ...input, policy: pol, facts: digestFacts(store, w, jobs.keys()) });

    // export's runs up to the window's end, oldest first: failed (before the window), ok, failed, failed, ok, timeout, ok
    const C = TONE_COLOURS.light;
    const rowOf = (html: string, job: string): string =>
      new RegExp(`<tr data-health="\\w+"[^>]*><td[^>]*>(?:<a [^>]*>)?${job}<.*`).exec(html)![0];
    for (const d of [linked, plain]) {
      const cells = [...rowOf(d.html, 'export').matchAll(/<td style="width: 6px; height: 14px; padding: 0; background: (#\w+);/g)].map(
        (m) => m[1],
      );
      expect(cells).toEqual([C.bad, C.ok, C.bad, C.bad, C.ok, C.bad, C.ok]);
      expect(rowOf(d.html, 'export')).toContain('>3 ok, 4 failed</td>');
      // a wrong result has its own colour, the same as the dashboard's (report/tones.ts)
      expect(rowOf(d.html, 'report')).toContain(`background: ${C.warn};`);
      expect(rowOf(d.html, 'report')).toContain('>1 ok, 1 wrong</td>');
      // an external job has pings, not runs
      expect(rowOf(d.html, 'pinger')).toContain('external: pings only');
    }
    expect(runTone('wrong')).toBe('warn');
    expect(runTone('timeout')).toBe('bad');
    expect(runTone('skipped-precheck')).toBe('idle');

    // With publicUrl: the job, alert and heal each line is about link to their dashboard page.
    const base = 'https://ops.shop.example';
    expect(linked.html).toContain(`<li><a href="${base}/jobs/export">export</a>: failing since`);
    expect(linked.html).toMatch(new RegExp(`export failing \\(<a href="${base}/alerts#A-1">A-1</a>\\): opened`));
    expect(linked.html).toContain(`(<a href="${base}/heals#H-4">H-4</a>, `);
    expect(linked.html).toContain(`<a href="${base}/jobs/cleanup">cleanup</a>: paused since`);
    expect(linked.html).toMatch(new RegExp(`<td[^>]*><a href="${base}/jobs/db-backup" style="color: #\\w+">db-backup</a></td>`));
    for (const m of linked.html.matchAll(/href="([^"]*)"/g)) expect(m[1]!.startsWith(`${base}/`), m[1]).toBe(true);
    // a job removed since (runs in the window, no spec now) is named, not linked: it has no page
    const gone = composeDigest({
      ...input,
      jobs: new Map([...jobs].filter(([n]) => n !== 'export')),
      policy: withUrl,
      facts: digestFacts(store, w),
    });
    expect(lineWith(gone.text, '- export: last failure')).not.toContain('https://');
    expect(gone.html).not.toContain(`${base}/jobs/export`);
    expect(lineWith(linked.text, '- export: failing since')).toMatch(new RegExp(`<${base}/jobs/export>$`));
    expect(lineWith(linked.text, 'H-4')).toMatch(new RegExp(`<${base}/heals#H-4>$`));
    // Without it: no link anywhere (a listen address is this machine's own), and the same words.
    expect(plain.html).not.toMatch(/<a |href=|https?:/);
    expect(plain.text).not.toContain('ops.shop.example');
    expect(linked.text.replace(/ <https:[^>]*>/g, '')).toBe(plain.text);
    expect(linked.verdict).toBe(plain.verdict);
    // With publicUrl but the dashboard off: no link either (nothing would answer there).
    const off = composeDigest({
      ...input,
      policy: policy({
        timezone: 'Europe/Zurich',
        digest: { at: '07:00' },
        deadman: ['true'],
        dashboard: { listen: 'off', publicUrl: base },
      }),
      facts: digestFacts(store, w, jobs.keys()),
    });
    expect(off.html).not.toMatch(/<a |href=|https?:/);
    expect(off.text).toBe(plain.text);
  });

  it('lists the next 24 hours per job: managed, enabled, not paused; counts from the schedule module', () => {
    const { store, jobs } = fill();
    const d = compose({ store, jobs, policy: pol, kill: KILL_OFF, date, window: w, now: w.to + 1000 });
    const section = d.text.slice(d.text.indexOf('Jobs\n----'));
    // agent-sync every 15m: 96; export hourly: 24; db-backup and report daily: 1 each. cleanup is
    // paused, pinger only pings (nightshift does not start it), old is turned off: none counted.
    expect(section).toContain('- 122 runs of 4 jobs scheduled in the next 24 hours');
    expect(section).toContain(
      '    - agent-sync: ok; last run 2026-03-28 12:00 +01:00 (ok); next 2026-03-29 07:15 +02:00 (96 runs in 24 hours)\n',
    );
    expect(section).toContain(
      '    - export: failing; last run 2026-03-28 13:00 +01:00 (ok); next 2026-03-29 08:00 +02:00 (24 runs in 24 hours)\n',
    );
    expect(section).toContain(
      '    - db-backup: failing; last run 2026-03-29 00:30 +01:00 (failed); next 2026-03-30 02:00 +02:00 (1 run in 24 hours)\n',
    );
    expect(section).toContain(
      '    - report: waiting for db-backup; last run 2026-03-28 09:00 +01:00 (ok); next 2026-03-30 02:30 +02:00 (1 run in 24 hours)\n',
    );
    expect(section).toContain('    - cleanup: paused; no run yet\n');
    // An external job: its last success ping and when the next is expected by (no ping yet: from now,
    // 07:00:01 +02:00: the 08:00 instant plus its 5m grace), as status shows it.
    expect(section).toContain(
      '    - pinger: ok; external (nightshift does not run it); no ping yet; next ping expected by 2026-03-29 08:05 +02:00\n',
    );
    expect(d.html).toMatch(
      /<td[^>]*>pinger<\/td><td[^>]*>ok<\/td><td[^>]*>no ping yet<\/td><td[^>]*>ping expected by 2026-03-29 08:05 \+02:00<\/td>/,
    );
    // Late: its last ping at 04:30, so the 05:05 deadline was missed; the next still ahead is shown (07:05).
    store.heartbeats.record('pinger', 'success', w.to - 150 * 60_000, 'ping');
    const late = compose({ store, jobs, policy: pol, kill: KILL_OFF, date, window: w, now: w.to + 1000 });
    expect(late.text).toContain('last ping 2026-03-29 04:30 +02:00; next ping expected by 2026-03-29 07:05 +02:00\n');
    store.heartbeats.record('pinger', 'success', w.to - 30 * 60_000, 'ping');
    const pinged = compose({ store, jobs, policy: pol, kill: KILL_OFF, date, window: w, now: w.to + 1000 });
    expect(pinged.text).toContain(
      '    - pinger: ok; external (nightshift does not run it); last ping 2026-03-29 06:30 +02:00; next ping expected by 2026-03-29 07:05 +02:00\n',
    );
    expect(section).toContain('    - old: turned off in its file; no run yet\n');
  });

  it('a heal for an open alert is told under its job in "Needs you"; one for a closed alert under "Heals", asking nothing', () => {
    const { store, jobs } = fill();
    const openExport = store.alerts.open().find((a) => a.job === 'export')!;
    const openDb = store.alerts.open().find((a) => a.job === 'db-backup')!;
    const closed = store.alerts.between(w.from, w.to).find((a) => a.job === 'cleanup')!;
    const heals = [
      { at: w.from + H, job: 'pinger', rule: 'stale-lock', outcome: 'fixed-verified', id: 1, alert: 5 },
      {
        at: w.from + 2 * H,
        job: 'export',
        rule: 'stale-lock',
        outcome: 'rolled-back',
        detail: 'probe failed',
        id: 2,
        alert: openExport.id,
      },
      { at: w.from + 3 * H, job: 'db-backup', rule: 'restart-pg', outcome: 'awaiting-approval', id: 3, alert: openDb.id },
      { at: w.from + 4 * H, job: 'cleanup', rule: 'restart-pg', outcome: 'blocked', id: 4, alert: closed.id },
    ];
    const d = compose({ store, jobs, policy: pol, kill: KILL_OFF, date, window: w, now: w.to, heals });
    expect(d.verdict).toBe('2 jobs need you');
    const needs = d.text.slice(d.text.indexOf('Needs you\n'), d.text.indexOf('\n\n', d.text.indexOf('Needs you\n')));
    expect(needs).toContain(
      '    - db-backup: rule restart-pg waits for your approval to fix it; answer with: nightshift approve H-3 or nightshift deny H-3 (H-3, 2026-03-28 10:00 +01:00)',
    );
    expect(needs).toContain(
      '    - export: a fix by rule stale-lock did not pass its check and was undone (H-2, 2026-03-28 09:00 +01:00): "probe failed"',
    );
    expect(needs).not.toContain('cleanup');
    expect(d.text).toContain(
      'Heals\n-----\n- pinger: fixed by rule stale-lock, and an independent check confirmed it (H-1, 2026-03-28 08:00 +01:00)\n- cleanup: rule restart-pg stopped after the attempts allowed; a person decides what next (H-4, 2026-03-28 11:00 +01:00); the alert has closed since, so nothing waits\n',
    );
  });
});

describe('DigestService', () => {
  function setup(digest: Record<string, unknown>, extra: Partial<ConstructorParameters<typeof DigestService>[0]> = {}) {
    const home = dir();
    const paths = homePaths(home);
    const store = openStore(paths);
    let pol = policy({ timezone: 'UTC', digest });
    const jobs = jobsOf(home, pol, { a: { schedule: '0 3 * * *', command: ['true'] }, b: { every: '1h', command: ['true'] } });
    const sent: DigestRunResult[] = [];
    const svc = new DigestService({
      store,
      paths,
      getJobs: () => jobs,
      getPolicy: () => pol,
      getKill: () => KILL_OFF,
      clock: { now: () => Date.now() },
      log: silentLogger,
      mailTimeoutMs: 2000,
      ...extra,
    });
    svc.events.on('handled', (r) => sent.push(r));
    services.push(svc);
    return {
      home,
      paths,
      store,
      svc,
      sent,
      setPolicy: (p: Record<string, unknown>) => (pol = policy({ timezone: 'UTC', ...p })),
      getPolicy: () => pol,
    };
  }

  async function mailbox(): Promise<Mailbox> {
    const m = await startMailbox();
    mailboxes.push(m);
    return m;
  }

  it('sends at digest.at (one DeadlineTimer): the received mail has from, to, the verdict in the subject, plain and HTML parts', async () => {
    const box = await mailbox();
    // A clock 400 ms before midnight UTC, so that the 00:00 digest is due almost at once.
    const midnight = Math.ceil(Date.now() / 86_400_000) * 86_400_000;
    const skew = midnight - 400 - Date.now();
    const clock = { now: () => Date.now() + skew };
    const t = setup(
      { at: '00:00', to: ['ops@example.com'], from: 'nightshift@shop.example', smtp: { host: '127.0.0.1', port: box.port } },
      { clock },
    );
    const today = digestDate('UTC', clock.now());
    const tomorrow = addDays(today, 1);
    // Today's digest went out already: start() must not send it again.
    t.store.digests.save({ date: today, createdAt: clock.now(), verdict: 'x', text: 'x', html: 'x' });
    t.store.digests.markSent(today, clock.now());
    t.svc.start();
    expect(t.svc.nextDigestAt()).toBe(midnight);
    await waitFor(() => box.messages.length === 1, 8000, 'the digest mail');
    await t.svc.idle();

    const m = box.messages[0]!;
    expect(m.mailFrom).toBe('nightshift@shop.example');
    expect(m.rcptTo).toEqual(['ops@example.com']);
    const mail = parseMail(m.raw);
    expect(mail.headers.from).toContain('nightshift@shop.example');
    expect(mail.headers.to).toContain('ops@example.com');
    expect(mail.headers.subject).toBe(`nightshift ${tomorrow}: Nothing needs you: all 2 jobs healthy`);
    expect(mail.text.split('\n')[0]).toBe('Nothing needs you: all 2 jobs healthy');
    // b runs on the hour: composed on the very millisecond of midnight, its 24 h hold 01:00 … 23:00
    // only (the next midnight is the end, not in it); a millisecond later they hold that midnight too.
    const composed = t.store.digests.get(tomorrow)!.created_at;
    const runs = 1 + (composed % 3_600_000 === 0 ? 23 : 24);
    expect(mail.text).toContain(`Jobs\n----\n- ${runs} runs of 2 jobs scheduled in the next 24 hours\n`);
    expect(mail.html).toContain('<h1 style="font-size: 20px">Nothing needs you: all 2 jobs healthy</h1>');
    // One message, two renderings of it: a client shows the HTML and falls back to the text.
    expect(mail.headers['content-type']).toMatch(/^multipart\/alternative;\s*boundary=/);
    expect(mail.parts).toEqual(['text/plain', 'text/html']);
    // The status table, one green row per job.
    expect(mail.html.match(/<tr data-health="ok" style="background: #e6f4ea; color: #137333">/g)).toHaveLength(2);
    expect(mail.html).toMatch(
      /<tr data-health="ok"[^>]*><td[^>]*>a<\/td><td[^>]*>ok<\/td><td[^>]*>no run yet<\/td><td[^>]*>\d{4}-\d\d-\d\d 03:00 UTC<\/td><td[^>]*>no runs yet<\/td><\/tr>/,
    );

    const row = t.store.digests.get(tomorrow)!;
    expect(row.sent_at).not.toBeNull();
    expect(row.attempts).toBe(1);
    expect(readFileSync(digestFile(t.paths, tomorrow), 'utf8')).toBe(row.body_text);
    expect(mail.text.trim()).toBe(row.body_text.trim());
    expect(t.sent.map((r) => [r.date, r.sent])).toEqual([[tomorrow, true]]);
    expect(t.svc.nextDigestAt()).toBe(midnight + 86_400_000);
  });

  it('started after the digest time with no row for today, it sends at once', async () => {
    const box = await mailbox();
    const t = setup({ at: '00:00', to: ['ops@example.com'], smtp: { host: '127.0.0.1', port: box.port } });
    const today = digestDate('UTC', Date.now());
    t.svc.start();
    await waitFor(() => box.messages.length === 1, 8000, 'the catch-up digest');
    await t.svc.idle();
    expect(parseMail(box.messages[0]!.raw).headers.subject).toBe(`nightshift ${today}: Nothing needs you: all 2 jobs healthy`);
    expect(t.store.digests.get(today)!.sent_at).not.toBeNull();
    expect(t.sent).toHaveLength(1);
    // A second start (a restart) finds the row and does not send again.
    await t.svc.stop();
    t.svc.start();
    await t.svc.idle();
    expect(box.messages).toHaveLength(1);
  });

  it('SMTP down: the file is still written, the row keeps the error and the next attempt, retries resume after a restart, the next digest reports it', async () => {
    const port = await closedPort();
    const digest = { at: '00:00', to: ['ops@example.com'], smtp: { host: '127.0.0.1', port } };
    const t = setup(digest, { retryDelaysMs: [300] });
    const today = digestDate('UTC', Date.now());
    const before = Date.now();
    const r = await t.svc.runFor(today, { send: true });
    expect(r.sent).toBe(false);
    expect(r.error).toMatch(new RegExp(`SMTP 127\\.0\\.0\\.1:${port}: the connection was refused.*ECONNREFUSED`));
    expect(existsSync(digestFile(t.paths, today))).toBe(true);
    let row = t.store.digests.get(today)!;
    expect(row.sent_at).toBeNull();
    expect(row.attempts).toBe(1);
    expect(row.last_error).toBe(r.error);
    expect(row.next_attempt_at).toBeGreaterThanOrEqual(before + 300);
    expect(row.next_attempt_at).toBeLessThan(Date.now() + 300 + 50);

    // Started, it re-arms the stored retry (and does not compose today's again: it was tried).
    t.svc.start();
    await waitFor(() => t.store.digests.get(today)!.attempts >= 3, 8000, 'two more attempts');
    await t.svc.stop();
    row = t.store.digests.get(today)!;
    expect(row.sent_at).toBeNull();
    expect(row.next_attempt_at).not.toBeNull();

    // The next day's digest reports the failure.
    const next = compose({
      store: t.store,
      jobs: new Map(),
      policy: t.getPolicy(),
      kill: KILL_OFF,
      date: addDays(today, 1),
      window: digestWindow(t.getPolicy(), addDays(today, 1)),
      now: Date.now(),
    });
    expect(next.text).toMatch(
      new RegExp(
        `- ${today}: not sent after ${row.attempts} attempts \\(trying again .*\\); the text is in digests/${today}\\.md.*ECONNREFUSED`,
      ),
    );

    // A new service on the same store (a restarted daemon) resumes the retries; now the server is up.
    const box = await mailbox();
    t.setPolicy({ digest: { ...digest, smtp: { host: '127.0.0.1', port: box.port } } });
    const again = new DigestService({
      store: t.store,
      paths: t.paths,
      getJobs: () => new Map(),
      getPolicy: t.getPolicy,
      getKill: () => KILL_OFF,
      clock: { now: () => Date.now() },
      log: silentLogger,
      retryDelaysMs: [300],
    });
    services.push(again);
    again.start();
    await waitFor(() => box.messages.length === 1, 8000, 'the retried digest');
    await again.idle();
    const mail = parseMail(box.messages[0]!.raw);
    expect(mail.headers.subject).toBe(`nightshift ${today}: Nothing needs you: all 2 jobs healthy`);
    expect(mail.text.trim()).toBe(readFileSync(digestFile(t.paths, today), 'utf8').trim());
    row = t.store.digests.get(today)!;
    expect(row.sent_at).not.toBeNull();
    expect(row.next_attempt_at).toBeNull();
    expect(row.last_error).toBeNull();
    await new Promise((res) => setTimeout(res, 700));
    expect(box.messages).toHaveLength(1);
  });

  it('a failed send is retried on the documented schedule (1m, 5m, 15m, 1h, then every 6h) until the server takes it, then never again', async () => {
    // A real SMTP server, in a process of its own (its own timers stay real): it refuses (421) the
    // first six connections and takes the seventh, and says so on stdout. The service here runs on
    // faked Date and setTimeout (the delays are hours long, pure arithmetic); the fake clock stands
    // still while the test waits, so the time of each attempt is the fake time its line arrives at.
    const server = execa('node', ['-e', REFUSING_SMTP, '6'], { cwd: ROOT, reject: false, buffer: false, stdin: 'ignore' });
    const lines: string[] = [];
    let partial = '';
    server.stdout?.on('data', (c: Buffer) => {
      partial += c.toString();
      for (let i; (i = partial.indexOf('\n')) >= 0; partial = partial.slice(i + 1)) lines.push(partial.slice(0, i));
    });
    mailboxes.push({ port: 0, messages: [], close: async () => void (server.kill(), await server) });
    const port = Number((await waitFor(() => lines.find((l) => l.startsWith('port ')), 15_000, 'the SMTP server')).slice(5));

    vi.useFakeTimers({ now: Date.UTC(2026, 5, 10, 0, 0, 30), toFake: ['Date', 'setTimeout', 'clearTimeout'] });
    try {
      const seen: number[] = [];
      const attempts = (): number => {
        // each new connection, at the (standing) fake time it is noticed
        while (seen.length < lines.filter((l) => l === 'connect').length) seen.push(Date.now());
        return seen.length;
      };
      // No retryDelaysMs: the service's own defaults are under test. Wall and elapsed time move
      // together (an advance of the fake time is no clock step).
      const t = setup(
        { at: '00:00', to: ['ops@example.com'], smtp: { host: '127.0.0.1', port } },
        { clock: { now: () => Date.now(), monotonic: () => Date.now() } },
      );
      const today = '2026-06-10';
      const t0 = Date.now();
      // Started after 00:00 with no digest for today: it is sent at once, and refused.
      t.svc.start();
      vi.advanceTimersByTime(0);
      await waitFor(() => attempts() === 1 && t.store.digests.get(today)?.attempts === 1, 15_000, 'the first attempt');
      await t.svc.idle();
      expect(t.store.digests.get(today)).toMatchObject({ sent_at: null, next_attempt_at: t0 + 60_000 });

      const delays = [60_000, 300_000, 900_000, 3_600_000, 21_600_000, 21_600_000];
      let at = t0;
      for (const [i, delay] of delays.entries()) {
        at += delay;
        // not a millisecond early ...
        vi.advanceTimersByTime(at - 1 - Date.now());
        await t.svc.idle();
        expect(attempts(), `attempt ${i + 2} before its time`).toBe(i + 1);
        // (the service's own record, written in this process: no pipe to lag behind)
        expect(t.store.digests.get(today), `attempt ${i + 2} before its time`).toMatchObject({ attempts: i + 1, next_attempt_at: at });
        // ... and at its time
        vi.advanceTimersByTime(1);
        await waitFor(() => attempts() === i + 2 && t.store.digests.get(today)?.attempts === i + 2, 15_000, `attempt ${i + 2}`);
        await t.svc.idle();
      }
      expect(seen.map((s, i) => (i === 0 ? 0 : s - seen[i - 1]!))).toEqual([0, ...delays]);
      // the seventh attempt was taken: one mail, the row says sent, nothing more is planned
      await waitFor(() => lines.find((l) => l.startsWith('mail ')), 15_000, 'the mail');
      expect(lines.filter((l) => l.startsWith('mail '))).toEqual([`mail nightshift ${today}: Nothing needs you: all 2 jobs healthy`]);
      expect(t.store.digests.get(today)).toMatchObject({ attempts: 7, sent_at: at, next_attempt_at: null, last_error: null });
      // past where a seventh retry would have been (6 h on), still before the next day's digest
      vi.advanceTimersByTime(6 * H + 60_000);
      await t.svc.idle();
      expect(attempts()).toBe(7);
    } finally {
      vi.useRealTimers();
    }
  });

  it('policyChanged() re-arms the digest time and tries new mail settings at once', async () => {
    const port = await closedPort();
    const t = setup({ at: '00:00', to: ['ops@example.com'], smtp: { host: '127.0.0.1', port } }, { retryDelaysMs: [60_000] });
    const today = digestDate('UTC', Date.now());
    t.svc.start();
    await waitFor(() => t.store.digests.get(today)?.attempts === 1, 8000, 'the first, failed attempt');
    expect(t.store.digests.get(today)!.next_attempt_at).toBeGreaterThan(Date.now() + 50_000);

    const box = await mailbox();
    const inTwoHours = new Date(Date.now() + 2 * H);
    const at = `${String(inTwoHours.getUTCHours()).padStart(2, '0')}:${String(inTwoHours.getUTCMinutes()).padStart(2, '0')}`;
    t.setPolicy({ digest: { at, to: ['ops@example.com'], smtp: { host: '127.0.0.1', port: box.port } } });
    t.svc.policyChanged();
    expect(t.svc.nextDigestAt()).toBe(Math.floor(inTwoHours.getTime() / 60_000) * 60_000);
    await waitFor(() => box.messages.length === 1, 8000, 'the retry with the new settings');
    await t.svc.idle();
    expect(t.store.digests.get(today)!.sent_at).not.toBeNull();
  });

  it('recipients but no transport: recorded once with what to add, no retry storm; adding smtp sends at once', async () => {
    const t = setup({ at: '00:00', to: ['ops@example.com'] }, { retryDelaysMs: [100] });
    const today = digestDate('UTC', Date.now());
    t.svc.start();
    await waitFor(() => t.store.digests.get(today)?.attempts === 1, 8000, 'the failed attempt');
    await t.svc.idle();
    const row = t.store.digests.get(today)!;
    expect(row.last_error).toMatch(/add digest\.smtp .* or digest\.sendmail/);
    expect(row.next_attempt_at).toBeNull();
    await new Promise((res) => setTimeout(res, 300));
    expect(t.store.digests.get(today)!.attempts).toBe(1);

    const box = await mailbox();
    t.setPolicy({ digest: { at: '00:00', to: ['ops@example.com'], smtp: { host: '127.0.0.1', port: box.port } } });
    t.svc.policyChanged();
    await waitFor(() => box.messages.length === 1, 8000, 'the digest after the fix');
    await t.svc.idle();
    expect(t.store.digests.get(today)!.sent_at).not.toBeNull();
  });

  it('no recipients: written and stored, not an error storm', async () => {
    const t = setup({ at: '00:00' });
    const r = await t.svc.runFor('2026-03-29', { send: true });
    expect(r.sent).toBe(false);
    expect(r.error).toMatch(/digest\.to is empty/);
    expect(r.nextAttemptAt).toBeNull();
    expect(existsSync(digestFile(t.paths, '2026-03-29'))).toBe(true);
    const row = t.store.digests.get('2026-03-29')!;
    expect(row.last_error).toBeNull();
    expect(row.attempts).toBe(0);
    expect(
      await sendDigestMail(
        policy({ digest: { to: ['a@example.com'] } }).digest,
        { subject: 's', text: 't', html: 'h' },
        { leash: testLeash() },
      ),
    ).toMatchObject({
      ok: false,
      notConfigured: true,
      error: expect.stringMatching(/add digest\.smtp .* or digest\.sendmail/),
    });
  });

  it('sendmail: the message arrives on the stdin of the configured program, with -i -f FROM TO', async () => {
    const d = dir();
    const script = join(d, 'sendmail');
    writeFileSync(script, `#!/bin/sh\nprintf '%s\\n' "$@" > '${d}/args'\ncat > '${d}/message'\n`);
    chmodSync(script, 0o755);
    const t = setup({ at: '00:00', to: ['ops@example.com'], from: 'nightshift@shop.example', sendmail: script });
    const r = await t.svc.runFor('2026-03-29', { send: true });
    expect(r.error).toBeNull();
    expect(r.sent).toBe(true);
    expect(readFileSync(join(d, 'args'), 'utf8').split('\n')).toEqual(['-i', '-f', 'nightshift@shop.example', 'ops@example.com', '']);
    const mail = parseMail(readFileSync(join(d, 'message'), 'utf8'));
    expect(mail.headers.subject).toBe('nightshift 2026-03-29: Nothing needs you: all 2 jobs healthy');
    expect(mail.text.split('\n')[0]).toBe('Nothing needs you: all 2 jobs healthy');
    expect(mail.html).toContain('<h1 style="font-size: 20px">Nothing needs you: all 2 jobs healthy</h1>');
    expect(t.store.digests.get('2026-03-29')!.sent_at).not.toBeNull();
  });

  it('a sendmail that hangs is killed at the mail timeout and the failure is recorded', async () => {
    const d = dir();
    const script = join(d, 'sendmail');
    writeFileSync(script, '#!/bin/sh\nexec sleep 1000\n');
    chmodSync(script, 0o755);
    const t = setup({ at: '00:00', to: ['ops@example.com'], sendmail: script }, { mailTimeoutMs: 300 });
    const r = await t.svc.runFor('2026-03-29', { send: true });
    expect(r.sent).toBe(false);
    expect(r.error).toMatch(/via sendmail .*: it did not finish within 300ms and was killed/);
    expect(t.store.digests.get('2026-03-29')!.last_error).toBe(r.error);
  });
});

// ---- a real SMTP server on loopback, and just enough MIME to read what arrived ----

interface Received {
  mailFrom: string | null;
  rcptTo: string[];
  raw: string;
}

interface Mailbox {
  port: number;
  messages: Received[];
  close(): Promise<void>;
}

async function startMailbox(): Promise<Mailbox> {
  const messages: Received[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, done) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        messages.push({
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        done();
      });
    },
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  const port = (server.server.address() as AddressInfo).port;
  return { port, messages, close: () => new Promise<void>((res) => server.close(() => res())) };
}

/**
 * An SMTP server on a loopback port (printed as "port N"), for a process of its own: it refuses
 * (421) the first argv[1] connections and takes the next ones; prints "connect" for each
 * connection and "mail SUBJECT" for each mail taken.
 */
const REFUSING_SMTP = `
const { SMTPServer } = require('smtp-server');
const refuse = Number(process.argv[1]);
let n = 0;
const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  logger: false,
  onConnect(_s, cb) {
    n++;
    console.log('connect');
    cb(n <= refuse ? Object.assign(new Error('try again later'), { responseCode: 421 }) : undefined);
  },
  onData(stream, _s, cb) {
    let data = '';
    stream.on('data', (c) => (data += c));
    stream.on('end', () => {
      console.log('mail ' + (/^Subject: (.*)$/m.exec(data) || [])[1]);
      cb();
    });
  },
});
server.listen(0, '127.0.0.1', () => console.log('port ' + server.server.address().port));
`;

/** A loopback port nobody listens on: connections are refused at once. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', () => res()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((res) => s.close(() => res()));
  return port;
}

interface ParsedMail {
  headers: Record<string, string>;
  text: string;
  html: string;
  /** The content types of the parts, in order. */
  parts: string[];
}

function splitHead(raw: string): { headers: Record<string, string>; body: string } {
  const norm = raw.replace(/\r\n/g, '\n');
  const cut = norm.indexOf('\n\n');
  const head = cut < 0 ? norm : norm.slice(0, cut);
  const body = cut < 0 ? '' : norm.slice(cut + 2);
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\n[ \t]+/g, ' ').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { headers, body };
}

function decode(body: string, encoding: string | undefined): string {
  const enc = (encoding ?? '7bit').toLowerCase();
  if (enc === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (enc === 'quoted-printable') {
    const soft = body.replace(/=\n/g, '');
    const bytes: number[] = [];
    for (let i = 0; i < soft.length; i++) {
      const m = /^=([0-9A-Fa-f]{2})/.exec(soft.slice(i, i + 3));
      if (m) {
        bytes.push(parseInt(m[1]!, 16));
        i += 2;
      } else bytes.push(...Buffer.from(soft[i]!, 'utf8'));
    }
    return Buffer.from(bytes).toString('utf8');
  }
  return body;
}

function parseMail(raw: string): ParsedMail {
  const { headers, body } = splitHead(raw);
  const boundary = /boundary="?([^";]+)"?/.exec(headers['content-type'] ?? '')?.[1];
  let text = '';
  let html = '';
  const types: string[] = [];
  const parts = boundary ? body.split(`--${boundary}`).slice(1, -1) : [body];
  for (const part of parts) {
    const p = boundary ? splitHead(part.replace(/^\n/, '')) : { headers, body };
    const content = decode(p.body.replace(/\n$/, ''), p.headers['content-transfer-encoding']);
    const type = p.headers['content-type'] ?? 'text/plain';
    types.push(type.split(';')[0]!.trim());
    if (type.startsWith('text/html')) html = content;
    else if (type.startsWith('text/plain')) text = content;
  }
  return { headers, text, html, parts: types };
}
