// What `history` shows of external jobs: nightshift does not run them, so their record is the
// pings they sent (and the touches of their heartbeat file), not runs.
import { formatDuration } from '../config/duration.js';
import { readableTime } from '../schedule/instants.js';
import type { HeartbeatRow } from '../store/store.js';
import { oneLine } from '../text.js';

/** Characters of a ping's output shown on its line in a table (nightshift history --json has all of it). */
const OUTPUT_SHOWN = 200;

/** How a ping reads in a table: a success is "ok", as a run's outcome would be. */
const PING_WORDS: Record<HeartbeatRow['kind'], string> = { success: 'ok', fail: 'fail', start: 'start' };

/** Where a ping came from, in words: the CLI and the socket say "ping", a touched file "file", /ping/KEY "http". */
function sourceWords(source: string): string {
  return source === 'file' ? 'heartbeat file' : source === 'http' ? 'ping over http' : source;
}

export function renderPings(rows: HeartbeatRow[], tzOf: (job: string) => string): string[] {
  const w = Math.max(4, ...rows.map((r) => r.job.length)) + 2;
  const lines = [`${'AT'.padEnd(25)}${'JOB'.padEnd(w)}${'PING'.padEnd(7)}${'FROM'.padEnd(16)}NOTE`];
  for (const r of rows) {
    // A file's streak of touches is one row whose time moves with the latest touch.
    const note =
      r.duration_ms !== null
        ? `ran ${formatDuration(r.duration_ms)} since its start ping`
        : r.source === 'file'
          ? 'the latest touch of an unbroken series'
          : '';
    lines.push(
      `${readableTime(r.at, tzOf(r.job)).padEnd(25)}${r.job.padEnd(w)}${PING_WORDS[r.kind].padEnd(7)}${sourceWords(r.source).padEnd(16)}${note}`.trimEnd(),
    );
    // What an HTTP ping POSTed: outside text, on one line under its ping (law 8: shown, never obeyed).
    if (r.output) lines.push(`${' '.repeat(25)}output: ${oneLine(r.output, OUTPUT_SHOWN)}`);
  }
  return lines;
}
