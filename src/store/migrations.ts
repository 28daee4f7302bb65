// The schema, as the list of steps that built it: step v takes a database from user_version v to
// v + 1. Steps are only ever appended; an old one never changes, or a database made by it would
// differ from one made now.
import type Database from 'better-sqlite3';
import { StoreError } from './sql.js';

const MIGRATIONS: string[] = [
  // v1: runs, per-job schedule state, and a journal of daemon events.
  `
  CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    job TEXT NOT NULL,
    trigger TEXT NOT NULL,
    scheduled_for INTEGER,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    ended_at INTEGER,
    outcome TEXT,
    exit_code INTEGER,
    signal TEXT,
    duration_ms INTEGER,
    pgid INTEGER,
    log_path TEXT,
    output_tail TEXT,
    output_bytes INTEGER,
    reason TEXT,
    attempt INTEGER NOT NULL DEFAULT 1,
    parent_id INTEGER REFERENCES runs(id),
    retry_at INTEGER,
    spec_hash TEXT
  );
  -- One row per scheduled instant, whatever became of it: the guarantee that an instant never runs twice.
  CREATE UNIQUE INDEX runs_instant ON runs(job, scheduled_for) WHERE trigger IN ('schedule', 'catch-up');
  CREATE INDEX runs_job ON runs(job, id);
  CREATE INDEX runs_open ON runs(id) WHERE ended_at IS NULL;
  CREATE INDEX runs_retry ON runs(retry_at) WHERE retry_at IS NOT NULL;
  CREATE TABLE job_state (
    job TEXT PRIMARY KEY,
    cursor INTEGER NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    paused_at INTEGER,
    first_seen INTEGER NOT NULL
  );
  CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    job TEXT,
    message TEXT NOT NULL,
    data TEXT
  );
  CREATE INDEX events_at ON events(at);
  `,
  // v2: alerts, heartbeats of external jobs, digests, pages.
  `
  CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    job TEXT NOT NULL,
    kind TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    count INTEGER NOT NULL DEFAULT 1,
    message TEXT NOT NULL,
    run_id INTEGER,
    exit_code INTEGER,
    output_tail TEXT,
    folded_under TEXT,
    resolved_at INTEGER,
    resolution TEXT
  );
  -- At most one open alert per fingerprint (JOB:KIND): occurrences are counted on it.
  CREATE UNIQUE INDEX alerts_open ON alerts(fingerprint) WHERE resolved_at IS NULL;
  CREATE INDEX alerts_job ON alerts(job, id);
  CREATE TABLE heartbeats (
    id INTEGER PRIMARY KEY,
    job TEXT NOT NULL,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    source TEXT NOT NULL,
    duration_ms INTEGER
  );
  CREATE INDEX heartbeats_job ON heartbeats(job, id);
  CREATE TABLE digests (
    date TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    sent_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_error TEXT
  );
  CREATE TABLE pages (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    event TEXT NOT NULL,
    at INTEGER NOT NULL,
    outcome TEXT,
    detail TEXT
  );
  CREATE INDEX pages_fp ON pages(fingerprint, at);
  -- The last version of each job file that was valid: after a restart, a file that has since
  -- become invalid keeps running as it was, instead of vanishing from the schedule.
  CREATE TABLE spec_cache (
    file TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    text TEXT NOT NULL,
    hash TEXT NOT NULL,
    saved_at INTEGER NOT NULL
  );
  -- "last success" and "last sign of life" are asked on every finished run.
  CREATE INDEX runs_job_outcome ON runs(job, outcome, ended_at);
  CREATE INDEX runs_created ON runs(created_at);
  `,
  // v3: the heal loop. One row per attempt, one row per step journaled before the step starts
  // (a crash mid-fix is rolled back from what these say), and the rules' demotions.
  `
  CREATE TABLE heal_attempts (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    job TEXT NOT NULL,
    rule TEXT,
    rule_hash TEXT,
    attempt INTEGER,
    autonomy TEXT,
    action_kind TEXT,
    action TEXT,
    step TEXT NOT NULL,
    outcome TEXT,
    detail TEXT,
    proposal TEXT,
    snapshot_dir TEXT,
    snapshot_digest TEXT,
    fix_pgid INTEGER,
    created_at INTEGER NOT NULL,
    ended_at INTEGER,
    expires_at INTEGER,
    answered_at INTEGER,
    answer TEXT
  );
  -- At most one attempt per fingerprint in flight.
  CREATE UNIQUE INDEX heal_inflight ON heal_attempts(fingerprint) WHERE outcome IS NULL;
  CREATE INDEX heal_alert ON heal_attempts(alert_id, id);
  CREATE INDEX heal_ended ON heal_attempts(ended_at);
  CREATE TABLE heal_steps (
    id INTEGER PRIMARY KEY,
    attempt_id INTEGER NOT NULL REFERENCES heal_attempts(id),
    step TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    result TEXT,
    detail TEXT
  );
  CREATE INDEX heal_steps_attempt ON heal_steps(attempt_id, id);
  CREATE TABLE rule_ladder (
    rule TEXT PRIMARY KEY,
    level TEXT NOT NULL,
    rule_hash TEXT NOT NULL,
    at INTEGER NOT NULL,
    reason TEXT NOT NULL
  );
  `,
  // v4: retention (store/retention.ts) removes by age: indexes for the tables it walks by time.
  `
  CREATE INDEX heartbeats_at ON heartbeats(at);
  CREATE INDEX heartbeats_kind ON heartbeats(job, kind, id);
  CREATE INDEX events_kind ON events(kind, id);
  CREATE INDEX alerts_resolved ON alerts(resolved_at) WHERE resolved_at IS NOT NULL;
  CREATE INDEX pages_at ON pages(at);
  -- Deleting a run makes SQLite look for retries pointing at it (the foreign key): without this
  -- index, a scan of every run for each one removed.
  CREATE INDEX runs_parent ON runs(parent_id) WHERE parent_id IS NOT NULL;
  `,
  // v5: the dashboard's one-time login links and sessions, and who answered a gated heal; the
  // files a heal's fix changed, created or removed (the snapshot manifest against the tree right
  // after the fix), as JSON: capped lists and complete counts, or why they could not be listed.
  // Of the dashboard's links and sessions only the sha256 of their tokens is
  // kept: a reader of the database (the state group) cannot log in with what it reads.
  `
  CREATE TABLE web_links (
    hash TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
  );
  CREATE TABLE web_sessions (
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    csrf TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
  );
  -- Who answered a gated heal: the command line, or the dashboard with the device's label.
  ALTER TABLE heal_attempts ADD COLUMN answered_by TEXT;
  ALTER TABLE heal_attempts ADD COLUMN files TEXT;
  `,
  // v6: pings over HTTP. Each external job may have one secret key; /ping/KEY on the dashboard's
  // port proves its life. Unlike the login tokens above, the key itself is kept, not only its
  // hash: \`nightshift ping-url JOB\` must print the same address again (it is written into a
  // crontab or a service once and read back later). That is acceptable because the key proves the
  // life of one external job and nothing else (no session, no button, no reading), and the
  // database is readable by the state group only, who can see the job's state anyway. Lookups go
  // by the key's sha256 (key_hash), so comparing with what a client sent leaks nothing of a key.
  // A ping's POSTed body is kept as its output (capped; shown as text, never as markup); only the
  // latest 100 pings of a job keep theirs (store/heartbeats.ts PING_OUTPUTS_KEPT), so that a
  // sender in a loop cannot fill the state folder with bodies. A trigger, not a second statement:
  // the ping and the cap are one commit (one fsync, which is what a ping costs).
  `
  CREATE TABLE ping_keys (
    job TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  );
  ALTER TABLE heartbeats ADD COLUMN output TEXT;
  -- The trigger walks only the rows that have an output (at most 101 of a job), however many pings
  -- without one lie between them.
  CREATE INDEX heartbeats_output ON heartbeats(job, id) WHERE output IS NOT NULL;
  CREATE TRIGGER heartbeats_output_cap AFTER INSERT ON heartbeats WHEN NEW.output IS NOT NULL BEGIN
    UPDATE heartbeats SET output = NULL WHERE id = (
      SELECT id FROM heartbeats WHERE job = NEW.job AND output IS NOT NULL ORDER BY id DESC LIMIT 1 OFFSET 100);
  END;
  `,
  // v7: @reboot jobs run once per boot of the machine, not once per start of nightshift: the boot
  // (the kernel's boot id) each job last had its turn in. \`why\`: run, added (a job that appeared
  // during the boot waits for the next one), off (disabled, paused or external at the boot).
  `
  CREATE TABLE boot_runs (
    job TEXT NOT NULL,
    boot_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    why TEXT NOT NULL,
    PRIMARY KEY (job, boot_id)
  );
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the database's schema up to date, one transaction per step; refuses one written by a newer nightshift. */
export function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new StoreError(
      `the database was written by a newer nightshift (schema ${version}, this one knows ${SCHEMA_VERSION}); upgrade nightshift or use another --state folder`,
    );
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
