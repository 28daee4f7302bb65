// The home as the daemon runs it: the jobs, rules and policy in force, and the problems of the
// files as they are on disk now. A changed file is applied here; an invalid one is reported with
// FILE:LINE and the last good version stays in force (for a job, across restarts too: its last
// good text is kept in the store). What changed is told to the others as events; the daemon
// decides what follows (re-planning, the watchdog, the kill switch, the heal loop).
import { createHash } from 'node:crypto';
import { basename, dirname, extname, resolve } from 'node:path';
import type { Clock } from '../clock.js';
import { errorMessage } from '../errors.js';
import { Emitter } from '../events.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/store.js';
import {
  checkDependencies,
  checkRuleTouches,
  compileJob,
  loadHome,
  loadJobFile,
  loadPolicyFile,
  loadRuleFile,
  policyInvalidSentence,
  restoreLastGood,
  type Job,
  type LastGood,
  type LoadedRule,
} from './home.js';
import { formatProblem, type SpecProblem } from './parse.js';
import type { HomePaths } from './paths.js';
import type { Policy } from './schema.js';

export type ConfigEvents = {
  /** A job file was added or changed and is valid (`prev`: the version it replaces). */
  'job-changed': { job: Job; prev: Job | undefined };
  'job-removed': { name: string; file: string };
  /** A job without a time zone of its own follows the policy's, which changed. */
  'job-retimed': Job;
  /** The policy was reloaded (ok), or is invalid or deleted now (not ok: autonomous actions halt). */
  'policy-changed': { ok: boolean; wasOk: boolean };
  /** A rule was added, changed or removed. */
  'rules-changed': { name: string };
};

export interface LiveConfigDeps {
  paths: HomePaths;
  log: Logger;
  clock: Clock;
  store: Store;
}

/** The policy's last good text is kept beside the jobs' (spec_cache), under the name "policy". */
const policyEntry = (file: string, text: string) => ({ file, name: 'policy', text, hash: createHash('sha256').update(text).digest('hex') });

export class LiveConfig {
  jobs = new Map<string, Job>();
  rules = new Map<string, LoadedRule>();
  policy!: Policy;
  /** False while the policy file is invalid or was deleted: fail closed to action. */
  policyOk = true;
  private policySeen = false;
  /** Problems of files as they are now on disk, by file; the last good version keeps running. */
  private readonly problems = new Map<string, SpecProblem[]>();
  readonly events: Emitter<ConfigEvents>;

  constructor(private readonly deps: LiveConfigDeps) {
    this.events = new Emitter((err, event) => deps.log.error({ event, err: errorMessage(err) }, 'applying a configuration change failed'));
  }

  /** Loads the whole home at start; a job file invalid now runs as its last good version. */
  load(): void {
    const { log, store, paths } = this.deps;
    const home = loadHome(paths);
    this.policy = home.policy;
    this.policyOk = home.policyOk;
    this.policySeen = !home.policyMissing;
    this.rules = home.rules;
    for (const p of home.problems) this.addProblem(p);
    for (const p of home.problems) log.error({ file: p.file, line: p.line, field: p.field }, `invalid spec: ${formatProblem(p)}`);
    // Only the files valid now are saved as their last good version.
    store.specs.save(
      [
        ...[...home.jobs.values()].map((j) => ({ file: j.file, name: j.name, text: home.jobTexts.get(j.file)!, hash: j.hash })),
        ...(home.policyText !== null ? [policyEntry(paths.policyFile, home.policyText)] : []),
      ],
      this.deps.clock.now(),
    );
    restoreLastGood(home, (file) => store.specs.get(file));
    this.policy = home.policy;
    this.policyOk = home.policyOk;
    if (home.lastGoodPolicy) this.policySeen = true;
    if (!home.policyOk && !this.problems.has(paths.policyFile))
      for (const p of home.problems.filter((q) => q.file === paths.policyFile)) this.addProblem(p);
    if (!home.policyOk) log.warn({ file: paths.policyFile }, policyInvalidSentence(paths.policyFile));
    for (const g of home.lastGood.values()) {
      const at = new Date(g.savedAt).toISOString();
      log.warn(
        { job: g.job, file: g.file, savedAt: at },
        `${g.file} is invalid; running its last good version (from ${at}) until it is fixed`,
      );
    }
    this.jobs = new Map(home.jobs);
    for (const w of home.warnings) log.warn({ file: w.file }, formatProblem(w));
  }

  problemList(): SpecProblem[] {
    return [...this.problems.values()].flat();
  }

  /** Applies one changed file. An invalid file is reported and the last good version stays in force. */
  apply(file: string, removed: boolean): void {
    const { paths, log } = this.deps;
    const dir = dirname(resolve(file));
    try {
      if (resolve(file) === paths.policyFile) return this.applyPolicy();
      if (dir === paths.rulesDir) return this.applyRule(file, removed);
      if (dir === paths.jobsDir) return this.applyJob(file, removed);
    } catch (err) {
      log.error({ file, err: errorMessage(err) }, 'reloading a spec failed; the previous version stays in force');
    }
  }

  /**
   * Jobs whose file is invalid now and that run as their last good version: at start (restored
   * from the store) and since (a file broken while the daemon ran keeps its version in force).
   */
  lastGood(): LastGood[] {
    const out: LastGood[] = [];
    for (const file of this.problems.keys()) {
      const job = this.jobs.get(basename(file, extname(file)));
      if (!job || job.file !== file) continue;
      out.push({ job: job.name, file, savedAt: this.deps.store.specs.get(file)?.saved_at ?? 0 });
    }
    return out;
  }

  private addProblem(p: SpecProblem): void {
    const list = this.problems.get(p.file) ?? [];
    list.push(p);
    this.problems.set(p.file, list);
  }

  private applyJob(file: string, removed: boolean): void {
    const { log, store } = this.deps;
    this.problems.delete(file);
    const name = basename(file, extname(file));
    if (removed) {
      const job = this.jobs.get(name);
      if (job && job.file === file) {
        // What can fail first: a failure leaves the job as it was, as the log then says.
        store.specs.forget(file);
        this.jobs.delete(name);
        this.events.emit('job-removed', { name, file });
      }
      return;
    }
    const r = loadJobFile(file, this.deps.paths.home, this.policy);
    if (!r.ok) {
      for (const p of r.problems) this.addProblem(p);
      const kept = this.jobs.has(name) ? '; the last good version keeps running' : '';
      for (const p of r.problems) log.error({ job: name, file, line: p.line, field: p.field }, `invalid spec: ${formatProblem(p)}${kept}`);
      return;
    }
    const job = r.value;
    const prev = this.jobs.get(name);
    if (prev && prev.file !== file) {
      const p: SpecProblem = { file, line: 1, field: 'name', message: `duplicate job name "${name}": ${prev.file} already defines it` };
      this.addProblem(p);
      log.error({ job: name, file }, formatProblem(p));
      return;
    }
    const next = new Map(this.jobs);
    next.set(name, job);
    const depProblems = checkDependencies(next, new Map([[name, r.text]]), name).filter((p) => p.file === file);
    if (depProblems.length) {
      for (const p of depProblems) {
        this.addProblem(p);
        log.error({ job: name, file }, `invalid spec: ${formatProblem(p)}`);
      }
      return;
    }
    if (prev && prev.hash === job.hash) return;
    // What can fail first (a full disk, a locked database): a failure leaves the previous
    // version in force, as the log then says.
    store.specs.save([{ file, name, text: r.text, hash: job.hash }], this.deps.clock.now());
    store.jobStates.ensure(name, this.deps.clock.now());
    this.jobs.set(name, job);
    this.events.emit('job-changed', { job, prev });
  }

  private applyPolicy(): void {
    const { paths, log } = this.deps;
    this.problems.delete(paths.policyFile);
    const loaded = loadPolicyFile(paths.policyFile);
    // A policy that was there and is gone is ambiguous, not "defaults": the kill switch it named
    // may be on. Fail closed until it is back.
    const r: typeof loaded =
      loaded.ok && loaded.missing && this.policySeen
        ? {
            ok: false,
            problems: [
              {
                file: paths.policyFile,
                line: 1,
                field: '',
                message: 'the policy file was deleted; autonomous actions are halted until it is restored',
              },
            ],
          }
        : loaded;
    if (loaded.ok && !loaded.missing) this.policySeen = true;
    if (!r.ok) {
      const wasOk = this.policyOk;
      this.policyOk = false;
      for (const p of r.problems) this.addProblem(p);
      for (const p of r.problems) log.error({ file: p.file, line: p.line }, `invalid policy: ${formatProblem(p)}`);
      log.warn({ file: paths.policyFile }, policyInvalidSentence(paths.policyFile));
      this.events.emit('policy-changed', { ok: false, wasOk });
      return;
    }
    // What can fail first (a full disk): a failure leaves the previous policy in force, as the log says.
    if (!r.missing) this.deps.store.specs.save([policyEntry(paths.policyFile, r.text)], this.deps.clock.now());
    const wasOk = this.policyOk;
    this.policyOk = true;
    this.policy = r.value;
    // Time zones of jobs without their own follow the policy: recompile them.
    for (const [name, job] of this.jobs) {
      const again = compileJob(name, job.file, job.home, job.spec, this.policy, job.hash, job.account);
      if (again.timezone !== job.timezone) {
        this.jobs.set(name, again);
        this.events.emit('job-retimed', again);
      }
    }
    this.events.emit('policy-changed', { ok: true, wasOk });
  }

  private applyRule(file: string, removed: boolean): void {
    this.problems.delete(file);
    const name = basename(file, extname(file));
    if (removed) {
      if (this.rules.get(name)?.file === file) this.rules.delete(name);
      this.events.emit('rules-changed', { name });
      return;
    }
    const loaded = loadRuleFile(file);
    const touchProblems = loaded.ok ? checkRuleTouches(loaded.value, loaded.text, this.deps.paths, this.policy) : [];
    const r: typeof loaded = loaded.ok && touchProblems.length ? { ok: false, problems: touchProblems } : loaded;
    if (!r.ok) {
      for (const p of r.problems) this.addProblem(p);
      const kept = this.rules.has(name) ? '; the last good version stays in force' : '';
      for (const p of r.problems) this.deps.log.error({ file, line: p.line }, `invalid rule: ${formatProblem(p)}${kept}`);
      return;
    }
    const prev = this.rules.get(name);
    this.rules.set(name, r.value);
    if (prev?.hash === r.value.hash) return;
    this.deps.log.info({ rule: name, file }, prev ? 'rule changed' : 'rule loaded');
    // A human's edit ends a demotion (the ladder row keeps the hash it was made for), and open
    // alerts waiting for a person may now have a rule.
    this.events.emit('rules-changed', { name });
  }
}
