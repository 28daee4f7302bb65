// What `logs` makes of a run's output in the states an e2e test cannot reach quickly: a log file
// removed by the per-job cap (101 runs), a run nightshift lost track of, a log cut short by a full
// disk. The log files are written by the real CappedLog.
import { existsSync, mkdirSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { outputSource, readRunOutput } from '../../../src/report/output.js';
import { CappedLog, runLogPath } from '../../../src/run/logcap.js';
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

const LOGS = join(dir, 'logs');

/**
 * Writes `text` through a CappedLog of `cap` bytes where a run `job` #7 writes it (logs/JOB/7.log);
 * returns the path and what the row gets.
 */
function written(job: string, text: string, cap: number): { job: string; path: string; bytes: number; tail: string } {
  const path = runLogPath(LOGS, { job, id: 7 });
  mkdirSync(dirname(path), { recursive: true });
  const log = new CappedLog(path, cap);
  log.write(Buffer.from(text));
  return { job, path, ...log.close() };
}

describe('readRunOutput', () => {
  it('a log cut by its cap: the real marker is found and its count is reported', () => {
    const text = `${'a'.repeat(300)}${'b'.repeat(1000)}${'c'.repeat(300)}`;
    const w = written('cut', text, 600);
    const out = readRunOutput(row({ job: w.job, log_path: w.path, output_bytes: w.bytes, output_tail: w.tail }), LOGS);
    expect(out.source).toBe('log');
    expect(out.omittedBytes).toBe(1000);
    expect(out.output).toMatch(
      /^a{300}\n\[nightshift: 1000 bytes of output left out here; the log keeps the first and last 300 bytes\]\nc{300}$/,
    );
    expect(outputSource(row({ job: w.job, log_path: w.path, output_tail: w.tail }), LOGS, existsSync)).toBe('log');
  });

  it('a log file removed by the per-job cap: the end kept with the run, and why', () => {
    const text = `start\n${'x'.repeat(9000)}\nthe end\n`;
    const w = written('pruned', text, 1 << 20);
    const r = row({ job: w.job, log_path: null, output_bytes: w.bytes, output_tail: w.tail });
    const out = readRunOutput(r, LOGS);
    expect(out.source).toBe('tail');
    expect(out.output).toMatch(/x\nthe end\n$/);
    expect(out.output).not.toContain('start');
    expect(out.note).toMatch(
      /^its log file was removed \(nightshift keeps the log files of each job's newest \d+ runs\); here is the end of its output kept with the run \(the last 4\.0 KiB of 8\.8 KiB\)$/,
    );
    expect(outputSource(r, LOGS, existsSync)).toBe('tail');
  });

  it('a run nightshift lost track of (no byte count) and a log cut short by a full disk say so', () => {
    const w = written('lost', 'half of it\n', 1 << 20);
    const lost = readRunOutput(row({ job: w.job, outcome: 'interrupted', log_path: w.path, output_bytes: null }), LOGS);
    expect(lost.output).toBe('half of it\n');
    expect(lost.note).toMatch(/^nightshift stopped while the run went on/);

    const d = written('short', 'x'.repeat(5000), 1 << 20);
    truncateSync(d.path, 1000);
    const short = readRunOutput(row({ job: d.job, log_path: d.path, output_bytes: d.bytes, output_tail: d.tail }), LOGS);
    expect(short.note).toBe(
      "the log is incomplete: it holds 1000 B of the 4.9 KiB the job printed (it could not be written in full; the run's reason says why)",
    );
    expect(short.omittedBytes).toBeNull();
  });

  it('a run that started no process has no output, and says why', () => {
    const out = readRunOutput(row({ outcome: 'skipped-paused', output_bytes: null }), LOGS);
    expect(out).toMatchObject({ source: 'none', output: null, note: 'no output: the run started no process (skipped-paused)' });
  });

  describe('reads only the log nightshift wrote, where it wrote it', () => {
    const secret = join(dir, 'secret.txt');
    writeFileSync(secret, 'the operator must not see this\n');
    /** A finished run of `job` whose tail holds "the tail", so a refusal still shows what is kept. */
    const run = (job: string, logPath: string) => row({ job, log_path: logPath, output_bytes: 31, output_tail: 'the tail' });

    it('a record naming another file (a damaged or edited database) does not make it read: only logs/JOB/ID.log is', () => {
      const out = readRunOutput(run('edited', secret), LOGS);
      expect(out.output).toBe('the tail');
      expect(out.note).toContain(`its log file ${runLogPath(LOGS, { job: 'edited', id: 7 })} is gone`);
      expect(outputSource(run('edited', secret), LOGS, existsSync)).toBe('tail');
    });

    it('the same log however the state folder is spelled (a symlink to it, the path the daemon wrote)', () => {
      const w = written('spelled', 'all of it\n', 1 << 20);
      const alias = join(dir, 'alias');
      symlinkSync(dir, alias);
      const viaAlias = readRunOutput(
        row({ job: w.job, log_path: w.path, output_bytes: w.bytes, output_tail: w.tail }),
        join(alias, 'logs'),
      );
      expect(viaAlias).toMatchObject({ source: 'log', output: 'all of it\n', note: null });
      const writtenViaAlias = runLogPath(join(alias, 'logs'), { job: w.job, id: 7 });
      expect(readRunOutput(row({ job: w.job, log_path: writtenViaAlias, output_bytes: w.bytes }), LOGS).output).toBe('all of it\n');
    });

    it('a file larger than any log nightshift writes is not read', () => {
      const path = runLogPath(LOGS, { job: 'huge', id: 7 });
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, '');
      truncateSync(path, 3 * 1024 * 1024);
      const out = readRunOutput(run('huge', path), LOGS);
      expect(out.output).toBe('the tail');
      expect(out.note).toContain(`its log file ${path} is larger than any log nightshift writes; it is not read`);
    });

    it('a log replaced by a symbolic link (a job that ran uncontained) is not followed', () => {
      const path = runLogPath(LOGS, { job: 'linked', id: 7 });
      mkdirSync(dirname(path), { recursive: true });
      symlinkSync(secret, path);
      const out = readRunOutput(run('linked', path), LOGS);
      expect(out.output).toBe('the tail');
      expect(out.note).toContain(`its log file ${path} is a symbolic link; it is not read`);
    });

    it("a job's log folder replaced by a symbolic link is not followed", () => {
      const elsewhere = join(dir, 'elsewhere');
      mkdirSync(elsewhere);
      writeFileSync(join(elsewhere, '7.log'), 'the operator must not see this\n');
      symlinkSync(elsewhere, join(LOGS, 'folder'));
      const out = readRunOutput(run('folder', runLogPath(LOGS, { job: 'folder', id: 7 })), LOGS);
      expect(out.output).toBe('the tail');
      expect(out.note).toContain('leads elsewhere (a symbolic link); it is not read');
    });

    it('a FIFO in its place does not hang the command, and is not read', () => {
      const path = runLogPath(LOGS, { job: 'fifo', id: 7 });
      mkdirSync(dirname(path), { recursive: true });
      rmSync(path, { force: true });
      execFileSync('mkfifo', [path]);
      const out = readRunOutput(run('fifo', path), LOGS);
      expect(out.output).toBe('the tail');
      expect(out.note).toContain(`its log file ${path} is not a regular file; it is not read`);
    });
  });
});
