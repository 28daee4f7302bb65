// The one place nightshift reads a clock. Two kinds, never mixed:
// - wall time (`Clock.now`, `wallNow`): when something happened or is due, as the operator's
//   calendar says; it may step (NTP, `date -s`, a VM resumed from a snapshot);
// - elapsed time (`elapsedMs`, `Clock.monotonic`): how long something took or may still take; it
//   never steps. Every timeout, grace and duration is measured on it, so a clock step neither cuts
//   a kill grace short nor stretches a timeout.
// ESLint refuses Date.now(), new Date() without an argument and performance.now() anywhere else,
// so that a test that moves an injected clock moves every reading of it.

export interface Clock {
  now(): number;
  /** A clock that never steps (ms, any origin); default performance.now(). */
  monotonic?(): number;
}

/** The machine's clocks. */
export const systemClock: Clock = { now: () => Date.now(), monotonic: () => performance.now() };

/** Wall time now, in ms since the epoch, for code that is not handed a clock (the CLI, a log). */
export function wallNow(): number {
  return Date.now();
}

/** A reading of the monotonic clock (ms, any origin): subtract two of them for an elapsed time. */
export function elapsedMs(clock?: Clock): number {
  return clock?.monotonic ? clock.monotonic() : performance.now();
}
