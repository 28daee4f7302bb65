// The colour of a run, defined once for every picture of runs: the dashboard's strips and chart
// (CSS classes whose colours are the variables below) and the digest e-mail's strip (inline
// colours, as mail clients drop style sheets). What counts as a failure is the domain's rule
// (FAILED_OUTCOMES); a wrong result, a failure too, has a colour of its own so that "it ran but
// the result was wrong" stands out from "it crashed".
import { FAILED_OUTCOMES, type RunOutcome } from '../model.js';

export type Tone = 'ok' | 'bad' | 'warn' | 'running' | 'idle';

/** A run's tone: ok, wrong (warn), another failure (bad), still running, or neither (skipped, stopped on purpose). */
export function runTone(outcome: string | null): Tone {
  if (outcome === null) return 'running';
  if (outcome === 'ok') return 'ok';
  if (outcome === 'wrong') return 'warn';
  return FAILED_OUTCOMES.has(outcome as RunOutcome) ? 'bad' : 'idle';
}

/** A heal attempt's tone: fixed, waiting for an answer, nothing done (denied, expired, a proposal), or failed or stopped. */
export function healTone(outcome: string | null): Tone {
  if (outcome === null) return 'running';
  if (outcome === 'fixed-verified' || outcome === 'self-recovered') return 'ok';
  if (outcome === 'awaiting-approval') return 'warn';
  if (['denied', 'expired', 'proposed', 'interrupted'].includes(outcome)) return 'idle';
  return 'bad';
}

/** What a tone means, in a legend or a count ("6 failed"). */
export const TONE_WORDS: Record<Tone, string> = {
  ok: 'ok',
  bad: 'failed',
  warn: 'wrong',
  running: 'running',
  idle: 'skipped or stopped',
};

/** The order tones are counted in. */
export const TONES: readonly Tone[] = ['ok', 'bad', 'warn', 'running', 'idle'];

/**
 * The colours of the tones: light on a light background (the e-mail, the dashboard's light
 * scheme), dark for the dashboard's dark scheme. Each has a contrast of at least 3:1 against its
 * background (WCAG 1.4.11, graphical objects).
 */
export const TONE_COLOURS: Record<'light' | 'dark', Record<Tone, string>> = {
  light: { ok: '#1a7f37', bad: '#c62828', warn: '#9a6700', running: '#0b57d0', idle: '#8a8a8a' },
  dark: { ok: '#4ac26b', bad: '#ff6b6b', warn: '#e3b341', running: '#7cacf8', idle: '#8a8a8a' },
};

/** "190 ok, 6 failed, 4 wrong": the tones of some runs, counted, in TONES order; empty tones left out. */
export function toneCounts(outcomes: Array<string | null>): string {
  const n = new Map<Tone, number>();
  for (const o of outcomes) n.set(runTone(o), (n.get(runTone(o)) ?? 0) + 1);
  return TONES.filter((t) => n.has(t))
    .map((t) => `${n.get(t)} ${TONE_WORDS[t]}`)
    .join(', ');
}
