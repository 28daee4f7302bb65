// The heal loop as an operator meets it: a real daemon, real rules and fixes, real files, every
// step in SQLite. Trees are compared with a hash walk written here, not with the snapshot code.
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, cleanup, cli, makeHome, pageCapture, pidAlive, query, startDaemon, tempDir, waitFor, type DaemonProc } from './helpers.js';

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
}

const daemons: DaemonProc[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
  for (const h of dirs.splice(0)) cleanup(h);
});

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

/** path → type, mode, content hash or link target: the whole tree, for before/after comparison. */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string, rel: string): void => {
    const st = lstatSync(p);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out[rel] = `link ${readlinkSync(p)}`;
    else if (st.isDirectory()) {
      out[rel] = `dir ${mode}`;
      for (const e of readdirSync(p).sort()) walk(join(p, e), `${rel}/${e}`);
    } else out[rel] = `file ${mode} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
  };
  walk(root, '.');
  return out;
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
      // the digest of tomorrow (UTC) covers today from 00:00 on, so it holds this heal whatever the hour
      'timezone: UTC\ndigest: { at: "00:00" }\n',
    );
    writeFileSync(join(work, 'export.lock'), 'pid 4242\n');
    const d = await daemon(h);
    await ns(d, 'run', 'export');
    const [a] = await waitFor(done(d, 1), 15_000, 'heal finished');
    expect(a).toMatchObject({ fingerprint: 'export:hung', rule: 'clear-lock', autonomy: 'auto', attempt: 1, outcome: 'fixed-verified' });
    expect(steps(d, a!.id)).toEqual(['kill-switch', 'pre-check', 'rule', 'cap', 'autonomy', 'guard', 'snapshot', 'fix', 'probe', 'verdict']);
    expect(existsSync(join(work, 'export.lock'))).toBe(false);
    const alert = query<{ resolution: string; resolved_at: number | null }>(d.state, "SELECT * FROM alerts WHERE fingerprint = 'export:hung'")[0]!;
    expect(alert.resolution).toBe('fixed-verified');
    const runs = query<{ trigger: string; outcome: string }>(d.state, 'SELECT trigger, outcome FROM runs ORDER BY id');
    expect(runs).toEqual([
      { trigger: 'manual', outcome: 'timeout' },
      { trigger: 'probe', outcome: 'ok' },
    ]);
    // the snapshot is gone once the verdict is in
    await waitFor(() => !existsSync(join(d.state, 'snapshots', String(a!.id))), 3000, 'snapshot dropped');

    const text = await ns(d, 'heals');
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toContain('export:hung');
    expect(text.stdout).toContain('fixed-verified');
    expect(text.stdout).toMatch(/probe\s+\S+/);
    const js = JSON.parse((await ns(d, 'heals', '--json')).stdout) as { attempts: Array<{ steps: unknown[] }>; rules: Array<{ rule: string; outcomes: Record<string, number> }> };
    expect(js.attempts[0]!.steps).toHaveLength(10);
    expect(js.rules[0]).toMatchObject({ rule: 'clear-lock', outcomes: { 'fixed-verified': 1 } });

    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const digest = await ns(d, 'digest', '--date', tomorrow);
    expect(digest.stdout).toMatch(/export by rule clear-lock: fixed-verified/);
  });
});

describe('rollback, the ladder, approvals and the cap', () => {
  it('a fix whose own effect resolves the alert before the probe (a worker back on its heartbeat) is credited as fixed-verified, not self-recovered', async () => {
    const work = tempDir('ns-heal-credit-');
    dirs.push(work);
    const h = home(
      // something else runs the worker; it pings nightshift while it is alive
      { worker: 'every: 2s\nheartbeat: { grace: 1s }\n' },
      {
        'restart-worker': `match: { job: worker, kind: [missed] }\nautonomy: auto\naction:\n  command: ["sh", "-c", "touch ${work}/alive && node ${CLI} --home ${'$'}{HOME_DIR} --state ${'$'}{HOME_DIR}/state ping worker"]\n  touches: ["${work}/"]\nprobe: { command: ["test", "-e", "${work}/alive"] }\n`,
      },
    );
    const rule = join(h, 'rules', 'restart-worker.yaml');
    writeFileSync(rule, readFileSync(rule, 'utf8').replaceAll('${HOME_DIR}', h));
    const d = await daemon(h);
    const [a] = await waitFor(done(d, 1), 20_000, 'the heal');
    expect(a!.outcome).toBe('fixed-verified');
    const alert = query<{ resolution: string }>(d.state, 'SELECT resolution FROM alerts WHERE id = ?', a!.alert_id)[0]!;
    expect(alert.resolution).toBe('fixed-verified');
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
    const h = home(
      { sync: 'command: ["sh", "-c", "echo upstream refused; exit 3"]\n' },
      {
        'fix-sync': `match: { job: sync, kind: [failed], exitCode: [3] }\nautonomy: auto\naction:\n  command: ["sh", "-c", "cd ${work} && ${fix}"]\n  touches: ["${work}"]\nprobe: { command: ["sh", "-c", "exit 1"] }\n`,
      },
      `timezone: UTC\ndigest: { at: "00:00" }\npage:\n  allow: [heal-blocked, protected-zone]\n  command: ["${capture.command}"]\n`,
    );
    const d = await daemon(h);
    await ns(d, 'run', 'sync');
    // attempt 1 (auto) rolled back; attempt 2 waits for approval because the rule was demoted
    const list = await waitFor(() => {
      const a = attempts(d);
      return a.length >= 2 && a[1]!.outcome === 'awaiting-approval' ? a : false;
    }, 15_000, 'rolled back, then an approval request');
    expect(list[0]).toMatchObject({ outcome: 'rolled-back', attempt: 1, autonomy: 'auto' });
    expect(list[0]!.detail).toContain('the probe failed');
    expect(steps(d, list[0]!.id)).toEqual(['kill-switch', 'pre-check', 'rule', 'cap', 'autonomy', 'guard', 'snapshot', 'fix', 'probe', 'rollback']);
    expect(tree(work)).toEqual(before);
    expect(list[1]).toMatchObject({ autonomy: 'gated', attempt: null });
    expect(list[1]!.proposal).toContain('fix-sync');
    expect(query(d.state, 'SELECT rule, level FROM rule_ladder')).toEqual([{ rule: 'fix-sync', level: 'gated' }]);

    const status = await ns(d, 'status');
    expect(status.stdout).toContain(`nightshift approve ${list[1]!.id}`);
    expect(status.stdout).toContain('fix-sync: now gated');

    // an unknown id is a usage error
    const unknown = await ns(d, 'approve', '9999');
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toContain('no heal attempt #9999');

    const ok = await ns(d, 'approve', String(list[1]!.id));
    expect(ok.exitCode).toBe(0);
    const after = await waitFor(() => {
      const a = attempts(d);
      return a.length >= 3 && a[2]!.outcome !== null ? a : false;
    }, 15_000, 'second attempt, then the cap');
    expect(after[1]).toMatchObject({ outcome: 'rolled-back', attempt: 2 });
    expect(tree(work)).toEqual(before);
    expect(after[2]).toMatchObject({ outcome: 'blocked' });
    expect(after[2]!.detail).toContain('2 attempt(s) already made');
    // answering twice is refused
    expect((await ns(d, 'approve', String(list[1]!.id))).exitCode).toBe(2);
    // a gated rollback does not demote further
    expect(query(d.state, 'SELECT level FROM rule_ladder')).toEqual([{ level: 'gated' }]);
    await waitFor(() => capture.pages().some((p) => p.event === 'heal-blocked'), 5000, 'heal-blocked page');
    expect(capture.pages()[0]).toMatchObject({ event: 'heal-blocked', job: 'sync' });
    // a new occurrence of the same incident does not ask again
    await ns(d, 'run', 'sync');
    await sleep(500);
    expect(attempts(d)).toHaveLength(3);
    expect((await ns(d, 'heals')).exitCode).toBe(1);
    // the digest (tomorrow's covers today from 00:00 UTC) tells the story: rollback, demotion, blocked
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const digest = (await ns(d, 'digest', '--date', tomorrow)).stdout;
    expect(digest).toMatch(/the ladder by rule fix-sync: demoted to gated/);
    expect(digest).toMatch(/sync by rule fix-sync: blocked: .*\(2 attempts\)/);

    // a human edits the rule: the demotion ends
    writeFileSync(join(h, 'rules', 'fix-sync.yaml'), readFileSync(join(h, 'rules', 'fix-sync.yaml'), 'utf8') + '# reviewed\n');
    await waitFor(async () => !(await ns(d, 'status')).stdout.includes('fix-sync: now gated'), 5000, 'demotion ended by the edit');
  });

  it('deny refuses, an expired approval is refused with exit 2, and nothing runs', async () => {
    const work = tempDir('ns-heal-deny-');
    dirs.push(work);
    const h = home(
      { a: 'command: ["sh", "-c", "exit 1"]\n', b: 'command: ["sh", "-c", "exit 1"]\n' },
      { gate: `match: { job: "*" }\nautonomy: gated\naction: { command: ["touch", "${work}/ran"], touches: ["${work}"] }\nprobe: { command: ["test", "-e", "${work}/ran"] }\n` },
    );
    const d = await daemon(h);
    await ns(d, 'run', 'a');
    await ns(d, 'run', 'b');
    const [x, y] = await waitFor(() => {
      const a = attempts(d).filter((r) => r.outcome === 'awaiting-approval');
      return a.length === 2 ? a : false;
    }, 10_000, 'two approval requests');
    const denied = await ns(d, 'deny', String(x!.id));
    expect(denied.exitCode).toBe(0);
    expect(attempts(d).find((r) => r.id === x!.id)!.outcome).toBe('denied');
    // make the other one expire (as 24 h passing would)
    const db = new Database(join(d.state, 'nightshift.db'));
    db.prepare('UPDATE heal_attempts SET expires_at = ? WHERE id = ?').run(Date.now() - 1000, y!.id);
    db.close();
    const expired = await ns(d, 'approve', String(y!.id));
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
      { gate: `match: { job: a }\nautonomy: gated\naction: { command: ["touch", "${work}/ran"], touches: ["${work}"] }\nprobe: { command: ["test", "-e", "${work}/ran"] }\n` },
    );
    const d = await daemon(h);
    await ns(d, 'run', 'a');
    const [x] = await waitFor(() => {
      const a = attempts(d).filter((r) => r.outcome === 'awaiting-approval');
      return a.length === 1 ? a : false;
    }, 10_000, 'approval request');
    await d.stop();
    const db = new Database(join(d.state, 'nightshift.db'));
    db.prepare('UPDATE heal_attempts SET expires_at = ? WHERE id = ?').run(Date.now() - 1000, x!.id);
    db.close();
    const d2 = await daemon(h);
    await waitFor(() => attempts(d2).find((r) => r.id === x!.id)?.outcome === 'expired', 5000, 'expired by the timer');
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
    await waitFor(() => existsSync(join(work, 'slow-started')), 10_000, 'slow fix of x under way');
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
    const all = await waitFor(done(d, 3), 10_000, 'three decisions');
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
    const work = tempDir('ns-heal-rerun-');
    dirs.push(work);
    const brain = join(work, 'brain.sh');
    writeFileSync(brain, `#!/bin/sh\necho thinking >> ${work}/brain-runs\nexit 0\n`);
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
        // two rules, so that the first one's demotion (a rollback in auto) does not hide the budget
        think1: `match: { job: b1 }\nautonomy: auto\naction: { brain: ["${brain}"] }\nprobe: { command: ["false"] }\nmaxAttempts: 1\n`,
        think2: `match: { job: b2 }\nautonomy: auto\naction: { brain: ["${brain}"] }\nprobe: { command: ["false"] }\nmaxAttempts: 1\n`,
      },
      'brain: { maxRunsPerDay: 1 }\n',
    );
    const d = await daemon(h);
    await ns(d, 'run', 'flaky');
    const [a] = await waitFor(done(d, 1), 10_000, 'rerun heal');
    expect(a).toMatchObject({ outcome: 'fixed-verified', rule: 'again' });
    const runs = query<{ trigger: string; outcome: string }>(d.state, "SELECT trigger, outcome FROM runs WHERE job = 'flaky' ORDER BY id");
    expect(runs).toEqual([
      { trigger: 'manual', outcome: 'failed' },
      { trigger: 'heal', outcome: 'ok' },
      { trigger: 'probe', outcome: 'ok' },
    ]);

    await ns(d, 'run', 'b1');
    await waitFor(() => attempts(d).some((x) => x.job === 'b1' && x.outcome === 'rolled-back'), 10_000, 'first brain run');
    await ns(d, 'run', 'b2');
    const b2 = await waitFor(() => attempts(d).find((x) => x.job === 'b2' && x.outcome !== null), 10_000, 'second brain decision');
    expect(b2.outcome).toBe('refused');
    expect(b2.detail).toContain('brain budget');
    expect(readFileSync(join(work, 'brain-runs'), 'utf8').trim().split('\n')).toHaveLength(1);
  });
});

describe('alert text is data', () => {
  it('job output with $( ), backticks and ; rm -rf reaches a brain only as a JSON file; nothing of it runs', async () => {
    const work = tempDir('ns-heal-data-');
    dirs.push(work);
    const pwned = join(work, 'pwned');
    const brain = join(work, 'brain.sh');
    writeFileSync(brain, `#!/bin/sh\ncp "$NIGHTSHIFT_ALERT_FILE" ${work}/seen.json\necho "$@" > ${work}/argv.txt\n`);
    chmodSync(brain, 0o755);
    const evil = `$(touch ${pwned}) \`touch ${pwned}\` ; rm -rf ${work} ; touch ${pwned}`;
    const h = home(
      { talker: `command: ["sh", "-c", "printf '%s\\\\n' \\"$EVIL\\"; exit 1"]\nenv: { EVIL: ${JSON.stringify(evil)} }\n` },
      { brainy: `match: { job: talker, output: "rm -rf" }\nautonomy: auto\naction: { brain: ["${brain}", "--fix"] }\nprobe: { command: ["false"] }\n` },
    );
    const d = await daemon(h);
    await ns(d, 'run', 'talker');
    await waitFor(done(d, 1), 10_000, 'brain attempt');
    await waitFor(() => existsSync(join(work, 'seen.json')), 5000, 'brain saw the alert file');
    const seen = JSON.parse(readFileSync(join(work, 'seen.json'), 'utf8')) as { output_tail: string; fingerprint: string };
    expect(seen.fingerprint).toBe('talker:failed');
    expect(seen.output_tail).toContain(evil);
    expect(readFileSync(join(work, 'argv.txt'), 'utf8').trim()).toBe('--fix');
    expect(existsSync(pwned)).toBe(false);
    expect(existsSync(brain)).toBe(true);
  });
});

describe('the protected zone', () => {
  it('a fix that writes into rules/ through a symlink is an emergency: zone restored, fix rolled back, rule demoted to shadow, paged', async () => {
    const work = tempDir('ns-heal-zone-');
    dirs.push(work);
    const capture = pageCapture(work);
    const target = join(work, 'target');
    mkdirSync(target);
    writeFileSync(join(target, 'state.txt'), 'before\n');
    const h = home(
      { victim: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        sneaky: `match: { job: victim }\nautonomy: auto\naction:\n  command: ["sh", "-c", "echo after > ${target}/state.txt; printf 'match: { job: \\"*\\" }\\\\nautonomy: auto\\\\naction: { command: [\\"true\\"] }\\\\n' > ${target}/link/evil.yaml"]\n  touches: ["${target}"]\nprobe: { command: ["grep", "-q", "after", "${target}/state.txt"] }\n`,
      },
      `page:\n  allow: [protected-zone]\n  command: ["${capture.command}"]\n`,
    );
    symlinkSync(join(h, 'rules'), join(target, 'link'));
    const beforeTarget = tree(target);
    const beforeRules = tree(join(h, 'rules'));
    const d = await daemon(h);
    await ns(d, 'run', 'victim');
    const [a] = await waitFor(done(d, 1), 10_000, 'emergency handled');
    expect(a!.outcome).toBe('rolled-back');
    expect(a!.detail).toContain('EMERGENCY');
    expect(a!.detail).toContain('evil.yaml');
    expect(tree(join(h, 'rules'))).toEqual(beforeRules);
    expect(tree(target)).toEqual(beforeTarget);
    expect(query(d.state, 'SELECT rule, level FROM rule_ladder')).toEqual([{ rule: 'sneaky', level: 'shadow' }]);
    await waitFor(() => capture.pages().length > 0, 5000, 'protected-zone page');
    expect(capture.pages()[0]).toMatchObject({ event: 'protected-zone', rule: 'sneaky' });
  });

  it('a fix that deletes its own snapshot manifests to hide a zone change is caught, never fixed-verified', async () => {
    const work = tempDir('ns-heal-tamper-');
    dirs.push(work);
    writeFileSync(join(work, 'data.txt'), 'before\n');
    const h = home(
      { victim: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        tamper: `match: { job: victim }\nautonomy: auto\naction:\n  command: ["sh", "-c", "s=$NIGHTSHIFT_STATE/snapshots/$NIGHTSHIFT_HEAL_ATTEMPT; rm -f $s/zone/manifest.json $s/touches/manifest.json; echo after > ${work}/data.txt; echo '# pwned' >> rules/tamper.yaml"]\n  touches: ["${work}"]\nprobe: { command: ["grep", "-q", "after", "${work}/data.txt"] }\n`,
      },
    );
    const d = await daemon(h);
    await ns(d, 'run', 'victim');
    const [a] = await waitFor(done(d, 1), 10_000, 'tampering handled');
    expect(a!.outcome).toBe('rollback-failed');
    expect(a!.detail).toContain('deleted');
    expect(query(d.state, "SELECT resolved_at FROM alerts WHERE job = 'victim'")).toEqual([{ resolved_at: null }]);
  });

  it('touches that resolve into the zone are refused: at validation, and by the guard when a symlink appears later', async () => {
    const work = tempDir('ns-heal-guard-');
    dirs.push(work);
    const h = home(
      { victim: 'command: ["sh", "-c", "exit 1"]\n' },
      { later: `match: { job: victim }\nautonomy: auto\naction: { command: ["touch", "${work}/later/x.yaml"], touches: ["${work}/later"] }\nprobe: { command: ["test", "-e", "${work}/later/x.yaml"] }\n` },
    );
    expect((await cli(['--home', h, 'validate'])).exitCode).toBe(0);
    const d = await daemon(h);
    // after the rule was loaded, its touches path becomes a link into jobs/
    symlinkSync(join(h, 'jobs'), join(work, 'later'));
    await ns(d, 'run', 'victim');
    const [a] = await waitFor(done(d, 1), 10_000, 'decision');
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
    const work = tempDir('ns-heal-ks-');
    dirs.push(work);
    const h = home(
      { victim: 'command: ["sh", "-c", "exit 1"]\n', other: 'command: ["sh", "-c", "exit 1"]\n' },
      { fix: `match: { job: "*" }\nautonomy: auto\naction: { command: ["touch", "${work}/ran"], touches: ["${work}"] }\nprobe: { command: ["test", "-e", "${work}/ran"] }\n` },
      'autonomy: auto\n',
    );
    const d = await daemon(h);
    await ns(d, 'kill', 'on');
    await ns(d, 'run', 'victim');
    const [a] = await waitFor(done(d, 1), 10_000, 'halted');
    expect(a).toMatchObject({ job: 'victim', outcome: 'halted' });
    expect(steps(d, a!.id)).toEqual(['kill-switch']);
    expect(existsSync(join(work, 'ran'))).toBe(false);
    // an unreadable policy fails closed the same way
    await ns(d, 'kill', 'off');
    await waitFor(() => attempts(d).some((x) => x.job === 'victim' && x.outcome === 'fixed-verified'), 10_000, 'healed once the switch is off');
    writeFileSync(join(h, 'protected', 'policy.yaml'), 'autonomy: [broken\n');
    await sleep(700);
    await ns(d, 'run', 'other');
    const o = await waitFor(() => attempts(d).find((x) => x.job === 'other' && x.outcome !== null), 10_000, 'other decided');
    expect(o.outcome).toBe('halted');
    expect(o.detail).toContain('policy');
  });
});

describe('stops in the middle of a fix', () => {
  const slowFix = (work: string) =>
    `match: { job: victim }\nautonomy: auto\naction:\n  command: ["sh", "-c", "echo changed > ${work}/file.txt; touch ${work}/created; sleep 30"]\n  touches: ["${work}"]\n  timeout: 1m\nprobe: { command: ["test", "-e", "${work}/created"] }\n`;

  /** A victim job whose alert starts a fix that changes a file, creates one, then sleeps. */
  async function fixUnderWay(prefix: string) {
    const work = tempDir(prefix);
    dirs.push(work);
    writeFileSync(join(work, 'file.txt'), 'original\n');
    const before = tree(work);
    const h = home({ victim: 'command: ["sh", "-c", "exit 1"]\n' }, { slow: slowFix(work) });
    const d = await daemon(h);
    await ns(d, 'run', 'victim');
    await waitFor(() => existsSync(join(work, 'created')), 10_000, 'fix under way');
    const pgid = await waitFor(() => attempts(d)[0]?.fix_pgid, 5000, 'fix pgid journaled');
    return { work, before, h, d, pgid };
  }

  it('the kill switch during a fix kills its process group and rolls it back (halted)', async () => {
    const { work, before, d, pgid } = await fixUnderWay('ns-heal-halt-');
    await ns(d, 'kill', 'on');
    const [a] = await waitFor(done(d, 1), 10_000, 'halted');
    expect(a!.outcome).toBe('halted');
    expect(tree(work)).toEqual(before);
    expect(pidAlive(pgid!)).toBe(false);
  });

  it('a zone change found when the kill switch stops a fix is still an emergency: restored, demoted to shadow', async () => {
    const work = tempDir('ns-heal-haltzone-');
    dirs.push(work);
    const h = home(
      { victim: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        sly: `match: { job: victim }\nautonomy: auto\naction:\n  command: ["sh", "-c", "echo x > rules/planted.yaml; touch ${work}/started; sleep 30"]\n  touches: ["${work}/t"]\nprobe: { command: ["test", "-e", "${work}/never"] }\n`,
      },
    );
    const beforeRules = tree(join(h, 'rules'));
    const d = await daemon(h);
    await ns(d, 'run', 'victim');
    await waitFor(() => existsSync(join(work, 'started')), 10_000, 'fix under way');
    await ns(d, 'kill', 'on');
    const [a] = await waitFor(done(d, 1), 10_000, 'halted');
    expect(a!.outcome).toBe('halted');
    expect(a!.detail).toContain('EMERGENCY');
    expect(tree(join(h, 'rules'))).toEqual(beforeRules);
    expect(query(d.state, 'SELECT rule, level FROM rule_ladder')).toEqual([{ rule: 'sly', level: 'shadow' }]);
  });

  it('kill -9 of the daemon during a fix: the next start kills the fix, rolls back, and counts the attempt', async () => {
    const { work, before, h, d, pgid } = await fixUnderWay('ns-heal-crash-');
    d.proc.kill('SIGKILL');
    await d.proc;
    expect(pidAlive(pgid!)).toBe(true); // the fix outlived the daemon
    const d2 = await daemon(h);
    const a = attempts(d2)[0]!;
    expect(a.detail).not.toContain('EMERGENCY');
    expect(a).toMatchObject({ outcome: 'interrupted-rolled-back', attempt: 1 });
    expect(tree(work)).toEqual(before);
    expect(pidAlive(pgid!)).toBe(false);
    // the alert is still open and is looked at again: attempt 2 (the cap counts the interrupted one)
    const again = await waitFor(() => {
      const l = attempts(d2);
      return l.length >= 2 && l[1]!.fix_pgid !== null ? l : false;
    }, 10_000, 'second attempt');
    expect(again[1]!.attempt).toBe(2);
  });
});
