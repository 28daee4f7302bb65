// Writes and sends the daily digest at policy.digest.at. The file and the SQLite row always
// come first, so a digest exists even when mail is down; a failed send is retried with backoff,
// and the next attempt is stored in the row so that a restart picks the retries up again.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  addDays,
  composeDigest,
  digestFacts,
  digestDate,
  digestInstant,
  digestSchedule,
  digestWindow,
  digestZone,
  type ConfigState,
  type DigestWindow,
  type HealLine,
} from '../report/digest.js';
import type { Job } from '../config/home.js';
import type { HomePaths } from '../config/paths.js';
import type { KillState } from '../control/killswitch.js';
import type { Logger } from '../log.js';
import { containment, leashFor } from '../run/launch.js';
import { sendDigestMail } from './mail.js';
import { formatInstant, nextAfter } from '../schedule/instants.js';
import type { Policy } from '../config/schema.js';
import type { Store } from '../store/store.js';
import { DeadlineTimer, type ClockJump } from '../schedule/timer.js';
import { type Clock } from '../clock.js';
import { errorMessage } from '../errors.js';
import { Emitter } from '../events.js';

/** 1 m, 5 m, 15 m, 1 h, then every 6 h — until the next day's digest, which reports the failure. */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [60_000, 300_000, 900_000, 3_600_000, 21_600_000];

export interface DigestServiceDeps {
  store: Store;
  paths: HomePaths;
  getJobs(): Map<string, Job>;
  getPolicy(): Policy;
  getKill(): KillState;
  clock: Clock;
  log: Logger;
  /** Heal outcomes in the window, once the heal loop exists. */
  getHeals?: (w: DigestWindow) => HealLine[];
  /** The spec files invalid now (LiveConfig): the digest names them and the versions that run. */
  getConfig?: () => ConfigState;
  /** Delays between send attempts; the last one repeats. */
  retryDelaysMs?: readonly number[];
  mailTimeoutMs?: number;
}

export interface DigestRunResult {
  date: string;
  verdict: string;
  text: string;
  html: string;
  /** What needs a person, as the headline counts it (the one count: the CLI's exit code reads it too). */
  needsYou: number;
  /** The .md file, or null when it could not be written (the row in SQLite still has the text). */
  file: string | null;
  sent: boolean;
  /** Why it was not sent; null when sent or when sending was not asked for. */
  error: string | null;
  nextAttemptAt: number | null;
}

export function digestsDir(paths: HomePaths): string {
  return join(paths.state, 'digests');
}

export function digestFile(paths: HomePaths, date: string): string {
  return join(digestsDir(paths), `${date}.md`);
}

export function digestSubject(date: string, verdict: string): string {
  return `nightshift ${date}: ${verdict}`;
}

type Key = 'digest' | `retry:${string}`;

/** What the digest service tells the others. */
export type DigestEvents = {
  /** A day's digest was handled (sent, or queued for a retry): the daemon kicks the deadman. */
  handled: DigestRunResult;
};

export class DigestService {
  readonly events: Emitter<DigestEvents>;
  private readonly timer: DeadlineTimer<Key>;
  private readonly delays: readonly number[];
  /** One piece of work per date at a time: a retry never races the day's first send. */
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private running = false;
  private stopping: Promise<void> | null = null;
  private lastDigestConfig = '';

  constructor(private readonly deps: DigestServiceDeps) {
    this.events = new Emitter((err, event) => deps.log.error({ event, err: errorMessage(err) }, 'a listener of the digest failed'));
    this.delays = deps.retryDelaysMs?.length ? deps.retryDelaysMs : DEFAULT_RETRY_DELAYS_MS;
    this.timer = new DeadlineTimer<Key>(
      (key, at) => this.due(key, at),
      deps.clock,
      (err, key) => deps.log.error({ err: errorMessage(err), key }, 'digest timer callback failed'),
      (jump) => this.clockJumped(jump),
    );
    // Nothing is armed before start(): a CLI that only calls runFor must be able to exit.
    this.timer.stop();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopping = null;
    this.timer.start();
    this.lastDigestConfig = this.digestConfigKey();
    this.arm();
    this.catchUp();
    try {
      for (const d of this.deps.store.digests.unsent()) {
        if (d.next_attempt_at !== null) this.timer.set(`retry:${d.date}`, d.next_attempt_at);
      }
    } catch (err) {
      this.deps.log.error({ err: errorMessage(err) }, 'could not read unsent digests; their retries resume at the next start');
    }
  }

  /** The digest time, zone or mail settings may have changed. */
  policyChanged(): void {
    if (!this.running) return;
    this.arm();
    this.catchUp();
    const key = this.digestConfigKey();
    if (key === this.lastDigestConfig) return;
    this.lastDigestConfig = key;
    // New mail settings are worth trying at once, also for a digest that had no way to be sent:
    // every failed digest whose day is not over yet (the next digest reports the older ones).
    try {
      const policy = this.deps.getPolicy();
      const now = this.deps.clock.now();
      for (const d of this.deps.store.digests.unsent()) {
        if (d.last_error !== null && (d.next_attempt_at !== null || digestInstant(policy, addDays(d.date, 1)) > now)) {
          this.timer.set(`retry:${d.date}`, now);
        }
      }
    } catch (err) {
      this.deps.log.error({ err: errorMessage(err) }, 'could not read unsent digests');
    }
  }

  /**
   * The wall clock stepped: retries keep their delay in real time; the digest time is a time of
   * day, so it is worked out again from the new time, and a forward step over it is handled like
   * downtime (today's digest goes out now if it has not). Backward, the digest rows by date keep
   * a day's digest from going out twice.
   */
  private clockJumped(jump: ClockJump): void {
    if (!this.running) return;
    for (const key of this.timer.keys()) {
      const at = this.timer.get(key);
      if (key !== 'digest' && at !== undefined) this.timer.set(key, at + jump.deltaMs);
    }
    this.arm();
    if (jump.deltaMs > 0) this.catchUp();
  }

  /** When the next day's digest is due (epoch ms), for status. */
  nextDigestAt(): number | null {
    return this.timer.get('digest') ?? null;
  }

  stop(): Promise<void> {
    if (!this.stopping) {
      this.running = false;
      this.timer.stop();
      this.stopping = this.idle();
    }
    return this.stopping;
  }

  /** Resolves when no digest work is under way (a send is bounded by the mail timeout). */
  async idle(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  /**
   * Composes the digest of `date`, writes the .md file, stores the row and, when asked, sends
   * it (an explicit send goes out even if this date was sent before). A failed send resolves
   * with the error (and a stored next attempt, which a started service or the next start takes
   * up); it rejects only when the digest cannot be composed or stored.
   */
  runFor(date: string, opts: { send: boolean }): Promise<DigestRunResult> {
    return this.track(this.serial(date, () => this.produce(date, opts.send)));
  }

  // ---- scheduling ----

  private digestConfigKey(): string {
    try {
      return JSON.stringify(this.deps.getPolicy().digest);
    } catch {
      return '';
    }
  }

  private arm(): void {
    try {
      const at = nextAfter(digestSchedule(this.deps.getPolicy()), this.deps.clock.now());
      if (at === null) this.timer.delete('digest');
      else this.timer.set('digest', at);
    } catch (err) {
      this.deps.log.error(
        { err: errorMessage(err) },
        'could not work out the next digest time; no digest is scheduled until the policy is fixed',
      );
    }
  }

  /** A daemon that was down at digest time sends today's digest when it comes back. */
  private catchUp(): void {
    try {
      const policy = this.deps.getPolicy();
      const now = this.deps.clock.now();
      const today = digestDate(digestZone(policy), now);
      // Days the daemon was down for entirely get their digest too (up to a week back), from the
      // day after the newest digest on record; a first start only looks at today.
      const newest = this.deps.store.digests.newestDate();
      const days: string[] = [];
      if (newest !== null && newest < today) {
        for (let d = addDays(newest, 1); d < today && days.length < 7; d = addDays(d, 1)) days.push(d);
      }
      days.push(today);
      for (const date of days.slice(-8)) {
        if (now < digestInstant(policy, date)) continue;
        const row = this.deps.store.digests.get(date);
        // attempts 0 and unsent: composed (a crash before sending, or only printed), never tried.
        if (row && (row.sent_at !== null || row.attempts > 0)) continue;
        this.deps.log.info({ date }, 'the digest time has passed without a digest for this day: composing it now');
        this.scheduled(date);
      }
    } catch (err) {
      this.deps.log.error({ err: errorMessage(err) }, "could not check whether today's digest is missing");
    }
  }

  private due(key: Key, at: number): void {
    if (!this.running) return;
    if (key === 'digest') {
      // From `at`, not only now: a timer firing a millisecond early must not find the same instant again.
      const policy = this.deps.getPolicy();
      const next = nextAfter(digestSchedule(policy), Math.max(at, this.deps.clock.now()));
      if (next !== null) this.timer.set('digest', next);
      const date = digestDate(digestZone(policy), at);
      const row = this.deps.store.digests.get(date);
      // A digest composed before its time (nightshift digest --send at 06:00 for a 07:00 digest)
      // does not cover the whole day: the scheduled one goes out anyway. A retry the daemon has no
      // timer for (queued by the CLI) is taken over here too.
      const early = row !== undefined && row.created_at < at;
      const orphanRetry =
        row !== undefined && row.sent_at === null && row.next_attempt_at !== null && !this.timer.get(`retry:${date}` as Key);
      if (row && !early && !orphanRetry && (row.sent_at !== null || row.next_attempt_at !== null)) {
        this.deps.log.info(
          { date },
          row.sent_at !== null ? 'digest already sent for this date' : 'digest for this date is already being retried',
        );
        return;
      }
      this.scheduled(date);
    } else {
      const date = key.slice('retry:'.length);
      void this.track(this.serial(date, () => this.retry(date)));
    }
  }

  private scheduled(date: string): void {
    void this.track(
      this.serial(date, async () => {
        let r: DigestRunResult;
        try {
          r = await this.produce(date, true);
        } catch (err) {
          this.deps.log.error(
            { err: errorMessage(err), date },
            `the digest of ${date} could not be composed or stored; once the cause is fixed, run: nightshift digest --date ${date} --send`,
          );
          return;
        }
        this.events.emit('handled', r);
        return r;
      }),
    );
  }

  private serial<T>(date: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(date) ?? Promise.resolve();
    const p = prev.then(fn, fn);
    const tail = p.catch(() => {});
    this.chains.set(date, tail);
    void tail.then(() => {
      if (this.chains.get(date) === tail) this.chains.delete(date);
    });
    return p;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    const forget = (): void => {
      this.inFlight.delete(p);
    };
    p.then(forget, (err: unknown) => {
      forget();
      this.deps.log.error({ err: errorMessage(err) }, 'digest work failed');
    });
    return p;
  }

  // ---- the work ----

  private async produce(date: string, send: boolean): Promise<DigestRunResult> {
    const { store, log, paths } = this.deps;
    const policy = this.deps.getPolicy();
    const now = this.deps.clock.now();
    const window = digestWindow(policy, date);
    const jobs = this.deps.getJobs();
    const d = composeDigest({
      facts: digestFacts(store, window, jobs.keys()),
      jobs,
      policy,
      kill: this.deps.getKill(),
      date,
      window,
      now,
      heals: this.deps.getHeals?.(window) ?? [],
      containment: containment(),
      config: this.deps.getConfig?.(),
    });
    let file: string | null = digestFile(paths, date);
    try {
      mkdirSync(digestsDir(paths), { recursive: true });
      const tmp = `${file}.tmp-${process.pid}`;
      writeFileSync(tmp, d.text, { mode: 0o640 });
      renameSync(tmp, file);
    } catch (err) {
      log.error({ err: errorMessage(err), file }, 'could not write the digest file; the digest is still stored in the database and sent');
      file = null;
    }
    store.digests.save({ date, createdAt: now, verdict: d.verdict, text: d.text, html: d.html });
    log.info({ date, verdict: d.verdict, file }, 'digest written');
    const base = { date, verdict: d.verdict, text: d.text, html: d.html, needsYou: d.needsYou, file };
    if (!send) return { ...base, sent: false, error: null, nextAttemptAt: null };
    return { ...base, ...(await this.deliver(date, d.verdict, d.text, d.html)) };
  }

  private async retry(date: string): Promise<void> {
    const row = this.deps.store.digests.get(date);
    if (!row || row.sent_at !== null) return;
    this.deps.log.info({ date, attempt: row.attempts + 1 }, 'retrying the digest e-mail');
    // The text as it was written that day: a retry delivers that day's digest, not a new one.
    await this.deliver(date, row.verdict, row.body_text, row.body_html);
  }

  private async deliver(
    date: string,
    verdict: string,
    text: string,
    html: string,
  ): Promise<Pick<DigestRunResult, 'sent' | 'error' | 'nextAttemptAt'>> {
    const { store, log } = this.deps;
    const policy = this.deps.getPolicy();
    const r = await sendDigestMail(
      policy.digest,
      { subject: digestSubject(date, verdict), text, html },
      { timeoutMs: this.deps.mailTimeoutMs, leash: leashFor(this.deps.paths, policy) },
    );
    const now = this.deps.clock.now();
    if (r.ok) {
      store.digests.markSent(date, now);
      this.timer.delete(`retry:${date}`);
      log.info({ date, via: r.via, to: r.accepted, messageId: r.messageId }, 'digest sent');
      return { sent: true, error: null, nextAttemptAt: null };
    }
    if (r.notConfigured && policy.digest.to.length === 0) {
      // Reading the digest from the folder is a choice, not a failure to report every day.
      log.info({ date }, `digest not e-mailed: ${r.error}`);
      return { sent: false, error: r.error, nextAttemptAt: null };
    }
    const attempts = (store.digests.get(date)?.attempts ?? 0) + 1;
    // A missing transport will not fix itself; a policy change retries at once (policyChanged).
    const next = r.notConfigured ? null : this.nextAttempt(policy, date, attempts, now);
    store.digests.markFailed(date, r.error, next);
    if (next !== null && this.running) this.timer.set(`retry:${date}`, next);
    else this.timer.delete(`retry:${date}`);
    const tz = digestZone(policy);
    const then = next !== null ? `trying again at ${formatInstant(next, tz)}` : 'no more attempts; the next digest reports it';
    log.error({ date, via: r.via, attempts, nextAttemptAt: next }, `${r.error} (attempt ${attempts}; ${then})`);
    return { sent: false, error: r.error, nextAttemptAt: next };
  }

  private nextAttempt(policy: Policy, date: string, attempts: number, now: number): number | null {
    const delay = this.delays[Math.min(attempts - 1, this.delays.length - 1)]!;
    const next = now + delay;
    let cutoff: number;
    try {
      cutoff = digestInstant(policy, addDays(date, 1));
    } catch {
      return null;
    }
    return next < cutoff ? next : null;
  }
}
