// Fault suite: a restart loop. The daemon is started 20 times in a row and each time stopped at a
// seeded random moment after it said "nightshift started" — SIGTERM or SIGKILL, some at once — as
// systemd restarting a daemon that keeps dying would. `daemon-restart-loop` is paged once (at
// least once, README: a start killed while its page command ran cannot know whether the page went
// out, so the next start pages again — each such duplicate is accounted for), and nothing else may
// be lost: every life of the daemon claimed each instant of the
// every-second jobs that was due while it lived, every instant is accounted for (claimed once, or
// counted as missed by the next start and caught up once), every run is final and ran at most once
// per instant (by the job's own evidence too), the failing job's alert kept every occurrence, and
// every SIGTERM was a graceful stop.
import type { RunRow } from '../../src/store/store.js';
import { execa } from 'execa';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RESTART_LOOP_STARTS } from '../../src/daemon.js';
import { CLI, cleanup, FIXTURES, makeHome, pageCapture, query, tempDir, waitFor } from '../support/helpers.js';
import { mulberry32 } from '../support/random-cron.js';

const STARTS = 20;
const SEED = 20_2605;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) cleanup(d);
});

/**
 * Starts the daemon and sends it `signal` `afterMs` after its "nightshift started" line — with 0,
 * from the very handler that reads the line, so that it dies while what it set off at start (a
 * page command) is only starting. Resolves with how it ended and when the signal was sent.
 */
async function startAndStop(
  home: string,
  signal: 'SIGTERM' | 'SIGKILL',
  afterMs: number,
): Promise<{ exitCode: number | undefined; signal: string | undefined; stderr: string; stoppedAt: number }> {
  const proc = execa('node', [CLI, '--home', home, 'start'], { reject: false, buffer: false, stdin: 'ignore', forceKillAfterDelay: false });
  let out = '';
  let stderr = '';
  let sent = false;
  let stoppedAt = 0;
  const stop = (): void => {
    stoppedAt = Date.now();
    proc.kill(signal);
  };
  proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  proc.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
    if (sent || !out.includes('"msg":"nightshift started"')) return;
    sent = true;
    if (afterMs === 0) stop();
    else setTimeout(stop, afterMs);
  });
  const r = await proc;
  if (!sent) throw new Error(`the daemon exited before it started: ${stderr}`);
  return { exitCode: r.exitCode, signal: r.signal, stderr, stoppedAt };
}

/** A row of the runs table, as the tests read it back with query(). */
type Run = RunRow;

/** Both jobs run `every: 1s`: their instants are the whole seconds. */
const TICK_MS = 1000;

/** Whole seconds t with from < t <= to. */
function instantsIn(from: number, to: number): number[] {
  const out: number[] = [];
  for (let t = Math.floor(from / TICK_MS) * TICK_MS + TICK_MS; t <= to; t += TICK_MS) out.push(t);
  return out;
}

describe('restart loop', () => {
  it(`${STARTS} starts, each stopped by SIGTERM or SIGKILL at a random moment: one daemon-restart-loop page (a duplicate only from a start killed while it paged), nothing else lost`, async () => {
    const rand = mulberry32(SEED);
    const dir = tempDir('ns-restartloop-');
    dirs.push(dir);
    const capture = pageCapture(dir);
    const evidence = join(dir, 'evidence');
    writeFileSync(evidence, '');
    const job = join(FIXTURES, 'fault-job.sh');
    const home = makeHome(
      {
        tick: `every: 1s\ncatchUp: true\ncommand: ["${job}", "${evidence}", "0.2"]\n`,
        fail: `every: 1s\ncommand: ["${job}", "${evidence}", "0", "3"]\n`,
      },
      `timezone: UTC\npage:\n  allow: [daemon-restart-loop]\n  command: ["${capture.command}"]\n`,
    );
    dirs.push(home);
    const state = join(home, 'state');

    const plan: Array<{ signal: 'SIGTERM' | 'SIGKILL'; afterMs: number }> = [];
    for (let i = 0; i < STARTS; i++) {
      const signal = rand() < 0.5 ? 'SIGTERM' : 'SIGKILL';
      const afterMs = rand() < 0.3 ? 0 : Math.round(rand() * 1500);
      plan.push({ signal, afterMs });
    }
    // The start that makes the loop (and pages) dies at once, as a crashing daemon would: the page
    // must still go out (at least once: a duplicate only from a start killed while it paged). The last stop is a graceful one, so that the runs the loop's
    // kills left open are recovered; it comes 2.5 s after the start, so that at least one instant
    // is surely due a whole tick before it (the per-life check below then has something to check
    // whatever the machine's speed).
    plan[RESTART_LOOP_STARTS - 1] = { signal: 'SIGKILL', afterMs: 0 };
    plan[STARTS - 1] = { signal: 'SIGTERM', afterMs: 2500 };
    const why = `plan (seed ${SEED}): ${plan.map((p) => `${p.signal === 'SIGTERM' ? 'T' : 'K'}+${p.afterMs}`).join(' ')}`;

    const exits: Array<{ signal: string; exitCode: number | undefined; killedBy: string | undefined }> = [];
    const stoppedAt: number[] = [];
    for (const p of plan) {
      const r = await startAndStop(home, p.signal, p.afterMs);
      exits.push({ signal: p.signal, exitCode: r.exitCode, killedBy: r.signal });
      stoppedAt.push(r.stoppedAt);
    }

    // every SIGTERM was a graceful stop (exit 0), every SIGKILL a kill
    for (const [i, e] of exits.entries()) {
      if (e.signal === 'SIGTERM') expect({ i, ...e }, why).toEqual({ i, signal: 'SIGTERM', exitCode: 0, killedBy: undefined });
      else expect({ i, killedBy: e.killedBy }, why).toEqual({ i, killedBy: 'SIGKILL' });
    }
    const events = (kind: string) => query<{ id: number }>(state, 'SELECT id FROM events WHERE kind = ?', kind).length;
    expect(events('daemon-start'), why).toBe(STARTS);
    expect(events('daemon-stop'), why).toBe(exits.filter((e) => e.signal === 'SIGTERM').length);

    // The page went out (README: a restart loop is paged once an hour, at least once). The start
    // that made the loop is killed the moment it says it started, while its page command may be
    // starting; its page row stays open (then interrupted), so a later start of the loop pages, and
    // every start after the one that paged is suppressed. The killed start's page command dies with
    // it (bwrap's --die-with-parent), but may have delivered first. Every daemon has exited, so once
    // no page command runs, no page can still arrive.
    await waitFor(() => !require_ps().some((args) => args.includes(capture.command)), 10_000, 'no page command running');
    const pages = capture.pages();
    const rows = query<{ id: number; at: number; outcome: string | null }>(state, 'SELECT id, at, outcome FROM pages ORDER BY id');
    const delivered = `${why}; pages delivered, by the start that made each: ${pages.map((p) => String(p.starts)).join(', ')}; page rows: ${rows.map((r) => r.outcome).join(', ')}`;
    // Exactly one page row was seen through (sent): the last; every row before it was left open
    // by a daemon that died (interrupted), which is why the next start paged again.
    expect(
      rows.map((r) => r.outcome),
      delivered,
    ).toEqual([...rows.slice(0, -1).map(() => 'interrupted'), 'sent']);
    // Every page delivered is one of those rows' (its payload carries the row's moment), no row's
    // page arrived twice, and the sent row's page arrived (once). Any other page delivered is the
    // duplicate at-least-once allows: from an interrupted row, made by a start that was SIGKILLed
    // (a SIGTERM waits for its page command and records it as sent).
    const rowOf = pages.map((p) => rows.find((r) => r.at === Date.parse(String(p.at))));
    expect(
      rowOf.map((r) => r?.id ?? null),
      delivered,
    ).not.toContain(null);
    expect(new Set(rowOf.map((r) => r!.id)).size, delivered).toBe(pages.length);
    expect(
      rowOf.filter((r) => r!.outcome === 'sent'),
      delivered,
    ).toHaveLength(1);
    for (const [k, p] of pages.entries()) {
      expect(p, delivered).toMatchObject({ event: 'daemon-restart-loop', fingerprint: 'nightshift:daemon-restart-loop' });
      // the start that paged counted itself: the RESTART_LOOP_STARTS-th start of the window or a later one
      const start = p.starts as number;
      expect(start, delivered).toBeGreaterThanOrEqual(RESTART_LOOP_STARTS);
      if (rowOf[k]!.outcome !== 'sent')
        expect({ start, stoppedBy: plan[start - 1]!.signal }, delivered).toEqual({ start, stoppedBy: 'SIGKILL' });
    }
    expect(events('page-suppressed'), why).toBe(STARTS - (RESTART_LOOP_STARTS - 1) - rows.length);

    // runs: all final, one row and at most one start per instant, each start by the job has its row
    const runs = query<Run>(state, 'SELECT id, job, trigger, scheduled_for, created_at, outcome FROM runs ORDER BY id');
    expect(
      runs.filter((r) => r.outcome === null),
      why,
    ).toEqual([]);

    // Each life of the daemon, from its daemon-start event (written once its scheduler is armed)
    // to the moment it was told to stop, claimed every instant that was due while it lived: each
    // whole second after its start that lay a whole tick before its stop (a timer late by less than
    // a tick still claims its instant; the scheduler coalesces only what it is later than that for)
    // has a schedule row written in that life. What the daemon recorded is compared with what was
    // due in its own life, not with a count that depends on the machine's speed.
    const lives = query<{ at: number }>(state, "SELECT at FROM events WHERE kind = 'daemon-start' ORDER BY id").map((e) => e.at);
    expect(lives.length, why).toBe(STARTS);
    let due = 0;
    for (const job of ['tick', 'fail']) {
      const scheduled = runs.filter((r) => r.job === job && r.trigger === 'schedule');
      for (const [i, start] of lives.entries()) {
        const end = lives[i + 1] ?? Infinity;
        const claimed = new Set(scheduled.filter((r) => r.created_at >= start && r.created_at < end).map((r) => r.scheduled_for));
        const dueHere = instantsIn(start, stoppedAt[i]! - TICK_MS);
        due += dueHere.length;
        expect({ job, life: i + 1, unclaimed: dueHere.filter((t) => !claimed.has(t)) }, why).toEqual({ job, life: i + 1, unclaimed: [] });
      }
    }
    expect(due, `${why}: no instant was due a whole tick before any stop`).toBeGreaterThan(0);

    // And every instant from the first to the last claimed is accounted for: claimed by a schedule
    // row, or counted by a later start as missed while nightshift was down (never both) — and for
    // the catchUp job, each such gap was caught up once, at its last instant (unless the start that
    // counted it was killed before its catch-up row, and a later start counted it again).
    for (const job of ['tick', 'fail']) {
      const claimed = runs.filter((r) => r.job === job && r.trigger === 'schedule').map((r) => r.scheduled_for!);
      const gaps = query<{ data: string }>(
        state,
        "SELECT data FROM events WHERE kind = 'missed-while-down' AND job = ? ORDER BY id",
        job,
      ).map((e) => JSON.parse(e.data) as { first: number; count: number });
      // Instants a late timer passed over (a busy machine) are coalesced into the run it started,
      // and recorded as such: accounted for too.
      const late = query<{ data: string }>(state, "SELECT data FROM events WHERE kind = 'missed-late' AND job = ?", job).map(
        (e) => JSON.parse(e.data) as { first: number; count: number },
      );
      const missed = new Set([...gaps, ...late].flatMap((g) => Array.from({ length: g.count }, (_, k) => g.first + k * TICK_MS)));
      const claimedSet = new Set(claimed);
      const first = Math.min(...claimed);
      const last = Math.max(...claimed);
      const unaccounted = instantsIn(first - TICK_MS, last).filter((t) => !claimedSet.has(t) && !missed.has(t));
      // On failure, what was recorded around the first instant without a trace: the journal, the
      // job's rows and each life's start and stop, so a rare interleaving can be read from the report.
      const around = unaccounted.length
        ? JSON.stringify({
            events: query(
              state,
              'SELECT kind, job, at, data FROM events WHERE at BETWEEN ? AND ? ORDER BY id',
              unaccounted[0]! - 5000,
              unaccounted[0]! + 5000,
            ),
            rows: runs.filter((r) => r.job === job && Math.abs((r.scheduled_for ?? r.created_at) - unaccounted[0]!) <= 5000),
            lives: lives.map((at, i) => [at, stoppedAt[i]]).filter(([at]) => Math.abs(at! - unaccounted[0]!) <= 10_000),
          })
        : '';
      expect({ job, unaccounted, claimedAndMissed: claimed.filter((t) => missed.has(t)) }, `${why} ${around}`).toEqual({
        job,
        unaccounted: [],
        claimedAndMissed: [],
      });
      if (job !== 'tick') continue;
      const caughtUp = new Set(runs.filter((r) => r.job === job && r.trigger === 'catch-up').map((r) => r.scheduled_for));
      for (const [k, g] of gaps.entries()) {
        const countedAgain = gaps.slice(k + 1).some((h) => h.first === g.first);
        expect({ gap: g, caughtUp: caughtUp.has(g.first + (g.count - 1) * TICK_MS) || countedAgain }, why).toEqual({
          gap: g,
          caughtUp: true,
        });
      }
      expect(caughtUp.size, why).toBeLessThanOrEqual(gaps.length);
    }
    const starts = readFileSync(evidence, 'utf8')
      .split('\n')
      .filter((l) => l.endsWith(' start'))
      .map((l) => {
        const [id, job] = l.split(' ');
        return { id: Number(id), job };
      });
    // The job's own word is there to check: every run that ran to its end (ok or failed) wrote
    // its start line (the fixture writes it first), so an evidence file left empty fails here.
    const finished = runs.filter((r) => r.outcome === 'ok' || r.outcome === 'failed');
    expect(finished.length, why).toBeGreaterThan(0);
    const startLines = new Set(starts.map((s) => s.id));
    expect(
      finished.filter((r) => !startLines.has(r.id)).map((r) => r.id),
      `${why}: finished runs without a start line in the evidence`,
    ).toEqual([]);
    const byId = new Map(runs.map((r) => [r.id, r]));
    for (const s of starts) expect(byId.get(s.id)?.job, `run #${s.id} started by the job`).toBe(s.job);
    expect(new Set(starts.map((s) => s.id)).size, 'a run started twice').toBe(starts.length);
    const instants = runs.filter((r) => r.trigger === 'schedule' || r.trigger === 'catch-up').map((r) => `${r.job}@${r.scheduled_for}`);
    expect(new Set(instants).size, 'an instant with two rows').toBe(instants.length);

    // the failing job's alert is still there and counted every failed run
    const failed = runs.filter((r) => r.job === 'fail' && r.outcome === 'failed').length;
    expect(failed, why).toBeGreaterThan(0);
    const alerts = query<{ count: number; resolved_at: number | null }>(
      state,
      "SELECT count, resolved_at FROM alerts WHERE fingerprint = 'fail:failed'",
    );
    expect(alerts, why).toHaveLength(1);
    expect(alerts[0], why).toEqual({ count: failed, resolved_at: null });
  }, 180_000);
});

/** The command lines of the processes of this machine (from /proc). */
function require_ps(): string[] {
  const out: string[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      out.push(readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' '));
    } catch {
      // gone
    }
  }
  return out;
}
