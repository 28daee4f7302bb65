// The rows of each table as the repositories return them, and what a caller gives to record a run.
import type { AlertKind, HealStep, RunOutcome, RunTrigger } from '../model.js';

export interface RunRow {
  id: number;
  job: string;
  trigger: RunTrigger;
  scheduled_for: number | null;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  outcome: RunOutcome | null;
  exit_code: number | null;
  signal: string | null;
  duration_ms: number | null;
  pgid: number | null;
  log_path: string | null;
  output_tail: string | null;
  output_bytes: number | null;
  reason: string | null;
  attempt: number;
  parent_id: number | null;
  retry_at: number | null;
  spec_hash: string | null;
}

export interface JobStateRow {
  job: string;
  cursor: number;
  paused: number;
  paused_at: number | null;
  first_seen: number;
}

export interface AlertRow {
  id: number;
  fingerprint: string;
  job: string;
  kind: AlertKind;
  opened_at: number;
  last_seen_at: number;
  count: number;
  message: string;
  run_id: number | null;
  exit_code: number | null;
  output_tail: string | null;
  folded_under: string | null;
  resolved_at: number | null;
  resolution: string | null;
}

export interface HeartbeatRow {
  id: number;
  job: string;
  kind: 'start' | 'success' | 'fail';
  at: number;
  source: string;
  duration_ms: number | null;
  /** What a ping over HTTP POSTed (capped, outside text); null for other pings. Absent in a database before schema 6. */
  output?: string | null;
}

export interface DigestRow {
  date: string;
  created_at: number;
  verdict: string;
  body_text: string;
  body_html: string;
  sent_at: number | null;
  attempts: number;
  next_attempt_at: number | null;
  last_error: string | null;
}

export interface PageRow {
  id: number;
  fingerprint: string;
  event: string;
  at: number;
  outcome: string | null;
  detail: string | null;
}

export interface HealAttemptRow {
  id: number;
  alert_id: number;
  fingerprint: string;
  job: string;
  rule: string | null;
  rule_hash: string | null;
  /** The n-th executed attempt of this incident; null until a fix is about to be run. */
  attempt: number | null;
  autonomy: string | null;
  /** command | rerun | brain */
  action_kind: string | null;
  /** What the fix does, in plain words (e.g. "command: rm -f /srv/x.lock"). */
  action: string | null;
  step: HealStep;
  /** null while in flight. */
  outcome: string | null;
  detail: string | null;
  proposal: string | null;
  snapshot_dir: string | null;
  /** JSON {touches, zone}: the sha256 of both snapshot manifests, so a rewritten one is noticed. */
  snapshot_digest: string | null;
  fix_pgid: number | null;
  /**
   * JSON of a HealFiles (model.ts): what the fix changed, created or removed, recorded right after
   * it ran; null before, for attempts that ran no fix, and in databases older than schema 5 (where
   * the column is missing). Read it with store.heals.files(row).
   */
  files?: string | null;
  created_at: number;
  ended_at: number | null;
  expires_at: number | null;
  answered_at: number | null;
  answer: string | null;
  /** Who answered: "the command line" or "web (Kevin's phone)" (schema v5; null before). */
  answered_by: string | null;
}

export type HealField =
  | 'rule'
  | 'rule_hash'
  | 'attempt'
  | 'autonomy'
  | 'action_kind'
  | 'action'
  | 'proposal'
  | 'snapshot_dir'
  | 'snapshot_digest'
  | 'fix_pgid'
  | 'expires_at'
  | 'answered_at'
  | 'answered_by'
  | 'answer'
  | 'outcome'
  | 'detail'
  | 'ended_at';
export const HEAL_FIELDS = new Set<string>([
  'rule',
  'rule_hash',
  'attempt',
  'autonomy',
  'action_kind',
  'action',
  'proposal',
  'snapshot_dir',
  'snapshot_digest',
  'fix_pgid',
  'expires_at',
  'answered_at',
  'answered_by',
  'answer',
  'outcome',
  'detail',
  'ended_at',
  'step',
]);

export interface HealStepRow {
  id: number;
  attempt_id: number;
  step: HealStep;
  started_at: number;
  ended_at: number | null;
  result: string | null;
  detail: string | null;
}

export interface LadderRow {
  rule: string;
  level: string;
  /** The rule file's hash when it was demoted: a human's edit (another hash) ends the demotion. */
  rule_hash: string;
  at: number;
  reason: string;
}

export interface EventRow {
  id: number;
  at: number;
  kind: string;
  job: string | null;
  message: string;
  data: string | null;
}

export interface NewRun {
  job: string;
  trigger: RunTrigger;
  scheduledFor?: number | null;
  /**
   * Where the job's schedule cursor moves, in the same transaction as the row (the scheduler
   * decides: the instant, or for a catch-up the moment the missed instants were counted up to).
   * Only when the instant is claimed; null or absent: the cursor stays.
   */
  cursorTo?: number | null;
  now: number;
  attempt?: number;
  parentId?: number | null;
  specHash?: string | null;
  /** For runs that are decided without a process (skipped-*): recorded complete at once. */
  outcome?: RunOutcome;
  reason?: string;
}
