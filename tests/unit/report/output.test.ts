// What `logs` makes of a run's output in the states an e2e test cannot reach quickly: a log file
// removed by the per-job cap (101 runs), a run nightshift lost track of, a log cut short by a full
// disk. The log files are written by the real CappedLog.
import { existsSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { outputSource, readRunOutput } from '../../../src/report/output.js';
import { CappedLog } from '../../../src/run/logcap.js';
import type { RunRow } from '../../../src/store/store.js';
import { cleanup, tempDir } from '../../support/helpers.js';

const dir = tempDir('ns-output-');
afterAll(() => cleanup(dir));

function row(o: Partial<RunRow>): RunRow {
  return {
    id: 7,
    job: 'j',
    trigger: 'schedule',
    scheduled_for: null,
    created_at: 1000,
    started_at: 1000,
    ended_at: 2000,
    outcome: 'ok',
    exit_code: 0,
    signal: null,
    duration_ms: 1000,
    pgid: null,
    log_path: null,
    output_tail: null,
    output_bytes: null,
    reason: null,
    attempt: 1,
    parent_id: null,
    retry_at: null,
    spec_hash: null,
    ...o,
  };
}

/** Writes `text` through a CappedLog of `cap` bytes, as a run would; returns the path and what the row gets. */
function written(name: string, text: string, cap: number): { path: string; bytes: number; tail: string } {
  const path = join(dir, name);
  const log = new CappedLog(path, cap);
  log.write(Buffer.from(text));
  return { path, ...log.close() };
}

describe('readRunOutput', () => {
  it('a log cut by its cap: the real marker is found and its count is reported', () => {
    const text = `${'a'.repeat(300)}${'b'.repeat(1000)}${'c'.repeat(300)}`;
    const w = written('cut.log', text, 600);
    const out = readRunOutput(row({ log_path: w.path, output_bytes: w.bytes, output_tail: w.tail }));
    expect(out.source).toBe('log');
    expect(out.omittedBytes).toBe(1000);
    expect(out.output).toMatch(
      /^a{300}\n\[nightshift: 1000 bytes of output left out here; the log keeps the first and last 300 bytes\]\nc{300}$/,
    );
    expect(outputSource(row({ log_path: w.path, output_tail: w.tail }), existsSync)).toBe('log');
  });

  it('a log file removed by the per-job cap: the end kept with the run, and why', () => {
    const text = `start\n${'x'.repeat(9000)}\nthe end\n`;
    const w = written('pruned.log', text, 1 << 20);
    const r = row({ log_path: null, output_bytes: w.bytes, output_tail: w.tail });
    const out = readRunOutput(r);
    expect(out.source).toBe('tail');
    expect(out.output).toMatch(/x\nthe end\n$/);
    expect(out.output).not.toContain('start');
    expect(out.note).toMatch(
      /^its log file was removed \(nightshift keeps the log files of each job's newest \d+ runs\); here is the end of its output kept with the run \(the last 4\.0 KiB of 8\.8 KiB\)$/,
    );
    expect(outputSource(r, existsSync)).toBe('tail');
  });

  it('a run nightshift lost track of (no byte count) and a log cut short by a full disk say so', () => {
    const w = written('lost.log', 'half of it\n', 1 << 20);
    const lost = readRunOutput(row({ outcome: 'interrupted', log_path: w.path, output_bytes: null }));
    expect(lost.output).toBe('half of it\n');
    expect(lost.note).toMatch(/^nightshift stopped while the run went on/);

    const d = written('short.log', 'x'.repeat(5000), 1 << 20);
    truncateSync(d.path, 1000);
    const short = readRunOutput(row({ log_path: d.path, output_bytes: d.bytes, output_tail: d.tail }));
    expect(short.note).toBe(
      "the log is incomplete: it holds 1000 B of the 4.9 KiB the job printed (it could not be written in full; the run's reason says why)",
    );
    expect(short.omittedBytes).toBeNull();
  });

  it('a run that started no process has no output, and says why', () => {
    const out = readRunOutput(row({ outcome: 'skipped-paused', output_bytes: null }));
    expect(out).toMatchObject({ source: 'none', output: null, note: 'no output: the run started no process (skipped-paused)' });
  });
});
