import { existsSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { RunningProcess, runPrecheck } from '../../../src/run/runner.js';
import { cleanup, FIXTURES, flockFree, job, pidAlive, tempDir, testLeash, waitFor } from '../../support/helpers.js';

const dir = tempDir('ns-runner-');
afterAll(() => cleanup(dir));
let seq = 0;
const run = (j: ReturnType<typeof job>, logCap?: number) =>
  new RunningProcess({ job: j, runId: ++seq, trigger: 'manual', logPath: join(dir, `${seq}.log`), logCap, leash: testLeash() });

describe('runner', () => {
  it('runs an argv command without a shell: metacharacters reach the program as text', async () => {
    const r = await run(job('argv', { command: ['echo', '$(touch /tmp/ns-should-not-exist)', ';', 'rm', '-rf', '`x`'] })).done;
    expect(r.outcome).toBe('ok');
    expect(r.outputTail).toBe('$(touch /tmp/ns-should-not-exist) ; rm -rf `x`\n');
    expect(existsSync('/tmp/ns-should-not-exist')).toBe(false);
  });

  it('runs a shell: line only when asked, with cwd and env', async () => {
    const r = await run(job('sh', { shell: 'echo "$GREETING from $(pwd)" && exit 0', cwd: dir, env: { GREETING: 'hello' } })).done;
    expect(r.outcome).toBe('ok');
    expect(r.outputTail.trim()).toBe(`hello from ${dir}`);
  });

  it('interleaves stdout and stderr in one log and reports a failing exit code', async () => {
    // out2 is printed only once err1 is in the log: the order is the job's, not a race of two pipes
    // on a busy machine (a fixed 50 ms pause lost that race once in CI).
    const log = join(dir, `${seq + 1}.log`);
    const j = job('mixed', {
      shell: `echo out1; echo err1 >&2; i=0; while ! grep -q err1 '${log}' && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done; echo out2; exit 3`,
    });
    const p = run(j);
    const r = await p.done;
    expect(r.outcome).toBe('failed');
    expect(r.exitCode).toBe(3);
    expect(r.reason).toContain('exited with code 3');
    expect(r.outputTail).toContain('out1');
    expect(r.outputTail).toContain('err1');
    expect(r.outputTail.indexOf('out2')).toBeGreaterThan(r.outputTail.indexOf('err1'));
  });

  it('reports a missing program clearly', async () => {
    const r = await run(job('missing', { command: ['/nonexistent/bin/tool', 'x'] })).done;
    expect(r.outcome).toBe('failed');
    expect(r.reason).toContain('command not found: /nonexistent/bin/tool');
  });

  it('reports a missing working directory clearly', async () => {
    const r = await run(job('nocwd', { command: ['true'], cwd: '/nonexistent/dir' })).done;
    expect(r.outcome).toBe('failed');
    expect(r.reason).toContain('working directory /nonexistent/dir does not exist');
  });

  it('on timeout kills the whole process group, grandchildren that ignore SIGTERM included', async () => {
    const pidfile = join(dir, 'gc.pids');
    const p = run(
      job('forker', {
        command: [join(FIXTURES, 'grandchildren.sh'), pidfile, '4'],
        timeout: '700ms',
        killGrace: '300ms',
        seeAllProcesses: true,
      }),
    );
    await waitFor(() => existsSync(pidfile) && readFileSync(pidfile, 'utf8').trim().split('\n').length === 4, 5000, 'grandchildren');
    const pids = readFileSync(pidfile, 'utf8').trim().split('\n').map(Number);
    expect(pids.every(pidAlive)).toBe(true);
    const r = await p.done;
    expect(r.outcome).toBe('timeout');
    expect(r.reason).toContain('timeout of 700ms');
    expect(r.reason).toContain('SIGKILL after 300ms');
    expect(r.durationMs).toBeGreaterThanOrEqual(1000);
    await waitFor(() => pids.every((pid) => !pidAlive(pid)), 3000, 'grandchildren gone');
  });

  it('a job that stops on SIGTERM is not SIGKILLed', async () => {
    const r = await run(job('polite', { command: [join(FIXTURES, 'hang.sh')], timeout: '300ms', killGrace: '5s' })).done;
    expect(r.outcome).toBe('timeout');
    expect(r.signal).toBe('SIGTERM');
    expect(r.reason).not.toContain('SIGKILL');
  });

  it('a job that exits before its children leaves no process behind', async () => {
    const pidfile = join(dir, 'bg.pid');
    const r = await run(
      job('leaver', { command: [join(FIXTURES, 'exit-before-children.sh'), pidfile], killGrace: '1s', seeAllProcesses: true }),
    ).done;
    expect(r.outcome).toBe('ok');
    const pid = Number(readFileSync(pidfile, 'utf8'));
    await waitFor(() => !pidAlive(pid), 3000, 'leftover child gone');
    expect(r.reason).toContain('Processes it left behind were stopped');
  });

  it('contained (the default): grandchildren that ignore SIGTERM and escape with setsid die with the run at its timeout', async () => {
    const lock = join(dir, 'gc-contained.lock');
    const started = join(dir, 'gc-contained.started');
    const p = run(
      job('forker2', {
        shell: `setsid flock ${lock} sh -c 'trap "" TERM; echo up > ${started}; while :; do sleep 1; done' & wait`,
        timeout: '700ms',
        killGrace: '300ms',
      }),
    );
    await waitFor(() => existsSync(started), 5000, 'the escaped grandchild');
    expect(flockFree(lock)).toBe(false); // held by the grandchild
    const r = await p.done;
    expect(r.outcome).toBe('timeout');
    await waitFor(() => flockFree(lock), 3000, 'the grandchild gone (its lock released)');
  });

  it('contained (the default): a job that exits before its children leaves no process behind', async () => {
    const lock = join(dir, 'leaver-contained.lock');
    const started = join(dir, 'leaver-contained.started');
    const r = await run(
      job('leaver2', {
        shell: `setsid -f flock ${lock} sh -c 'echo up > ${started}; while :; do sleep 1; done'; while [ ! -e ${started} ]; do sleep 0.05; done; echo main exiting`,
      }),
    ).done;
    expect(r.outcome).toBe('ok');
    expect(existsSync(started)).toBe(true);
    await waitFor(() => flockFree(lock), 3000, 'the leftover gone (its lock released)');
  });

  it('stop() kills a running job and says why', async () => {
    const p = run(job('stopme', { command: [join(FIXTURES, 'ignore-term.sh')], killGrace: '200ms' }));
    await sleep(200);
    const r = await p.stop('shutdown');
    expect(r.outcome).toBe('killed');
    expect(r.reason).toContain('nightshift was shutting down');
    expect(r.signal).toBe('SIGKILL');
  });

  it('caps the log, keeping head and tail, and keeps the last 4 KiB in the row', async () => {
    const bytes = 8 * 1024 * 1024;
    const p = run(job('flood', { command: ['node', join(FIXTURES, 'flood.js'), String(bytes)] }), 256 * 1024);
    const r = await p.done;
    expect(r.outcome).toBe('ok');
    expect(r.outputBytes).toBe(bytes + '\nEND-MARKER\n'.length);
    const logPath = join(dir, `${seq}.log`);
    const size = statSync(logPath).size;
    expect(size).toBeLessThan(256 * 1024 + 200);
    expect(size).toBeGreaterThan(256 * 1024);
    const text = readFileSync(logPath, 'utf8');
    expect(text.startsWith('HEAD-MARKER')).toBe(true);
    expect(text.trimEnd().endsWith('END-MARKER')).toBe(true);
    expect(text).toMatch(/bytes of output left out here/);
    expect(Buffer.byteLength(r.outputTail)).toBe(4096);
    expect(r.outputTail.trimEnd().endsWith('END-MARKER')).toBe(true);
  });

  it('exit 0 with a failed expectation is "wrong", and says which', async () => {
    const out = join(dir, 'report.csv');
    writeFileSync(out, 'x');
    const r = await run(
      job('wrongish', {
        shell: 'echo exported 0 orders',
        expect: {
          files: [{ path: out, minBytes: 100 }, { path: join(dir, 'absent.csv') }],
          outputMatches: 'exported [1-9][0-9]* orders',
          minDuration: '2s',
        },
      }),
    ).done;
    expect(r.outcome).toBe('wrong');
    expect(r.reason).toContain('has 1 bytes (at least 100 expected)');
    expect(r.reason).toContain('absent.csv does not exist');
    expect(r.reason).toContain('did not match /exported [1-9][0-9]* orders/');
    expect(r.reason).toContain('faster than the expected minimum of 2s');
  });

  it('a pattern that backtracks forever cannot freeze the daemon: bounded, and counted as not matched', async () => {
    // Unbounded, this pattern would take hours on this text; the test's own timeout would fail it.
    const r = await run(
      job('redos', { shell: "printf 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!'", expect: { outputMatches: '(a+)+$' } }),
    ).done;
    expect(r.outcome).toBe('wrong');
    expect(r.reason).toContain('backtracks badly');
  });

  it('expectations that hold give ok; a stale file is wrong', async () => {
    const out = join(dir, 'fresh.csv');
    const ok = await run(
      job('fresh', {
        shell: `printf 'a,b,c\\n1,2,3\\n' > ${out}; echo exported 7 orders`,
        expect: { files: [{ path: out, maxAge: '1m', minBytes: 5 }], outputMatches: 'exported [1-9]' },
      }),
    ).done;
    expect(ok.outcome).toBe('ok');
    const stale = join(dir, 'stale.csv');
    writeFileSync(stale, 'old data here');
    const { utimesSync } = await import('node:fs');
    utimesSync(stale, new Date(Date.now() - 3 * 3600_000), new Date(Date.now() - 3 * 3600_000));
    const r = await run(job('stale', { command: ['true'], expect: { files: [{ path: stale, maxAge: '2h' }] } })).done;
    expect(r.outcome).toBe('wrong');
    expect(r.reason).toMatch(/stale\.csv is 3h\d*m? old \(at most 2h expected\)/);
  });

  it('a wildcard in an expected file name checks the newest match (a backup named by its date)', async () => {
    const { mkdirSync, utimesSync } = await import('node:fs');
    const backups = join(dir, 'backups');
    mkdirSync(backups);
    const old = (file: string, hours: number, text: string): void => {
      writeFileSync(join(backups, file), text);
      utimesSync(join(backups, file), new Date(Date.now() - hours * 3600_000), new Date(Date.now() - hours * 3600_000));
    };
    // Yesterday's and the day before's, big enough; tonight's is written by the run.
    old('shop-2026-12-03.sql.gz', 48, 'x'.repeat(500));
    old('shop-2026-12-04.sql.gz', 24, 'x'.repeat(500));
    writeFileSync(join(backups, 'other-2026-12-05.sql.gz'), 'not ours');
    const expectation = { files: [{ path: join(backups, 'shop-*.sql.gz'), maxAge: '2h', minBytes: 100 }] };
    const fresh = await run(job('backup', { shell: `head -c 300 /dev/zero > ${backups}/shop-2026-12-05.sql.gz`, expect: expectation }))
      .done;
    expect(fresh.outcome).toBe('ok');
    // A run that wrote nothing: the newest match is yesterday's, too old — not "any match is fine".
    old('shop-2026-12-05.sql.gz', 25, 'x'.repeat(500));
    const silent = await run(job('backup', { command: ['true'], expect: expectation })).done;
    expect(silent.outcome).toBe('wrong');
    expect(silent.reason).toMatch(/shop-2026-12-04\.sql\.gz is 1d\d*h?\d*m? old \(at most 2h expected\)/);
    // The newest match is checked for its size too; and no match at all says so.
    writeFileSync(join(backups, 'shop-2026-12-06.sql.gz'), 'tiny');
    const tiny = await run(job('backup', { command: ['true'], expect: expectation })).done;
    expect(tiny.reason).toContain(`the expected file ${join(backups, 'shop-2026-12-06.sql.gz')} has 4 bytes (at least 100 expected)`);
    const none = await run(job('backup', { command: ['true'], expect: { files: [{ path: join(backups, 'nope-*.gz') }] } })).done;
    expect(none.outcome).toBe('wrong');
    expect(none.reason).toContain(`no file matches the expected ${join(backups, 'nope-*.gz')}`);
  });
});

describe('where a job runs', () => {
  it('without a cwd, a job and its pre-check run in the home folder, not where nightshift was started', async () => {
    const home = tempDir('ns-cwd-home-');
    expect(process.cwd()).not.toBe(home);
    const j = job('where', { shell: 'pwd -P', precheck: ['sh', '-c', 'pwd -P >&2; pwd -P | grep -qx "$0" && echo IDLE', home] }, home);
    const r = await run(j).done;
    expect(r.outcome).toBe('ok');
    expect(r.outputTail).toBe(`${realpathSync(home)}\n`);
    // The pre-check says IDLE only when it ran in the home.
    expect((await runPrecheck(j, { leash: testLeash(home) })).idle).toBe(true);
    cleanup(home);
  });
});

describe('pre-check (fail open)', () => {
  it('only a first line of exactly IDLE skips', async () => {
    expect((await runPrecheck(job('p1', { command: ['true'], precheck: ['sh', '-c', 'echo IDLE'] }), { leash: testLeash() })).idle).toBe(
      true,
    );
    expect(
      (await runPrecheck(job('p2', { command: ['true'], precheck: ['sh', '-c', 'echo "  IDLE  "; echo more'] }), { leash: testLeash() }))
        .idle,
    ).toBe(true);
    expect((await runPrecheck(job('p3', { command: ['true'], precheck: ['sh', '-c', 'echo idle'] }), { leash: testLeash() })).idle).toBe(
      false,
    );
    expect(
      (await runPrecheck(job('p4', { command: ['true'], precheck: ['sh', '-c', 'echo WORK; echo IDLE'] }), { leash: testLeash() })).idle,
    ).toBe(false);
  });

  it('an error, a crash or a timeout means run', async () => {
    const missing = await runPrecheck(job('p5', { command: ['true'], precheck: ['/nonexistent/check'] }), { leash: testLeash() });
    expect(missing).toMatchObject({ idle: false });
    expect(missing.reason).toContain('running the job anyway');
    // A pre-check that says IDLE but then fails is broken: its verdict is not trusted (fail open).
    const failing = await runPrecheck(job('p6', { command: ['true'], precheck: ['sh', '-c', 'echo IDLE; exit 1'] }), {
      leash: testLeash(),
    });
    expect(failing.idle).toBe(false);
    expect(failing.reason).toContain('exited with code 1; running the job anyway');
    const crash = await runPrecheck(job('p7', { command: ['true'], precheck: ['sh', '-c', 'kill -9 $$'] }), { leash: testLeash() });
    expect(crash.idle).toBe(false);
    // A grandchild holding stdout open must not keep us waiting 30 s (the test timeout would catch that).
    const slow = await runPrecheck(job('p8', { command: ['true'], precheck: ['sh', '-c', 'sleep 30 & sleep 30; echo IDLE'] }), {
      timeoutMs: 300,
      leash: testLeash(),
    });
    expect(slow.idle).toBe(false);
    expect(slow.reason).toContain('timed out');
  });
});
