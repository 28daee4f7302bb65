// The heal loop as an operator meets it: a real daemon, real rules and fixes, real files, every
// step in SQLite. Trees are compared with a hash walk written here, not with the snapshot code.
import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import {
  cli,
  FIXTURES,
  flockFree,
  makeHome,
  pageCapture,
  pidAlive,
  query,
  startDaemon,
  tempDir,
  waitFor,
  trackDaemons,
  type DaemonProc,
  roundTrip,
  tree,
} from '../support/helpers.js';

interface Attempt {
  id: number;
  alert_id: number;
  fingerprint: string;
  job: string;
  rule: string | null;
  attempt: number | null;
  autonomy: string | null;
  step: string;
  outcome: string | null;
  detail: string | null;
  proposal: string | null;
  fix_pgid: number | null;
  created_at: number;
  ended_at: number | null;
}

// How long a test waits for a marker (a row, a log line, a file) is no claim about speed: each
// wait ends as soon as its marker appears, and this suite must pass on a loaded, one-core machine.
// Latency is measured in bench/ instead.
const WAIT_MS = 30_000;
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const { daemons, dirs } = trackDaemons();

/** A fresh folder for a test's files (probes see the machine's /tmp; a fix sees only its touches of it). */
function visibleDir(prefix: string): string {
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
async function daemon(h: string): Promise<DaemonProc> {
  const d = await startDaemon(h);
  daemons.push(d);
  return d;
}
const ns = (d: { home: string; state: string }, ...args: string[]) => cli(['--home', d.home, '--state', d.state, ...args]);
const attempts = (d: { state: string }): Attempt[] => query<Attempt>(d.state, 'SELECT * FROM heal_attempts ORDER BY id');
const steps = (d: { state: string }, id: number): string[] =>
  query<{ step: string }>(d.state, 'SELECT step FROM heal_steps WHERE attempt_id = ? ORDER BY id', id).map((r) => r.step);
const done = (d: { state: string }, n: number) => () => {
  const a = attempts(d).filter((x) => x.outcome !== null);
  return a.length >= n ? a : false;
};

/**
 * The day whose digest covers an instant, under `timezone: UTC` and `digest.at: at` (HH:MM): the
 * digest of day D covers from `at` on the day before D up to `at` on D. Computed from a time the
 * daemon recorded, so a test that runs across the turn of a window asks for the right day.
 */
function digestDateOf(instant: number, at: string): string {
  const day = new Date(instant).toISOString().slice(0, 10);
  const due = Date.parse(`${day}T${at}:00.000Z`);
  return instant < due ? day : new Date(due + 86_400_000).toISOString().slice(0, 10);
}

/** A digest time (UTC) about 12 h away from now: no digest window turns over during a test. */
function digestAtFarFromNow(): string {
  return `${String((new Date().getUTCHours() + 12) % 24).padStart(2, '0')}:00`;
}

describe('a hung job on a stale lock, fixed by an auto rule', () => {
  it('runs every step, resolves the alert as fixed-verified, and shows it in heals, history and the digest', async () => {
    const work = tempDir('ns-heal-work-');
    dirs.push(work);
    const h = home(
      {
        export: `command: ["sh", "-c", "if [ -e ${work}/export.lock ]; then echo lock held; sleep 30; fi; echo exported 5 orders"]\ntimeout: 1s\nkillGrace: 200ms\nexpect: { outputMatches: "exported [1-9]" }\n`,
      },
      {
        'clear-lock': `description: A hung export holds a stale lock; clear it and run again.\nmatch: { job: "exp*", kind: [hung], output: "lock held" }\nautonomy: auto\naction:\n  command: ["rm", "-f", "${work}/export.lock"]\n  touches: ["${work}/"]\n  timeout: 10s\nprobe: { rerun: true }\n`,
      },
      // the digest of day D covers D-1 from 00:00 UTC on
      'timezone: UTC\ndigest: { at: "00:00" }\n',
    );
    writeFileSync(join(work, 'export.lock'), 'pid 4242\n');
    const d = await daemon(h);
    await ns(d, 'run', 'export');
    const [a] = await waitFor(done(d, 1), WAIT_MS, 'heal finished');
    expect(a).toMatchObject({ fingerprint: 'export:hung', rule: 'clear-lock', autonomy: 'auto', attempt: 1, outcome: 'fixed-verified' });
    // docs/concepts.md's table, in its order, each step journaled before it starts; a verified fix has no rollback
    const journal = ['kill-switch', 'containment', 'pre-check', 'rule', 'cap', 'autonomy', 'guard', 'snapshot', 'fix', 'probe', 'verdict'];
    expect(steps(d, a!.id)).toEqual(journal);
    expect(existsSync(join(work, 'export.lock'))).toBe(false);
    const alert = query<{ resolution: string; resolved_at: number | null }>(
      d.state,
      "SELECT * FROM alerts WHERE fingerprint = 'export:hung'",
    )[0]!;
    expect(alert.resolution).toBe('fixed-verified');
    const runs = query<{ trigger: string; outcome: string }>(d.state, 'SELECT trigger, outcome FROM runs ORDER BY id');
    expect(runs).toEqual([
      { trigger: 'manual', outcome: 'timeout' },
      { trigger: 'probe', outcome: 'ok' },
    ]);
    // the snapshot is gone once the verdict is in
    await waitFor(() => !existsSync(join(d.state, 'snapshots', String(a!.id))), WAIT_MS, 'snapshot dropped');

    const text = await ns(d, 'heals');
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toContain('export:hung');
    expect(text.stdout).toContain('fixed-verified');
    expect(text.stdout).toMatch(/probe\s+\S+/);
    const js = JSON.parse((await ns(d, 'heals', '--json')).stdout) as {
      attempts: Array<{
        id: number;
        outcome: string;
        steps: Array<{ step: string; started_at: number; ended_at: number | null; result: string | null }>;
      }>;
      rules: Array<{ rule: string; outcomes: Record<string, number> }>;
    };
    // What `heals --json` shows is the whole journal: every step in order, each ended, each
    // starting when the one before it ended.
    expect(js.attempts.map((x) => [x.id, x.outcome])).toEqual([[a!.id, 'fixed-verified']]);
    const shown = js.attempts[0]!.steps;
    expect(shown.map((s) => s.step)).toEqual(journal);
    for (const [i, s] of shown.entries()) {
      expect(s.ended_at, `${s.step} ended`).not.toBeNull();
      expect(s.ended_at!, `${s.step} ended after it started`).toBeGreaterThanOrEqual(s.started_at);
      if (i > 0) expect(s.started_at, `${s.step} started when ${shown[i - 1]!.step} ended`).toBe(shown[i - 1]!.ended_at);
    }
    // the checks passed, the fix ran to its end, the probe passed, the verdict is the outcome
    expect(shown.map((s) => s.result)).toEqual([...journal.slice(0, -3).map(() => 'ok'), 'done', 'passed', 'fixed-verified']);
    expect(js.rules[0]).toMatchObject({ rule: 'clear-lock', outcomes: { 'fixed-verified': 1 } });

    // the digest of the day that covers the moment the heal ended (as the daemon recorded it)
    const digest = await ns(d, 'digest', '--date', digestDateOf(a!.ended_at!, '00:00'));
    expect(digest.stdout).toMatch(
      /- export: fixed by rule clear-lock, and an independent check confirmed it \(H-\d+, \d{4}-\d\d-\d\d \d\d:\d\d UTC\)/,
    );
  });
});

describe('rollback, the ladder, approvals and the cap', () => {
  it('a fix whose own effect resolves the alert before the probe (a worker back on its heartbeat) is credited as fixed-verified, not self-recovered', async () => {
    // Visible to the probe: it checks the heartbeat file the fix writes.
    const work = visibleDir('ns-heal-credit-');
    const hb = join(work, 'hb');
    mkdirSync(hb);
    const beat = join(hb, 'beat');
    // In the fix's touches: the rest of the machine's /tmp is not in its sandbox.
    const go = join(hb, 'go');
    const h = home(
      // something else runs the worker; it shows it is alive by touching its heartbeat file
      { worker: `every: 2s\nheartbeat: { grace: 1s, file: "${beat}" }\n` },
      {
        // The fix's own effect: the heartbeat file (in its touches). A worker it started in the
        // background would die with the fix's sandbox. It then waits until the test has seen the
        // alert resolved by that heartbeat, so that the resolution surely comes before the probe.
        'restart-worker': `match: { job: worker, kind: [missed] }\nautonomy: auto\naction:\n  command: ["sh", "-c", "touch ${beat}; while [ ! -e ${go} ]; do sleep 0.05; done"]\n  touches: ["${hb}/"]\n  timeout: 30s\nprobe: { command: ["test", "-e", "${beat}"] }\n`,
      },
    );
    const d = await daemon(h);
    const alert = () =>
      query<{ id: number; resolution: string | null; resolved_at: number | null }>(
        d.state,
        "SELECT id, resolution, resolved_at FROM alerts WHERE fingerprint = 'worker:missed' ORDER BY id",
      )[0];
    // The heartbeat of the fix resolved the alert while the fix was still running: the watchdog
    // can only call that self-recovered.
    const early = await waitFor(
      () => (alert()?.resolved_at != null ? alert() : false),
      WAIT_MS,
      'the alert resolved by the heartbeat the fix wrote',
    );
    expect(early.resolution).toBe('self-recovered');
    const running = attempts(d).find((x) => x.alert_id === early.id)!;
    expect(running).toMatchObject({ step: 'fix', outcome: null });
    writeFileSync(go, '');
    const a = await waitFor(() => attempts(d).find((x) => x.id === running.id && x.outcome !== null), WAIT_MS, 'the heal');
    expect(a.outcome).toBe('fixed-verified');
    expect(steps(d, a.id).slice(-3)).toEqual(['fix', 'probe', 'verdict']);
    expect(query<{ resolution: string }>(d.state, 'SELECT resolution FROM alerts WHERE id = ?', early.id)[0]!.resolution).toBe(
      'fixed-verified',
    );
  });

  it('a fix whose probe fails is rolled back byte-exact; the rule drops to gated; an approved second attempt rolls back too; then blocked and paged', async () => {
    const work = tempDir('ns-heal-tree-');
    dirs.push(work);
    mkdirSync(join(work, 'data', 'deep'), { recursive: true });
    writeFileSync(join(work, 'data', 'a.csv'), 'id,amount\n1,10\n');
    writeFileSync(join(work, 'data', 'deep', 'b.bin'), Buffer.from([0, 1, 2, 255]));
    chmodSync(join(work, 'data', 'deep', 'b.bin'), 0o600);
    writeFileSync(join(work, 'keep.txt'), 'keep me\n');
    const before = tree(work);
    const capDir = tempDir('ns-heal-cap-');
    dirs.push(capDir);
    const capture = pageCapture(capDir);
    const fix = `echo changed > data/a.csv; rm -rf data/deep; mkdir -p new/dir; echo new > new/dir/c.txt; chmod 0700 keep.txt`;
    // the whole story (both attempts, the demotion, the block) falls in one digest window
    const digestAt = digestAtFarFromNow();
    const h = home(
      { sync: 'command: ["sh", "-c", "echo upstream refused; exit 3"]\n' },
      {
        'fix-sync': `match: { job: sync, kind: [failed], exitCode: [3] }\nautonomy: auto\naction:\n  command: ["sh", "-c", "cd ${work} && ${fix}"]\n  touches: ["${work}"]\nprobe: { command: ["sh", "-c", "exit 1"] }\n`,
      },
      `timezone: UTC\ndigest: { at: "${digestAt}" }\npage:\n  allow: [heal-blocked, protected-zone]\n  command: ["${capture.command}"]\n`,
    );
    const d = await daemon(h);
    await ns(d, 'run', 'sync');
    // attempt 1 (auto) rolled back; attempt 2 waits for approval because the rule was demoted
    const list = await waitFor(
      () => {
        const a = attempts(d);
        return a.length >= 2 && a[1]!.outcome === 'awaiting-approval' ? a : false;
      },
      WAIT_MS,
      'rolled back, then an approval request',
    );
    expect(list[0]).toMatchObject({ outcome: 'rolled-back', attempt: 1, autonomy: 'auto' });
    expect(list[0]!.detail).toContain('the probe failed');
    expect(steps(d, list[0]!.id)).toEqual([
      'kill-switch',
      'containment',
      'pre-check',
      'rule',
      'cap',
      'autonomy',
      'guard',
      'snapshot',
      'fix',
      'probe',
      'rollback',
    ]);
    expect(tree(work)).toEqual(before);
    expect(list[1]).toMatchObject({ autonomy: 'gated', attempt: null });
    expect(list[1]!.proposal).toContain('fix-sync');
    expect(query(d.state, 'SELECT rule, level FROM rule_ladder')).toEqual([{ rule: 'fix-sync', level: 'gated' }]);

    const status = await ns(d, 'status');
    // Heals are named H-…, alerts A-…, in every surface; the approval shows its expiry in the job's zone.
    expect(status.stdout).toContain(`nightshift approve H-${list[1]!.id} | deny H-${list[1]!.id} (expires `);
    expect(status.stdout).toMatch(
      new RegExp(
        `H-${list[1]!.id} sync: rule fix-sync wants to .* \\(expires \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d (UTC|[+-]\\d\\d:\\d\\d), in `,
      ),
    );
    expect(status.stdout).toContain(`A-${list[1]!.alert_id} sync failed: `);
    expect(status.stdout).not.toMatch(/#\d+ sync/);
    expect(status.stdout).toContain('fix-sync: now gated');

    // an unknown id is a usage error
    const unknown = await ns(d, 'approve', '9999');
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toContain('no heal attempt H-9999');
    // An alert's ID is not a heal's: approving "A-n" is refused with what it is, and runs nothing.
    const wrong = await ns(d, 'approve', `A-${list[1]!.alert_id}`);
    expect(wrong.exitCode).toBe(2);
    expect(wrong.stderr).toContain(`A-${list[1]!.alert_id} is an alert, not a heal attempt`);
    expect(attempts(d)[1]!.outcome).toBe('awaiting-approval');

    const ok = await ns(d, 'approve', `H-${list[1]!.id}`);
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toBe(`heal H-${list[1]!.id} (sync): approved: the fix runs now; see nightshift heals`);
    const after = await waitFor(
      () => {
        const a = attempts(d);
        return a.length >= 3 && a[2]!.outcome !== null ? a : false;
      },
      WAIT_MS,
      'second attempt, then the cap',
    );
    expect(after[1]).toMatchObject({ outcome: 'rolled-back', attempt: 2 });
    expect(tree(work)).toEqual(before);
    expect(after[2]).toMatchObject({ outcome: 'blocked' });
    expect(after[2]!.detail).toContain('2 attempt(s) already made');
    // answering twice is refused
    expect((await ns(d, 'approve', String(list[1]!.id))).exitCode).toBe(2);
    // a gated rollback does not demote further
    expect(query(d.state, 'SELECT level FROM rule_ladder')).toEqual([{ level: 'gated' }]);
    await waitFor(() => capture.pages().some((p) => p.event === 'heal-blocked'), WAIT_MS, 'heal-blocked page');
    expect(capture.pages()[0]).toMatchObject({ event: 'heal-blocked', job: 'sync' });
    // A new occurrence of the same incident does not ask again. The heal loop decides on an
    // occurrence when the daemon counts it (it logs "alert occurred again", then hands it over in
    // the same turn); the answer to a later request shows that turn is over.
    const again = (l: Record<string, unknown>) =>
      l.alert === after[2]!.alert_id && typeof l.msg === 'string' && l.msg.startsWith('alert occurred again');
    const seen = d.lines().filter(again).length;
    await ns(d, 'run', 'sync');
    await waitFor(() => d.lines().filter(again).length > seen, WAIT_MS, 'the new occurrence counted on the alert');
    await roundTrip(d);
    expect(attempts(d)).toHaveLength(3);
    expect((await ns(d, 'heals')).exitCode).toBe(1);
    // The digest of the day whose window holds the block tells the story: rollback, demotion, blocked.
    const day = digestDateOf(after[2]!.ended_at!, digestAt);
    const ladderAt = query<{ at: number }>(d.state, "SELECT at FROM rule_ladder WHERE rule = 'fix-sync'")[0]!.at;
    expect([after[0]!.ended_at!, after[1]!.ended_at!, ladderAt].map((t) => digestDateOf(t, digestAt))).toEqual([day, day, day]);
    const digest = (await ns(d, 'digest', '--date', day)).stdout;
    expect(digest).toMatch(/- rule fix-sync was demoted to gated after a fix was undone \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)/);
    expect(digest).toMatch(
      /- sync: rule fix-sync stopped after the attempts allowed; a person decides what next \(H-\d+, [^)]*\): .*\(2 attempts\)/,
    );

    // a human edits the rule: the demotion ends
    writeFileSync(join(h, 'rules', 'fix-sync.yaml'), readFileSync(join(h, 'rules', 'fix-sync.yaml'), 'utf8') + '# reviewed\n');
    await waitFor(async () => !(await ns(d, 'status')).stdout.includes('fix-sync: now gated'), WAIT_MS, 'demotion ended by the edit');
  });

  it('deny refuses, an expired approval is refused with exit 2, and nothing runs', async () => {
    const work = tempDir('ns-heal-deny-');
    dirs.push(work);
    const h = home(
      { a: 'command: ["sh", "-c", "exit 1"]\n', b: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        // one rule per job, so heals JOB can be seen leaving the other job's rule out
        'gate-a': `match: { job: "a" }\nautonomy: gated\naction: { command: ["touch", "${work}/ran"], touches: ["${work}"] }\nprobe: { command: ["test", "-e", "${work}/ran"] }\n`,
        'gate-b': `match: { job: "b" }\nautonomy: gated\naction: { command: ["touch", "${work}/ran"], touches: ["${work}"] }\nprobe: { command: ["test", "-e", "${work}/ran"] }\n`,
      },
    );
    const d = await daemon(h);
    await ns(d, 'run', 'a');
    await ns(d, 'run', 'b');
    const [x, y] = await waitFor(
      () => {
        const a = attempts(d).filter((r) => r.outcome === 'awaiting-approval');
        return a.length === 2 ? a : false;
      },
      WAIT_MS,
      'two approval requests',
    );
    const denied = await ns(d, 'deny', String(x!.id));
    expect(denied.exitCode).toBe(0);
    expect(attempts(d).find((r) => r.id === x!.id)!.outcome).toBe('denied');
    // A second answer says plainly that it was answered, not "it is denied, answered: denied".
    const again = await ns(d, 'deny', String(x!.id));
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toMatch(
      new RegExp(`heal H-${x!.id} was already denied at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d (UTC|[+-]\\d\\d:\\d\\d); nothing more to do`),
    );
    // heals no longer shows the wait as if it went on: the autonomy step says how it ended.
    const shown = (await ns(d, 'heals', x!.job)).stdout;
    expect(shown).toMatch(/autonomy +\S+ +denied +asked a person: denied by the command line at /);
    expect(shown).not.toMatch(/waiting for nightshift approve/);
    expect(shown).not.toContain('answer: nightshift approve');
    // heals JOB names only the attempts of that job and the rules that acted on it
    expect(shown).toContain(`H-${x!.id} ${x!.job}:failed`);
    expect(shown).not.toContain(`${y!.job}:failed`);
    expect(shown).toContain(`gate-${x!.job}: 1 case(s)`);
    expect(shown).not.toContain(`gate-${y!.job}`);
    const both = (await ns(d, 'heals')).stdout;
    expect(both).toContain(`gate-${y!.job}: 1 case(s)`);
    // make the other one expire (as 24 h passing would)
    const db = new Database(join(d.state, 'nightshift.db'));
    db.prepare('UPDATE heal_attempts SET expires_at = ? WHERE id = ?').run(Date.now() - 1000, y!.id);
    db.close();
    const expired = await ns(d, 'approve', `h${y!.id}`);
    expect(expired.exitCode).toBe(2);
    expect(expired.stderr).toContain('expired');
    expect(attempts(d).find((r) => r.id === y!.id)!.outcome).toBe('expired');
    expect(existsSync(join(work, 'ran'))).toBe(false);
    expect((await ns(d, 'approve', 'abc')).exitCode).toBe(2);
  });

  it('an approval that expires while nightshift is down is expired by its timer at the next start', async () => {
    const work = tempDir('ns-heal-expire-');
    dirs.push(work);
    const h = home(
      { a: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        gate: `match: { job: a }\nautonomy: gated\naction: { command: ["touch", "${work}/ran"], touches: ["${work}"] }\nprobe: { command: ["test", "-e", "${work}/ran"] }\n`,
      },
    );
    const d = await daemon(h);
    await ns(d, 'run', 'a');
    const [x] = await waitFor(
      () => {
        const a = attempts(d).filter((r) => r.outcome === 'awaiting-approval');
        return a.length === 1 ? a : false;
      },
      WAIT_MS,
      'approval request',
    );
    await d.stop();
    const db = new Database(join(d.state, 'nightshift.db'));
    db.prepare('UPDATE heal_attempts SET expires_at = ? WHERE id = ?').run(Date.now() - 1000, x!.id);
    db.close();
    const d2 = await daemon(h);
    await waitFor(() => attempts(d2).find((r) => r.id === x!.id)?.outcome === 'expired', WAIT_MS, 'expired by the timer');
    expect(existsSync(join(work, 'ran'))).toBe(false);
  });

  it('approve waits its turn: a second heal of the same job is refused while one runs', async () => {
    const work = tempDir('ns-heal-turn-');
    dirs.push(work);
    const h = home(
      { x: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        'a-slow': `match: { job: x, kind: [failed] }\nautonomy: auto\naction: { command: ["sh", "-c", "touch ${work}/slow-started; sleep 8"], touches: ["${work}/slow"] }\nprobe: { command: ["test", "-e", "${work}/never"] }\n`,
      },
    );
    const d = await daemon(h);
    // a gated request for x, made by hand in the same shape the loop writes, is the one to approve
    await ns(d, 'run', 'x');
    await waitFor(() => existsSync(join(work, 'slow-started')), WAIT_MS, 'slow fix of x under way');
    const db = new Database(join(d.state, 'nightshift.db'));
    const alertId = (db.prepare("SELECT id FROM alerts WHERE job = 'x'").get() as { id: number }).id;
    const id = Number(
      db
        .prepare(
          "INSERT INTO heal_attempts (alert_id, fingerprint, job, rule, step, outcome, created_at, expires_at) VALUES (?, 'x:hung', 'x', 'a-slow', 'autonomy', 'awaiting-approval', ?, ?)",
        )
        .run(alertId, Date.now(), Date.now() + 3_600_000).lastInsertRowid,
    );
    db.close();
    const r = await ns(d, 'approve', String(id));
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('another heal of job x is under way');
    expect(attempts(d).find((a) => a.id === id)!.outcome).toBe('awaiting-approval');
  });
});

describe('decisions that run nothing', () => {
  it('shadow proposes, no rule means needs-human with a proposal, a passing probe at pre-check is self-recovered', async () => {
    const work = tempDir('ns-heal-shadow-');
    dirs.push(work);
    const h = home(
      {
        watched: 'command: ["sh", "-c", "echo disk full; exit 2"]\n',
        orphan: 'command: ["sh", "-c", "echo no idea; exit 9"]\n',
        flappy: 'command: ["sh", "-c", "exit 5"]\n',
      },
      {
        'a-shadow': `match: { job: watched }\naction: { command: ["touch", "${work}/shadow-ran"], touches: ["${work}"] }\nprobe: { command: ["false"] }\n`,
        'b-flappy': `match: { job: flappy }\nautonomy: auto\naction: { command: ["touch", "${work}/flappy-ran"], touches: ["${work}"] }\nprobe: { command: ["true"] }\n`,
      },
    );
    const d = await daemon(h);
    await ns(d, 'run', 'watched');
    await ns(d, 'run', 'orphan');
    await ns(d, 'run', 'flappy');
    const all = await waitFor(done(d, 3), WAIT_MS, 'three decisions');
    const by = (job: string) => all.find((a) => a.job === job)!;
    expect(by('watched')).toMatchObject({ outcome: 'proposed', autonomy: 'shadow', rule: 'a-shadow', attempt: null });
    expect(by('watched').proposal).toContain(`touch ${work}/shadow-ran`);
    expect(by('orphan')).toMatchObject({ outcome: 'needs-human', rule: null });
    expect(by('orphan').proposal).toContain('No rule matches orphan:failed');
    expect(by('orphan').proposal).toContain('no idea');
    expect(by('flappy')).toMatchObject({ outcome: 'self-recovered' });
    expect(existsSync(join(work, 'shadow-ran'))).toBe(false);
    expect(existsSync(join(work, 'flappy-ran'))).toBe(false);
    expect(query(d.state, "SELECT resolution FROM alerts WHERE job = 'flappy'")).toEqual([{ resolution: 'self-recovered' }]);
    const heals = await ns(d, 'heals');
    expect(heals.stdout).toContain('| No rule matches orphan:failed');
  });
});

describe('rerun and brain actions', () => {
  it('rerun runs the job again (trigger heal) and the probe runs it once more; a brain over its daily budget is refused', async () => {
    // Visible to the brains (their script) and to the probes (the brain's record).
    const work = visibleDir('ns-heal-rerun-');
    const brain = join(work, 'brain.sh');
    const record = join(work, 'brain-runs');
    // Each brain run appends the name of its job: its own record, written where its touches allow.
    writeFileSync(brain, `#!/bin/sh\necho "$NIGHTSHIFT_JOB" >> ${record}\nexit 0\n`);
    chmodSync(brain, 0o755);
    const h = home(
      {
        // fails the first time only (a transient error), then succeeds
        flaky: `command: ["sh", "-c", "if [ -e ${work}/seen ]; then echo ok; else touch ${work}/seen; echo transient; exit 7; fi"]\n`,
        b1: 'command: ["sh", "-c", "exit 1"]\n',
        b2: 'command: ["sh", "-c", "exit 1"]\n',
      },
      {
        again: 'match: { job: flaky, exitCode: [7] }\nautonomy: auto\naction: { rerun: true }\n',
        // One rule per job, each probing for its own job's line: b1's brain run is verified, so its
        // record is kept (a rollback would take it back), and b2's probe still fails at pre-check.
        think1: `match: { job: b1 }\nautonomy: auto\naction: { brain: ["${brain}"], touches: ["${record}"] }\nprobe: { command: ["grep", "-qx", "b1", "${record}"] }\nmaxAttempts: 1\n`,
        think2: `match: { job: b2 }\nautonomy: auto\naction: { brain: ["${brain}"], touches: ["${record}"] }\nprobe: { command: ["grep", "-qx", "b2", "${record}"] }\nmaxAttempts: 1\n`,
      },
      'brain: { maxRunsPerDay: 1 }\n',
    );
    const d = await daemon(h);
    await ns(d, 'run', 'flaky');
    const [a] = await waitFor(done(d, 1), WAIT_MS, 'rerun heal');
    expect(a).toMatchObject({ outcome: 'fixed-verified', rule: 'again' });
    const runs = query<{ trigger: string; outcome: string }>(d.state, "SELECT trigger, outcome FROM runs WHERE job = 'flaky' ORDER BY id");
    expect(runs).toEqual([
      { trigger: 'manual', outcome: 'failed' },
      { trigger: 'heal', outcome: 'ok' },
      { trigger: 'probe', outcome: 'ok' },
    ]);

    await ns(d, 'run', 'b1');
    const b1 = await waitFor(() => attempts(d).find((x) => x.job === 'b1' && x.outcome !== null), WAIT_MS, 'first brain run');
    expect(b1.outcome).toBe('fixed-verified');
    await ns(d, 'run', 'b2');
    const b2 = await waitFor(() => attempts(d).find((x) => x.job === 'b2' && x.outcome !== null), WAIT_MS, 'second brain decision');
    expect(b2.outcome).toBe('refused');
    expect(b2.detail).toContain('brain budget');
    // the brain ran once, for b1; b2's decision is final, and its brain never wrote a line
    expect(readFileSync(record, 'utf8')).toBe('b1\n');
  });
});

describe('rerun of a hung run', () => {
  it("kills the hung run's whole process group first: its grandchildren are gone before the new run starts, which then runs and is probed", async () => {
    const work = visibleDir('ns-heal-hung-');
    const lock = join(work, 'kids.lock');
    const pids = join(work, 'pids');
    const seen = join(work, 'seen');
    // The first run forks three grandchildren that ignore SIGTERM, leave its process group
    // (setsid) and hold a shared lock while they live, then hangs ignoring SIGTERM itself. Every
    // later run first notes whether anyone still holds the lock, and fails if so. Concurrency
    // allow: nothing but the kill that goes first keeps the rerun from starting beside it. Its
    // killGrace is a minute: at the timeout the run gets SIGTERM (which they all ignore), and only
    // the rerun's own kill can end it before the grace's SIGKILL.
    const h = home(
      {
        stuck:
          `timeout: 4s\nkillGrace: 60s\nconcurrency: allow\n` +
          `shell: "if [ -e ${work}/first ]; then if flock -n ${lock} true; then echo free >> ${seen}; else echo held >> ${seen}; exit 1; fi; ` +
          `else touch ${work}/first; exec ${join(FIXTURES, 'grandchildren.sh')} ${pids} 3 ${lock}; fi"\n`,
      },
      { again: 'match: { job: stuck, kind: [hung] }\nautonomy: auto\naction: { rerun: true }\n' },
    );
    const d = await daemon(h);
    void ns(d, 'run', 'stuck');
    await waitFor(() => existsSync(pids) && readFileSync(pids, 'utf8').trim().split('\n').length === 3, WAIT_MS, 'three grandchildren');
    expect(flockFree(lock), 'the grandchildren hold the lock while the run hangs').toBe(false);

    const [a] = await waitFor(done(d, 1), WAIT_MS, 'the heal');
    expect(a, a!.detail ?? '').toMatchObject({ outcome: 'fixed-verified', rule: 'again', fingerprint: 'stuck:hung' });
    const runs = query<{ trigger: string; outcome: string; started_at: number; ended_at: number }>(
      d.state,
      "SELECT trigger, outcome, started_at, ended_at FROM runs WHERE job = 'stuck' ORDER BY id",
    );
    expect(runs.map((r) => [r.trigger, r.outcome])).toEqual([
      ['manual', 'timeout'],
      ['heal', 'ok'],
      ['probe', 'ok'],
    ]);
    // the hung run was ended by the rerun's kill (SIGKILL: only that ends these), long before its
    // own grace ran out, and before the rerun started ...
    expect(query<{ reason: string }>(d.state, "SELECT reason FROM runs WHERE job = 'stuck' AND trigger = 'manual'")[0]!.reason).toMatch(
      /SIGKILL/,
    );
    expect(runs[0]!.ended_at).toBeLessThan(runs[0]!.started_at + 4_000 + 60_000);
    expect(runs[1]!.started_at).toBeGreaterThanOrEqual(runs[0]!.ended_at);
    // ... and the rerun found no grandchild of it alive at its start (nor did the probe's run)
    expect(readFileSync(seen, 'utf8')).toBe('free\nfree\n');
  });
});

describe('alert text is data', () => {
  it('job output with $( ), backticks and ; rm -rf reaches a brain only as a JSON file; nothing of it runs', async () => {
    // Visible to the brain (its script) and to the probe (what the brain saw).
    const work = visibleDir('ns-heal-data-');
    const out = join(work, 'out');
    mkdirSync(out);
    // Inside the brain's touches: were the text run in the brain's sandbox, the marker would stay there too.
    const pwned = join(out, 'pwned');
    const brain = join(work, 'brain.sh');
    writeFileSync(brain, `#!/bin/sh\ncp "$NIGHTSHIFT_ALERT_FILE" ${out}/seen.json\necho "$@" > ${out}/argv.txt\n`);
    chmodSync(brain, 0o755);
    const evil = `$(touch ${pwned}) \`touch ${pwned}\` ; rm -rf ${work} ; touch ${pwned}`;
    const h = home(
      { talker: `command: ["sh", "-c", "printf '%s\\\\n' \\"$EVIL\\"; exit 1"]\nenv: { EVIL: ${JSON.stringify(evil)} }\n` },
      // Verified (and so kept) once the brain has written what it saw: a rollback would take it back.
      {
        brainy: `match: { job: talker, output: "rm -rf" }\nautonomy: auto\naction: { brain: ["${brain}", "--fix"], touches: ["${out}/"] }\nprobe: { command: ["test", "-s", "${out}/argv.txt"] }\n`,
      },
    );
    const d = await daemon(h);
    await ns(d, 'run', 'talker');
    const [a] = await waitFor(done(d, 1), WAIT_MS, 'brain attempt');
    expect(a!.outcome).toBe('fixed-verified');
    const seen = JSON.parse(readFileSync(join(out, 'seen.json'), 'utf8')) as { output_tail: string; fingerprint: string };
    expect(seen.fingerprint).toBe('talker:failed');
    expect(seen.output_tail).toContain(evil);
    expect(readFileSync(join(out, 'argv.txt'), 'utf8').trim()).toBe('--fix');
    expect(existsSync(pwned)).toBe(false);
    expect(existsSync(brain)).toBe(true);
  });
});

describe('the protected zone', () => {
  it('a fix that writes into rules/ through a symlink is refused by the file system: the zone is unchanged, the fix rolled back, nothing verified', async () => {
    const work = visibleDir('ns-heal-zone-'); // the probe must see what it checks
    const target = join(work, 'target');
    mkdirSync(target);
    writeFileSync(join(target, 'state.txt'), 'before\n');
    const h = home(
      { victim: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        sneaky: `match: { job: victim }\nautonomy: auto\naction:\n  command: ["sh", "-c", "echo after > ${target}/state.txt; printf 'match: { job: \\"*\\" }\\\\nautonomy: auto\\\\naction: { command: [\\"true\\"] }\\\\n' > ${target}/link/evil.yaml"]\n  touches: ["${target}"]\nprobe: { command: ["grep", "-q", "after", "${target}/state.txt"] }\n`,
      },
    );
    symlinkSync(join(h, 'rules'), join(target, 'link'));
    const beforeTarget = tree(target);
    const beforeRules = tree(join(h, 'rules'));
    const d = await daemon(h);
    await ns(d, 'run', 'victim');
    const [a] = await waitFor(done(d, 1), WAIT_MS, 'the attempt');
    // The write was tried and refused (a fix sees all but its touches read-only; rules/ is read-only
    // for every process): the fix failed, and was rolled back as any failed fix.
    expect(a!.outcome).toBe('rolled-back');
    expect(a!.detail).toContain('the fix itself failed');
    expect(a!.detail).toMatch(/evil\.yaml: Read-only file system/);
    expect(a!.detail).not.toContain('EMERGENCY');
    expect(tree(join(h, 'rules'))).toEqual(beforeRules);
    expect(tree(target)).toEqual(beforeTarget);
    // an ordinary rollback in auto: gated, not the emergency's shadow
    expect(query(d.state, 'SELECT rule, level FROM rule_ladder')).toEqual([{ rule: 'sneaky', level: 'gated' }]);
    expect(query(d.state, "SELECT resolved_at FROM alerts WHERE job = 'victim'")).toEqual([{ resolved_at: null }]);
  });

  it('a zone change while a fix runs (made here by the test, as an escaped fix would) is an emergency: zone restored, fix rolled back, rule demoted to shadow, paged', async () => {
    const work = visibleDir('ns-heal-zone-'); // the probe must see what it checks
    const capture = pageCapture(work);
    const target = join(work, 'target');
    mkdirSync(target);
    writeFileSync(join(target, 'state.txt'), 'before\n');
    // The fix changes its touches, says it runs, and waits for the test's go (both in its touches).
    const h = home(
      { victim: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        sneaky: `match: { job: victim }\nautonomy: auto\naction:\n  command: ["sh", "-c", "echo after > ${target}/state.txt; touch ${target}/started; while [ ! -e ${target}/go ]; do sleep 0.05; done"]\n  touches: ["${target}/"]\n  timeout: 30s\nprobe: { command: ["grep", "-q", "after", "${target}/state.txt"] }\n`,
      },
      `page:\n  allow: [protected-zone]\n  command: ["${capture.command}"]\n`,
    );
    symlinkSync(join(h, 'rules'), join(target, 'link'));
    const beforeTarget = tree(target);
    const beforeRules = tree(join(h, 'rules'));
    const d = await daemon(h);
    await ns(d, 'run', 'victim');
    await waitFor(() => existsSync(join(target, 'started')), WAIT_MS, 'the fix under way');
    // through the same symlink the fix could not write through
    writeFileSync(join(target, 'link', 'evil.yaml'), 'match: { job: "*" }\nautonomy: auto\naction: { command: ["true"] }\n');
    writeFileSync(join(target, 'go'), '');
    const [a] = await waitFor(done(d, 1), WAIT_MS, 'emergency handled');
    expect(a!.outcome).toBe('rolled-back');
    expect(a!.detail).toContain('EMERGENCY');
    expect(a!.detail).toContain('evil.yaml');
    expect(tree(join(h, 'rules'))).toEqual(beforeRules);
    expect(tree(target)).toEqual(beforeTarget);
    expect(query(d.state, 'SELECT rule, level FROM rule_ladder')).toEqual([{ rule: 'sneaky', level: 'shadow' }]);
    await waitFor(() => capture.pages().length > 0, WAIT_MS, 'protected-zone page');
    expect(capture.pages()[0]).toMatchObject({ event: 'protected-zone', rule: 'sneaky' });
  });

  it('a fix cannot reach its snapshot manifests (the state folder is hidden) nor write rules/: rolled back from an intact snapshot, never fixed-verified', async () => {
    const work = visibleDir('ns-heal-tamper-'); // the probe must see what it checks
    writeFileSync(join(work, 'data.txt'), 'before\n');
    const h = home(
      { victim: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        // no -f: rm says what it found
        tamper: `match: { job: victim }\nautonomy: auto\naction:\n  command: ["sh", "-c", "s=$NIGHTSHIFT_STATE/snapshots/$NIGHTSHIFT_HEAL_ATTEMPT; rm $s/zone/manifest.json $s/touches/manifest.json; echo after > ${work}/data.txt; echo '# pwned' >> rules/tamper.yaml"]\n  touches: ["${work}"]\nprobe: { command: ["grep", "-q", "after", "${work}/data.txt"] }\n`,
      },
    );
    const beforeRules = tree(join(h, 'rules'));
    const d = await daemon(h);
    await ns(d, 'run', 'victim');
    const [a] = await waitFor(done(d, 1), WAIT_MS, 'the attempt');
    // both tries failed inside the sandbox; the restore found its manifests
    expect(a!.outcome).toBe('rolled-back');
    expect(a!.detail).toMatch(/manifest\.json'?: No such file or directory/);
    expect(a!.detail).toMatch(/tamper\.yaml: Read-only file system/);
    expect(a!.detail).toContain('rolled back (touched paths: 1 changed back');
    expect(a!.detail).not.toContain('EMERGENCY');
    expect(readFileSync(join(work, 'data.txt'), 'utf8')).toBe('before\n');
    expect(tree(join(h, 'rules'))).toEqual(beforeRules);
    expect(query(d.state, "SELECT resolved_at FROM alerts WHERE job = 'victim'")).toEqual([{ resolved_at: null }]);
    expect(query(d.state, "SELECT id FROM heal_attempts WHERE outcome = 'fixed-verified'")).toEqual([]);
  });

  it('snapshot manifests deleted and the zone changed while a fix runs (made here by the test) are caught: rollback-failed, never fixed-verified, paged', async () => {
    const work = visibleDir('ns-heal-tamper-'); // the probe must see what it checks
    const capture = pageCapture(work);
    const t = join(work, 't');
    mkdirSync(t);
    writeFileSync(join(t, 'data.txt'), 'before\n');
    const h = home(
      { victim: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        tamper: `match: { job: victim }\nautonomy: auto\naction:\n  command: ["sh", "-c", "echo after > ${t}/data.txt; touch ${t}/started; while [ ! -e ${t}/go ]; do sleep 0.05; done"]\n  touches: ["${t}/"]\n  timeout: 30s\nprobe: { command: ["grep", "-q", "after", "${t}/data.txt"] }\n`,
      },
      `page:\n  allow: [protected-zone, heal-blocked]\n  command: ["${capture.command}"]\n`,
    );
    const d = await daemon(h);
    await ns(d, 'run', 'victim');
    await waitFor(() => existsSync(join(t, 'started')), WAIT_MS, 'the fix under way');
    const id = attempts(d)[0]!.id;
    const snap = join(d.state, 'snapshots', String(id));
    unlinkSync(join(snap, 'zone', 'manifest.json'));
    unlinkSync(join(snap, 'touches', 'manifest.json'));
    // a new file, not the rule's own: the rule stays the same one (an edit of it is a new rule)
    writeFileSync(join(h, 'rules', 'planted.yaml'), '# planted\n');
    writeFileSync(join(t, 'go'), '');
    const [a] = await waitFor(done(d, 1), WAIT_MS, 'tampering handled');
    expect(a!.outcome).toBe('rollback-failed');
    expect(a!.detail).toContain('deleted');
    expect(query(d.state, "SELECT resolved_at FROM alerts WHERE job = 'victim'")).toEqual([{ resolved_at: null }]);
    expect(query(d.state, "SELECT id FROM heal_attempts WHERE outcome = 'fixed-verified'")).toEqual([]);
    await waitFor(() => capture.pages().some((p) => p.event === 'heal-blocked'), WAIT_MS, 'the rollback-failed page');
    expect(String(capture.pages().find((p) => p.event === 'heal-blocked')!.message)).toContain('ROLLBACK FAILED');
    // The zone had changed and could not be put back: an emergency too, and the rule is out of auto.
    await waitFor(() => capture.pages().some((p) => p.event === 'protected-zone'), WAIT_MS, 'the protected-zone page');
    expect(query(d.state, "SELECT level FROM rule_ladder WHERE rule = 'tamper'")).toEqual([{ level: 'shadow' }]);
    // A changed rule file does not make the incident be looked at again: it waits for a person.
    writeFileSync(
      join(h, 'rules', 'tamper.yaml'),
      readFileSync(join(h, 'rules', 'tamper.yaml'), 'utf8').replace('autonomy: auto', 'autonomy: gated'),
    );
    await ns(d, 'run', 'victim');
    await d.waitLog(
      (l) => typeof l.msg === 'string' && l.msg.startsWith(`not healing victim:failed: heal H-${a!.id} could not be rolled back`),
      WAIT_MS,
      'the incident held for a person',
    );
    expect(attempts(d).map((x) => x.outcome)).toEqual(['rollback-failed']);
  });

  it('touches that resolve into the zone are refused: at validation, and by the guard when a symlink appears later', async () => {
    const work = tempDir('ns-heal-guard-');
    dirs.push(work);
    const h = home(
      { victim: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        later: `match: { job: victim }\nautonomy: auto\naction: { command: ["touch", "${work}/later/x.yaml"], touches: ["${work}/later"] }\nprobe: { command: ["test", "-e", "${work}/later/x.yaml"] }\n`,
      },
    );
    expect((await cli(['--home', h, 'validate'])).exitCode).toBe(0);
    const d = await daemon(h);
    // after the rule was loaded, its touches path becomes a link into jobs/
    symlinkSync(join(h, 'jobs'), join(work, 'later'));
    await ns(d, 'run', 'victim');
    const [a] = await waitFor(done(d, 1), WAIT_MS, 'decision');
    expect(a!.outcome).toBe('refused');
    expect(a!.detail).toContain('jobs');
    expect(steps(d, a!.id).at(-1)).toBe('guard');
    expect(existsSync(join(h, 'jobs', 'x.yaml'))).toBe(false);
    // validation now refuses the same rule with its file and line
    const v = await ns(d, 'validate');
    expect(v.exitCode).toBe(2);
    expect(v.stdout + v.stderr).toMatch(/later\.yaml:\d+: action\.touches/);
  });
});

describe('the kill switch step', () => {
  it('with the switch on, or the policy unreadable, an alert is halted before anything runs; turning it off lets the heal go on', async () => {
    // Visible to the probe (a private, empty /tmp would hide a marker under /tmp from it).
    const work = visibleDir('ns-heal-ks-');
    const h = home(
      { victim: 'command: ["sh", "-c", "exit 1"]\n', other: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        fix: `match: { job: "*" }\nautonomy: auto\naction: { command: ["touch", "${work}/ran"], touches: ["${work}"] }\nprobe: { command: ["test", "-e", "${work}/ran"] }\n`,
      },
      'autonomy: auto\n',
    );
    const d = await daemon(h);
    await ns(d, 'kill', 'on');
    await ns(d, 'run', 'victim');
    const [a] = await waitFor(done(d, 1), WAIT_MS, 'halted');
    expect(a).toMatchObject({ job: 'victim', outcome: 'halted' });
    expect(steps(d, a!.id)).toEqual(['kill-switch']);
    expect(existsSync(join(work, 'ran'))).toBe(false);
    // an unreadable policy fails closed the same way
    await ns(d, 'kill', 'off');
    await waitFor(
      () => attempts(d).some((x) => x.job === 'victim' && x.outcome === 'fixed-verified'),
      WAIT_MS,
      'healed once the switch is off',
    );
    writeFileSync(join(h, 'protected', 'policy.yaml'), 'autonomy: [broken\n');
    await d.waitLog((l) => typeof l.msg === 'string' && l.msg.startsWith('invalid policy'), WAIT_MS, 'the broken policy refused');
    await ns(d, 'run', 'other');
    const o = await waitFor(() => attempts(d).find((x) => x.job === 'other' && x.outcome !== null), WAIT_MS, 'other decided');
    expect(o.outcome).toBe('halted');
    expect(o.detail).toContain('policy');
  });
});

describe('stops in the middle of a fix', () => {
  // The fix holds an flock on fix.lock (made before, so that it is part of the snapshot) while it
  // sleeps: its pids mean nothing outside its sandbox's PID namespace, the lock shows it alive.
  const slowFix = (work: string) =>
    `match: { job: victim }\nautonomy: auto\naction:\n  command: ["sh", "-c", "echo changed > ${work}/file.txt; touch ${work}/created; exec flock ${work}/fix.lock sleep 30"]\n  touches: ["${work}"]\n  timeout: 1m\nprobe: { command: ["test", "-e", "${work}/created"] }\n`;

  /** A victim job whose alert starts a fix that changes a file, creates one, then sleeps holding a lock. */
  async function fixUnderWay(prefix: string) {
    const work = tempDir(prefix);
    dirs.push(work);
    writeFileSync(join(work, 'file.txt'), 'original\n');
    const lock = join(work, 'fix.lock');
    writeFileSync(lock, '');
    const before = tree(work);
    const h = home({ victim: 'command: ["sh", "-c", "exit 1"]\n' }, { slow: slowFix(work) });
    const d = await daemon(h);
    await ns(d, 'run', 'victim');
    await waitFor(() => existsSync(join(work, 'created')), WAIT_MS, 'fix under way');
    await waitFor(() => !flockFree(lock), WAIT_MS, 'the fix holding its lock');
    const pgid = await waitFor(() => attempts(d)[0]?.fix_pgid, WAIT_MS, 'fix pgid journaled');
    return { work, before, h, d, pgid, lock };
  }

  it('the kill switch during a fix kills its process group and rolls it back (halted)', async () => {
    const { work, before, d, pgid, lock } = await fixUnderWay('ns-heal-halt-');
    await ns(d, 'kill', 'on');
    const [a] = await waitFor(done(d, 1), WAIT_MS, 'halted');
    expect(a!.outcome).toBe('halted');
    expect(tree(work)).toEqual(before);
    expect(pidAlive(pgid)).toBe(false);
    expect(flockFree(lock)).toBe(true);
  });

  it('a fix that tries to plant a rule is refused by the file system; the kill switch then stops it: halted, no emergency', async () => {
    const work = tempDir('ns-heal-haltzone-');
    dirs.push(work);
    const t = join(work, 't');
    mkdirSync(t);
    const h = home(
      { victim: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        // what the shell said about the write goes to err, then the fix says it runs
        sly: `match: { job: victim }\nautonomy: auto\naction:\n  command: ["sh", "-c", "(echo x > rules/planted.yaml) 2> ${t}/err; touch ${t}/started; sleep 30"]\n  touches: ["${t}/"]\n  timeout: 1m\nprobe: { command: ["test", "-e", "${work}/never"] }\n`,
      },
    );
    const beforeRules = tree(join(h, 'rules'));
    const d = await daemon(h);
    await ns(d, 'run', 'victim');
    await waitFor(() => existsSync(join(t, 'started')), WAIT_MS, 'fix under way');
    expect(readFileSync(join(t, 'err'), 'utf8')).toMatch(/planted\.yaml: Read-only file system/);
    expect(tree(join(h, 'rules'))).toEqual(beforeRules);
    await ns(d, 'kill', 'on');
    const [a] = await waitFor(done(d, 1), WAIT_MS, 'halted');
    expect(a!.outcome).toBe('halted');
    expect(a!.detail).not.toContain('EMERGENCY');
    expect(tree(join(h, 'rules'))).toEqual(beforeRules);
    expect(readdirSync(t)).toEqual([]);
    expect(query(d.state, 'SELECT rule, level FROM rule_ladder')).toEqual([]);
  });

  it('a zone change found when the kill switch stops a fix is still an emergency: restored, demoted to shadow, paged', async () => {
    const work = tempDir('ns-heal-haltzone-');
    dirs.push(work);
    const capture = pageCapture(work);
    const t = join(work, 't');
    mkdirSync(t);
    const h = home(
      { victim: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        sly: `match: { job: victim }\nautonomy: auto\naction:\n  command: ["sh", "-c", "touch ${t}/started; while [ ! -e ${t}/go ]; do sleep 0.05; done"]\n  touches: ["${t}/"]\n  timeout: 1m\nprobe: { command: ["test", "-e", "${work}/never"] }\n`,
      },
      `page:\n  allow: [protected-zone]\n  command: ["${capture.command}"]\n`,
    );
    const beforeRules = tree(join(h, 'rules'));
    const d = await daemon(h);
    await ns(d, 'run', 'victim');
    await waitFor(() => existsSync(join(t, 'started')), WAIT_MS, 'fix under way');
    // the zone changes while the fix runs (the test stands in for an escaped fix); go never comes
    writeFileSync(join(h, 'rules', 'planted.yaml'), 'x\n');
    await ns(d, 'kill', 'on');
    const [a] = await waitFor(done(d, 1), WAIT_MS, 'halted');
    expect(a!.outcome).toBe('halted');
    expect(a!.detail).toContain('EMERGENCY');
    expect(a!.detail).toContain('planted.yaml');
    expect(tree(join(h, 'rules'))).toEqual(beforeRules);
    expect(query(d.state, 'SELECT rule, level FROM rule_ladder')).toEqual([{ rule: 'sly', level: 'shadow' }]);
    await waitFor(() => capture.pages().length > 0, WAIT_MS, 'protected-zone page');
    expect(capture.pages()[0]).toMatchObject({ event: 'protected-zone', rule: 'sly' });
  });

  it('kill -9 of the daemon during a fix: the fix dies with it; the next start rolls back and counts the attempt', async () => {
    const { work, before, h, d, lock } = await fixUnderWay('ns-heal-crash-');
    d.proc.kill('SIGKILL');
    await d.proc;
    // --die-with-parent: the sandbox, and the fix in it, end with the daemon, before any restart
    await waitFor(() => flockFree(lock), WAIT_MS, 'the fix gone with the daemon');
    expect(readFileSync(join(work, 'file.txt'), 'utf8')).toBe('changed\n'); // nothing restored yet
    const d2 = await daemon(h);
    const a = attempts(d2)[0]!;
    expect(a.detail).not.toContain('EMERGENCY');
    expect(a).toMatchObject({ outcome: 'interrupted-rolled-back', attempt: 1 });
    expect(tree(work)).toEqual(before);
    // the alert is still open and is looked at again: attempt 2 (the cap counts the interrupted one)
    const again = await waitFor(
      () => {
        const l = attempts(d2);
        return l.length >= 2 && l[1]!.fix_pgid !== null ? l : false;
      },
      WAIT_MS,
      'second attempt',
    );
    expect(again[1]!.attempt).toBe(2);
  });
});

describe('without a sandbox', () => {
  it('when bubblewrap cannot run, an alert that matches an auto rule ends as uncontained: its fix never runs, and the detail says how to fix it', async () => {
    // Visible to the probe, so that the same rule, run once bwrap is back, is verified.
    const work = visibleDir('ns-heal-uncontained-');
    const marker = join(work, 'ran');
    const h = home(
      { victim: `command: ["sh", "-c", "echo the job itself still runs; exit 1"]\n`, lonely: 'command: ["false"]\n' },
      {
        fix: `match: { job: victim }\nautonomy: auto\naction: { command: ["touch", "${marker}"], touches: ["${work}/"] }\nprobe: { command: ["test", "-e", "${marker}"] }\n`,
      },
    );
    const d = await startDaemon(h, { env: { NIGHTSHIFT_BWRAP: '/nonexistent' } });
    daemons.push(d);
    await ns(d, 'run', 'victim');
    const [a] = await waitFor(done(d, 1), WAIT_MS, 'the decision');
    expect(a).toMatchObject({ job: 'victim', outcome: 'uncontained', attempt: null });
    expect(a!.detail).toContain('nothing was run');
    expect(a!.detail).toContain('bubblewrap (/nonexistent) is not installed');
    expect(a!.detail).toContain('apt-get install bubblewrap');
    expect(steps(d, a!.id)).toEqual(['kill-switch', 'containment']);
    // jobs fail open: the job ran (uncontained) and its failure raised the alert
    expect(query(d.state, "SELECT outcome FROM runs WHERE job = 'victim'")).toEqual([{ outcome: 'failed' }]);
    // the decision is final and nothing came before it: the fix never ran
    expect(existsSync(marker)).toBe(false);
    // An alert no rule matches would run nothing anyway: it goes to a person as needs-human.
    await ns(d, 'run', 'lonely');
    const l = await waitFor(() => attempts(d).find((x) => x.job === 'lonely' && x.outcome !== null), WAIT_MS, 'the decision on lonely');
    expect(l.outcome).toBe('needs-human');
    // The marker is the one the fix makes: with bwrap back, the next start runs the same fix.
    await d.stop();
    const d2 = await daemon(h);
    const b = await waitFor(
      () => attempts(d2).find((x) => x.job === 'victim' && x.id !== a!.id && x.outcome !== null),
      WAIT_MS,
      'the heal with bwrap',
    );
    expect(b.outcome).toBe('fixed-verified');
    expect(existsSync(marker)).toBe(true);
  });
});
