// Fault suite: the state folder's disk fills up. The daemon's --state is a small tmpfs mounted by
// the test (or, without the right to mount, a tmpfs inside a user+mount namespace the daemon runs
// in); the test fills it with a file until writes fail with ENOSPC. nightshift must say so once
// (log line, event, page), keep running jobs, keep every record in memory until space returns and
// then write it, run no heal meanwhile, and leave a database that passes PRAGMA integrity_check.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { execa } from 'execa';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { Store, type DiskFullEvent, type RunRow } from '../../src/store/store.js';
import { Supervisor } from '../../src/run/supervisor.js';
import { systemClock } from '../../src/clock.js';
import {
  CLI,
  cleanup,
  cli,
  job,
  makeHome,
  pageCapture,
  query,
  startDaemon,
  tempDir,
  testLeash,
  waitFor,
  type DaemonProc,
} from '../support/helpers.js';

const FS_SIZE = '4m';

interface SmallFs {
  how: 'mount' | 'unshare';
  /** The state folder, as the daemon sees it. */
  state: string;
  /** Environment for startDaemon (the unshare wrapper is found through PATH). */
  env?: Record<string, string>;
  /** The state folder as this test process sees it (for plain file operations). */
  view(d: DaemonProc): string;
  /** A query on the daemon's database, from where the daemon sees it. */
  query<T = Record<string, unknown>>(d: DaemonProc, sql: string, ...params: unknown[]): T[];
  /** The CLI, from where the daemon sees the state folder. */
  cli(d: DaemonProc, args: string[]): Promise<{ exitCode?: number; stdout: string; stderr: string }>;
  release(): void;
}

const SQLITE = createRequire(import.meta.url).resolve('better-sqlite3');

/** Inside the daemon's user+mount namespace (SQLite resolves /proc/PID/root as a symlink, so it cannot go through it). */
function inNamespace(d: DaemonProc): string[] {
  return ['nsenter', '-t', String(d.proc.pid), '-U', '-m', '--preserve-credentials'];
}

function errText(err: unknown): string {
  const e = err as { stderr?: Buffer | string; message?: string };
  return String(e.stderr ?? '').trim() || String(e.message ?? err);
}

/**
 * A small filesystem for the state folder. As root: a tmpfs mounted here. Without the right to
 * mount: the daemon starts through a `node` wrapper that enters a new user+mount namespace and
 * mounts the tmpfs there, and the test reaches it through /proc/PID/root.
 * NIGHTSHIFT_TEST_UNSHARE=1 forces the second way (to exercise it as root).
 */
function smallStateFs(): SmallFs {
  const base = tempDir('ns-diskfull-');
  const state = join(base, 'state');
  mkdirSync(state);
  let mountError = 'not tried (NIGHTSHIFT_TEST_UNSHARE=1)';
  if (process.env.NIGHTSHIFT_TEST_UNSHARE !== '1') {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${FS_SIZE},mode=0750`, 'tmpfs', state], { stdio: 'pipe' });
      return {
        how: 'mount',
        state,
        view: () => state,
        query: (_d, sql, ...params) => query(state, sql, ...params),
        cli: (d, args) => cli(['--home', d.home, '--state', state, ...args]),
        release: () => {
          // Lazy: a job or reader still holding a file must not leave the mount behind.
          try {
            execFileSync('umount', ['-l', state], { stdio: 'pipe' });
          } finally {
            rmSync(base, { recursive: true, force: true });
          }
        },
      };
    } catch (err) {
      mountError = errText(err);
    }
  }
  try {
    execFileSync('unshare', ['-Urm', 'sh', '-c', `mount -t tmpfs -o size=${FS_SIZE} tmpfs "$0"`, state], { stdio: 'pipe' });
  } catch (err) {
    rmSync(base, { recursive: true, force: true });
    throw new Error(
      `cannot give the state folder a small filesystem: mount -t tmpfs failed (${mountError}) and unshare -Urm failed (${errText(err)}); ` +
        'this test needs root, or unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0)',
    );
  }
  const bin = join(base, 'bin');
  mkdirSync(bin);
  // exec all the way down: the daemon keeps the pid execa knows, so /proc/PID/root is its view.
  writeFileSync(
    join(bin, 'node'),
    `#!/bin/sh\nexec unshare -Urm /bin/sh -c 'mount -t tmpfs -o size=${FS_SIZE} tmpfs "$0" && exec "${process.execPath}" "$@"' "${state}" "$@"\n`,
  );
  chmodSync(join(bin, 'node'), 0o755);
  return {
    how: 'unshare',
    state,
    env: { PATH: `${bin}:${process.env.PATH ?? ''}` },
    view: (d) => `/proc/${d.proc.pid}/root${state}`,
    query: <T>(d: DaemonProc, sql: string, ...params: unknown[]): T[] => {
      const script = `const D = require(${JSON.stringify(SQLITE)}); const db = new D(process.argv[1], { readonly: true, fileMustExist: true });
        process.stdout.write(JSON.stringify(db.prepare(process.argv[2]).all(...JSON.parse(process.argv[3]))));`;
      const [cmd, ...rest] = inNamespace(d);
      const out = execFileSync(cmd!, [...rest, process.execPath, '-e', script, join(state, 'nightshift.db'), sql, JSON.stringify(params)], {
        stdio: 'pipe',
      });
      return JSON.parse(out.toString()) as T[];
    },
    cli: async (d, args) => {
      const [cmd, ...rest] = inNamespace(d);
      return execa(cmd!, [...rest, process.execPath, CLI, '--home', d.home, '--state', state, ...args], { reject: false, stdin: 'ignore' });
    },
    release: () => rmSync(base, { recursive: true, force: true }),
  };
}

/** Writes a file into the folder until the filesystem refuses with ENOSPC; returns its path and size. */
function fillUp(dir: string): { path: string; bytes: number } {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  const buf = Buffer.alloc(64 * 1024, 0x2a);
  let bytes = 0;
  try {
    // Big chunks first, then small ones for the last blocks.
    for (const size of [64 * 1024, 4096, 512]) {
      for (;;) {
        try {
          bytes += writeSync(fd, buf, 0, size);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return { path, bytes };
}

const msgOf = (l: Record<string, unknown>): string => (typeof l.msg === 'string' ? l.msg : '');

const daemons: DaemonProc[] = [];
const cleanups: Array<() => void> = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
  for (const c of cleanups.splice(0).reverse()) {
    try {
      c();
    } catch {
      // the next cleanup still runs
    }
  }
});

async function setUp(jobs: Record<string, string>, rules: Record<string, string> = {}) {
  const fs = smallStateFs();
  cleanups.push(() => fs.release());
  const outside = tempDir('ns-diskfull-out-');
  cleanups.push(() => cleanup(outside));
  const capture = pageCapture(outside);
  const home = makeHome(
    Object.fromEntries(Object.entries(jobs).map(([k, v]) => [k, v.replaceAll('OUT', outside)])),
    `timezone: UTC\ndigest: { at: "00:00" }\npage:\n  allow: [disk-full]\n  command: ["${capture.command}"]\n`,
  );
  cleanups.push(() => cleanup(home));
  for (const [name, text] of Object.entries(rules))
    writeFileSync(join(home, 'rules', `${name}.yaml`), text.replaceAll('OUT', outside).replaceAll('STATE', fs.state));
  const d = await startDaemon(home, { state: fs.state, env: fs.env });
  daemons.push(d);
  const q = <T = Record<string, unknown>>(sql: string, ...params: unknown[]): T[] => fs.query<T>(d, sql, ...params);
  const integrity = (): string =>
    q<{ integrity_check: string }>('PRAGMA integrity_check')
      .map((r) => r.integrity_check)
      .join('; ');
  return { d, fs, view: fs.view(d), outside, pages: capture.pages, q, integrity, ns: (...args: string[]) => fs.cli(d, args) };
}

describe('the state folder fills up', () => {
  it('reports it once (log, event, page), keeps running jobs, writes every held record when space returns, and the database stays intact', async () => {
    const { d, fs, view, outside, pages, q, integrity } = await setUp({
      tick: 'every: 1s\ncommand: ["sh", "-c", "echo tick"]\n',
      // fails only while OUT/broken exists: the test creates it during the episode
      flaky: 'every: 1s\ncommand: ["sh", "-c", "test ! -e OUT/broken"]\n',
      // its output floods the run log in state/logs, which cannot be written while the disk is full
      chatty:
        'every: 2s\ncommand: ["sh", "-c", "yes chatty | head -c 20000; echo; echo chatty-done"]\nexpect: { outputMatches: "chatty-done" }\n',
    });
    const isFull = (l: Record<string, unknown>) => l.level === 'error' && msgOf(l).startsWith(`the state folder ${fs.state} is full (`);
    const finishedLine = (l: Record<string, unknown>) => msgOf(l).startsWith('run finished');

    await waitFor(
      () => q<{ n: number }>("SELECT count(*) AS n FROM runs WHERE job = 'tick' AND outcome = 'ok'")[0]!.n >= 2,
      10_000,
      'two runs of tick',
    );
    const before = q<{ id: number; outcome: string }>('SELECT id, outcome FROM runs WHERE ended_at IS NOT NULL ORDER BY id');

    const filler = fillUp(view);
    expect(filler.bytes).toBeGreaterThan(0);
    const fullLine = await d.waitLog(isFull, 10_000, 'the disk-full error line');
    expect(fullLine).toMatchObject({ state: fs.state, freeBytes: expect.any(Number) });
    expect(msgOf(fullLine)).toMatch(/free/);
    const episodeStart = d.lines().indexOf(fullLine);
    writeFileSync(join(outside, 'broken'), '');

    // Jobs keep running while nothing can be written: several runs of each finish meanwhile.
    const during = () => d.lines().slice(episodeStart).filter(finishedLine);
    const ofJob = (lines: Array<Record<string, unknown>>, job: string) => lines.filter((l) => l.job === job);
    // A chatty run that started before the disk filled may have written its whole log already: only
    // one started during the episode is sure to meet the full disk.
    const chattyStartedDuring = () =>
      ofJob(during(), 'chatty').filter((f) =>
        d
          .lines()
          .slice(episodeStart)
          .some((l) => l.job === 'chatty' && l.run === f.run && msgOf(l) === 'run started'),
      );
    await waitFor(
      () =>
        ofJob(during(), 'tick').length >= 3 &&
        ofJob(during(), 'flaky').some((l) => l.outcome === 'failed') &&
        chattyStartedDuring().length >= 1,
      20_000,
      'runs of tick, flaky and chatty during the episode',
    );
    expect(d.proc.exitCode).toBeNull();
    // a run whose log cannot be written is neither killed nor judged by a log that is not there
    const chattyDuring = chattyStartedDuring()[0]!;
    expect(chattyDuring.outcome).toBe('ok');
    expect(msgOf(chattyDuring)).toMatch(/the log could not be written: .*ENOSPC/);
    // held runs say so
    expect(
      d
        .lines()
        .slice(episodeStart)
        .some((l) => msgOf(l).startsWith('the state folder is full: this run goes ahead')),
    ).toBe(true);
    const page = await waitFor(() => pages().find((p) => p.event === 'disk-full'), 10_000, 'the disk-full page');
    expect(page).toMatchObject({ fingerprint: 'nightshift:disk-full', state: fs.state });
    expect(String(page.message)).toContain(`the state folder ${fs.state} is full`);
    expect(integrity()).toBe('ok');
    unlinkSync(join(outside, 'broken'));

    // Space returns: everything held is written, and the episode is reported resolved.
    unlinkSync(filler.path);
    const resolved = await d.waitLog(
      (l) => msgOf(l).startsWith(`the state folder ${fs.state} has room again`),
      20_000,
      'the resolved line',
    );
    const lines = d.lines().slice(0, d.lines().indexOf(resolved));
    await waitFor(
      () => q("SELECT 1 FROM runs WHERE job = 'tick' AND created_at > ?", Date.parse(String(resolved.time))).length > 0,
      10_000,
      'a run after the episode',
    );

    expect(integrity()).toBe('ok');
    // no run recorded before the episode is lost or changed
    const after = new Map(q<{ id: number; outcome: string }>('SELECT id, outcome FROM runs').map((r) => [r.id, r.outcome]));
    for (const r of before) expect(after.get(r.id)).toBe(r.outcome);
    // every run that finished up to the resolution (held or not) has its row
    for (const job of ['tick', 'flaky', 'chatty']) {
      const logged = ofJob(lines.filter(finishedLine), job).length;
      const rows = q<{ n: number }>(
        'SELECT count(*) AS n FROM runs WHERE job = ? AND ended_at IS NOT NULL AND ended_at <= ?',
        job,
        Date.parse(String(resolved.time)),
      )[0]!.n;
      expect(rows, `finished runs of ${job} in SQLite vs in the log`).toBeGreaterThanOrEqual(logged);
    }
    const chattyRow = q<{ outcome: string; reason: string }>(
      "SELECT outcome, reason FROM runs WHERE job = 'chatty' AND reason LIKE '%log could not be written%'",
    );
    expect(chattyRow.length).toBeGreaterThan(0);
    expect(chattyRow.every((r) => r.outcome === 'ok')).toBe(true);
    // flaky failed only during the episode: its alert comes from rows that were held in memory
    await waitFor(() => q("SELECT 1 FROM alerts WHERE fingerprint = 'flaky:failed'").length > 0, 10_000, 'the alert of the held failures');

    const events = q<{ kind: string; message: string }>("SELECT kind, message FROM events WHERE kind LIKE 'disk-full%' ORDER BY id");
    expect(events.map((e) => e.kind)).toEqual(['disk-full', 'disk-full-resolved']);
    expect(events[0]!.message).toContain(fs.state);
    const pageRows = q<{ event: string; outcome: string }>("SELECT event, outcome FROM pages WHERE event = 'disk-full'");
    expect(pageRows).toEqual([{ event: 'disk-full', outcome: 'sent' }]);

    // once per episode, however many writes failed
    expect(d.lines().filter(isFull)).toHaveLength(1);
    expect(pages().filter((p) => p.event === 'disk-full')).toHaveLength(1);
    expect(d.lines().some((l) => l.level === 'fatal' || msgOf(l) === 'scheduling failed')).toBe(false);

    await d.stop();
    expect(d.proc.exitCode).toBe(0);
  }, 60_000);

  it('a heal approved while the disk is full runs nothing (fail closed); approved once space returns, it runs', async () => {
    const { d, fs, view, outside, q, integrity, ns } = await setUp(
      { fixme: 'command: ["sh", "-c", "test -e OUT/work/fixed"]\n' },
      {
        'fix-fixme':
          'match: { job: fixme, kind: [failed] }\nautonomy: gated\naction:\n  command: ["sh", "-c", "touch OUT/work/fixed"]\n  touches: ["OUT/work/"]\nprobe: { rerun: true }\n',
      },
    );
    mkdirSync(join(outside, 'work'));
    expect((await ns('run', 'fixme')).exitCode).toBe(1);
    const attempt = await waitFor(
      () => q<{ id: number }>("SELECT id FROM heal_attempts WHERE job = 'fixme' AND outcome = 'awaiting-approval'")[0],
      10_000,
      'an approval request',
    );

    const filler = fillUp(view);
    const approve = await ns('approve', String(attempt.id));
    expect(approve.exitCode).not.toBe(0);
    expect(approve.stderr).toContain(`the state folder ${fs.state} is full`);
    await sleep(1000);
    expect(existsSync(join(outside, 'work', 'fixed'))).toBe(false);
    expect(d.proc.exitCode).toBeNull();
    expect(integrity()).toBe('ok');

    unlinkSync(filler.path);
    await d.waitLog((l) => msgOf(l).startsWith(`the state folder ${fs.state} has room again`), 20_000, 'the resolved line');
    const again = await ns('approve', String(attempt.id));
    expect(again.exitCode).toBe(0);
    await waitFor(
      () => q<{ outcome: string }>('SELECT outcome FROM heal_attempts WHERE id = ?', attempt.id)[0]?.outcome === 'fixed-verified',
      15_000,
      'the fix, verified',
    );
    expect(existsSync(join(outside, 'work', 'fixed'))).toBe(true);
    expect(integrity()).toBe('ok');
  }, 60_000);
});

describe('a fix that fills the state folder', () => {
  it('is still rolled back while the disk is full: the restore does not wait for its journal line, and nothing is called fixed', async () => {
    const { d, view, outside, q, integrity, ns } = await setUp(
      { fixme: 'command: ["sh", "-c", "test -e OUT/work/fixed"]\n' },
      {
        // The fix rewrites the tree and tries to fill the state folder's disk. It cannot (the state
        // folder is hidden from it, behind an empty read-only mount), so the test fills the disk
        // while the fix runs: the fix says it runs (started) and waits for the test's go, both in
        // its touches. Its probe (a rerun) cannot pass.
        'fill-fixme':
          'match: { job: fixme, kind: [failed] }\nautonomy: auto\naction:\n  command: ["sh", "-c", "echo changed > OUT/work/data; head -c 64M /dev/zero > STATE/fix-filler; touch OUT/work/started; while [ ! -e OUT/work/go ]; do sleep 0.05; done"]\n  touches: ["OUT/work/"]\n  timeout: 30s\nprobe: { rerun: true }\n',
      },
    );
    mkdirSync(join(outside, 'work'));
    writeFileSync(join(outside, 'work', 'data'), 'original\n');
    expect((await ns('run', 'fixme')).exitCode).toBe(1);
    await waitFor(() => existsSync(join(outside, 'work', 'started')), 10_000, 'the fix under way');
    expect(readFileSync(join(outside, 'work', 'data'), 'utf8')).toBe('changed\n');
    expect(existsSync(join(view, 'fix-filler'))).toBe(false); // its own try failed
    // The disk fills while the fix runs (run logs, say: in logs/, which the daemon writes itself and
    // the zone check leaves out), and stays full through the rest of the attempt and its rollback.
    mkdirSync(join(view, 'logs'), { recursive: true });
    const filler = fillUp(join(view, 'logs'));
    expect(filler.bytes).toBeGreaterThan(0);
    writeFileSync(join(outside, 'work', 'go'), '');
    await d
      .waitLog((l) => typeof l.heal === 'number' && /rolled-back|could not be recorded/.test(msgOf(l)), 20_000, 'the rollback')
      .catch((err: unknown) => {
        throw new Error(
          `${String(err)}\n${d
            .lines()
            .map((l) => JSON.stringify(l))
            .join('\n')}`,
        );
      });
    // the rollback went ahead without its journal line
    expect(
      d
        .lines()
        .some(
          (l) =>
            typeof l.heal === 'number' &&
            msgOf(l).startsWith('heal: the rollback step could not be journaled; restoring the snapshot anyway'),
        ),
    ).toBe(true);
    expect(readFileSync(join(outside, 'work', 'data'), 'utf8')).toBe('original\n');
    expect(existsSync(join(outside, 'work', 'go'))).toBe(false); // made after the snapshot: removed with the rest
    expect(existsSync(filler.path)).toBe(true);
    expect(q("SELECT 1 FROM heal_attempts WHERE outcome = 'fixed-verified'")).toHaveLength(0);
    expect(d.proc.exitCode).toBeNull();
    expect(integrity()).toBe('ok');
  }, 60_000);
});

describe('a restart on a full state folder', () => {
  it('refuses to start with an error that names the full state folder (SQLite cannot even map its WAL index)', async () => {
    const fs = smallStateFs();
    cleanups.push(() => fs.release());
    const home = makeHome({ tick: 'every: 1s\ncommand: ["true"]\n' }, 'timezone: UTC\ndigest: { at: "00:00" }\n');
    cleanups.push(() => cleanup(home));
    // One shell does it all, so that with the unshare fallback the tmpfs lives for both starts.
    const start = `"${process.execPath}" "${CLI}" --home "${home}" --state "${fs.state}" start`;
    const script = [
      'set -u',
      fs.how === 'unshare' ? `mount -t tmpfs -o size=${FS_SIZE} tmpfs "${fs.state}" || exit 90` : ':',
      `${start} > "${home}/first.log" 2>&1 & pid=$!`,
      `i=0; until grep -q '"msg":"nightshift started"' "${home}/first.log"; do i=$((i+1)); [ $i -gt 300 ] && exit 91; sleep 0.05; done`,
      'kill -TERM $pid; wait $pid',
      `dd if=/dev/zero of="${fs.state}/filler" bs=4k 2>/dev/null`,
      `${start} > "${home}/second.log" 2>&1; echo $? > "${home}/second.rc"`,
    ].join('\n');
    const r =
      fs.how === 'unshare'
        ? await execa('unshare', ['-Urm', 'sh', '-c', script], { reject: false })
        : await execa('sh', ['-c', script], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(join(home, 'second.rc'), 'utf8').trim()).toBe('1');
    const out = readFileSync(join(home, 'second.log'), 'utf8');
    expect(out).toContain(`the state folder ${fs.state} is full`);
    expect(out).toContain('free space on that filesystem');
  });
});

describe('records held in memory', () => {
  // SQLite answers SQLITE_FULL when the database may not grow (max_page_count): the same error as
  // a full disk, in process, so the order of held writes can be checked step by step.
  it('a failed run and its retry, decided while SQLite cannot grow, are written in order (the retry points at its parent); listeners hear of them only then', async () => {
    const dir = tempDir('ns-held-');
    cleanups.push(() => cleanup(dir));
    const store = Store.open(join(dir, 'nightshift.db'));
    cleanups.push(() => store.close());
    store.held.retryMs = 600_000; // the test says when to try again
    const episodes: DiskFullEvent[] = [];
    store.held.events.on('disk-full', (ev) => episodes.push(ev));
    const flaky = job('flaky', { command: ['sh', '-c', 'echo nope; exit 3'], retries: { count: 1, delay: '200ms' } }, dir);
    const finished: RunRow[] = [];
    const sup = new Supervisor({
      store,
      logsDir: join(dir, 'logs'),
      stateDir: dir,
      clock: systemClock,
      log: silentLogger,
      lookup: () => flaky,
      leash: () => testLeash(dir),
    });
    sup.events.on('run-finished', (r) => finished.push(r));
    cleanups.push(() => void sup.shutdown());
    const first = await sup.runManual(flaky);
    await waitFor(
      () => store.runs.get(first.id)?.retry_at === null && store.runs.count('flaky') === 2 && finished.length === 2,
      5000,
      'the first run and its retry',
    );
    finished.length = 0;

    store.db.pragma(`max_page_count = ${store.db.pragma('page_count', { simple: true }) as number}`);
    store.journal.record(Date.now(), 'note', null, 'x'.repeat(100_000));
    expect(episodes).toMatchObject([{ kind: 'full', error: expect.stringMatching(/full/) }]);
    const held = await sup.runManual(flaky);
    expect(held).toMatchObject({ outcome: 'failed', attempt: 1 });
    expect(held.id).toBeLessThan(0);
    expect(held.retry_at).not.toBeNull();
    const retry = await waitFor(() => (store.runs.get(held.id - 1)?.ended_at ? store.runs.get(held.id - 1) : null), 5000, 'the held retry');
    expect(retry).toMatchObject({ trigger: 'retry', attempt: 2, parent_id: held.id, outcome: 'failed' });
    expect(finished).toEqual([]);
    expect(store.runs.count('flaky')).toBe(2);
    expect(store.held.retryNow()).toBe(false);

    store.db.pragma('max_page_count = 1073741823');
    expect(store.held.retryNow()).toBe(true);
    expect(episodes[1]).toMatchObject({ kind: 'resolved', writes: 3 });
    const rows = store.runs.history('flaky', 10).reverse();
    expect(rows.map((r) => [r.trigger, r.attempt, r.outcome])).toEqual([
      ['manual', 1, 'failed'],
      ['retry', 2, 'failed'],
      ['manual', 1, 'failed'],
      ['retry', 2, 'failed'],
    ]);
    expect(rows[3]!.parent_id).toBe(rows[2]!.id);
    expect(rows[2]!.retry_at).toBeNull();
    expect(store.runs.get(held.id)!.id).toBe(rows[2]!.id);
    expect(finished.map((r) => r.id)).toEqual([rows[2]!.id, rows[3]!.id]);
    expect(store.journal.recent(5, 'note')).toHaveLength(1);
    expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
  });
});
