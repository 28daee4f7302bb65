// The heal loop: an open alert goes through the steps of docs/concepts.md's table — kill switch, containment,
// pre-check, rule, cap, autonomy, guard, snapshot, fix, probe, verdict, rollback — each journaled in SQLite
// before it starts, so that a kill -9 at any step is rolled back from its snapshot at the next
// start. Event-driven: an alert raised or changed enqueues its fingerprint; nothing polls.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatDuration } from '../config/duration.js';
import type { Job, LoadedRule } from '../config/home.js';
import type { HomePaths } from '../config/paths.js';
import type { KillState } from '../control/killswitch.js';
import type { Logger } from '../log.js';
import { describeResult, runBounded, type PageEvent } from '../notify/pager.js';
import { reapLeftovers } from '../run/proc.js';
import {
  demoted,
  describeAction,
  describeProbe,
  effectiveLevel,
  factsOf,
  matchRule,
  needsHumanText,
  proposalText,
  type Level,
} from './rules.js';
import { fixContainment, fixMounts, SANDBOX_HOME, tidyOrder, type FixMounts, type Leash } from '../run/launch.js';
import { runPrecheck } from '../run/runner.js';
import { type RunNowOptions } from '../run/supervisor.js';
import type { Policy } from '../config/schema.js';
import type { AlertRow, HealAttemptRow, RunRow, Store } from '../store/store.js';
import { refOf, type HealFiles, type HealStep } from '../model.js';
import { readableTime } from '../schedule/instants.js';
import { systemTimeZone } from '../schedule/timezone.js';
import { DeadlineTimer } from '../schedule/timer.js';
import { type Clock } from '../clock.js';
import { HealVault, type SnapshotDigests } from './vault.js';
import { errorMessage } from '../errors.js';

export const APPROVAL_TTL_MS = 24 * 3_600_000;
/** Where a fix finds the alert (NIGHTSHIFT_ALERT_FILE): inside its sandbox's private /tmp, read-only. */
export const SANDBOX_ALERT_FILE = '/tmp/nightshift-alert.json';
export const DEFAULT_MAX_PARALLEL = 2;
const PRECHECK_TIMEOUT_MS = 60_000;
const FIX_KILL_GRACE_MS = 2000;

/** Outcomes after which the incident waits for a person: a new occurrence does not ask again. */
const WAITING = new Set(['needs-human', 'proposed', 'awaiting-approval', 'blocked', 'denied', 'expired', 'refused', 'rollback-failed']);
/** Steps after which something may have been changed: a crash there is rolled back. */
const CHANGING: ReadonlySet<HealStep> = new Set(['snapshot', 'fix', 'probe', 'verdict', 'rollback']);

export interface HealerDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  paths: HomePaths;
  getJob(name: string): Job | undefined;
  getRules(): Map<string, LoadedRule>;
  getPolicy(): Policy;
  /** The same check the watchdog and supervisor use; fail closed. */
  killState(): KillState;
  /** False once the home or state folder was moved away while nightshift ran (daemon.homeIntact). */
  homeIntact?(): boolean;
  /** Runs the job now with trigger heal (a rerun fix) or probe, resolving with the finished row. */
  runJob(job: Job, trigger: 'heal' | 'probe', opts?: RunNowOptions): Promise<RunRow>;
  /** Stops every run of the job (SIGTERM to its group, SIGKILL after its killGrace). */
  stopJob(name: string): Promise<void>;
  /** SIGKILL every run of the job now (a rerun fix), and wait for their rows. */
  killJobNow(name: string): Promise<void>;
  /** Resolves when no run of the job is in flight. */
  waitJobIdle(name: string): Promise<void>;
  /** Resolves the alert (synchronously, in the caller's transaction) and unfolds what it held. */
  resolveAlert(alert: AlertRow, resolution: 'fixed-verified' | 'self-recovered', why: string): void;
  page(ev: PageEvent): void;
  /** What fixes, brains and probes are kept from, under the policy in force. */
  leash(): Leash;
  maxParallel?: number;
  approvalTtlMs?: number;
}

/** Where system tools nightshift itself runs are looked up (not the daemon's PATH, which a job may have written into). */
const SYSTEM_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

type StopWhy = 'halt' | 'shutdown';

interface InFlight {
  job: string;
  ctl: AbortController;
  attemptId: number | null;
  done: Promise<void>;
}

/** Raised inside an attempt when the kill switch or a shutdown stopped it; carries what to record. */
class Stopped extends Error {
  constructor(readonly why: StopWhy) {
    super(why);
  }
}

export class HealError extends Error {
  constructor(
    message: string,
    readonly status: 404 | 409 | 410,
  ) {
    super(message);
  }
}

/** One attempt about to execute: the attempt's row, its incident, the job, the rule and the level it runs at. */
interface Execution {
  id: number;
  fp: string;
  alert: AlertRow;
  job: Job;
  matched: LoadedRule;
  level: Level;
  signal: AbortSignal;
}

export class Healer {
  private readonly queue = new Set<string>();
  private readonly inflight = new Map<string, InFlight>();
  private readonly again = new Set<string>();
  private readonly expiry: DeadlineTimer<number>;
  private readonly vault: HealVault;
  private running = false;
  private readonly maxParallel: number;
  private readonly ttl: number;

  constructor(private readonly deps: HealerDeps) {
    this.maxParallel = deps.maxParallel ?? DEFAULT_MAX_PARALLEL;
    this.ttl = deps.approvalTtlMs ?? APPROVAL_TTL_MS;
    this.expiry = new DeadlineTimer<number>(
      (id) => this.expire(id),
      deps.clock,
      (err) => deps.log.error({ err: errorMessage(err) }, 'approval expiry failed'),
    );
    this.expiry.stop();
    this.vault = new HealVault(
      deps.paths,
      () => deps.getPolicy(),
      () => deps.leash(),
    );
  }

  // ---- life cycle ----

  /**
   * Before anything runs: attempts a dead daemon left between snapshot and verdict are rolled
   * back from their snapshots (`interrupted-rolled-back`; they count as attempts), the rest are
   * closed as `interrupted` (nothing had been changed yet).
   */
  async recover(): Promise<HealAttemptRow[]> {
    const { store, clock, log } = this.deps;
    const open = store.heals.inFlight();
    this.dropFinishedSnapshots(open);
    // Alert files of fixes a dead daemon left: no fix reads them any more.
    rmSync(join(this.deps.paths.state, 'heal-alerts'), { recursive: true, force: true });
    if (open.length === 0) return [];
    killLeftovers(open, this.deps.paths.state);
    for (const a of open) {
      if (!CHANGING.has(a.step)) {
        store.heals.finish(
          a.id,
          'interrupted',
          `nightshift stopped at step ${a.step}, before anything was changed; the alert is looked at again`,
          clock.now(),
        );
        continue;
      }
      try {
        let zoneChanged = a.snapshot_dir ? await this.vault.zoneChanges(a.snapshot_dir, digestsOf(a)) : [];
        // The install changed while nightshift was down: an upgrade (or a rebuild), not this fix —
        // a fix never sees the install. Left as it is, and said, unless the zone changed elsewhere too.
        const upgraded = zoneChanged.length > 0 && zoneChanged.every((p) => this.vault.inInstall(p));
        if (upgraded) zoneChanged = [];
        const restored = a.snapshot_dir
          ? await this.vault.restore(a.snapshot_dir, digestsOf(a), { zone: !upgraded })
          : 'no snapshot was taken yet';
        let detail = `nightshift stopped during step ${a.step}; at the next start the attempt was rolled back from its snapshot (${restored}); it counts as attempt ${a.attempt ?? '?'}`;
        if (upgraded) detail += '; nightshift itself was upgraded or changed meanwhile (its install differs), which was left as it is';
        if (zoneChanged.length) {
          detail = `EMERGENCY: the protected zone had changed (${zoneChanged.slice(0, 5).join(', ')}); restored, rule ${a.rule ?? '?'} demoted to shadow. ${detail}`;
        }
        store.batch(() => {
          store.heals.finish(a.id, 'interrupted-rolled-back', detail, clock.now());
          if (zoneChanged.length && a.rule && a.rule_hash)
            store.ladder.set(a.rule, 'shadow', a.rule_hash, clock.now(), `heal ${refOf('heal', a.id)} changed the protected zone`);
        });
        if (zoneChanged.length)
          this.deps.page({
            event: 'protected-zone',
            fingerprint: `${a.rule ?? a.job}:protected-zone`,
            job: a.job,
            rule: a.rule,
            message: detail,
            card: `/heals#${refOf('heal', a.id)}`,
          });
        if (a.snapshot_dir) await this.vault.drop(a.snapshot_dir);
        log.warn({ heal: a.id, job: a.job, step: a.step }, 'heal attempt interrupted by a stop: rolled back from its snapshot');
      } catch (err) {
        this.rollbackFailed(a, err);
      }
    }
    return open.map((a) => store.heals.get(a.id)!);
  }

  /** Snapshots of attempts that reached their verdict (a stop came between the verdict and the clean-up). */
  private dropFinishedSnapshots(open: HealAttemptRow[]): void {
    const root = join(this.deps.paths.state, 'snapshots');
    let names: string[];
    try {
      names = readdirSync(root);
    } catch {
      return;
    }
    const keep = new Set(open.map((a) => String(a.id)));
    for (const n of names) {
      if (keep.has(n)) continue;
      const row = /^\d+$/.test(n) ? this.deps.store.heals.get(Number(n)) : undefined;
      // A rollback that failed keeps its snapshot for a person to restore by hand.
      if (row?.outcome === 'rollback-failed') continue;
      void this.vault.drop(join(root, n));
    }
  }

  /** Starts handling: every open alert is looked at once, approvals get their expiry timers. */
  start(): void {
    this.running = true;
    this.expiry.start();
    const now = this.deps.clock.now();
    for (const a of this.deps.store.heals.pendingApprovals()) this.expiry.set(a.id, a.expires_at ?? now);
    this.enqueueOpen();
  }

  /** Stops every attempt in flight (rolled back) and waits for them to be recorded. */
  async stop(): Promise<void> {
    this.running = false;
    this.expiry.stop();
    this.queue.clear();
    this.again.clear();
    for (const f of this.inflight.values()) f.ctl.abort('shutdown');
    await Promise.allSettled([...this.inflight.values()].map((f) => f.done));
  }

  /** The kill switch went on (or the policy became unreadable): every fix and probe in flight is stopped and rolled back. */
  halt(): void {
    for (const f of this.inflight.values()) f.ctl.abort('halt');
    this.queue.clear();
  }

  /** Something changed that may let waiting alerts proceed (kill switch off, a rule edited). */
  enqueueOpen(): void {
    if (!this.running) return;
    for (const a of this.deps.store.alerts.open()) if (a.folded_under === null) this.enqueue(a.fingerprint);
  }

  /** An alert was raised or counted again. */
  alertChanged(alert: AlertRow): void {
    if (alert.folded_under === null) this.enqueue(alert.fingerprint);
  }

  /** Alerts ended some other way: approvals waiting on them are moot. */
  alertsResolved(alerts: AlertRow[]): void {
    const ids = new Set(alerts.map((a) => a.id));
    for (const p of this.deps.store.heals.pendingApprovals()) {
      if (!ids.has(p.alert_id)) continue;
      this.expiry.delete(p.id);
      this.deps.store.heals.finish(
        p.id,
        'self-recovered',
        'the alert was resolved before anyone answered; nothing was run',
        this.deps.clock.now(),
        {
          answer: 'moot',
        },
      );
    }
  }

  busy(): number {
    return this.inflight.size;
  }

  /** Resolves when nothing is queued or in flight (for tests and benchmarks). */
  async idle(): Promise<void> {
    while (this.inflight.size > 0 || this.queue.size > 0) await Promise.allSettled([...this.inflight.values()].map((f) => f.done));
  }

  // ---- the queue ----

  private enqueue(fp: string): void {
    if (!this.running) return;
    if (this.inflight.has(fp)) {
      this.again.add(fp);
      return;
    }
    this.queue.add(fp);
    this.pump();
  }

  private pump(): void {
    for (const fp of this.queue) {
      if (this.inflight.size >= this.maxParallel) return;
      const job = jobOf(fp);
      // Different jobs in parallel; one heal per job at a time (two fixes on one job would race).
      if ([...this.inflight.values()].some((f) => f.job === job)) continue;
      this.queue.delete(fp);
      this.launch(fp, job, (ctl, f) => this.handle(fp, ctl.signal, f));
    }
  }

  private launch(fp: string, job: string, body: (ctl: AbortController, f: InFlight) => Promise<void>): InFlight {
    const ctl = new AbortController();
    const f: InFlight = { job, ctl, attemptId: null, done: Promise.resolve() };
    this.inflight.set(fp, f);
    f.done = body(ctl, f)
      .catch((err: unknown) =>
        this.deps.log.error(
          { fingerprint: fp, err: err instanceof Error ? (err.stack ?? err.message) : errorMessage(err) },
          'heal attempt failed unexpectedly',
        ),
      )
      .finally(() => {
        this.inflight.delete(fp);
        if (this.again.delete(fp) && this.running) this.queue.add(fp);
        this.pump();
      });
    return f;
  }

  // ---- one attempt ----

  private async handle(fp: string, signal: AbortSignal, f: InFlight): Promise<void> {
    const { store, clock, log } = this.deps;
    const alert = store.alerts.openFor(fp);
    if (!alert || alert.folded_under !== null) return;
    const job = this.deps.getJob(alert.job);
    if (!job) return;
    if (store.jobStates.get(job.name)?.paused === 1) return; // an operator holds this job
    const matched = matchRule(this.deps.getRules().values(), factsOf(alert));

    const prev = store.heals.forAlert(alert.id).at(-1);
    // A failed restore waits for a person whatever happens to the rule meanwhile: a changed rule
    // file may be the very change that could not be undone.
    if (prev?.outcome === 'rollback-failed') {
      log.info(
        { heal: prev.id, job: job.name, fingerprint: fp },
        `not healing ${fp}: heal ${refOf('heal', prev.id)} could not be rolled back; it waits for a person`,
      );
      return;
    }
    if (prev?.outcome && WAITING.has(prev.outcome)) {
      const sameRule = prev.rule === (matched?.name ?? null) && (prev.rule === null || prev.rule_hash === matched?.hash);
      if (sameRule) return; // already with a person; a new occurrence is counted on the alert, not asked again
      if (prev.outcome === 'awaiting-approval') {
        this.expiry.delete(prev.id);
        store.heals.finish(
          prev.id,
          'expired',
          'the rule changed before anyone answered; the alert is looked at again under the new rule',
          clock.now(),
          { answer: 'superseded' },
        );
      }
    }

    // While the kill switch stays on, one `halted` per incident is enough (turning it off re-looks).
    if (prev?.outcome === 'halted' && this.deps.killState().halted) return;
    if (prev?.outcome === 'uncontained' && !fixContainment().ok) return;
    const id = store.heals.insert({ alertId: alert.id, fingerprint: fp, job: job.name, now: clock.now() });
    f.attemptId = id;
    const finish = (outcome: string, detail: string, fields: Parameters<Store['heals']['finish']>[4] = {}): void =>
      this.finishAttempt(id, fp, job.name, matched?.name ?? null, outcome, detail, fields);

    try {
      // 1. kill switch (fail closed)
      const k = this.deps.killState();
      if (k.halted || signal.aborted)
        return finish('halted', k.halted ? `nothing was run: ${k.reason}` : 'nightshift is stopping; nothing was run');

      // 1b. containment (fail closed): no sandbox, no fix, at any level. Without a matching rule
      // nothing would run anyway: that alert goes on to needs-human, which says what a person must do.
      store.heals.step(id, 'containment', clock.now());
      const c = fixContainment();
      if (!c.ok && matched)
        return finish('uncontained', `nothing was run: fixes, brains and probes run only inside a sandbox, and ${c.reason}`);
      // No rule matches: the attempt goes on to a proposal, but the journal says the sandbox is missing.
      if (!c.ok) store.heals.note(id, c.reason, {}, 'unavailable');

      // 2. pre-check (fail open: only a success, an explicit IDLE or a passing probe stops here)
      store.heals.step(id, 'pre-check', clock.now());
      const level0 = matched ? effectiveLevel(matched, job, this.deps.getPolicy(), store.ladder.get(matched.name)) : null;
      // In shadow nothing of the rule runs, not even its probe.
      const recovered = await this.precheck(job, alert, level0 === 'shadow' ? null : matched, signal);
      this.checkStop(signal);
      if (recovered) {
        store.batch(() => {
          const still = store.alerts.get(alert.id);
          if (still && still.resolved_at === null) this.deps.resolveAlert(still, 'self-recovered', recovered);
          store.heals.finish(id, 'self-recovered', recovered, clock.now());
        });
        log.info({ heal: id, job: job.name, fingerprint: fp, outcome: 'self-recovered' }, `heal self-recovered: ${recovered}`);
        return;
      }

      // 3. rule
      store.heals.step(id, 'rule', clock.now(), { rule: matched?.name ?? null, rule_hash: matched?.hash ?? null });
      if (!matched)
        return finish('needs-human', 'no rule matches this alert; a proposal for a person was written', {
          proposal: needsHumanText(alert),
        });
      const rule = matched.rule;

      // 4. cap (per incident)
      store.heals.step(id, 'cap', clock.now());
      const cap = Math.min(this.deps.getPolicy().maxAttempts, rule.maxAttempts ?? 2, 2);
      const made = store.heals.executed(alert.id);
      if (made >= cap) {
        finish('blocked', `${made} attempt(s) already made for this incident (the cap is ${cap}); a person must look`);
        this.deps.page({
          event: 'heal-blocked',
          fingerprint: `${fp}:heal-blocked`,
          job: job.name,
          rule: matched.name,
          message: `${fp}: ${made} heal attempt(s) failed; ${alert.message}`,
          card: `/heals#${refOf('heal', id)}`,
        });
        return;
      }

      // 5. autonomy
      const level = effectiveLevel(matched, job, this.deps.getPolicy(), store.ladder.get(matched.name));
      const kind = rule.action.brain ? 'brain' : rule.action.rerun ? 'rerun' : rule.action.restart ? 'restart' : 'command';
      store.heals.step(id, 'autonomy', clock.now(), { autonomy: level, action_kind: kind, action: describeAction(rule) });
      if (level === 'shadow')
        return finish('proposed', `shadow: nothing was run; proposal: ${describeAction(rule)}`, {
          proposal: proposalText(matched, alert, level),
        });
      if (level === 'gated') {
        const expires = clock.now() + this.ttl;
        finish(
          'awaiting-approval',
          `waiting for nightshift approve ${refOf('heal', id)} (or deny ${refOf('heal', id)}) until ${this.timeFor(job.name, expires)}`,
          {
            proposal: proposalText(matched, alert, level),
            expires_at: expires,
          },
        );
        this.expiry.set(id, expires);
        // Pushed to the phone only when the operator put it on page.allow: its url opens the card
        // with Approve / Deny. The fingerprint is the attempt's: a second incident waits as its own card.
        this.deps.page({
          event: 'approval-requested',
          fingerprint: `${fp}:approval-requested:${refOf('heal', id)}`,
          job: job.name,
          rule: matched.name,
          heal: refOf('heal', id),
          message: `${job.name}: the fix of rule ${matched.name} waits for your approval until ${this.timeFor(job.name, expires)} (${alert.message})`,
          card: `/#${refOf('heal', id)}`,
        });
        return;
      }
      await this.execute({ id, fp, alert, job, matched, level, signal });
    } catch (err) {
      this.closeAfterError(id, err);
    }
  }

  /** After an approval or at once in `auto`: guard, snapshot, fix, probe, verdict, rollback. */
  private async execute(c: Execution): Promise<void> {
    const mounts: { value: FixMounts | null } = { value: null };
    try {
      await this.executeSteps(c, mounts);
    } finally {
      // Folders made only so that a touched path had somewhere to be: gone again if nothing is in them.
      if (mounts.value) {
        await this.vault.tidy(tidyOrder(mounts.value, 'created')).catch((err: unknown) => {
          this.deps.log.warn({ heal: c.id, err: errorMessage(err) }, 'folders made for the touches could not be removed');
        });
      }
    }
  }

  private async executeSteps(c: Execution, mounts: { value: FixMounts | null }): Promise<void> {
    const { id, fp, alert, job, matched, level, signal } = c;
    const { store, clock, log } = this.deps;
    const rule = matched.rule;
    const finish = (outcome: string, detail: string): void => this.finishAttempt(id, fp, job.name, matched.name, outcome, detail);

    // 6. guard
    store.heals.step(id, 'guard', clock.now());
    const guard = this.vault.guard(rule.action.touches);
    if (!guard.ok) return finish('refused', guard.reason);
    if (rule.action.brain) {
      const budget = this.deps.getPolicy().brain.maxRunsPerDay;
      const used = store.heals.brainRunsSince(clock.now() - 24 * 3_600_000);
      if (used >= budget)
        return finish('refused', `the brain budget is used up: ${used} of ${budget} runs in the last 24 h (policy.brain.maxRunsPerDay)`);
    }
    // A policy change since validate: refused before it counts as an attempt or demotes the rule.
    if (rule.action.restart !== undefined && !this.deps.getPolicy().restartUnits.includes(rule.action.restart)) {
      return finish('refused', `${rule.action.restart} is not in the policy's restartUnits (any more); nothing was restarted`);
    }
    const k = this.deps.killState();
    if (k.halted || signal.aborted)
      return finish('halted', k.halted ? `nothing was run: ${k.reason}` : 'nightshift is stopping; nothing was run');

    // 7. snapshot: from here on, a stop or a crash is rolled back
    const dir = join(this.deps.paths.state, 'snapshots', String(id));
    const attempt = store.heals.executed(alert.id) + 1;
    store.heals.step(id, 'snapshot', clock.now(), { attempt, snapshot_dir: dir });
    const started = clock.now();
    let zoneChanged: string[] = [];
    let doubt: string | null = null;
    let digests: SnapshotDigests | null = null;
    try {
      digests = await this.vault.take(dir, guard.paths);
      store.heals.note(id, 'snapshot taken', { snapshot_digest: JSON.stringify(digests) });
      store.heals.note(id, `snapshot of ${guard.paths.length} path(s) and the protected zone in ${formatDuration(clock.now() - started)}`);
      this.checkStop(signal);

      // 8. fix
      const fixStartedAt = clock.now();
      store.heals.step(id, 'fix', fixStartedAt);
      const fix = await this.fix(id, alert, job, matched, signal, mounts);
      store.heals.note(id, fix.detail, {}, fix.ok ? 'done' : 'failed');
      this.checkStop(signal);
      // Which files it changed, created or removed: on record before anything is judged or undone.
      // (A restart, or a rerun without touches, has nothing under watch: no record rather than "none".)
      if (guard.paths.length > 0) {
        store.heals.recordFiles(id, await this.filesOf(dir, digests, mounts.value, signal));
        this.checkStop(signal);
      }
      zoneChanged = await this.vault.zoneChanges(dir, digests);
      if (zoneChanged.length === 0 && !fix.ok) doubt = `the fix itself failed (${fix.detail}), so it was not probed`;

      // 9. probe (independent: the maker is never the checker)
      if (zoneChanged.length === 0 && doubt === null) {
        store.heals.step(id, 'probe', clock.now());
        const probe = await this.probe(id, job, matched, signal);
        store.heals.note(id, probe.detail, {}, probe.ok ? 'passed' : 'failed');
        this.checkStop(signal);
        zoneChanged = await this.vault.zoneChanges(dir, digests);
        if (zoneChanged.length === 0 && !probe.ok) doubt = `the probe failed: ${probe.detail}`;
      }

      // 10. verdict
      if (zoneChanged.length === 0 && doubt === null) {
        store.heals.step(id, 'verdict', clock.now());
        const took = formatDuration(clock.now() - alert.opened_at);
        const detail = `attempt ${attempt}: ${describeAction(rule)}; verified (${describeProbe(rule)}: it did); fixed ${took} after the alert`;
        store.batch(() => {
          const still = store.alerts.get(alert.id);
          if (still && still.resolved_at === null)
            this.deps.resolveAlert(still, 'fixed-verified', `heal ${refOf('heal', id)} by rule ${matched.name}`);
          // The fix's own effect (a restarted worker's heartbeat, a success) may resolve the alert
          // before the probe has spoken: that is this fix working, not the job recovering alone.
          else if (still?.resolution === 'self-recovered' && still.resolved_at !== null && still.resolved_at >= fixStartedAt) {
            store.alerts.credit(still.id, 'fixed-verified');
          }
          store.heals.finish(id, 'fixed-verified', detail, clock.now());
        });
        // Logged once committed: a log line must never announce what a crash could still undo.
        log.info(
          { heal: id, job: job.name, fingerprint: fp, rule: matched.name, outcome: 'fixed-verified' },
          `heal fixed-verified: ${detail}`,
        );
        await this.vault.drop(dir);
        return;
      }
    } catch (err) {
      if (!(err instanceof Stopped)) {
        if (store.heals.get(id)?.step === 'snapshot') doubt = `the snapshot could not be taken (${errorMessage(err)}); the fix was not run`;
        else doubt = `an error stopped the attempt (${errorMessage(err)})`;
      }
      await this.rollback(id, fp, dir, job, matched, level, zoneChanged, doubt ?? '', err instanceof Stopped ? err.why : null);
      return;
    }
    await this.rollback(id, fp, dir, job, matched, level, zoneChanged, doubt ?? 'rolled back', null);
  }

  /**
   * What the fix did to its touches: the snapshot's manifest against the tree now. A listing that
   * fails is recorded as such and the attempt goes on (the record is for people, the probe judges).
   */
  private async filesOf(dir: string, digests: SnapshotDigests | null, mounts: FixMounts | null, signal: AbortSignal): Promise<HealFiles> {
    try {
      return await this.vault.files(dir, digests, mounts?.created ?? [], signal);
    } catch (err) {
      return { error: `the files could not be listed: ${errorMessage(err)}` };
    }
  }

  // 11. rollback
  private async rollback(
    id: number,
    fp: string,
    dir: string,
    job: Job,
    matched: LoadedRule,
    level: Level,
    zoneChanged: string[],
    doubt: string,
    stopped: StopWhy | null,
  ): Promise<void> {
    const { store, clock, log } = this.deps;
    // The step the attempt was in when it was stopped, before it becomes "rollback".
    const stoppedAt = store.heals.get(id)?.step ?? 'fix';
    // The home was moved away (daemon.homeIntact): every path now names what a job made. Nothing
    // is checked or restored through them; the attempt stays open in the journal, and the next
    // start, in the home put back, rolls it back from its snapshot as after a crash.
    if (this.deps.homeIntact && !this.deps.homeIntact()) {
      log.error(
        { heal: id },
        'heal: the home was moved away during the attempt; not restoring through its paths (the next start rolls it back)',
      );
      return;
    }
    try {
      store.heals.step(id, 'rollback', clock.now());
    } catch (err) {
      // The restore matters more than its journal line: a write that fails now (a full disk)
      // must not leave the fix in place.
      log.error({ heal: id, err: errorMessage(err) }, 'heal: the rollback step could not be journaled; restoring the snapshot anyway');
    }
    const row = store.heals.get(id)!;
    // A halt, a stop or an error may come between the fix and the zone check: look now, so a zone
    // change is an emergency whatever interrupted the attempt.
    if (zoneChanged.length === 0)
      zoneChanged = await this.vault
        .zoneChanges(dir, digestsOf(row))
        .catch((err: unknown) => [`(the zone could not be checked: ${errorMessage(err)})`]);
    const emergency = zoneChanged.length > 0;
    let restored: string;
    try {
      restored = await this.vault.restore(dir, digestsOf(row));
    } catch (err) {
      this.rollbackFailed(row, err, zoneChanged);
      return;
    }
    const alertGone = store.alerts.get(row.alert_id)?.resolved_at != null;
    let outcome = 'rolled-back';
    let detail: string;
    if (stopped === 'halt') {
      outcome = 'halted';
      detail = `the kill switch went on during step ${stoppedAt}: ${stoppedAt === 'probe' ? 'the probe' : 'the fix'} was stopped and the fix rolled back (${restored})`;
    } else if (stopped === 'shutdown') {
      outcome = 'interrupted-rolled-back';
      detail = `nightshift stopped during the attempt: rolled back (${restored})`;
    } else {
      detail = `${doubt}; rolled back (${restored})`;
    }
    if (emergency) {
      detail = `EMERGENCY: the protected zone changed (${zoneChanged.slice(0, 5).join(', ')}${zoneChanged.length > 5 ? ', …' : ''}); the zone and the fix were restored and rule ${matched.name} was demoted to shadow. ${detail}`;
    }
    try {
      store.batch(() => {
        store.heals.finish(id, outcome, detail, clock.now());
        if (emergency)
          store.ladder.set(matched.name, 'shadow', matched.hash, clock.now(), `heal ${refOf('heal', id)} changed the protected zone`);
        // An incident that ended meanwhile (a success of its own) says nothing against the rule.
        else if (outcome === 'rolled-back' && level === 'auto' && !alertGone) {
          store.ladder.set(
            matched.name,
            demoted(level),
            matched.hash,
            clock.now(),
            `heal ${refOf('heal', id)} was rolled back in auto: ${doubt}`,
          );
        }
      });
    } catch (err) {
      // Restored, but not on record: the snapshot stays, and the next start's recovery restores
      // it again (the same bytes) and records the attempt as interrupted-rolled-back.
      log.error({ heal: id, job: job.name, err: errorMessage(err) }, `heal ${outcome}, but the outcome could not be recorded: ${detail}`);
      return;
    }
    // Dropped only once the outcome is on record: a crash in between must still find the snapshot.
    await this.vault.drop(dir);
    log.warn({ heal: id, job: job.name, fingerprint: fp, rule: matched.name, outcome }, `heal ${outcome}: ${detail}`);
    if (emergency) {
      this.deps.page({
        event: 'protected-zone',
        fingerprint: `${matched.name}:protected-zone`,
        job: job.name,
        rule: matched.name,
        message: detail,
        card: `/heals#${refOf('heal', id)}`,
      });
    }
    // A rollback is one of the two attempts: the alert is looked at again (the cap and the
    // demoted level decide what happens next).
    if (outcome === 'rolled-back' && this.running && !alertGone) this.again.add(fp);
  }

  /**
   * A restore that failed: the snapshot stays for a person, the rule drops to shadow (nothing it
   * proposes runs again on its own until a person edits it), and the incident waits for a person.
   * A zone change that could not be undone pages as protected-zone too.
   */
  private rollbackFailed(row: HealAttemptRow, err: unknown, zoneChanged: string[] = []): void {
    const detail =
      `ROLLBACK FAILED (${errorMessage(err)}): the snapshot is kept in ${row.snapshot_dir ?? '?'}; a person must restore it` +
      (zoneChanged.length ? `; the protected zone had changed (${zoneChanged.slice(0, 5).join(', ')})` : '') +
      (row.rule ? `; rule ${row.rule} demoted to shadow` : '');
    try {
      this.deps.store.batch(() => {
        this.deps.store.heals.finish(row.id, 'rollback-failed', detail, this.deps.clock.now());
        if (row.rule && row.rule_hash)
          this.deps.store.ladder.set(
            row.rule,
            'shadow',
            row.rule_hash,
            this.deps.clock.now(),
            `heal ${refOf('heal', row.id)}: its rollback failed`,
          );
      });
    } catch (again) {
      // Not on record (a full disk), but the person must hear of it all the same.
      this.deps.log.error({ heal: row.id, err: errorMessage(again) }, 'heal: the failed rollback could not be recorded');
    }
    this.deps.log.error({ heal: row.id, job: row.job }, detail);
    this.deps.page({
      event: 'heal-blocked',
      fingerprint: `${row.fingerprint}:heal-blocked`,
      job: row.job,
      message: detail,
      card: `/heals#${refOf('heal', row.id)}`,
    });
    if (zoneChanged.length)
      this.deps.page({
        event: 'protected-zone',
        fingerprint: `${row.rule ?? row.job}:protected-zone`,
        job: row.job,
        rule: row.rule,
        message: detail,
        card: `/heals#${refOf('heal', row.id)}`,
      });
  }

  private closeAfterError(id: number, err: unknown): void {
    try {
      this.closeAfterErrorOrThrow(id, err);
    } catch (again) {
      // Not on record (a full disk): the attempt stays open and the next start's recovery closes it.
      this.deps.log.error(
        { heal: id, err: errorMessage(err), record: errorMessage(again) },
        'heal attempt failed and its outcome could not be recorded',
      );
    }
  }

  private closeAfterErrorOrThrow(id: number, err: unknown): void {
    const row = this.deps.store.heals.get(id);
    if (!row || row.outcome !== null) return;
    if (err instanceof Stopped) {
      this.deps.store.heals.finish(
        id,
        err.why === 'halt' ? 'halted' : 'interrupted',
        `stopped at step ${row.step} before anything was changed`,
        this.deps.clock.now(),
      );
      return;
    }
    this.deps.store.heals.finish(
      id,
      'error',
      `the heal loop failed at step ${row.step} before anything was changed: ${errorMessage(err)}`,
      this.deps.clock.now(),
    );
    this.deps.log.error({ heal: id, err: errorMessage(err) }, 'heal attempt failed before anything was changed');
  }

  /** Records an attempt's outcome, then logs it (a log line never announces what is not committed). */
  private finishAttempt(
    id: number,
    fp: string,
    job: string,
    rule: string | null,
    outcome: string,
    detail: string,
    fields: Parameters<Store['heals']['finish']>[4] = {},
  ): void {
    this.deps.store.heals.finish(id, outcome, detail, this.deps.clock.now(), fields);
    this.deps.log.info({ heal: id, job, fingerprint: fp, rule, outcome }, `heal ${outcome}: ${detail}`);
  }

  /**
   * Between steps: a stop, or the kill switch — read from disk now, not only when the watcher
   * reports it (it can be late), so that nothing starts once the switch is on (fail closed).
   */
  private checkStop(signal: AbortSignal): void {
    if (signal.aborted) throw new Stopped(signal.reason === 'halt' ? 'halt' : 'shutdown');
    if (this.deps.killState().halted) throw new Stopped('halt');
  }

  // ---- the steps that run something ----

  /** Returns why the problem is gone, or null when it is still real (or we cannot tell: fail open). */
  private async precheck(job: Job, alert: AlertRow, matched: LoadedRule | null, signal: AbortSignal): Promise<string | null> {
    const { store } = this.deps;
    const since = store.life.successSince(job.name, alert.opened_at);
    // A success stamped later than now was recorded before the wall clock went back: it came
    // before the alert, not after.
    if (since !== null && since <= this.deps.clock.now())
      return `the job succeeded again at ${readableTime(since, job.timezone)}, after the alert`;
    if (job.managed && job.spec.precheck) {
      const v = await runPrecheck(job, {
        timeoutMs: PRECHECK_TIMEOUT_MS,
        extraEnv: { NIGHTSHIFT_STATE: this.deps.paths.state },
        leash: this.deps.leash(),
        // A stop or the kill switch does not wait out the pre-check's time limit (a minute).
        signal,
      });
      if (v.idle) return `the job's pre-check says IDLE: there is nothing to do`;
    }
    const probe = matched?.rule.probe.command;
    if (probe && !signal.aborted) {
      const r = await runBounded(probe, {
        timeoutMs: matched.rule.probe.timeout,
        cwd: this.deps.paths.home,
        signal,
        env: { ...this.fixEnv(null, null, job), HOME: this.deps.paths.home },
        confine: { profile: 'probe', leash: this.deps.leash() },
      });
      if (r.ok) return `the rule's probe (${probe.join(' ')}) already passes: the problem is gone`;
    }
    return null;
  }

  private fixEnv(id: number | null, alertFile: string | null, job: Job): Record<string, string> {
    // HOME is the sandbox's private one; the state path only lets a restart find a leftover (the folder itself is hidden).
    const env: Record<string, string> = { NIGHTSHIFT_STATE: this.deps.paths.state, NIGHTSHIFT_JOB: job.name, HOME: SANDBOX_HOME };
    if (id !== null) env.NIGHTSHIFT_HEAL_ATTEMPT = String(id);
    if (alertFile) env.NIGHTSHIFT_ALERT_FILE = alertFile;
    return env;
  }

  private async fix(
    id: number,
    alert: AlertRow,
    job: Job,
    matched: LoadedRule,
    signal: AbortSignal,
    mounts: { value: FixMounts | null },
  ): Promise<{ ok: boolean; detail: string }> {
    const a = matched.rule.action;
    if (a.restart !== undefined) {
      // The daemon runs systemctl itself, with only the unit's name as an argument: no code of the
      // rule's runs. The policy is asked again (it may have changed since validate).
      if (!this.deps.getPolicy().restartUnits.includes(a.restart)) {
        return { ok: false, detail: `restart: ${a.restart} is no longer in the policy's restartUnits; nothing was restarted` };
      }
      // Found on the system's own PATH, not the daemon's: a job may write a folder on that (as root,
      // /usr/local/bin). NIGHTSHIFT_SYSTEMCTL names another (the daemon's environment; tests).
      const systemctl = process.env.NIGHTSHIFT_SYSTEMCTL || 'systemctl';
      // --no-ask-password: never wait for a person at a password prompt; polkit says yes or no.
      const r = await runBounded([systemctl, '--no-ask-password', 'restart', a.restart], {
        timeoutMs: a.timeout,
        signal,
        env: { PATH: SYSTEM_PATH },
        confine: { profile: 'notify', leash: this.deps.leash() },
      });
      return { ok: r.ok, detail: `restart: systemctl restart ${a.restart} ${describeResult(r, a.timeout)}` };
    }
    if (a.rerun) {
      if (!job.managed) return { ok: false, detail: `rerun: ${job.name} is external (no command); nightshift cannot run it` };
      // The run in the way goes first, its whole process group. A hung one at once: it passed its
      // timeout and may be ignoring the SIGTERM of its grace. A silent long-running one (a worker)
      // gets its grace to shut down cleanly.
      if (job.longRunning) await this.deps.stopJob(job.name);
      else await this.deps.killJobNow(job.name);
      this.checkStop(signal);
      if (job.longRunning) return this.rerunLongRunning(job, signal);
      const run = await this.withStop(signal, job, this.deps.runJob(job, 'heal'));
      return { ok: run.outcome === 'ok', detail: `rerun: run #${run.id} ${run.outcome}${run.reason ? ` (${run.reason})` : ''}` };
    }
    const argv = (a.command ?? a.brain)!;
    // Alert text is data: it goes to the fix as a JSON file, never into its argv, env values or a shell.
    // Written in the state folder, which no process nightshift starts can see (a job could swap a
    // file in a shared /tmp for a link to the control socket), and handed in read-only at a path of
    // the sandbox's own /tmp.
    mkdirSync(join(this.deps.paths.state, 'heal-alerts'), { recursive: true, mode: 0o700 });
    const alertDir = mkdtempSync(join(this.deps.paths.state, 'heal-alerts', `${id}-`));
    const alertFile = join(alertDir, 'alert.json');
    writeFileSync(alertFile, JSON.stringify({ ...alert, rule: matched.name }, null, 2), { mode: 0o600 });
    const timeoutMs = a.brain ? this.deps.getPolicy().brain.wallclock : a.timeout;
    const what = a.brain ? 'brain' : 'command';
    try {
      try {
        mounts.value = fixMounts(a.touches, this.deps.paths.home);
      } catch (err) {
        return { ok: false, detail: `${what} ${argv[0]} was not started: ${errorMessage(err)}` };
      }
      const r = await runBounded(argv, {
        timeoutMs,
        cwd: this.deps.paths.home,
        signal,
        env: this.fixEnv(id, SANDBOX_ALERT_FILE, job),
        killGraceMs: FIX_KILL_GRACE_MS,
        confine: { profile: 'fix', leash: this.deps.leash(), fix: mounts.value, files: [{ host: alertFile, inside: SANDBOX_ALERT_FILE }] },
        onSpawn: (pgid) => this.deps.store.heals.note(id, `fix started (process group ${pgid})`, { fix_pgid: pgid }),
      });
      // The sandbox is empty now (its PID namespace ended with the fix): what it wrote is final.
      const strays = await this.vault.tidy(tidyOrder(mounts.value, 'strays'));
      if (strays.count) {
        return {
          ok: false,
          detail: `${what} ${argv[0]} wrote outside its touches (${strays.first.slice(0, 5).join(', ')}${strays.count > 5 ? `, … ${strays.count} in all` : ''}; removed); ${describeResult(r, timeoutMs)}`,
        };
      }
      return { ok: r.ok, detail: `${what} ${argv[0]} ${describeResult(r, timeoutMs)}` };
    } finally {
      rmSync(alertDir, { recursive: true, force: true });
    }
  }

  /**
   * A long-running job (a worker with heartbeat.file) never ends on its own: the rerun is done once
   * the new run is under way, and the probe says whether it works. It replaces any run that the
   * schedule started meanwhile (the old one was just stopped), so that the probe judges the heal's
   * own run. From here on the run is the watchdog's, as any run: its end or its silence raises an
   * alert of its own.
   */
  private async rerunLongRunning(job: Job, signal: AbortSignal): Promise<{ ok: boolean; detail: string }> {
    let started!: (runId: number) => void;
    const under = new Promise<number>((res) => (started = res));
    const done = this.deps.runJob(job, 'heal', { replace: true, onStarted: (runId) => started(runId) });
    done.catch(() => {}); // its end is the watchdog's once it runs
    const first = await this.withStop(signal, job, Promise.race([under.then((runId) => ({ runId })), done.then((row) => ({ row }))]));
    if ('runId' in first) return { ok: true, detail: `rerun: run #${first.runId} is under way (a long-running job: the probe judges it)` };
    const row = first.row;
    return { ok: row.outcome === 'ok', detail: `rerun: run #${row.id} ${row.outcome}${row.reason ? ` (${row.reason})` : ''}` };
  }

  private async probe(id: number, job: Job, matched: LoadedRule, signal: AbortSignal): Promise<{ ok: boolean; detail: string }> {
    const p = matched.rule.probe;
    if (p.command) {
      const r = await runBounded(p.command, {
        timeoutMs: p.timeout,
        cwd: this.deps.paths.home,
        signal,
        env: { ...this.fixEnv(id, null, job), HOME: this.deps.paths.home },
        confine: { profile: 'probe', leash: this.deps.leash() },
      });
      return { ok: r.ok, detail: `probe ${p.command[0]} ${describeResult(r, p.timeout)}` };
    }
    if (!job.managed) return { ok: false, detail: `probe rerun: ${job.name} is external (no command); give the rule a probe command` };
    // It would wait for a run that never ends, and then start another that never ends either.
    if (job.longRunning)
      return {
        ok: false,
        detail: `probe rerun: ${job.name} is long-running (heartbeat.file) and never ends; give the rule a probe command`,
      };
    // A run still under way (the hung one, being killed at its timeout) ends first: the probe must
    // not be skipped as an overlap, nor race the old run.
    await this.withStop(signal, job, this.deps.waitJobIdle(job.name));
    this.checkStop(signal);
    const run = await this.withStop(signal, job, this.deps.runJob(job, 'probe'));
    return { ok: run.outcome === 'ok', detail: `probe run #${run.id} ${run.outcome}${run.reason ? ` (${run.reason})` : ''}` };
  }

  /** A run started for a heal is stopped with it when the kill switch goes on or nightshift stops. */
  private async withStop<T>(signal: AbortSignal, job: Job, run: Promise<T>): Promise<T> {
    const onAbort = (): void => void this.deps.stopJob(job.name);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await run;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  // ---- approvals ----

  /** `nightshift approve ID`: the attempt continues from the guard step. */
  approve(id: number, by: string): { attempt: number; job: string; status: string } {
    const { store, clock } = this.deps;
    const row = this.pending(id);
    const alert = store.alerts.get(row.alert_id);
    this.expiry.delete(id);
    if (!alert || alert.resolved_at !== null) {
      store.heals.finish(id, 'self-recovered', 'approved, but the alert had been resolved meanwhile; nothing was run', clock.now(), {
        answer: 'approved',
        answered_at: clock.now(),
        answered_by: by,
      });
      return { attempt: id, job: row.job, status: 'the alert was already resolved; nothing to run' };
    }
    if ([...this.inflight.values()].some((f) => f.job === row.job)) {
      throw new HealError(
        `another heal of job ${row.job} is under way; answer again when it has finished (nightshift heals ${row.job})`,
        409,
      );
    }
    if (this.inflight.size >= this.maxParallel)
      throw new HealError(`${this.inflight.size} heals are under way (the limit); answer again in a moment`, 409);
    if (this.deps.store.jobStates.get(row.job)?.paused === 1)
      throw new HealError(`job ${row.job} is paused; resume it first (nightshift resume ${row.job})`, 409);
    const job = this.deps.getJob(row.job);
    const matched = row.rule ? this.deps.getRules().get(row.rule) : undefined;
    if (!job || !matched || matched.hash !== row.rule_hash) {
      store.heals.finish(
        id,
        'expired',
        'approved, but the job or the rule changed since the request; the alert is looked at again',
        clock.now(),
        { answer: 'approved', answered_at: clock.now(), answered_by: by },
      );
      this.enqueue(row.fingerprint);
      return {
        attempt: id,
        job: row.job,
        status: 'the job or rule changed since the request; it is looked at again under the current rule',
      };
    }
    // The level may have dropped since the request (policy, job ceiling, a demotion): shadow runs nothing.
    const level = effectiveLevel(matched, job, this.deps.getPolicy(), store.ladder.get(matched.name));
    if (level === 'shadow') {
      store.heals.finish(
        id,
        'proposed',
        'approved, but the level in force is now shadow (policy, job or a demotion); nothing was run',
        clock.now(),
        {
          answer: 'approved',
          answered_at: clock.now(),
          answered_by: by,
        },
      );
      return { attempt: id, job: row.job, status: 'the level in force is now shadow: nothing was run' };
    }
    if (alert.folded_under !== null) {
      store.heals.finish(
        id,
        'expired',
        `approved, but the alert is now blocked by ${alert.folded_under}; that one is healed first`,
        clock.now(),
        { answer: 'approved', answered_at: clock.now(), answered_by: by },
      );
      return { attempt: id, job: row.job, status: `the alert is now blocked by ${alert.folded_under}; nothing was run` };
    }
    store.heals.note(id, `approved by ${by}`, {
      answer: 'approved',
      answered_at: clock.now(),
      answered_by: by,
      outcome: null,
      detail: null,
      ended_at: null,
    });
    this.deps.log.info({ heal: id, job: row.job, by }, 'heal approved');
    this.launch(row.fingerprint, row.job, async (ctl, f) => {
      f.attemptId = id;
      try {
        await this.execute({ id, fp: row.fingerprint, alert, job, matched, level: 'gated', signal: ctl.signal });
      } catch (err) {
        this.closeAfterError(id, err);
      }
    });
    return { attempt: id, job: row.job, status: 'approved: the fix runs now; see nightshift heals' };
  }

  /** A time in the job's zone (the one rule of every surface); the policy's or the system's when the job is gone. */
  private timeFor(jobName: string, ms: number): string {
    return readableTime(ms, this.deps.getJob(jobName)?.timezone ?? this.deps.getPolicy().timezone ?? systemTimeZone());
  }

  deny(id: number, by: string): { attempt: number; job: string; status: string } {
    const row = this.pending(id);
    this.expiry.delete(id);
    const now = this.deps.clock.now();
    this.deps.store.heals.finish(id, 'denied', `denied by ${by}; nothing was run`, now, {
      answer: 'denied',
      answered_at: now,
      answered_by: by,
    });
    // The autonomy step said "waiting … until"; it says how the wait ended now.
    this.deps.store.heals.note(id, `asked a person: denied by ${by} at ${this.timeFor(row.job, now)}`, {}, 'denied');
    this.deps.log.info({ heal: id, job: row.job, by }, 'heal denied');
    return { attempt: id, job: row.job, status: 'denied: nothing was run; the alert stays open for a person' };
  }

  private pending(id: number): HealAttemptRow {
    const row = this.deps.store.heals.get(id);
    if (!row)
      throw new HealError(
        `there is no heal attempt ${refOf('heal', id)} (nightshift heals lists them; nightshift status shows pending approvals)`,
        404,
      );
    if (row.outcome !== 'awaiting-approval') {
      const answered = row.answer && row.answered_at ? ` at ${this.timeFor(row.job, row.answered_at)}` : '';
      throw new HealError(
        row.answer === 'expired'
          ? `heal ${refOf('heal', id)} is not waiting any more: nobody answered in time (it expired); nothing was run`
          : row.answer
            ? `heal ${refOf('heal', id)} was already ${row.answer}${answered}${row.outcome && row.outcome !== row.answer ? `, and ended ${row.outcome}` : ''}; nothing more to do`
            : `heal ${refOf('heal', id)} is not waiting for approval: ${row.outcome ? `it ended ${row.outcome}` : `it is in progress at step ${row.step}`}`,
        410,
      );
    }
    if ((row.expires_at ?? 0) <= this.deps.clock.now()) {
      this.expire(id);
      throw new HealError(
        `heal ${refOf('heal', id)} expired at ${this.timeFor(row.job, row.expires_at ?? 0)} (approvals last ${formatDuration(this.ttl)}); nothing was run`,
        410,
      );
    }
    return row;
  }

  private expire(id: number): void {
    const row = this.deps.store.heals.get(id);
    if (!row || row.outcome !== 'awaiting-approval') return;
    this.deps.store.heals.finish(
      id,
      'expired',
      `nobody answered within ${formatDuration(this.ttl)}; nothing was run`,
      this.deps.clock.now(),
      { answer: 'expired' },
    );
    this.deps.store.heals.note(id, `asked a person: nobody answered within ${formatDuration(this.ttl)}`, {}, 'expired');
    this.deps.log.warn({ heal: id, job: row.job }, 'heal approval expired');
  }
}

function digestsOf(row: HealAttemptRow): SnapshotDigests | null {
  try {
    return row.snapshot_digest ? (JSON.parse(row.snapshot_digest) as SnapshotDigests) : null;
  } catch {
    return null;
  }
}

function jobOf(fp: string): string {
  return fp.slice(0, fp.lastIndexOf(':'));
}

/**
 * Fix commands a dead daemon left running are killed before their changes are rolled back (a
 * still-running fix would write over the restore). They are found by the attempt id and state
 * folder in their environment, and by the journaled process group.
 */
function killLeftovers(open: HealAttemptRow[], stateDir: string): void {
  reapLeftovers(
    open.map((a) => ({ id: a.id, pgid: a.fix_pgid, since: a.created_at, leaderAt: null })),
    'NIGHTSHIFT_HEAL_ATTEMPT',
    stateDir,
  );
}
