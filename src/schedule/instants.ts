/**
 * The one source of schedule instants: the scheduler and the watchdog both ask here, so
 * they can never disagree about when a job was due.
 *
 * Daylight-saving changes follow Debian cron (man 8 cron): for a change of less than 3 hours,
 * a fixed-time job whose time was skipped runs right after the change, one whose time is
 * repeated runs once (at the first occurrence), and wildcard jobs follow the real clock.
 * Changes of 3 hours or more are corrections: the new wall clock is used at once.
 */

import { nextMatchNaive, type CronExpr } from './cron.js';
import { firstTransitionBetween, lastTransitionBetween, offsetMsAt, type Transition } from './timezone.js';

export type Schedule = { kind: 'cron'; expr: CronExpr; tz: string } | { kind: 'every'; ms: number };

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const CORRECTION_MS = 3 * HOUR_MS;
const HORIZON_MS = Math.round(10.5 * 365.25 * 86_400_000);
// Each loop turn crosses one offset change; two a year for ten years is about 20.
const MAX_SEGMENTS = 200;

function shiftMs(tr: Transition): number {
  return (tr.after - tr.before) * MINUTE_MS;
}

/** Clocks jumped forward by less than 3 h: a span of wall-clock time never happened. */
function isGap(tr: Transition): boolean {
  const d = shiftMs(tr);
  return d > 0 && d < CORRECTION_MS;
}

/** Clocks went back by less than 3 h: a span of wall-clock time happens twice. */
function isRepeat(tr: Transition): boolean {
  const d = shiftMs(tr);
  return d < 0 && -d < CORRECTION_MS;
}

/**
 * Segment walk: between two offset changes local time = instant + offset is monotonic, so
 * the next naive match in the segment maps to exactly one instant. See the module comment
 * for what happens at the changes themselves.
 */
function nextCron(e: CronExpr, tz: string, after: number): number | null {
  let offset = offsetMsAt(tz, after);
  let segStart = after;
  // A fall-back less than 3 h ago means part of the wall clock ahead was already seen.
  let prev: Transition | null = e.fixedTime ? lastTransitionBetween(tz, after - CORRECTION_MS, after) : null;
  let fromNaive = after + offset;
  let inclusive = false;
  const horizon = after + HORIZON_MS;

  for (let turn = 0; turn < MAX_SEGMENTS; turn++) {
    let naive = nextMatchNaive(e, fromNaive, inclusive);
    if (naive === null) return null;

    if (prev !== null && isRepeat(prev)) {
      const seenFrom = prev.at + prev.after * MINUTE_MS;
      const seenTo = prev.at + prev.before * MINUTE_MS;
      if (naive >= seenFrom && naive < seenTo) {
        // A fixed-time job already ran at this wall-clock time before the clocks went back.
        naive = nextMatchNaive(e, seenTo, true);
        if (naive === null) return null;
      }
    }

    const candidate = naive - offset;
    const tr = firstTransitionBetween(tz, segStart, candidate);
    if (tr === null) return candidate;

    if (e.fixedTime && isGap(tr)) {
      const skippedFrom = tr.at + tr.before * MINUTE_MS;
      const skippedTo = tr.at + tr.after * MINUTE_MS;
      const skipped = nextMatchNaive(e, skippedFrom, true);
      // Every skipped wall-clock time of the job coalesces into one run right at the change.
      if (skipped !== null && skipped < skippedTo) return tr.at;
    }

    prev = e.fixedTime ? tr : null;
    offset = tr.after * MINUTE_MS;
    segStart = tr.at;
    fromNaive = tr.at + offset;
    inclusive = true;
    if (segStart > horizon) return null;
  }
  return null;
}

/** The first scheduled instant (epoch ms) strictly after `after`, or null if none in ~10 years. */
export function nextAfter(s: Schedule, after: number): number | null {
  if (!Number.isFinite(after)) throw new RangeError(`not a time: ${after}`);
  if (s.kind === 'every') {
    if (!(s.ms > 0) || !Number.isFinite(s.ms)) throw new RangeError(`interval must be a positive number of ms, got ${s.ms}`);
    // Aligned to the Unix epoch so that instants are the same across restarts.
    return Math.floor(after / s.ms) * s.ms + s.ms;
  }
  return nextCron(s.expr, s.tz, after);
}

/** Up to `count` scheduled instants strictly after `from`, ascending. */
export function nextInstants(s: Schedule, from: number, count: number): number[] {
  const out: number[] = [];
  let t = from;
  while (out.length < count) {
    const n = nextAfter(s, t);
    if (n === null) break;
    out.push(n);
    t = n;
  }
  return out;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** ISO 8601 in the zone's wall clock with its offset, e.g. 2026-03-29T03:00:00+02:00. */
export function formatInstant(ms: number, tz: string): string {
  const offset = offsetMsAt(tz, ms);
  const local = new Date(Math.floor(ms / 1000) * 1000 + offset);
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  const oh = Math.floor(abs / HOUR_MS);
  const om = Math.floor((abs % HOUR_MS) / MINUTE_MS);
  const os = Math.floor((abs % MINUTE_MS) / 1000);
  // Offsets with seconds only exist in local mean time, before about 1900.
  const offsetText = `${sign}${pad(oh)}:${pad(om)}${os ? `:${pad(os)}` : ''}`;
  return (
    `${pad(local.getUTCFullYear(), 4)}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}` +
    `T${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}${offsetText}`
  );
}

/**
 * A time as an operator reads it, in every surface (status, history, alerts, heals, approvals,
 * the digest): the job's zone, to the minute, with its offset ("2026-12-04 23:41 +01:00"), or
 * "UTC" where the zone is UTC, so a time never stands without the zone it is in.
 */
export function readableTime(ms: number, tz: string, seconds = false): string {
  const s = formatInstant(ms, tz);
  const offset = s.slice(19);
  const zone = offset === '+00:00' && /^(Etc\/)?(UTC|UCT|Zulu|Universal|GMT)$/.test(tz) ? 'UTC' : offset;
  return `${s.slice(0, 10)} ${s.slice(11, seconds ? 19 : 16)} ${zone}`;
}
