// Fault suite: the wall clock steps under a running daemon (NTP, `date -s`, a VM resumed from a
// snapshot) by ±2 h and ±1 day. The OS clock of the machine is not moved: the daemon runs in this
// process with a clock that is the real clock plus an offset the test changes, while its
// monotonic clock (timers, timeouts) goes on as on a real machine. Everything else is real: the
// SQLite file, the job processes, their timeouts.
//
// Semantics under test (src/schedule/scheduler.ts, src/watch/watchdog.ts): forward, the instants jumped over
// are handled like downtime (a catchUp job runs once, the others get one missed-by-clock-jump
// record), with no false missed alerts; backward, schedules follow the new time at once, nothing
// stalls; either way no (job, instant) runs twice, nothing runs in a burst, an alert open before
// the step stays open, one due after it is raised, and a hang is caught on real time.
import type { RunRow } from '../../src/store/store.js';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Daemon } from '../../src/daemon.js';
import { homePaths } from '../../src/config/paths.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { Scheduler } from '../../src/schedule/scheduler.js';
import { Store } from '../../src/store/store.js';
import { clockWatch } from '../../src/schedule/timer.js';
import { cleanup, FIXTURES, job, makeHome, query, tempDir, waitFor } from '../support/helpers.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** A row of the runs table, as the tests read it back with query(). */
type Run = RunRow;
interface Alert {
  id: number;
  fingerprint: string;
  job: string;
  kind: string;
  count: number;
  opened_at: number;
  last_seen_at: number;
  resolved_at: number | null;
  run_id: number | null;
}
interface Event {
  id: number;
  kind: string;
  job: string | null;
  message: string;
  data: string | null;
}

/** The timeout of the run that hangs across the step. */
const HANG_TIMEOUT_S = 6;

function jobs(flag: string, gate: string): Record<string, string> {
  return {
    // every-few-seconds jobs: one plain, one with catchUp
    tick: 'every: 2s\ncommand: ["true"]\n',
    catchup: 'every: 3s\ncatchUp: true\ncommand: ["true"]\n',
    // fails from before the step on: its alert is open across it
    broken: 'every: 2s\nshell: "exit 3"\n',
    // starts failing right after the step: its alert must be raised then
    flaky: `every: 2s\nshell: "test ! -e ${flag}"\n`,
    // a run that starts before the step and hangs past it: the timeout is real time. It hangs
    // only once the test opens the gate, right before the step, so that the step always comes
    // early in its timeout, whatever the time the steady state took to reach.
    hang: `every: 2s\nshell: "if [ -e '${gate}' ]; then exec '${join(FIXTURES, 'hang.sh')}'; fi"\ntimeout: ${HANG_TIMEOUT_S}s\nkillGrace: 1s\n`,
    // external: started (ping --start) before the step, never ends
    'ext-hang': 'every: 1h\ntimeout: 4s\n',
    // external, never pinged: a missed alert before the step that must go on being counted
    'ext-missing': 'every: 2s\nheartbeat: { grace: 1s }\n',
  };
}

async function scenario(stepMs: number, opts: { ranBefore?: number } = {}): Promise<void> {
  const home = makeHome();
  const flag = join(home, 'FLAG');
  const gate = join(home, 'GATE');
  const ranBefore = opts.ranBefore ?? 2;
  for (const [name, text] of Object.entries(jobs(flag, gate))) writeFileSync(join(home, 'jobs', `${name}.yaml`), text);
  let offset = 0;
  const clock = { now: () => Date.now() + offset };
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const paths = homePaths(home);
  const d = new Daemon({ paths, log: createLogger({ level: 'info', destination: sink }), clock, env: {} });
  try {
    await d.start();
    await steps(d, paths.state, stepMs, ranBefore, flag, gate, (ms) => (offset += ms));
  } catch (err) {
    // what the daemon said is the first thing to read when this fails
    console.error(
      lines
        .slice(-40)
        .map((l) => JSON.stringify(l))
        .join('\n'),
    );
    throw err;
  } finally {
    await d.stop();
    cleanup(home);
  }
}

async function steps(
  d: Daemon,
  state: string,
  stepMs: number,
  ranBefore: number,
  flag: string,
  gate: string,
  step: (ms: number) => void,
): Promise<void> {
  const paths = { state };
  const runs = (): Run[] => query<Run>(paths.state, 'SELECT * FROM runs ORDER BY id');
  const alerts = (): Alert[] => query<Alert>(paths.state, 'SELECT * FROM alerts ORDER BY id');
  const events = (kind: string): Event[] => query<Event>(paths.state, 'SELECT * FROM events WHERE kind = ? ORDER BY id', kind);
  const openAlert = (fp: string): Alert | undefined => alerts().find((a) => a.fingerprint === fp && a.resolved_at === null);

  // ---- before the step: everything is in its steady state ----
  const { jobs: live, watchdog } = d.internals;
  await waitFor(() => runs().filter((r) => r.job === 'tick' && r.outcome === 'ok').length >= ranBefore, 30_000, 'tick to run');
  await waitFor(() => openAlert('broken:failed'), 10_000, 'the alert of the broken job');
  await waitFor(() => openAlert('ext-missing:missed'), 10_000, 'the missed alert of the never-pinged external job');
  // Open the gate and wait for a run that hangs (it says so in its log); the step comes right after.
  writeFileSync(gate, '');
  const hanging = (r: Run): boolean =>
    r.log_path !== null && existsSync(r.log_path) && readFileSync(r.log_path, 'utf8').includes('hanging as pid');
  const hangRun = await waitFor(
    () => runs().find((r) => r.job === 'hang' && r.started_at !== null && r.outcome === null && hanging(r)),
    15_000,
    'a hanging run',
  );
  watchdog!.heartbeat(live.get('ext-hang')!, 'start', 'ping');
  expect(openAlert('hang:hung')).toBeUndefined();
  expect(openAlert('flaky:failed')).toBeUndefined();

  // ---- the step ----
  const lastIdBefore = Math.max(...runs().map((r) => r.id));
  const brokenBefore = openAlert('broken:failed')!;
  const missingBefore = openAlert('ext-missing:missed')!;
  const cursorsBefore = new Map(
    query<{ job: string; cursor: number }>(paths.state, 'SELECT job, cursor FROM job_state').map((r) => [r.job, r.cursor]),
  );
  step(stepMs);
  writeFileSync(flag, '');

  // ---- after: what must happen ----
  const after = (job: string): Run[] => runs().filter((r) => r.job === job && r.id > lastIdBefore);
  await waitFor(
    () => after('tick').filter((r) => r.outcome === 'ok' && r.trigger === 'schedule').length >= 3,
    15_000,
    'tick to keep running on the new time',
  );
  const flaky = await waitFor(() => openAlert('flaky:failed'), 10_000, 'the alert of the job that fails after the step');
  // (read as soon as it is raised: a later hanging run's occurrence would move its run_id)
  const hung = await waitFor(() => openAlert('hang:hung'), 25_000, 'the hung alert of the run that hangs across the step');
  await waitFor(() => openAlert('ext-hang:hung'), 10_000, 'the hung alert of the external job started before the step');
  await waitFor(
    () => (openAlert('ext-missing:missed')?.count ?? 0) > missingBefore.count + 1,
    10_000,
    'the missed alert to go on counting',
  );
  await waitFor(() => (openAlert('broken:failed')?.count ?? 0) > brokenBefore.count, 10_000, 'the broken job to fail again');
  if (stepMs > 0)
    await waitFor(() => after('catchup').some((r) => r.trigger === 'catch-up' && r.outcome !== null), 10_000, 'the catch-up run');
  else
    await waitFor(
      () => after('catchup').filter((r) => r.trigger === 'schedule' && r.outcome === 'ok').length >= 2,
      10_000,
      'catchup to keep running',
    );
  await waitFor(() => events('clock-jump').length === 1, 10_000, 'the clock-jump event');
  // Stopped before the checks: every run is finished and recorded.
  await d.stop();

  // The step was noticed once, with its size.
  const jumps = events('clock-jump');
  expect(jumps).toHaveLength(1);
  // before/after: the wall time at the moment the daemon noticed the step, without and with it
  const jump = JSON.parse(jumps[0]!.data!) as { deltaMs: number; before: number; after: number };
  expect(Math.abs(jump.deltaMs - stepMs)).toBeLessThan(1000);
  expect(jumps[0]!.message).toContain(stepMs > 0 ? 'jumped forward by' : 'went back by');

  // Never the same (job, instant) twice.
  const dupes = query(
    paths.state,
    'SELECT job, scheduled_for, count(*) AS n FROM runs WHERE scheduled_for IS NOT NULL GROUP BY job, scheduled_for HAVING n > 1',
  );
  expect(dupes).toEqual([]);

  // No burst: after the step every job runs at most once per interval of the time the daemon
  // recorded since it noticed the step, however many instants the step covered. Every run after
  // the step was recorded after it was noticed (it is noticed before any timer fires), on the new
  // time, so created_at - jump.after is real time; instants after it are an interval apart, so n
  // of them span (n - 1) intervals. On top of those, forward: the latest instant up to the step,
  // run late, and for the catchUp job its one catch-up run. A slow machine spreads runs out,
  // never packs them.
  for (const [job, everyS] of [
    ['tick', 2],
    ['catchup', 3],
    ['broken', 2],
    ['flaky', 2],
    ['hang', 2],
  ] as const) {
    const rs = after(job);
    for (const r of rs) expect(r.created_at, `${job} run #${r.id} recorded before the step was noticed`).toBeGreaterThanOrEqual(jump.after);
    const spanMs = Math.max(jump.after, ...rs.map((r) => r.created_at)) - jump.after;
    const extra = stepMs > 0 ? (job === 'catchup' ? 2 : 1) : 0;
    expect(rs.length, `${job} runs after the step, over ${spanMs} ms`).toBeLessThanOrEqual(
      Math.floor((spanMs + 1) / (everyS * 1000)) + 1 + extra,
    );
  }
  // the same for the occurrences of the missed alert, one per deadline of an instant after the
  // step (+ 1), and the deadline of an instant that came before the step, kept (+ 1)
  const missingAfter = openAlert('ext-missing:missed')!;
  expect(missingAfter.count - missingBefore.count).toBeLessThanOrEqual(Math.floor((missingAfter.last_seen_at - jump.after) / 2000) + 2);

  // Runs after the step are on the new time: each instant lies after the moment the step was
  // noticed, and was not run before it came. Forward, the one exception is the latest instant up
  // to the step on the old time: it was due anyway, and runs once, late (scheduler.clockJumped).
  const ticks = after('tick').filter((r) => r.scheduled_for !== null);
  const late = ticks.filter((r) => stepMs > 0 && r.scheduled_for! <= jump.before);
  expect(late.length, 'tick instants of the old time run after the step').toBeLessThanOrEqual(stepMs > 0 ? 1 : 0);
  for (const r of late) expect(r.scheduled_for!).toBeGreaterThan(cursorsBefore.get('tick')!);
  for (const r of ticks.filter((t) => !late.includes(t))) {
    expect(r.scheduled_for!, `tick run #${r.id}: its instant is on the new time`).toBeGreaterThan(jump.after);
    // (Node's timers may fire a millisecond early by the wall clock)
    expect(r.scheduled_for!, `tick run #${r.id}: not run before its instant`).toBeLessThanOrEqual(r.created_at + 1);
  }

  const catchUps = after('catchup').filter((r) => r.trigger === 'catch-up');
  const missedByJump = events('missed-by-clock-jump');
  if (stepMs > 0) {
    // Forward: like downtime. The catchUp job ran once for everything the step skipped; the others
    // have one record each saying how many instants were skipped.
    expect(catchUps).toHaveLength(1);
    const skipped = new Map(missedByJump.map((e) => [e.job, JSON.parse(e.data!) as { first: number; count: number }]));
    for (const job of ['tick', 'catchup', 'broken', 'flaky']) {
      // (the count stops at 1000, like the count of instants missed while down)
      expect(skipped.get(job)?.count, `instants of ${job} skipped`).toBe(1000);
      expect(skipped.get(job)!.first).toBeGreaterThan(cursorsBefore.get(job)!);
    }
    expect(missedByJump.filter((e) => e.job === 'tick')).toHaveLength(1);
  } else {
    // Backward: nothing was skipped, nothing is caught up, and nothing waited for the old time.
    expect(catchUps).toEqual([]);
    expect(missedByJump).toEqual([]);
    for (const job of ['tick', 'catchup']) {
      // had it waited for the old time, its first run after the step would come after its cursor
      const first = Math.min(...after(job).map((r) => r.created_at));
      expect(first, `${job} ran on the new time`).toBeLessThan(cursorsBefore.get(job)!);
    }
    const again = after('tick').filter((r) => r.scheduled_for === null);
    if (ranBefore * 2000 > -stepMs + 2000) {
      // The step went back over instants tick had already run: it ran on at its interval, those
      // runs recorded without an instant (the first run of each instant holds it).
      expect(again.length, 'tick runs of instants that came round again').toBeGreaterThan(0);
      expect(again.every((r) => r.trigger === 'schedule')).toBe(true);
    } else {
      expect(again).toEqual([]);
    }
  }

  // Alerts: none of the jobs whose instants were simply skipped or repeated is "missed"; the one
  // open before the step is still open; the failure after it and both hangs were raised.
  for (const job of ['tick', 'catchup', 'broken', 'flaky', 'hang', 'ext-hang']) {
    expect(
      alerts().filter((a) => a.job === job && a.kind === 'missed'),
      `missed alerts of ${job}`,
    ).toEqual([]);
  }
  expect(openAlert('broken:failed')!.id).toBe(brokenBefore.id);
  expect(flaky.run_id).toBeGreaterThan(lastIdBefore);
  expect(hung.run_id).toBe(hangRun.id);
  expect(openAlert('hang:hung')!.id).toBe(hung.id);
  expect(runs().find((r) => r.id === hangRun.id)!.outcome).toBe('timeout');
  // The hang was caught on real time: not before the run had lasted its timeout. Its start was
  // recorded on the old time and the alert on the new one; the test moved the clock by exactly
  // stepMs. (A timeout on the wall clock would fire at once after a step forward, and hours late
  // after one back.) Node's timers may fire a millisecond early by the wall clock.
  expect(hung.opened_at - stepMs - hangRun.started_at!).toBeGreaterThanOrEqual(HANG_TIMEOUT_S * 1000 - 2);
}

// Each scenario waits on real job processes most of the time: they run side by side. Nothing
// they check depends on how fast they go; their time limit is generous, since five daemons share
// this process and its core.
describe.concurrent('wall-clock steps under a running daemon', { timeout: 180_000 }, () => {
  it('forward 2 h: skipped instants handled like downtime, no burst, no false missed alert, alerts kept and raised', async () => {
    await scenario(2 * HOUR);
  });
  it('forward 1 day', async () => {
    await scenario(DAY);
  });
  it('back 2 h: schedules follow the new time at once, nothing stalls or runs twice, alerts kept and raised', async () => {
    await scenario(-2 * HOUR);
  });
  it('back 1 day', async () => {
    await scenario(-DAY);
  });
  it('back 12 s, over instants that already ran: a wildcard job keeps its interval, nothing runs twice', async () => {
    await scenario(-12_000, { ranBefore: 8 });
  });
});

describe('the scheduler after a step back, for fixed-time and wildcard jobs (Debian cron rule)', () => {
  it('under 3 h a fixed-time job does not run a time it already ran; after a correction it runs by the new time; an interval job never waits for the old time', async () => {
    const dir = tempDir('ns-clock-');
    const store = Store.open(join(dir, 'nightshift.db'));
    const specs = [
      job('nightly', { schedule: '30 2 * * *', timezone: 'UTC', command: ['true'] }),
      job('often', { every: '10s', command: ['true'] }),
    ];
    // A wall clock that starts half a second before 02:30 UTC (right before the scheduler does)
    // and then runs in real time.
    const start = Date.UTC(2026, 5, 10, 2, 29, 59, 500);
    const p0 = performance.now();
    let offset = 0;
    const clock = { now: () => Math.round(start + (performance.now() - p0) + offset) };
    const due: Array<{ job: string; at: number; repeat: boolean }> = [];
    const s = new Scheduler({
      store,
      clock,
      onDue: (j, at, trigger, repeat, cursorTo) => {
        due.push({ job: j.name, at, repeat });
        return store.runs.insert({ job: j.name, trigger, scheduledFor: at, cursorTo, now: clock.now() }) !== null;
      },
      log: silentLogger,
      jobs: () => new Map(specs.map((j) => [j.name, j])),
      recordMissed: () => {},
    });
    try {
      s.start();
      const at0230 = Date.UTC(2026, 5, 10, 2, 30);
      await waitFor(() => due.some((d) => d.job === 'nightly'), 5_000, 'the 02:30 run');
      expect(due.filter((d) => d.job === 'nightly')).toEqual([{ job: 'nightly', at: at0230, repeat: false }]);

      // Back 2 h, to 00:30: 02:30 comes round again today, and already ran.
      offset -= 2 * HOUR;
      expect(clockWatch(clock).check()?.deltaMs).toBeLessThan(-2 * HOUR + 1000);
      expect(s.nextRun('nightly')).toBe(at0230 + DAY);
      expect(s.nextRun('often')! - clock.now()).toBeLessThanOrEqual(10_000);

      // Back another 22 h, to 02:30 the day before: a correction, so the new time is used, and
      // the next 02:30 is the one that already ran (it will run again, as a repeat).
      offset -= 22 * HOUR;
      expect(clockWatch(clock).check()).not.toBeNull();
      expect(s.nextRun('nightly')).toBe(at0230);
      expect(s.nextRun('often')! - clock.now()).toBeLessThanOrEqual(10_000);
      expect(due.filter((d) => d.job === 'nightly')).toHaveLength(1);
    } finally {
      s.stop();
      store.close();
      cleanup(dir);
    }
  });
});

describe('the scheduler after a step forward', () => {
  it('an instant due before a small step still runs (the step is noticed late, by its own timer); a fixed-time job skipped by a step under 3 h runs once (Debian cron rule)', async () => {
    const dir = tempDir('ns-clock-');
    const store = Store.open(join(dir, 'nightshift.db'));
    const specs = [
      job('daily', { schedule: '0 3 * * *', timezone: 'UTC', command: ['true'] }),
      job('later', { schedule: '0 4 * * *', timezone: 'UTC', command: ['true'] }),
    ];
    // Half a second before 03:00 UTC (right before the scheduler starts), then real time.
    const start = Date.UTC(2026, 5, 10, 2, 59, 59, 500);
    const p0 = performance.now();
    let offset = 0;
    const clock = { now: () => Math.round(start + (performance.now() - p0) + offset) };
    const due: Array<{ job: string; at: number; trigger: string }> = [];
    const missed: Array<{ job: string; first: number; count: number; catchUp: boolean }> = [];
    const s = new Scheduler({
      store,
      clock,
      onDue: (j, at, trigger, _repeat, cursorTo) => {
        due.push({ job: j.name, at, trigger });
        return store.runs.insert({ job: j.name, trigger, scheduledFor: at, cursorTo, now: clock.now() }) !== null;
      },
      log: silentLogger,
      jobs: () => new Map(specs.map((j) => [j.name, j])),
      recordMissed: ({ job, first, count, catchUp }) => missed.push({ job: job.name, first, count, catchUp }),
    });
    try {
      s.start();
      // An NTP step of +1.5 s a moment before 03:00: the 03:00 timer notices it when it fires.
      offset += 1500;
      await waitFor(() => due.some((d) => d.job === 'daily'), 5_000, 'the 03:00 run');
      // Noticed when its timer fires, 03:00 came before the step: a plain late run. (Noticed a
      // moment earlier, 03:00 lies beyond the step: run once all the same, by the Debian rule.)
      // Whatever that fire dispatched, it did at once; and the next 03:00 it plans is tomorrow's,
      // so nothing can run it a second time.
      expect(due).toEqual([{ job: 'daily', at: Date.UTC(2026, 5, 10, 3), trigger: expect.stringMatching(/^(schedule|catch-up)$/) }]);
      expect(s.nextRun('daily')).toBe(Date.UTC(2026, 5, 11, 3));
      expect(missed.filter((m) => !m.catchUp)).toEqual([]);

      // +2 h, from about 03:00 to 05:00: 04:00 of the fixed-time job `later` was skipped; it runs once.
      offset += 2 * HOUR;
      expect(clockWatch(clock).check()?.deltaMs).toBeGreaterThan(2 * HOUR - 1000);
      expect(due.filter((d) => d.job === 'later')).toEqual([{ job: 'later', at: Date.UTC(2026, 5, 10, 4), trigger: 'catch-up' }]);
      expect(missed.filter((m) => m.job === 'later')).toEqual([{ job: 'later', first: Date.UTC(2026, 5, 10, 4), count: 1, catchUp: true }]);
      expect(due.filter((d) => d.job === 'daily')).toHaveLength(1);
    } finally {
      s.stop();
      store.close();
      cleanup(dir);
    }
  });
});
