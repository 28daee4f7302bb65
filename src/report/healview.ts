// How heal attempts read to a person: `nightshift heals`, the approvals and demotions in
// `status`, and the digest's one line per handled alert. Reads the store; decides nothing.
import type { HealLine } from './digest.js';
import { formatDuration } from '../config/duration.js';
import { ago } from './status.js';
import { oneLine, textAsData } from '../text.js';
import { refOf, type HealFiles } from '../model.js';
import { readableTime } from '../schedule/instants.js';
import type { HealAttemptRow, HealStepRow, LadderRow, Store } from '../store/store.js';

export interface HealView extends Omit<HealAttemptRow, 'files'> {
  steps: HealStepRow[];
  /** What the fix changed, created or removed (store.heals.files); null when none was recorded. */
  files: HealFiles | null;
}

/** Paths of each kind `heals` prints; the rest are counted (`heals --json` names up to HEAL_FILES_NAMED). */
const FILES_SHOWN = 10;
/** Outcomes after which what the fix did to its files was undone. */
const UNDONE = new Set(['rolled-back', 'interrupted-rolled-back', 'halted']);

/** False for a database written before the heal loop existed (read-only commands must not fail on it). */
export function hasHeals(store: Store): boolean {
  return store.schemaVersion() >= 3;
}

export function healViews(store: Store, limit: number, job?: string): HealView[] {
  if (!hasHeals(store)) return [];
  return store.heals.recent(limit, job).map((a) => ({ ...a, steps: store.heals.steps(a.id), files: store.heals.files(a) }));
}

/**
 * One line, for a person: the files the fix changed, created or removed, from the snapshot
 * manifest, and whether that was undone since ("rolled back"). Paths are a fix's data: shown as
 * text (law 8), one line each so that no name can start a line of its own. Null: nothing recorded.
 */
export function filesLine(files: HealFiles | null, outcome: string | null): string | null {
  if (files === null) return null;
  const label =
    outcome === 'rollback-failed' ? 'files (the rollback failed)' : outcome && UNDONE.has(outcome) ? 'files (rolled back)' : 'files';
  if ('error' in files) return `${label}: not listed: ${oneLine(files.error, 400)}`;
  const parts = (['changed', 'created', 'removed'] as const).flatMap((kind) => {
    const n = files.counts[kind];
    if (n === 0) return [];
    const shown = files[kind].slice(0, FILES_SHOWN).map((p) => oneLine(p, 4096));
    const more = n - shown.length;
    return [`${kind} ${[...shown, ...(more > 0 ? [`… ${more} more`] : [])].join(', ')}`];
  });
  return `${label}: ${parts.length ? parts.join('; ') : 'none changed, created or removed'}`;
}

/**
 * One line per handled alert for the digest: the latest attempt that ended in the window, with
 * how many attempts it took; approvals still waiting are listed whenever they were asked.
 */
export function healLines(store: Store, from: number, to: number): HealLine[] {
  if (!hasHeals(store)) return [];
  const byAlert = new Map<number, HealAttemptRow[]>();
  for (const a of store.heals.endedBetween(from, to)) {
    if (a.outcome === 'interrupted') continue; // closed before anything happened; looked at again
    byAlert.set(a.alert_id, [...(byAlert.get(a.alert_id) ?? []), a]);
  }
  for (const a of store.heals.pendingApprovals()) if (!byAlert.has(a.alert_id)) byAlert.set(a.alert_id, [a]);
  const lines: HealLine[] = [];
  for (const list of byAlert.values()) {
    const last = list[list.length - 1]!;
    const executed = list.filter((a) => a.attempt !== null).length;
    const extra = executed > 1 ? ` (${executed} attempts)` : '';
    const what =
      last.outcome === 'awaiting-approval'
        ? `approve with: nightshift approve ${refOf('heal', last.id)} (or deny ${refOf('heal', last.id)}); ${last.action ?? ''}`
        : (last.detail ?? '');
    // Who pressed what: an answer from the command line or the dashboard (with its device's label).
    const who = last.answer && last.answered_by ? `${last.answer} by ${last.answered_by}` : null;
    lines.push({
      at: last.ended_at ?? last.created_at,
      job: last.job,
      rule: last.rule,
      outcome: last.outcome ?? 'in-progress',
      detail: `${what}${extra}${who && !what.includes(who) ? ` (${who})` : ''}`,
      id: last.id,
      alert: last.alert_id,
    });
  }
  // Demotions are part of "autonomy is earned": the digest says when a rule lost a rung.
  for (const l of store.ladder.all()) {
    if (l.at >= from && l.at < to)
      lines.push({ at: l.at, job: 'the ladder', rule: l.rule, outcome: `demoted to ${l.level}`, detail: l.reason });
  }
  return lines.sort((a, b) => a.at - b.at);
}

export function renderHeals(rows: HealView[], now: number, tzOf: (job: string) => string): string {
  if (rows.length === 0) return 'No heal attempts yet.';
  const out: string[] = [];
  for (const a of rows) {
    const took = a.ended_at !== null ? formatDuration(Math.max(0, a.ended_at - a.created_at)) : 'in progress';
    out.push(
      `${refOf('heal', a.id)} ${a.fingerprint}  ${a.outcome ?? `in progress (${a.step})`}  ${readableTime(a.created_at, tzOf(a.job))} (${ago(now - a.created_at)})  took ${took}` +
        ` for alert ${refOf('alert', a.alert_id)}` +
        (a.rule ? `  rule ${a.rule}${a.autonomy ? ` (${a.autonomy})` : ''}` : '') +
        (a.attempt !== null ? `  attempt ${a.attempt}` : ''),
    );
    if (a.detail) out.push(`    ${oneLine(a.detail, 400)}`);
    const files = filesLine(a.files, a.outcome);
    if (files) out.push(`    ${files}`);
    for (const s of a.steps) {
      const dur = s.ended_at !== null ? formatDuration(Math.max(0, s.ended_at - s.started_at)) : '…';
      out.push(`    ${s.step.padEnd(11)} ${dur.padStart(7)}  ${s.result ?? ''}${s.detail ? `  ${oneLine(s.detail, 200)}` : ''}`);
    }
    if (a.outcome === 'awaiting-approval')
      out.push(
        `    answer: nightshift approve ${refOf('heal', a.id)}   or   nightshift deny ${refOf('heal', a.id)}   (expires ${a.expires_at ? readableTime(a.expires_at, tzOf(a.job)) : '?'})`,
      );
    if (a.proposal && (a.outcome === 'proposed' || a.outcome === 'needs-human' || a.outcome === 'awaiting-approval')) {
      for (const l of textAsData(a.proposal).split('\n')) out.push(`    | ${l}`);
    }
  }
  return out.join('\n');
}

/** Lines for `status`: approvals waiting, and rules that were demoted (with their evidence). */
export function healStatusLines(
  store: Store,
  now: number,
  currentRuleHash: (rule: string) => string | undefined,
  tzOf: (job: string) => string,
): string[] {
  return [...approvalLines(store, now, tzOf), ...demotionLines(store, currentRuleHash)];
}

export function approvalLines(store: Store, now: number, tzOf: (job: string) => string): string[] {
  if (!hasHeals(store)) return [];
  const pending = store.heals.pendingApprovals().filter((a) => (a.expires_at ?? 0) > now);
  if (pending.length === 0) return [];
  return [
    `Waiting for your approval (${pending.length}):`,
    ...pending.map(
      (a) =>
        `  ${refOf('heal', a.id)} ${a.job}: rule ${a.rule} wants to ${oneLine(a.action ?? '?', 400)} — nightshift approve ${refOf('heal', a.id)} | deny ${refOf('heal', a.id)} (expires ${readableTime(a.expires_at ?? now, tzOf(a.job))}, in ${formatDuration(Math.max(0, (a.expires_at ?? now) - now))})`,
    ),
  ];
}

/** Demotions in force: a ladder row counts while the rule file still has the hash it was demoted with. */
export function demotionLines(store: Store, currentRuleHash: (rule: string) => string | undefined): string[] {
  if (!hasHeals(store)) return [];
  const demoted = store.ladder.all().filter((l: LadderRow) => currentRuleHash(l.rule) === l.rule_hash);
  if (demoted.length === 0) return [];
  return [
    'Rules demoted after a rollback (edit the rule file to reset):',
    ...demoted.map((l) => `  ${l.rule}: now ${l.level} — ${oneLine(l.reason, 200)}`),
  ];
}

/** Per rule: cases, proposals, approvals, fixes verified, rollbacks — what a promotion review needs. */
export function ruleEvidence(store: Store): Array<{ rule: string; cases: number; outcomes: Record<string, number> }> {
  if (!hasHeals(store)) return [];
  const out = new Map<string, { rule: string; cases: number; outcomes: Record<string, number> }>();
  for (const r of store.heals.ruleEvidence()) {
    const e = out.get(r.rule) ?? { rule: r.rule, cases: r.cases, outcomes: {} };
    e.outcomes[r.outcome] = r.n;
    out.set(r.rule, e);
  }
  return [...out.values()];
}
