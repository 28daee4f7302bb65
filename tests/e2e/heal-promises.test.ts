// Promises README.md makes about the heal loop, each held to account against a real daemon, real
// rules in a temp home, real fixes and probes in their sandboxes, and every step read back from
// SQLite. Trees are compared with a hash walk written here, not with the snapshot code.
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import {
  cli,
  flockFree,
  roundTrip,
  tree,
  makeHome,
  query,
  startDaemon,
  tempDir,
  trackDaemons,
  waitFor,
  type DaemonProc,
} from '../support/helpers.js';

interface Attempt {
  id: number;
  alert_id: number;
  fingerprint: string;
  job: string;
  rule: string | null;
  attempt: number | null;
  autonomy: string | null;
  action_kind: string | null;
  step: string;
  outcome: string | null;
  detail: string | null;
  snapshot_dir: string | null;
  created_at: number;
  ended_at: number | null;
}

interface StepRow {
  step: string;
  started_at: number;
  ended_at: number | null;
  result: string | null;
  detail: string | null;
}

interface AlertRow {
  id: number;
  job: string;
  opened_at: number;
  resolved_at: number | null;
  resolution: string | null;
  folded_under: string | null;
}

// How long a test waits for a marker (a row, a log line, a file) is no claim about speed: each
// wait ends as soon as its marker appears, and this file must pass on a loaded machine.
const WAIT_MS = 30_000;
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const { daemons, dirs } = trackDaemons();

/** A fresh folder for a test's files: probes see the machine's /tmp; a fix sees only its touches of it (and its own program). */
function work(prefix: string): string {
  const d = tempDir(prefix);
  dirs.push(d);
  return d;
}

function home(jobs: Record<string, string>, rules: Record<string, string>, policy?: string): string {
  const h = makeHome(jobs, policy);
  dirs.push(h);
  for (const [name, text] of Object.entries(rules)) writeFileSync(join(h, 'rules', `${name}.yaml`), text);
  return h;
}

async function daemon(h: string, env?: Record<string, string>): Promise<DaemonProc> {
  const d = await startDaemon(h, env ? { env } : {});
  daemons.push(d);
  return d;
}

const ns = (d: { home: string; state: string }, ...args: string[]) => cli(['--home', d.home, '--state', d.state, ...args]);
const attempts = (d: { state: string }): Attempt[] => query<Attempt>(d.state, 'SELECT * FROM heal_attempts ORDER BY id');
const stepRows = (d: { state: string }, id: number): StepRow[] =>
  query<StepRow>(d.state, 'SELECT step, started_at, ended_at, result, detail FROM heal_steps WHERE attempt_id = ? ORDER BY id', id);
const steps = (d: { state: string }, id: number): string[] => stepRows(d, id).map((r) => r.step);
const alertOf = (d: { state: string }, job: string): AlertRow | undefined =>
  query<AlertRow>(d.state, 'SELECT * FROM alerts WHERE job = ? ORDER BY id', job)[0];
const finished = (d: { state: string }, job: string) => () => attempts(d).find((a) => a.job === job && a.outcome !== null);

/** Ends when the daemon has exited, with its exit code (bounded by the test's own timeout). */
async function exited(d: DaemonProc): Promise<number | undefined> {
  const r = await d.proc;
  return r.exitCode;
}

/**
 * A folder a fix may change (its touches): a file with content, a sub-folder, and lock files made
 * beforehand (so that a fix holding them changes nothing the snapshot did not have).
 */
function touchedTree(w: string): { t: string; before: Record<string, string> } {
  const t = join(w, 't');
  mkdirSync(join(t, 'sub'), { recursive: true });
  writeFileSync(join(t, 'data.txt'), 'original\n');
  writeFileSync(join(t, 'sub', 'keep.bin'), Buffer.from([0, 1, 2, 255]));
  writeFileSync(join(t, 'fix.lock'), '');
  writeFileSync(join(t, 'child.lock'), '');
  return { t, before: tree(t) };
}

describe('stops in the middle of a fix', () => {
  it('SIGTERM to the daemon during a fix stops the fix and rolls it back byte-exact: interrupted-rolled-back', async () => {
    const w = work('ns-hp-term-');
    const { t, before } = touchedTree(w);
    const lock = join(t, 'fix.lock');
    const h = home(
      { victim: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        slow: `match: { job: victim }\nautonomy: auto\naction:\n  command: ["sh", "-c", "echo changed > ${t}/data.txt; rm -r ${t}/sub; touch ${t}/created; exec flock ${lock} sleep 300"]\n  touches: ["${t}/"]\n  timeout: 10m\nprobe: { command: ["test", "-e", "${t}/created"] }\n`,
      },
    );
    const d = await daemon(h);
    await ns(d, 'run', 'victim');
    await waitFor(() => !flockFree(lock), WAIT_MS, 'the fix under way, holding its lock');
    expect(existsSync(join(t, 'created'))).toBe(true);
    d.proc.kill('SIGTERM');
    expect(await exited(d)).toBe(0);
    const [a] = attempts(d);
    expect(a).toMatchObject({ job: 'victim', outcome: 'interrupted-rolled-back', attempt: 1 });
    expect(a!.detail).toContain(
      'nightshift stopped during the attempt: rolled back (touched paths: 1 changed back, 1 created removed, 2 deleted returned)',
    );
    expect(steps(d, a!.id)).toEqual([
      'kill-switch',
      'containment',
      'pre-check',
      'rule',
      'cap',
      'autonomy',
      'guard',
      'snapshot',
      'fix',
      'rollback',
    ]);
    expect(tree(t)).toEqual(before);
    // the fix did not outlive the daemon
    expect(flockFree(lock)).toBe(true);
    // an interrupted attempt says nothing against the rule
    expect(query(d.state, 'SELECT rule FROM rule_ladder')).toEqual([]);
  });
});

describe('at most two jobs healed in parallel', () => {
  it('of three failing jobs with blocking fixes, the third heal begins only once one of the first two has ended', async () => {
    const w = work('ns-hp-par-');
    const names = ['p1', 'p2', 'p3'];
    const jobs: Record<string, string> = {};
    const rules: Record<string, string> = {};
    for (const j of names) {
      const t = join(w, j);
      mkdirSync(t);
      jobs[j] = 'command: ["sh", "-c", "exit 1"]\n';
      // Says it runs, waits for the test's go, then leaves what its probe checks.
      rules[`fix-${j}`] =
        `match: { job: ${j} }\nautonomy: auto\naction:\n  command: ["sh", "-c", "touch ${t}/started; while [ ! -e ${t}/go ]; do sleep 0.05; done; touch ${t}/fixed"]\n  touches: ["${t}/"]\n  timeout: 5m\nprobe: { command: ["test", "-e", "${t}/fixed"] }\n`;
    }
    const h = home(jobs, rules);
    const d = await daemon(h);
    for (const j of names) await ns(d, 'run', j);
    const started = (j: string): boolean => existsSync(join(w, j, 'started'));
    // Two fixes under way and blocked, and all three alerts open.
    const first = await waitFor(
      () => {
        const s = names.filter(started);
        return s.length >= 2 && names.every((j) => alertOf(d, j)) ? s : false;
      },
      WAIT_MS,
      'two fixes under way and three alerts open',
    );
    expect(first).toHaveLength(2);
    const [a, b] = first as [string, string];
    const c = names.find((j) => !first.includes(j))!;
    // One of the two ends; the third may begin now, while the other still blocks.
    writeFileSync(join(w, a, 'go'), '');
    await waitFor(() => started(c), WAIT_MS, `the fix of ${c} under way`);
    writeFileSync(join(w, b, 'go'), '');
    writeFileSync(join(w, c, 'go'), '');
    await waitFor(() => names.every((j) => finished(d, j)()), WAIT_MS, 'three heals ended');

    const by = (j: string): Attempt => attempts(d).find((x) => x.job === j)!;
    for (const j of names) expect(by(j)).toMatchObject({ outcome: 'fixed-verified', attempt: 1 });
    expect(attempts(d)).toHaveLength(3);
    const fixAt = (j: string): number => stepRows(d, by(j).id).find((s) => s.step === 'fix')!.started_at;
    // The third alert was open while the first two fixes were still blocked...
    expect(alertOf(d, c)!.opened_at).toBeLessThan(Math.min(by(a).ended_at!, by(b).ended_at!));
    // ...and its heal began only after the first ended, while the second still ran.
    expect(by(c).created_at).toBeGreaterThanOrEqual(by(a).ended_at!);
    expect(fixAt(c)).toBeLessThan(by(b).ended_at!);
    // At no recorded instant were three attempts in flight.
    for (const at of attempts(d)) {
      const inFlight = attempts(d).filter((x) => x.created_at <= at.created_at && at.created_at < x.ended_at!);
      expect(inFlight.length).toBeLessThanOrEqual(2);
    }
  });
});

describe('alerts folded under a dependency', () => {
  it('are not healed while folded; once the dependency recovers the alert stands alone and is healed', async () => {
    const w = work('ns-hp-fold-');
    const t = join(w, 't');
    mkdirSync(t);
    const h = home(
      {
        db: `command: ["test", "-e", "${w}/db-ok"]\n`,
        app: 'command: ["sh", "-c", "exit 1"]\ndependsOn: [db]\n',
      },
      {
        'fix-app': `match: { job: app }\nautonomy: auto\naction: { command: ["touch", "${t}/fixed"], touches: ["${t}/"] }\nprobe: { command: ["test", "-e", "${t}/fixed"] }\n`,
      },
    );
    const d = await daemon(h);
    await ns(d, 'run', 'db');
    // no rule matches db: a person gets it, and its alert stays open
    expect((await waitFor(finished(d, 'db'), WAIT_MS, 'the decision on db')).outcome).toBe('needs-human');
    await ns(d, 'run', 'app');
    await d.waitLog((l) => l.msg === 'alert raised: app failed (blocked by db)', WAIT_MS, 'the alert of app folded under db');
    expect(alertOf(d, 'app')).toMatchObject({ folded_under: 'db:failed', resolved_at: null });
    // An alert is handed to the heal loop in the turn that raises it, and the loop writes the
    // attempt's first row before it awaits anything: a later request's answer shows that is done.
    await roundTrip(d);
    expect(attempts(d).filter((a) => a.job === 'app')).toEqual([]);
    expect(existsSync(join(t, 'fixed'))).toBe(false);

    // The dependency recovers: the alert of app is no longer folded, and the same rule heals it.
    writeFileSync(join(w, 'db-ok'), '');
    await ns(d, 'run', 'db');
    const a = await waitFor(finished(d, 'app'), WAIT_MS, 'the heal of app');
    expect(a.outcome).toBe('fixed-verified');
    expect(existsSync(join(t, 'fixed'))).toBe(true);
    const db = alertOf(d, 'db')!;
    expect(db.resolution).toBe('self-recovered');
    expect(a.created_at).toBeGreaterThanOrEqual(db.resolved_at!);
  });
});

describe('the pre-check step', () => {
  it("the job's own precheck saying IDLE stops the heal as self-recovered: the fix does not run; a precheck that finds work lets it run", async () => {
    const w = work('ns-hp-idle-');
    const t = join(w, 't');
    mkdirSync(t);
    const h = home(
      {
        // A manual run does not ask the pre-check (it is a person's order); the heal's pre-check does.
        quiet: 'command: ["sh", "-c", "echo boom; exit 1"]\nprecheck: ["sh", "-c", "echo IDLE"]\n',
        busy: 'command: ["sh", "-c", "echo boom; exit 1"]\nprecheck: ["sh", "-c", "echo 3 new orders"]\n',
      },
      {
        fix: `match: { job: "*" }\nautonomy: auto\naction: { command: ["sh", "-c", "touch ${t}/fixed-$NIGHTSHIFT_JOB"], touches: ["${t}/"] }\nprobe: { command: ["sh", "-c", "test -e ${t}/fixed-$NIGHTSHIFT_JOB"] }\n`,
      },
    );
    const d = await daemon(h);
    await ns(d, 'run', 'quiet');
    const q = await waitFor(finished(d, 'quiet'), WAIT_MS, 'the decision on quiet');
    expect(q).toMatchObject({ outcome: 'self-recovered', attempt: null, rule: null });
    expect(q.detail).toBe("the job's pre-check says IDLE: there is nothing to do");
    expect(steps(d, q.id)).toEqual(['kill-switch', 'containment', 'pre-check']);
    expect(alertOf(d, 'quiet')).toMatchObject({ resolution: 'self-recovered' });
    expect(alertOf(d, 'quiet')!.resolved_at).not.toBeNull();
    expect(existsSync(join(t, 'fixed-quiet'))).toBe(false);

    await ns(d, 'run', 'busy');
    const b = await waitFor(finished(d, 'busy'), WAIT_MS, 'the heal of busy');
    expect(b).toMatchObject({ outcome: 'fixed-verified', rule: 'fix' });
    expect(existsSync(join(t, 'fixed-busy'))).toBe(true);
    expect(existsSync(join(t, 'fixed-quiet'))).toBe(false);
  });
});

describe('a failed fix', () => {
  it('is not probed (a probe that reports over TCP never reports from the probe step) and is rolled back byte-exact', async () => {
    // Probes write nothing; they report to this server instead, and wait for its answer, so that
    // what they said is here before they end. The heal's pre-check runs the same probe without an
    // attempt id: that report proves the channel works from inside the probe's sandbox.
    const said: string[] = [];
    const server: Server = createServer((sock) => {
      let buf = '';
      sock.on('data', (c: Buffer) => {
        buf += c.toString();
        if (buf.includes('\n')) {
          said.push(buf.trim());
          sock.end('ack\n');
        }
      });
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as { port: number }).port;
      const w = work('ns-hp-failfix-');
      const { t, before } = touchedTree(w);
      const probe = join(w, 'probe.sh');
      writeFileSync(
        probe,
        `exec 3<>/dev/tcp/127.0.0.1/${port}\necho "\${NIGHTSHIFT_HEAL_ATTEMPT:-pre-check}" >&3\nread -r ack <&3\nexit 1\n`,
      );
      const h = home(
        { victim: 'command: ["sh", "-c", "exit 1"]\n' },
        {
          broken: `match: { job: victim }\nautonomy: auto\naction:\n  command: ["sh", "-c", "echo changed > ${t}/data.txt; rm -r ${t}/sub; touch ${t}/created; echo cannot reach upstream >&2; exit 4"]\n  touches: ["${t}/"]\nprobe: { command: ["bash", "${probe}"] }\n`,
        },
      );
      const d = await daemon(h);
      await ns(d, 'run', 'victim');
      const a = await waitFor(finished(d, 'victim'), WAIT_MS, 'the attempt');
      expect(a).toMatchObject({ outcome: 'rolled-back', attempt: 1 });
      expect(a.detail).toContain('the fix itself failed (command sh exited with code 4: cannot reach upstream), so it was not probed');
      expect(a.detail).toContain('rolled back (touched paths: 1 changed back, 1 created removed, 2 deleted returned)');
      expect(steps(d, a.id)).toEqual([
        'kill-switch',
        'containment',
        'pre-check',
        'rule',
        'cap',
        'autonomy',
        'guard',
        'snapshot',
        'fix',
        'rollback',
      ]);
      expect(tree(t)).toEqual(before);
      // The rollback demoted the rule to gated; the alert is looked at again and waits for a
      // person. That attempt's pre-check runs the probe once more (still without an attempt id).
      const next = await waitFor(() => attempts(d).find((x) => x.id !== a.id && x.outcome !== null), WAIT_MS, 'the next look at the alert');
      expect(next.outcome).toBe('awaiting-approval');
      expect(said).toEqual(['pre-check', 'pre-check']);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('fixes and brains that outlive their time', () => {
  // Changes its touches, leaves a child in a session of its own holding one lock, and holds another
  // itself: both die only when the whole sandbox is killed.
  const lingering = (t: string) =>
    `echo changed > ${t}/data.txt; rm -r ${t}/sub; touch ${t}/created; setsid flock ${t}/child.lock sleep 300 & exec flock ${t}/fix.lock sleep 300`;

  it('a fix that outlives action.timeout is killed, with everything it started, and rolled back', async () => {
    const w = work('ns-hp-timeout-');
    const { t, before } = touchedTree(w);
    const h = home(
      { victim: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        slow: `match: { job: victim }\nautonomy: auto\naction:\n  command: ["sh", "-c", "${lingering(t)}"]\n  touches: ["${t}/"]\n  timeout: 20s\nprobe: { command: ["test", "-e", "${t}/created"] }\n`,
      },
      'brain: { wallclock: 1h }\n',
    );
    const d = await daemon(h);
    await ns(d, 'run', 'victim');
    // Both locks held: the fix and its child in a session of its own are alive before the limit.
    await waitFor(() => !flockFree(join(t, 'fix.lock')) && !flockFree(join(t, 'child.lock')), WAIT_MS, 'the fix and its child under way');
    const a = await waitFor(finished(d, 'victim'), 60_000, 'the attempt');
    expect(a).toMatchObject({ outcome: 'rolled-back', attempt: 1, action_kind: 'command' });
    expect(a.detail).toContain('the fix itself failed (command sh did not finish within 20s and was killed), so it was not probed');
    expect(a.detail).toContain('rolled back (touched paths: 1 changed back, 1 created removed, 2 deleted returned)');
    expect(stepRows(d, a.id).find((s) => s.step === 'fix')).toMatchObject({ result: 'failed' });
    expect(tree(t)).toEqual(before);
    // the fix and the child it left in a session of its own are gone (a fresh lock on each is free)
    await waitFor(() => flockFree(join(t, 'fix.lock')) && flockFree(join(t, 'child.lock')), WAIT_MS, 'every process of the fix dead');
  });

  it('a brain that outlives policy.brain.wallclock (not its action.timeout) is killed, with everything it started, and rolled back', async () => {
    const w = work('ns-hp-brain-');
    const { t, before } = touchedTree(w);
    const brain = join(w, 'brain.sh');
    writeFileSync(brain, `#!/bin/sh\n${lingering(t)}\n`);
    chmodSync(brain, 0o755);
    const h = home(
      { victim: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        think: `match: { job: victim }\nautonomy: auto\naction:\n  brain: ["${brain}"]\n  touches: ["${t}/"]\n  timeout: 1h\nprobe: { command: ["test", "-e", "${t}/created"] }\n`,
      },
      'brain: { wallclock: 20s, maxRunsPerDay: 5 }\n',
    );
    const d = await daemon(h);
    await ns(d, 'run', 'victim');
    await waitFor(() => !flockFree(join(t, 'fix.lock')) && !flockFree(join(t, 'child.lock')), WAIT_MS, 'the brain and its child under way');
    const a = await waitFor(finished(d, 'victim'), 60_000, 'the attempt');
    // a brain run: counted against the daily budget, recorded as a brain action
    expect(a).toMatchObject({ outcome: 'rolled-back', attempt: 1, action_kind: 'brain' });
    expect(a.detail).toContain(`the fix itself failed (brain ${brain} did not finish within 20s and was killed), so it was not probed`);
    expect(a.detail).toContain('rolled back (touched paths: 1 changed back, 1 created removed, 2 deleted returned)');
    expect(tree(t)).toEqual(before);
    await waitFor(() => flockFree(join(t, 'fix.lock')) && flockFree(join(t, 'child.lock')), WAIT_MS, 'every process of the brain dead');
  });
});

describe('an attempt stopped before its snapshot', () => {
  /**
   * A job whose own precheck (asked by the heal's pre-check step) holds a lock and blocks for five
   * minutes, far past the step's one-minute limit: only a stop that kills it ends it in time.
   */
  function blockedAtPrecheck(w: string, t: string) {
    // Only the first heal's pre-check blocks; a later one finds work at once.
    const precheck = `if [ ! -e ${w}/pc-started ]; then touch ${w}/pc-started; exec 9> ${w}/pc.lock; flock 9; sleep 300; fi; echo work`;
    return home(
      { victim: `command: ["sh", "-c", "exit 1"]\nprecheck: ["sh", "-c", ${JSON.stringify(precheck)}]\n` },
      {
        fix: `match: { job: victim }\nautonomy: auto\naction: { command: ["touch", "${t}/fixed"], touches: ["${t}/"] }\nprobe: { command: ["test", "-e", "${t}/fixed"] }\n`,
      },
    );
  }

  it('the kill switch during the pre-check: halted, nothing changed, no snapshot, not counted as an attempt', async () => {
    const w = work('ns-hp-prehalt-');
    const t = join(w, 't');
    mkdirSync(t);
    const before = tree(t);
    const d = await daemon(blockedAtPrecheck(w, t));
    await ns(d, 'run', 'victim');
    await waitFor(() => existsSync(join(w, 'pc-started')) && !flockFree(join(w, 'pc.lock')), WAIT_MS, 'the pre-check under way');
    expect((await ns(d, 'kill', 'on')).exitCode).toBe(0);
    // Within WAIT_MS (30 s), under the pre-check's own one-minute limit: the switch killed it.
    const a = await waitFor(finished(d, 'victim'), WAIT_MS, 'the attempt');
    expect(flockFree(join(w, 'pc.lock'))).toBe(true);
    expect(a).toMatchObject({ outcome: 'halted', attempt: null, snapshot_dir: null });
    expect(a.detail).toBe('stopped at step pre-check before anything was changed');
    expect(steps(d, a.id)).toEqual(['kill-switch', 'containment', 'pre-check']);
    expect(tree(t)).toEqual(before);
    expect(existsSync(join(d.state, 'snapshots', String(a.id)))).toBe(false);
    expect(alertOf(d, 'victim')!.resolved_at).toBeNull();
    // Turning the switch off looks at the alert again, and the same rule then runs its fix: the
    // halt, not the rule, is what kept the fix from running above.
    await ns(d, 'kill', 'off');
    const again = await waitFor(() => attempts(d).find((x) => x.id !== a.id && x.outcome !== null), WAIT_MS, 'the next attempt');
    expect(again).toMatchObject({ outcome: 'fixed-verified', attempt: 1 });
  });

  it('SIGTERM during the pre-check: the pre-check is stopped, the attempt closed as interrupted, and the next start looks at the alert again', async () => {
    const w = work('ns-hp-preterm-');
    const t = join(w, 't');
    mkdirSync(t);
    const before = tree(t);
    const h = blockedAtPrecheck(w, t);
    const d = await daemon(h);
    await ns(d, 'run', 'victim');
    await waitFor(() => existsSync(join(w, 'pc-started')) && !flockFree(join(w, 'pc.lock')), WAIT_MS, 'the pre-check under way');
    d.proc.kill('SIGTERM');
    // The pre-check would block for its whole time limit (a minute): the stop does not wait for it.
    await waitFor(() => d.proc.exitCode !== null || d.proc.signalCode !== null, WAIT_MS, 'the daemon stopped');
    expect(await exited(d)).toBe(0);
    expect(flockFree(join(w, 'pc.lock'))).toBe(true);
    const [a] = attempts(d);
    expect(a).toMatchObject({ outcome: 'interrupted', attempt: null, snapshot_dir: null });
    expect(a!.detail).toBe('stopped at step pre-check before anything was changed');
    expect(steps(d, a!.id)).toEqual(['kill-switch', 'containment', 'pre-check']);
    expect(tree(t)).toEqual(before);
    // the alert is still open and is looked at again at the next start; this time the fix runs
    const d2 = await daemon(h);
    const again = await waitFor(() => attempts(d2).find((x) => x.id !== a!.id && x.outcome !== null), WAIT_MS, 'the next attempt');
    expect(again).toMatchObject({ outcome: 'fixed-verified', attempt: 1 });
  });
});

describe('the 24 h limit of an approval, under a moved clock (libfaketime)', () => {
  const LIBFAKETIME = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1'].find(
    (p) => existsSync(p),
  );

  it('approving 24 h + 1 min after the request is refused with exit 2 and nothing runs; 24 h − 10 min after, it runs', async () => {
    if (!LIBFAKETIME) throw new Error('libfaketime is missing: apt-get install faketime (.ci/run installs it)');
    const w = work('ns-hp-expiry-');
    const t = join(w, 't');
    mkdirSync(t);
    // The daemon and every command line read the machine's clock plus what this file says: the
    // real 24 h limit is crossed by moving the clock, not by editing the request's row.
    const offset = join(w, 'offset');
    writeFileSync(offset, '+0\n');
    const env = {
      ...(process.env as Record<string, string>),
      LD_PRELOAD: LIBFAKETIME,
      FAKETIME_TIMESTAMP_FILE: offset,
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    };
    const step = (seconds: number): void => writeFileSync(offset, `+${seconds}\n`);
    const h = home(
      { a: 'command: ["sh", "-c", "exit 1"]\n', b: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        gate: `match: { job: "*" }\nautonomy: gated\naction: { command: ["sh", "-c", "touch ${t}/ran-$NIGHTSHIFT_JOB"], touches: ["${t}/"] }\nprobe: { command: ["sh", "-c", "test -e ${t}/ran-$NIGHTSHIFT_JOB"] }\n`,
      },
    );
    const d = await daemon(h, env);
    const faked = (...args: string[]) => cli(['--home', d.home, '--state', d.state, ...args], { env });
    await faked('run', 'a');
    await faked('run', 'b');
    const [ra, rb] = await waitFor(
      () => {
        const l = attempts(d).filter((x) => x.outcome === 'awaiting-approval');
        return l.length === 2 ? l : false;
      },
      WAIT_MS,
      'two approval requests',
    );
    const requested = query<{ ended_at: number; expires_at: number }>(
      d.state,
      'SELECT ended_at, expires_at FROM heal_attempts WHERE id = ?',
      rb!.id,
    )[0]!;
    // the limit is set as the request is recorded: 24 h from then
    expect(requested.expires_at - requested.ended_at).toBeLessThanOrEqual(24 * 3_600_000);
    expect(requested.expires_at - requested.ended_at).toBeGreaterThan(24 * 3_600_000 - 60_000);

    // Nearly a day later the request still stands: approved, the fix runs and is verified.
    step(24 * 3600 - 600);
    const yes = await faked('approve', String(ra!.id));
    expect(yes.exitCode).toBe(0);
    const a = await waitFor(
      () => attempts(d).find((x) => x.id === ra!.id && x.outcome !== 'awaiting-approval' && x.outcome !== null),
      WAIT_MS,
      'a healed',
    );
    expect(a.outcome).toBe('fixed-verified');
    expect(existsSync(join(t, 'ran-a'))).toBe(true);

    // A day and a minute after the request: refused (exit 2, a usage error per the CLI contract).
    step(24 * 3600 + 60);
    const late = await faked('approve', String(rb!.id));
    expect(late.exitCode).toBe(2);
    expect(late.stderr).toContain(`heal H-${rb!.id} expired at `);
    expect(late.stderr).toContain('expired');
    const b = attempts(d).find((x) => x.id === rb!.id)!;
    expect(b).toMatchObject({ outcome: 'expired', attempt: null });
    // the recorded end is on the moved clock: past the request's limit
    expect(b.ended_at!).toBeGreaterThan(requested.expires_at);
    await roundTrip(d);
    expect(attempts(d).filter((x) => x.job === 'b')).toHaveLength(1);
    expect(existsSync(join(t, 'ran-b'))).toBe(false);
  });
});
