// A run's captured output as `nightshift logs` shows it. Output lives in two places (run/logcap.ts):
// the run's log file in state/logs/JOB/ID.log (stdout and stderr together, as they came; capped:
// the first and last half of the cap, with a marker line where the middle was left out), and the
// last 4 KiB in the run's row. Log files go before their rows (each job keeps the newest
// LOGS_KEPT_PER_JOB), so an older run may have only its row's tail left.
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { formatDuration } from '../config/duration.js';
import { readableTime } from '../schedule/instants.js';
import { LOGS_KEPT_PER_JOB } from '../run/supervisor.js';
import { DEFAULT_LOG_CAP, runLogPath } from '../run/logcap.js';
import { formatBytes, type RunRow } from '../store/store.js';
import { textAsData } from '../text.js';

export interface RunOutput {
  /** Where `output` comes from: the log file, the end of the output kept in the run's row, or nowhere. */
  source: 'log' | 'tail' | 'none';
  output: string | null;
  logPath: string | null;
  /** What the job printed in all (null: not recorded, as for a run nightshift lost track of). */
  printedBytes: number | null;
  /** How much of the middle the capped log left out (null: nothing was left out). */
  omittedBytes: number | null;
  /** Why `output` is not the whole output, or why there is none, in words; null when it is whole. */
  note: string | null;
}

const MARKER = /^\n\[nightshift: (\d+) bytes of output left out here; the log keeps the first and last (\d+) bytes\]\n/;

/**
 * The marker CappedLog wrote where it left the middle out. A job can print a line that looks the
 * same: the real one is the one whose count makes the file's size add up to what the job printed.
 */
function leftOut(log: Buffer, printed: number): { omitted: number; kept: number } | null {
  for (let at = log.indexOf('\n[nightshift: '); at >= 0; at = log.indexOf('\n[nightshift: ', at + 1)) {
    const m = MARKER.exec(log.subarray(at, at + 200).toString('latin1'));
    if (!m) continue;
    const omitted = Number(m[1]);
    if (omitted + log.length - Buffer.byteLength(m[0]) === printed) return { omitted, kept: Number(m[2]) };
  }
  return null;
}

/** More than any log CappedLog writes (its cap and the marker line): a larger file is not one of ours. */
const READ_LIMIT = 2 * DEFAULT_LOG_CAP;

type LogRead = { ok: Buffer } | { refused: string } | { missing: true };

/**
 * The run's log, read only where nightshift writes it (runLogPath). The row's log_path is data (a
 * damaged or edited database; a job that replaced its log with a symlink while it ran uncontained):
 * an operator running `sudo nightshift logs` must not be shown /etc/shadow, nor hang on a FIFO,
 * nor read /dev/zero into memory.
 */
function readLog(logsDir: string, row: RunRow): LogRead {
  // Where this state folder keeps the run's log, however the daemon spelled the path when it wrote
  // it (a home reached through a symlink, a state folder moved to another disk): the row says only
  // that a log was written.
  const path = runLogPath(logsDir, row);
  let fd: number;
  try {
    // The folder must really be logs/JOB (no symlink on the way), and the file itself no symlink.
    if (realpathSync(dirname(path)) !== join(realpathSync(logsDir), row.job))
      return { refused: `its log folder ${dirname(path)} leads elsewhere (a symbolic link); it is not read` };
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return { refused: `its log file ${path} is a symbolic link; it is not read` };
    return { missing: true };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { refused: `its log file ${path} is not a regular file; it is not read` };
    if (st.size > READ_LIMIT) return { refused: `its log file ${path} is larger than any log nightshift writes; it is not read` };
    const buf = Buffer.alloc(Math.min(st.size, READ_LIMIT));
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return { ok: buf.subarray(0, got) };
  } finally {
    closeSync(fd);
  }
}

/** The run's output, whole or in part, and why it is only in part. */
export function readRunOutput(row: RunRow, logsDir: string): RunOutput {
  const printed = row.output_bytes;
  const base = { logPath: row.log_path !== null ? runLogPath(logsDir, row) : null, printedBytes: printed, omittedBytes: null };
  const read = row.log_path !== null ? readLog(logsDir, row) : null;
  const log = read !== null && 'ok' in read ? read.ok : null;
  if (log !== null) {
    const text = log.toString('utf8');
    if (row.ended_at === null)
      return {
        ...base,
        source: 'log',
        output: text,
        note: 'the run is still going: this is its output so far (a long output gets its end written when the run ends)',
      };
    if (printed === null)
      return {
        ...base,
        source: 'log',
        output: text,
        note: 'nightshift stopped while the run went on: the log has what was written until then, and may lack its end',
      };
    if (log.length === printed) return { ...base, source: 'log', output: text, note: null };
    const cut = leftOut(log, printed);
    if (cut)
      return {
        ...base,
        source: 'log',
        output: text,
        omittedBytes: cut.omitted,
        note:
          `the output was cut: the job printed ${formatBytes(printed)}; the log keeps the first and last ${formatBytes(cut.kept)}, ` +
          `and the ${formatBytes(cut.omitted)} in between are left out where the line "[nightshift: ${cut.omitted} bytes of output left out here …]" stands`,
      };
    return {
      ...base,
      source: 'log',
      output: text,
      note: `the log is incomplete: it holds ${formatBytes(log.length)} of the ${formatBytes(printed)} the job printed (it could not be written in full; the run's reason says why)`,
    };
  }
  const why =
    read !== null && 'refused' in read
      ? read.refused
      : row.log_path === null
        ? row.started_at !== null && printed !== null
          ? `its log file was removed (nightshift keeps the log files of each job's newest ${LOGS_KEPT_PER_JOB} runs)`
          : null
        : `its log file ${runLogPath(logsDir, row)} is gone (removed outside nightshift, or never written: the run's reason says if the disk was full)`;
  const tail = row.output_tail;
  if (tail !== null && tail !== '') {
    const whole = printed !== null && Buffer.byteLength(tail) >= printed;
    return {
      ...base,
      source: 'tail',
      output: tail,
      note: `${why ?? 'no log file was kept'}; ${whole ? 'its whole output was short enough to be kept with the run' : `here is the end of its output kept with the run (the last ${formatBytes(Buffer.byteLength(tail))}${printed !== null ? ` of ${formatBytes(printed)}` : ''})`}`,
    };
  }
  if (printed === 0) return { ...base, source: 'none', output: null, note: 'the run printed nothing' };
  if (row.started_at === null || (row.log_path === null && printed === null))
    return { ...base, source: 'none', output: null, note: `no output: the run started no process (${row.outcome ?? 'not started yet'})` };
  return { ...base, source: 'none', output: null, note: `no output is left: ${why ?? 'none was kept'}` };
}

/** Where `logs` would find a run's output, without reading it (for history's rows). */
export function outputSource(row: RunRow, logsDir: string, exists: (path: string) => boolean): RunOutput['source'] {
  if (row.log_path !== null && exists(runLogPath(logsDir, row))) return 'log';
  return row.output_tail ? 'tail' : 'none';
}

/** The one-line header: which run, of which job, how it ended and when. */
export function runHeader(row: RunRow, tz: string): string {
  const when =
    row.ended_at !== null
      ? `${row.outcome ?? 'ended'}, ended ${readableTime(row.ended_at, tz)}${row.duration_ms !== null ? ` after ${formatDuration(row.duration_ms)}` : ''}`
      : row.started_at !== null
        ? `running since ${readableTime(row.started_at, tz)}`
        : `waiting to start since ${readableTime(row.created_at, tz)}`;
  return `run #${row.id} of ${row.job}: ${when} (trigger ${row.trigger})`;
}

/** Header, a note when the output is not whole, then the output as data (law 8). */
export function renderRunOutput(row: RunRow, out: RunOutput, tz: string): string {
  const lines = [runHeader(row, tz)];
  if (out.note !== null) lines.push(`(${out.note})`);
  if (out.output !== null) lines.push(out.output === '' ? '(the run printed nothing)' : textAsData(out.output).replace(/\n$/, ''));
  return lines.join('\n');
}
