import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION, Store, StoreError, type DiskFullEvent } from '../../../src/store/store.js';
import { cleanup, tempDir } from '../../support/helpers.js';

const dir = tempDir('ns-store-');
afterAll(() => cleanup(dir));

describe('store', () => {
  it('creates the schema in WAL mode with synchronous FULL, and migrates idempotently', () => {
    const path = join(dir, 'a.db');
    const s = Store.open(path);
    expect(s.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(s.db.pragma('synchronous', { simple: true })).toBe(2);
    expect(s.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    s.close();
    const again = Store.open(path);
    expect(again.db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    again.close();
  });

  it('refuses a database from a newer nightshift instead of guessing', () => {
    const path = join(dir, 'newer.db');
    Store.open(path).close();
    const raw = new Database(path);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 5}`);
    raw.close();
    expect(() => Store.open(path)).toThrow(StoreError);
    expect(() => Store.open(path)).toThrow(/newer nightshift/);
  });

  it('a scheduled instant can be claimed once; the cursor moves with it in the same transaction', () => {
    const s = Store.open(join(dir, 'b.db'));
    s.jobStates.ensure('j', 1000);
    const a = s.runs.insert({ job: 'j', trigger: 'schedule', scheduledFor: 5000, cursorTo: 5000, now: 5001 });
    expect(a).toBeTypeOf('number');
    expect(s.jobStates.get('j')!.cursor).toBe(5000);
    expect(s.runs.insert({ job: 'j', trigger: 'schedule', scheduledFor: 5000, cursorTo: 5000, now: 5002 })).toBeNull();
    expect(s.runs.insert({ job: 'j', trigger: 'catch-up', scheduledFor: 5000, cursorTo: 6000, now: 5003 })).toBeNull();
    expect(s.jobStates.get('j')!.cursor).toBe(5000); // a refused claim moves nothing
    // other triggers are not instants: a manual run at any time is its own row
    expect(s.runs.insert({ job: 'j', trigger: 'manual', now: 5004 })).toBeTypeOf('number');
    expect(s.runs.insert({ job: 'j', trigger: 'manual', now: 5004 })).toBeTypeOf('number');
    // a catch-up consumes the downtime up to where the scheduler counted it (15 s), not up to the
    // moment its row was written (20 s): instants in between would be lost without a record
    s.runs.insert({ job: 'j', trigger: 'catch-up', scheduledFor: 9000, cursorTo: 15_000, now: 20_000 });
    expect(s.jobStates.get('j')!.cursor).toBe(15_000);
    expect(s.runs.count('j')).toBe(4);
    s.close();
  });

  it('tells the change listener the job of each run it writes or updates, without reading it back', () => {
    const s = Store.open(join(dir, 'listen.db'));
    const heard: Array<[string, string | null]> = [];
    s.sql.onChange((c) => heard.push([c.what, c.job]));
    const prepared: string[] = [];
    const prepare = s.db.prepare.bind(s.db);
    s.db.prepare = (sql: string) => {
      prepared.push(sql);
      return prepare(sql);
    };
    const id = s.runs.insert({ job: 'a', trigger: 'manual', now: 1 })!;
    s.runs.setPgid(id, 'a', 100);
    s.runs.markStarted(id, 'a', 100, '/logs/a/1.log', 2);
    s.runs.finish(id, 'a', { outcome: 'failed', endedAt: 3, retryAt: 10 });
    s.runs.insert({ job: 'b', trigger: 'manual', now: 4 });
    expect(s.runs.takeRetry(id, { job: 'a', trigger: 'retry', now: 10, attempt: 2, parentId: id })).toBeTypeOf('number');
    expect(heard).toEqual([
      ['run', 'a'],
      ['run', 'a'],
      ['run', 'a'],
      ['run', 'a'],
      ['run', 'b'],
      ['run', 'a'],
    ]);
    expect(prepared.filter((q) => /^SELECT job FROM runs/.test(q))).toEqual([]);
    s.close();
  });

  it('a planned retry is handed over exactly once', () => {
    const s = Store.open(join(dir, 'c.db'));
    const id = s.runs.insert({ job: 'r', trigger: 'manual', now: 1 })!;
    s.runs.finish(id, 'r', { outcome: 'failed', endedAt: 2, retryAt: 100 });
    expect(s.runs.pendingRetries().map((r) => r.id)).toEqual([id]);
    const child = s.runs.takeRetry(id, { job: 'r', trigger: 'retry', now: 100, attempt: 2, parentId: id });
    expect(child).toBeTypeOf('number');
    expect(s.runs.takeRetry(id, { job: 'r', trigger: 'retry', now: 101, attempt: 2, parentId: id })).toBeNull();
    expect(s.runs.pendingRetries()).toEqual([]);
    s.close();
  });

  it('resume moves the cursor to now so the paused time is not caught up', () => {
    const s = Store.open(join(dir, 'd.db'));
    s.jobStates.ensure('p', 1000);
    s.jobStates.setPaused('p', true, 2000);
    expect(s.jobStates.get('p')).toMatchObject({ paused: 1, paused_at: 2000, cursor: 1000 });
    s.jobStates.setPaused('p', false, 9000);
    expect(s.jobStates.get('p')).toMatchObject({ paused: 0, paused_at: null, cursor: 9000 });
    s.close();
  });

  it("a heal attempt's files: recorded as JSON, read back typed; null before, and in a database older than schema 5", () => {
    const path = join(dir, 'files.db');
    const s = Store.open(path);
    const id = s.heals.insert({ alertId: 1, fingerprint: 'j:failed', job: 'j', now: 1 });
    expect(s.heals.files(s.heals.get(id)!)).toBeNull();
    const files = { changed: ['/w/a'], created: ['/w/b'], removed: [], counts: { changed: 1, created: 3, removed: 0 } };
    s.heals.recordFiles(id, files);
    // it stays whatever the attempt ends as
    s.heals.finish(id, 'rolled-back', 'the probe failed; rolled back', 2);
    expect(s.heals.get(id)!.files).toBe(JSON.stringify(files));
    expect(s.heals.files(s.heals.get(id)!)).toEqual(files);
    expect(s.heals.files(s.heals.recent(1)[0]!)).toEqual(files);
    const other = s.heals.insert({ alertId: 2, fingerprint: 'k:failed', job: 'k', now: 3 });
    s.heals.recordFiles(other, { error: 'x'.repeat(5000) });
    expect(s.heals.files(s.heals.get(other)!)).toEqual({ error: 'x'.repeat(1000) });
    s.close();

    // A database of schema 4 (before the column): the reading commands see no record; the daemon adds the column.
    const old = join(dir, 'files-v4.db');
    Store.open(old).close();
    const raw = new Database(old);
    raw.exec(
      'DROP TABLE boot_runs; ALTER TABLE heal_attempts DROP COLUMN files; ALTER TABLE heal_attempts DROP COLUMN answered_by; DROP TABLE web_links; DROP TABLE web_sessions; ' +
        // and what schema 6 added
        'DROP TRIGGER heartbeats_output_cap; DROP INDEX heartbeats_output; DROP TABLE ping_keys; ALTER TABLE heartbeats DROP COLUMN output',
    );
    raw.prepare("INSERT INTO heal_attempts (alert_id, fingerprint, job, step, created_at) VALUES (1, 'j:failed', 'j', 'fix', 1)").run();
    raw.pragma('user_version = 4');
    raw.close();
    const reading = Store.openForReading(old)!;
    expect(reading.heals.files(reading.heals.recent(1)[0]!)).toBeNull();
    reading.close();
    const migrated = Store.open(old);
    expect(migrated.schemaVersion()).toBe(SCHEMA_VERSION);
    expect(migrated.heals.recent(1)[0]!.files).toBeNull();
    migrated.close();
  });

  it('reading commands never create a database', () => {
    expect(Store.openForReading(join(dir, 'absent.db'))).toBeNull();
  });
});

describe('store, while SQLite cannot grow (records held in memory)', () => {
  it('never hands out an instant that already has its row, and keeps a held run whose instant was taken meanwhile', () => {
    const dir = tempDir('ns-held-');
    const store = Store.open(join(dir, 'n.db'));
    try {
      store.held.retryMs = 600_000;
      const T = Date.now() - 60_000;
      store.jobStates.ensure('j', T - 1000);
      const first = store.runs.insert({ job: 'j', trigger: 'schedule', scheduledFor: T, now: T }, { holdIfFull: true });
      store.runs.finish(first!, 'j', { outcome: 'ok', endedAt: T + 10 });
      store.db.pragma(`max_page_count = ${store.db.pragma('page_count', { simple: true }) as number}`);
      store.journal.record(Date.now(), 'note', null, 'x'.repeat(100_000)); // the episode starts: something is held
      expect(store.held.diskFull()).toBeTruthy();
      // T comes round again (the clock went back) while records are held: not a second time.
      expect(store.runs.insert({ job: 'j', trigger: 'schedule', scheduledFor: T, now: Date.now() }, { holdIfFull: true })).toBeNull();
      store.db.pragma('max_page_count = 1073741823');
      expect(store.held.retryNow()).toBe(true);
      expect(store.db.prepare('SELECT count(*) AS n FROM runs WHERE scheduled_for = ?').get(T)).toEqual({ n: 1 });
    } finally {
      store.close();
      cleanup(dir);
    }
  });

  it('held records flushed inside a batch that then rolls back are not lost', () => {
    const dir = tempDir('ns-held-');
    const store = Store.open(join(dir, 'n.db'));
    try {
      store.held.retryMs = 600_000;
      store.db.pragma(`max_page_count = ${store.db.pragma('page_count', { simple: true }) as number}`);
      store.journal.record(Date.now(), 'held-one', null, 'x'.repeat(100_000));
      expect(store.held.diskFull()).toBeTruthy();
      store.db.pragma('max_page_count = 1073741823');
      expect(() =>
        store.batch(() => {
          store.journal.record(Date.now(), 'inside', null, 'y');
          throw new Error('something later in the batch failed');
        }),
      ).toThrow('something later');
      expect(store.held.retryNow()).toBe(true);
      expect(store.journal.recent(10, 'held-one')).toHaveLength(1);
    } finally {
      store.close();
      cleanup(dir);
    }
  });

  it('a run whose end is held right after earlier held writes were flushed is still handed on when written (found by review)', () => {
    const s = Store.open(join(dir, 'held-finished.db'));
    s.held.retryMs = 600_000; // the test says when to try again
    // The state folder is "full" for chosen statements only: the journal, then the run's end.
    const failing = { events: false, end: false };
    const prepare = s.db.prepare.bind(s.db);
    s.db.prepare = ((sql: string) => {
      const st = prepare(sql);
      const key = sql.startsWith('INSERT INTO events') ? 'events' : sql.startsWith('UPDATE runs SET outcome') ? 'end' : null;
      if (!key) return st;
      const run = st.run.bind(st);
      st.run = (...a: unknown[]) => {
        if (failing[key]) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
        return run(...(a as []));
      };
      return st;
    }) as typeof s.db.prepare;
    const episodes: DiskFullEvent[] = [];
    s.held.events.on('disk-full', (e) => episodes.push(e));
    const id = s.runs.insert({ job: 'j', trigger: 'manual', now: 1000 })!;
    failing.events = true;
    s.journal.record(1000, 'note', null, 'held');
    failing.events = false;
    expect(episodes.map((e) => e.kind)).toEqual(['full']);
    // The next write flushes the held event first, then its own UPDATE fails and is held.
    failing.end = true;
    s.runs.finish(id, 'j', { outcome: 'failed', endedAt: 2000, exitCode: 1 });
    failing.end = false;
    expect(s.runs.isHeld(id)).toBe(true);
    expect(s.held.retryNow()).toBe(true);
    const resolved = episodes[1];
    expect(resolved?.kind).toBe('resolved');
    expect(resolved?.kind === 'resolved' && resolved.runs.map((r) => [r.id, r.outcome])).toEqual([[id, 'failed']]);
    s.close();
  });
});

describe('reads across every job, by index (the dashboard asks them on every page load)', () => {
  it('lastFinishedOfEach, lastSuccesses and outcomesOfEach answer what a scan of every run answers', () => {
    const s = Store.open(join(dir, 'each.db'));
    const jobs = ['a', 'b-2', 'c', 'zz'];
    let t = 1000;
    // Interleaved runs of several jobs, of every kind of ending; some still open, one job only pinged.
    const outcomes = ['ok', 'failed', 'wrong', 'ok', 'timeout', 'skipped-overlap'] as const;
    for (let i = 0; i < 60; i++) {
      const job = jobs[i % jobs.length]!;
      const o = outcomes[(i * 7) % outcomes.length]!;
      if (o.startsWith('skipped-')) s.runs.insert({ job, trigger: 'schedule', scheduledFor: t, now: t, outcome: o });
      else {
        const id = s.runs.insert({ job, trigger: 'manual', now: t })!;
        if (i < 56) s.runs.finish(id, job, { outcome: o, endedAt: t + 5 });
      }
      t += 10;
    }
    // c's newest runs are open: its last finished run is an older one
    s.runs.insert({ job: 'c', trigger: 'manual', now: t++ });
    // an external job: only success pings; and a job whose newest success is a ping
    s.heartbeats.record('ext', 'success', t++, 'cli', null);
    const late = t + 1_000_000;
    s.heartbeats.record('a', 'success', late, 'cli', null);
    // nothing finished yet
    s.runs.insert({ job: 'new', trigger: 'manual', now: t++ });

    const scanLast = s.db
      .prepare('SELECT r.* FROM runs r JOIN (SELECT job, max(id) AS id FROM runs WHERE ended_at IS NOT NULL GROUP BY job) m ON r.id = m.id')
      .all() as Array<{ job: string; id: number }>;
    expect([...s.runs.lastFinishedOfEach()].sort()).toEqual(scanLast.map((r) => [r.job, r]).sort());
    expect(s.runs.lastFinishedOfEach().has('new')).toBe(false);

    const scanOk = s.db
      .prepare(
        "SELECT job, max(at) AS at FROM (SELECT job, max(ended_at) AS at FROM runs WHERE outcome = 'ok' GROUP BY job UNION ALL SELECT job, max(at) AS at FROM heartbeats WHERE kind = 'success' GROUP BY job) GROUP BY job",
      )
      .all() as Array<{ job: string; at: number }>;
    const last = s.life.lastSuccesses();
    expect([...last].sort()).toEqual(scanOk.map((r) => [r.job, r.at]).sort());
    expect(last.get('a')).toBe(late);
    expect(last.get('ext')).toBeTypeOf('number');
    for (const job of [...jobs, 'ext']) expect(last.get(job) ?? null, job).toBe(s.life.lastSuccessAt(job));

    const strips = s.runs.outcomesOfEach([...jobs, 'none'], 5);
    for (const job of jobs) expect(strips.get(job), job).toEqual(s.runs.history(job, 5).map((r) => ({ id: r.id, outcome: r.outcome })));
    expect(strips.get('none')).toEqual([]);
    // before an instant: only runs created before it (a digest of a past day shows that day's strip)
    const older = s.runs.outcomesOfEach(['a'], 100, 1200).get('a')!;
    expect(older.length).toBeGreaterThan(0);
    expect(older.every((r) => s.runs.get(r.id)!.created_at < 1200)).toBe(true);
    expect(s.runs.recent('a', 3).map((r) => r.id)).toEqual(s.runs.history('a', 3).map((r) => r.id));
    s.close();
  });
});
