// Paging and the deadman with real processes: a capture script stands in for the phone (Law 9).
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { Deadman, Pager, pageAllowed, runDeadman, type PageEvent } from '../../../src/notify/pager.js';
import { PolicySchema, type Policy } from '../../../src/config/schema.js';
import { Store, type EventRow, type PageRow } from '../../../src/store/store.js';
import { cleanup, flockFree, tempDir, testLeash, waitFor } from '../../support/helpers.js';

const dirs: string[] = [];
const stores: Store[] = [];
const stoppers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stoppers.splice(0)) await s();
  for (const s of stores.splice(0)) s.close();
});
afterAll(() => {
  for (const d of dirs) cleanup(d);
});

function setup(policyFields: (d: string) => Record<string, unknown>, opts: { timeoutMs?: number; clock?: { now(): number } } = {}) {
  const d = tempDir('ns-pager-');
  dirs.push(d);
  const store = Store.open(join(d, 'nightshift.db'));
  stores.push(store);
  let policy: Policy = PolicySchema.parse(policyFields(d));
  const clock = opts.clock ?? { now: () => Date.now() };
  const pager = new Pager({
    store,
    getPolicy: () => policy,
    clock,
    log: silentLogger,
    leash: () => testLeash(d),
    timeoutMs: opts.timeoutMs,
  });
  stoppers.push(() => pager.stop());
  return { d, store, pager, clock, setPolicy: (p: Policy) => (policy = p), getPolicy: () => policy };
}

/** A shell script in the temp dir (the test's own fixture, not job output). */
function script(d: string, name: string, body: string): string {
  const path = join(d, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** Appends each page's stdin to pages.jsonl and records its argv count and environment. */
function capture(d: string): string {
  return script(d, 'notify-phone', `echo "$#" >> '${d}/argc'\nenv >> '${d}/env'\ncat >> '${d}/pages.jsonl'`);
}

function captured(d: string): Array<Record<string, unknown>> {
  const f = join(d, 'pages.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const pages = (store: Store): PageRow[] => store.db.prepare('SELECT * FROM pages ORDER BY id').all() as PageRow[];
const events = (store: Store, kind: string): EventRow[] =>
  store.db.prepare('SELECT * FROM events WHERE kind = ? ORDER BY id').all(kind) as EventRow[];

describe('Pager', () => {
  it('pages only what policy.page.allow names: an event, an alert kind or a fingerprint', async () => {
    const t = setup((d) => ({ page: { allow: ['protected-zone', 'failed', 'db-backup:missed'], command: [capture(d)] } }));
    const ev = (e: Partial<PageEvent>): PageEvent => ({ event: 'alert', fingerprint: 'x:y', message: 'm', ...e });
    expect(t.pager.page(ev({ event: 'protected-zone', fingerprint: 'zone:/etc/nginx', message: 'a protected file changed' }))).toBe(
      'paging',
    );
    expect(t.pager.page(ev({ kind: 'failed', fingerprint: 'export:failed', job: 'export' }))).toBe('paging');
    expect(t.pager.page(ev({ kind: 'missed', fingerprint: 'db-backup:missed', job: 'db-backup' }))).toBe('paging');
    expect(t.pager.page(ev({ kind: 'wrong', fingerprint: 'export:wrong', job: 'export' }))).toBe('not-allowed');
    expect(t.pager.page(ev({ event: 'heal-blocked', fingerprint: 'heal:1' }))).toBe('not-allowed');
    await t.pager.idle();
    const got = captured(t.d);
    expect(got.map((g) => g.fingerprint).sort()).toEqual(['db-backup:missed', 'export:failed', 'zone:/etc/nginx']);
    expect(got.find((g) => g.event === 'protected-zone')).toMatchObject({ message: 'a protected file changed', at: expect.any(String) });
    const rows = pages(t.store);
    expect(rows).toHaveLength(3);
    expect(rows.every((r) => r.outcome === 'sent')).toBe(true);
    expect(pageAllowed(PolicySchema.parse({}), ev({ event: 'protected-zone' }))).toBe(false);
  });

  it('returns at once; the page command runs in the background', async () => {
    // The page command cannot finish before the test lets it (the file "go", written only after
    // page() has returned): page() returning at all proves it did not wait for its command. Were
    // it to wait, the command would give up after about 10 s, say so in the file "gave-up", and
    // page() would come back with a finished row. How long page() itself takes is not this
    // test's business.
    const t = setup((d) => ({
      page: {
        allow: ['protected-zone'],
        command: [
          script(
            d,
            'slow',
            `i=0\nwhile [ ! -e '${d}/go' ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i+1)); done\n[ -e '${d}/go' ] || { echo > '${d}/gave-up'; exit 9; }\ncat > '${d}/slow.json'`,
          ),
        ],
      },
    }));
    expect(t.pager.page({ event: 'protected-zone', fingerprint: 'z', message: 'm' })).toBe('paging');
    // back from page() while its command is still waiting: the page is recorded, not yet sent
    expect(pages(t.store)[0]!.outcome).toBeNull();
    expect(existsSync(join(t.d, 'slow.json'))).toBe(false);
    writeFileSync(join(t.d, 'go'), '');
    await t.pager.idle();
    expect(pages(t.store)[0]!.outcome).toBe('sent');
    expect(JSON.parse(readFileSync(join(t.d, 'slow.json'), 'utf8'))).toMatchObject({
      event: 'protected-zone',
      fingerprint: 'z',
      message: 'm',
    });
    expect(existsSync(join(t.d, 'gave-up'))).toBe(false);
  });

  it('pages at most once per fingerprint per hour; a repeat is not run, only journaled — also after a restart', async () => {
    let now = Date.now();
    const clock = { now: () => now };
    const t = setup((d) => ({ page: { allow: ['heal-blocked'], command: [capture(d)] } }), { clock });
    const ev: PageEvent = { event: 'heal-blocked', fingerprint: 'export:failed', job: 'export', message: 'two attempts failed' };
    expect(t.pager.page(ev)).toBe('paging');
    expect(t.pager.page(ev)).toBe('suppressed');
    expect(t.pager.page({ ...ev, fingerprint: 'report:failed', job: 'report' })).toBe('paging');
    await t.pager.idle();
    // A new Pager on the same database is a restarted daemon: the hour still holds.
    const restarted = new Pager({ store: t.store, getPolicy: t.getPolicy, clock, log: silentLogger, leash: () => testLeash(t.d) });
    now += 59 * 60_000;
    expect(restarted.page(ev)).toBe('suppressed');
    now += 2 * 60_000;
    expect(restarted.page(ev)).toBe('paging');
    await restarted.idle();
    // The first two ran side by side; their order on the phone is not defined.
    expect(
      captured(t.d)
        .map((g) => g.fingerprint)
        .sort(),
    ).toEqual(['export:failed', 'export:failed', 'report:failed']);
    expect(pages(t.store).map((p) => [p.fingerprint, p.outcome])).toEqual([
      ['export:failed', 'sent'],
      ['report:failed', 'sent'],
      ['export:failed', 'sent'],
    ]);
    const suppressed = events(t.store, 'page-suppressed');
    expect(suppressed).toHaveLength(2);
    expect(suppressed[0]!.message).toMatch(/^not paging again for export:failed: last page \d+ms ago \(at most one per 1h\)$/);
    expect(suppressed[0]!.job).toBe('export');
  });

  it('a page command that hangs is killed with its whole process group at the limit, and recorded', async () => {
    const t = setup(
      (d) => ({
        page: {
          allow: ['daemon-restart-loop'],
          command: [
            script(
              d,
              'hang',
              `flock '${d}/main.lock' sleep 1000 &\nsetsid flock '${d}/child.lock' sleep 1000 &\necho up > '${d}/child'\nwait`,
            ),
          ],
        },
      }),
      // Long enough for a busy machine to start the script and its children before the limit
      // (at 300 ms a loaded CI machine killed it first); the locks prove the kill came at the limit.
      { timeoutMs: 3000 },
    );
    expect(t.pager.page({ event: 'daemon-restart-loop', fingerprint: 'daemon', message: 'restarted 5 times in 10 minutes' })).toBe(
      'paging',
    );
    await waitFor(
      () => existsSync(join(t.d, 'child')) && !flockFree(join(t.d, 'main.lock')) && !flockFree(join(t.d, 'child.lock')),
      10_000,
      'the hang script and its escaped child',
    );
    // Both hold their locks for 1000 s: idle() coming back, the row saying "timeout" and the locks
    // being free prove the pager killed the group at its limit instead of waiting for it.
    await t.pager.idle();
    const row = pages(t.store)[0]!;
    expect(row.outcome).toBe('timeout');
    expect(row.detail).toBe('did not finish within 3s and was killed');
    expect(flockFree(join(t.d, 'main.lock'))).toBe(true);
    expect(flockFree(join(t.d, 'child.lock'))).toBe(true);
  });

  it('event text with shell metacharacters arrives verbatim on stdin, never in argv or env, and nothing runs', async () => {
    const t = setup((d) => ({ page: { allow: ['protected-zone'], command: [capture(d)] } }));
    const marker = join(t.d, 'pwned');
    const message = `$(touch ${marker}); \`touch ${marker}\` | rm -rf ${t.d}/nothing && echo "q" 'q' > ${marker}\nsecond line \\ $HOME * ?`;
    t.pager.page({ event: 'protected-zone', fingerprint: 'zone', job: 'export', message, extra: { nested: '$(id)' } });
    await t.pager.idle();
    const [got] = captured(t.d);
    expect(got!.message).toBe(message);
    expect(got!.extra).toEqual({ nested: '$(id)' });
    expect(existsSync(marker)).toBe(false);
    expect(readFileSync(join(t.d, 'argc'), 'utf8').trim()).toBe('0');
    expect(readFileSync(join(t.d, 'env'), 'utf8')).not.toContain('touch');
    expect(pages(t.store)[0]!.outcome).toBe('sent');
  });

  it('a failing page command is recorded with its own words; a missing one says what to configure', async () => {
    const t = setup((d) => ({
      page: { allow: ['protected-zone'], command: [script(d, 'fail', 'echo "phone gateway: 401 unauthorized" >&2\nexit 3')] },
    }));
    t.pager.page({ event: 'protected-zone', fingerprint: 'a', message: 'm' });
    await t.pager.idle();
    expect(pages(t.store)[0]).toMatchObject({ outcome: 'failed', detail: 'exited with code 3: phone gateway: 401 unauthorized' });

    t.setPolicy(PolicySchema.parse({ page: { allow: ['protected-zone'], command: [join(t.d, 'does-not-exist')] } }));
    t.pager.page({ event: 'protected-zone', fingerprint: 'b', message: 'm' });
    await t.pager.idle();
    expect(pages(t.store)[1]).toMatchObject({
      outcome: 'failed',
      detail: expect.stringMatching(/^could not start: command not found: .*does-not-exist$/),
    });

    t.setPolicy(PolicySchema.parse({ page: { allow: ['protected-zone'] } }));
    expect(t.pager.page({ event: 'protected-zone', fingerprint: 'c', message: 'm' })).toBe('not-configured');
    expect(pages(t.store)[2]).toMatchObject({
      outcome: 'not-configured',
      detail: expect.stringMatching(/policy\.page\.command is not set/),
    });
  });
});

describe('deadman', () => {
  it('runs policy.deadman and records an event row with the result', async () => {
    const t = setup((d) => ({ deadman: [script(d, 'ping', `echo ping >> '${d}/pings'`)] }));
    const ok = await runDeadman({
      store: t.store,
      getPolicy: t.getPolicy,
      clock: t.clock,
      log: silentLogger,
      leash: () => testLeash(t.d),
      reason: 'manual',
    });
    expect(ok).toMatchObject({ ran: true, ok: true });
    expect(readFileSync(join(t.d, 'pings'), 'utf8')).toBe('ping\n');
    const [row] = events(t.store, 'deadman');
    expect(row!.message).toBe('deadman ping ok (manual)');
    expect(JSON.parse(row!.data!)).toMatchObject({ ok: true, reason: 'manual', exitCode: 0 });

    t.setPolicy(PolicySchema.parse({ deadman: [script(t.d, 'down', 'echo "curl: (6) Could not resolve host" >&2\nexit 6')] }));
    const bad = await t.pager.runDeadman('digest');
    expect(bad).toMatchObject({ ran: true, ok: false });
    const failed = events(t.store, 'deadman')[1]!;
    expect(failed.message).toMatch(/^deadman ping failed \(digest\): .*down exited with code 6: curl: \(6\) Could not resolve host$/);
    expect(JSON.parse(failed.data!)).toMatchObject({ ok: false, exitCode: 6 });

    t.setPolicy(PolicySchema.parse({}));
    expect(
      await runDeadman({
        store: t.store,
        getPolicy: t.getPolicy,
        clock: t.clock,
        log: silentLogger,
        leash: () => testLeash(t.d),
        reason: 'hourly',
      }),
    ).toMatchObject({ ran: false });
    expect(events(t.store, 'deadman')).toHaveLength(2);
  });

  it('a hung deadman is killed at the limit and recorded as failed', async () => {
    const t = setup((d) => ({ deadman: [script(d, 'hang', 'exec sleep 1000')] }));
    const r = await runDeadman({
      store: t.store,
      getPolicy: t.getPolicy,
      clock: t.clock,
      log: silentLogger,
      leash: () => testLeash(t.d),
      reason: 'hourly',
      timeoutMs: 300,
    });
    expect(r).toMatchObject({ ran: true, ok: false, detail: 'did not finish within 300ms and was killed' });
    expect(JSON.parse(events(t.store, 'deadman')[0]!.data!)).toMatchObject({ ok: false, timedOut: true });
  });

  it('Deadman pings at start and then on its interval (one DeadlineTimer); stop() is idempotent and final', async () => {
    const t = setup((d) => ({ deadman: [script(d, 'ping', `echo ping >> '${d}/pings'`)] }));
    // Each ping reads the policy first, synchronously when it begins: a ping that began is counted
    // here at once, before its command has even started.
    let began = 0;
    const getPolicy = (): Policy => {
      began++;
      return t.getPolicy();
    };
    const dm = new Deadman({ store: t.store, getPolicy, clock: t.clock, log: silentLogger, leash: () => testLeash(t.d), intervalMs: 250 });
    dm.start();
    await waitFor(() => events(t.store, 'deadman').length >= 3, 10_000, 'three pings');
    await dm.stop();
    await dm.stop();
    const reasons = events(t.store, 'deadman').map((e) => (JSON.parse(e.data!) as { reason: string }).reason);
    expect(reasons[0]).toBe('start');
    expect(reasons.slice(1).every((r) => r === 'hourly')).toBe(true);
    expect(began).toBe(reasons.length);
    // A timer of this process due later than any the Deadman could have armed (its interval is
    // 250 ms): timers fire in the order they are due, so a ping still planned would have begun
    // before this one fires, however slow the machine.
    await sleep(2 * 250);
    expect(began).toBe(reasons.length);
    expect(events(t.store, 'deadman')).toHaveLength(reasons.length);
  });

  it('Deadman pings after each digest (kick)', async () => {
    const t = setup((d) => ({ deadman: [script(d, 'ping', `echo ping >> '${d}/pings'`)] }));
    const dm = new Deadman({ store: t.store, getPolicy: t.getPolicy, clock: t.clock, log: silentLogger, leash: () => testLeash(t.d) });
    stoppers.push(() => dm.stop());
    dm.start();
    await waitFor(() => events(t.store, 'deadman').length === 1, 10_000, 'the start ping');
    dm.kick();
    await waitFor(() => events(t.store, 'deadman').length === 2, 10_000, 'the digest ping');
    expect(JSON.parse(events(t.store, 'deadman')[1]!.data!)).toMatchObject({ ok: true, reason: 'digest' });
  });
});
