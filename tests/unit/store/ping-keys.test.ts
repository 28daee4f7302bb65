// Schema 6 against a real SQLite file: the HTTP ping keys (one per job, found by the key's hash,
// replaced in one statement), the output of a ping, which only a job's latest pings keep, and a
// database of schema 5 brought up to date with its heartbeats as they were.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION, Store } from '../../../src/store/store.js';
import { PING_OUTPUTS_KEPT } from '../../../src/store/heartbeats.js';
import { newPingKey, pingKeyHash } from '../../../src/web/ping-http.js';
import { cleanup, tempDir } from '../../support/helpers.js';

const dir = tempDir('ns-pingkeys-');
afterAll(() => cleanup(dir));

describe('ping keys and ping outputs (schema 6)', () => {
  it('one key per job, found by its hash; a new one replaces the old at once; a removed job loses it', () => {
    const s = Store.open(join(dir, 'keys.db'));
    const k1 = newPingKey();
    expect(k1).toMatch(/^[A-Za-z0-9_-]{43}$/);
    s.pingKeys.set('ext', k1, pingKeyHash(k1), 1);
    expect(s.pingKeys.of('ext')).toEqual({ job: 'ext', key: k1, key_hash: pingKeyHash(k1), created_at: 1 });
    expect(s.pingKeys.jobOf(pingKeyHash(k1))).toBe('ext');
    expect(s.pingKeys.jobOf(k1)).toBeUndefined(); // the key itself is not what is looked up
    const k2 = newPingKey();
    s.pingKeys.set('ext', k2, pingKeyHash(k2), 2);
    expect(s.pingKeys.jobOf(pingKeyHash(k1))).toBeUndefined();
    expect(s.pingKeys.jobOf(pingKeyHash(k2))).toBe('ext');
    // Two jobs cannot share a key (a collision of 256 random bits would be a bug, not luck).
    expect(() => s.pingKeys.set('other', k2, pingKeyHash(k2), 3)).toThrow(/UNIQUE/);
    // Jobs gone (or no longer external) while the daemon was down lose theirs at its start.
    s.pingKeys.set('gone', k1, pingKeyHash(k1), 4);
    expect(s.pingKeys.keepOnly(['ext'])).toBe(1);
    expect(s.pingKeys.jobOf(pingKeyHash(k1))).toBeUndefined();
    expect(s.pingKeys.jobOf(pingKeyHash(k2))).toBe('ext');
    expect(s.pingKeys.remove('ext')).toBe(true);
    expect(s.pingKeys.remove('ext')).toBe(false);
    expect(s.pingKeys.jobOf(pingKeyHash(k2))).toBeUndefined();
    s.close();
  });

  it("only a job's latest PING_OUTPUTS_KEPT outputs are kept, however many pings without one come between", () => {
    const s = Store.open(join(dir, 'outputs.db'));
    const n = PING_OUTPUTS_KEPT + 20;
    for (let i = 0; i < n; i++) {
      s.heartbeats.record('ext', 'success', i, 'http', null, `body ${i}`);
      s.heartbeats.record('ext', 'success', i, 'http'); // a GET: no output
    }
    s.heartbeats.record('other', 'success', 0, 'http', null, 'other body');
    const rows = s.heartbeats.recent(10_000, { job: 'ext' });
    expect(rows).toHaveLength(2 * n);
    const kept = rows.filter((r) => r.output !== null);
    expect(kept).toHaveLength(PING_OUTPUTS_KEPT);
    expect(kept[0]!.output).toBe(`body ${n - 1}`);
    expect(kept.at(-1)!.output).toBe(`body ${n - PING_OUTPUTS_KEPT}`);
    expect(s.heartbeats.last('other')!.output).toBe('other body');
    // The trigger finds the one to drop through the partial index, not by walking the job's pings.
    const plan = s.db
      .prepare("EXPLAIN QUERY PLAN SELECT id FROM heartbeats WHERE job = 'ext' AND output IS NOT NULL ORDER BY id DESC LIMIT 1 OFFSET 100")
      .all() as Array<{ detail: string }>;
    expect(plan.map((p) => p.detail).join(' ')).toContain('heartbeats_output');
    s.close();
  });

  it('a database of schema 5 keeps its heartbeats (no output) and gains the table', () => {
    const path = join(dir, 'v5.db');
    Store.open(path).close();
    const raw = new Database(path);
    raw.exec(
      'DROP TABLE boot_runs; DROP TRIGGER heartbeats_output_cap; DROP INDEX heartbeats_output; DROP TABLE ping_keys; ALTER TABLE heartbeats DROP COLUMN output',
    );
    raw.prepare("INSERT INTO heartbeats (job, kind, at, source) VALUES ('ext', 'success', 5, 'ping')").run();
    raw.pragma('user_version = 5');
    raw.close();
    // A reading command on the old database still lists the ping (its output simply absent).
    const reading = Store.openForReading(path)!;
    expect(reading.heartbeats.recent(10, { job: 'ext' })[0]!.output ?? null).toBeNull();
    reading.close();
    const s = Store.open(path);
    expect(s.schemaVersion()).toBe(SCHEMA_VERSION);
    expect(s.heartbeats.recent(10, { job: 'ext' })).toEqual([
      { id: 1, job: 'ext', kind: 'success', at: 5, source: 'ping', duration_ms: null, output: null },
    ]);
    expect(s.pingKeys.of('ext')).toBeUndefined();
    s.close();
  });
});
