// A home is a folder of job specs, rules and a policy. This module turns its files into checked,
// compiled objects — or into FILE:LINE problems — and never half of each.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { nameProblem } from '../names.js';
import type { Schedule } from '../schedule/instants.js';
import { AT_BOOT, JobSpecSchema, PolicySchema, RuleSchema, type JobSpec, type Policy, type Rule } from './schema.js';
import { lineOfPath, parseSpecText, type SpecProblem } from './parse.js';
import { systemTimeZone } from '../schedule/timezone.js';
import { globMatch } from '../glob.js';
import { accountFor, type Account } from '../run/account.js';
import { guardTouches, protectedZone, type Zone } from './zone.js';
import type { HomePaths } from './paths.js';
import { errorMessage, errorCode } from '../errors.js';

export interface Job {
  name: string;
  file: string;
  home: string;
  spec: JobSpec;
  /** null: runs only when asked (`nightshift run`), at boot (`atBoot`), or, for external jobs, only pings. */
  schedule: Schedule | null;
  /** `schedule: "@reboot"`: runs once after each boot of the machine. */
  atBoot: boolean;
  /** `user:` of another account (null: runs as nightshift's own account). Looked up when the file is loaded. */
  account: Account | null;
  timezone: string;
  /** Absolute working directory, if the spec sets one. */
  cwd: string | undefined;
  /** nightshift starts it itself (command or shell); otherwise something else runs it and pings. */
  managed: boolean;
  /**
   * A managed job that proves life while it runs (a worker, an agent loop): it has heartbeat.file,
   * and every touch of that file counts as a success. A `rerun` of it is done once the new run is
   * under way, and the watchdog judges that run as any other (the heal does not wait for its end).
   */
  longRunning: boolean;
  /** sha256 of the spec text: a changed file with the same content is not a change. */
  hash: string;
}

export interface LoadedRule {
  name: string;
  file: string;
  rule: Rule;
  hash: string;
}

export const SPEC_EXTENSIONS = ['.yaml', '.yml'];

export function isSpecFile(path: string): boolean {
  const b = basename(path);
  return !b.startsWith('.') && SPEC_EXTENSIONS.includes(extname(b));
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function effectiveTimeZone(spec: JobSpec, policy: Policy): string {
  return spec.timezone ?? policy.timezone ?? systemTimeZone();
}

export function compileJob(
  name: string,
  file: string,
  home: string,
  spec: JobSpec,
  policy: Policy,
  hash: string,
  account: Account | null = null,
): Job {
  const timezone = effectiveTimeZone(spec, policy);
  const managed = spec.command !== undefined || spec.shell !== undefined;
  let schedule: Schedule | null = null;
  if (spec.schedule && spec.schedule !== AT_BOOT) schedule = { kind: 'cron', expr: spec.schedule, tz: timezone };
  else if (spec.every !== undefined) schedule = { kind: 'every', ms: spec.every };
  return {
    name,
    file,
    home,
    spec,
    schedule,
    atBoot: spec.schedule === AT_BOOT,
    account,
    timezone,
    // A job of another account starts in that account's HOME, as cron starts it.
    cwd: spec.cwd === undefined ? account?.home : isAbsolute(spec.cwd) ? spec.cwd : resolve(home, spec.cwd),
    managed,
    longRunning: managed && spec.heartbeat?.file !== undefined,
    hash,
  };
}

export type FileResult<T> = { ok: true; value: T; text: string } | { ok: false; problems: SpecProblem[] };

/**
 * A spec file is a few hundred bytes. One of megabytes is a mistake or an attack (a 10 MB value
 * once overflowed the YAML reader's stack, in validate and in the daemon's start): refused before
 * it is parsed, like any invalid spec (the last good version stays in force).
 */
export const MAX_SPEC_BYTES = 256 * 1024;

function readText(file: string): { text: string } | { problem: SpecProblem } {
  let buf: Buffer;
  try {
    const st = statSync(file);
    // A named pipe or a device (a link to /dev/zero) would block the read, or never end.
    if (!st.isFile())
      return {
        problem: { file, line: 1, field: '', message: 'is not a regular file (a pipe, a device or a folder); a spec is a plain text file' },
      };
    const size = st.size;
    if (size > MAX_SPEC_BYTES) {
      return {
        problem: {
          file,
          line: 1,
          field: '',
          message: `the file is ${size} bytes; a spec may be at most ${MAX_SPEC_BYTES} bytes (${MAX_SPEC_BYTES / 1024} KiB)`,
        },
      };
    }
    buf = readFileSync(file);
  } catch (err) {
    const code = errorCode(err);
    return { problem: { file, line: 1, field: '', message: `cannot read the file (${code ?? errorMessage(err)})` } };
  }
  if (buf.length > MAX_SPEC_BYTES)
    return {
      problem: {
        file,
        line: 1,
        field: '',
        message: `the file is over ${MAX_SPEC_BYTES} bytes; a spec may be at most ${MAX_SPEC_BYTES / 1024} KiB`,
      },
    };
  // Decoded leniently, a byte that is not UTF-8 would become U+FFFD — in a command's argv.
  const bad = firstInvalidUtf8(buf);
  if (bad !== -1) {
    const line = buf.subarray(0, bad).reduce((n, b) => (b === 0x0a ? n + 1 : n), 1);
    return {
      problem: {
        file,
        line,
        field: '',
        message: `byte ${bad} is not valid UTF-8 (0x${buf[bad]!.toString(16).padStart(2, '0')}); save the file as UTF-8`,
      },
    };
  }
  return { text: buf.toString('utf8') };
}

/** The offset of the first byte that does not belong to a well-formed UTF-8 sequence, or -1. */
export function firstInvalidUtf8(buf: Uint8Array): number {
  for (let i = 0; i < buf.length;) {
    const b = buf[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    // Lead byte: how many continuation bytes, and the range the first one must lie in (no
    // overlong forms, no surrogates, nothing above U+10FFFF).
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) n = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      n = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= n; k++) {
      const c = buf[i + k];
      if (c === undefined) return i;
      if (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf) return i;
    }
    i += n + 1;
  }
  return -1;
}

function nameFromFile(file: string): { name: string } | { problem: SpecProblem } {
  const name = basename(file, extname(file));
  const bad = nameProblem(name);
  if (bad) return { problem: { file, line: 1, field: 'name', message: `${bad} (the name is the file name without .yaml)` } };
  return { name };
}

export function loadJobFile(file: string, home: string, policy: Policy): FileResult<Job> {
  const r = readText(file);
  if ('problem' in r) return { ok: false, problems: [r.problem] };
  return jobFromText(file, r.text, home, policy);
}

/** A job from the text of its spec (a file just read, or the last good version kept in SQLite). */
export function jobFromText(file: string, text: string, home: string, policy: Policy): FileResult<Job> {
  const n = nameFromFile(file);
  if ('problem' in n) return { ok: false, problems: [n.problem] };
  const parsed = parseSpecText(file, text, JobSpecSchema);
  if (!parsed.ok) return parsed;
  let account: Account | null = null;
  if (parsed.value.user !== undefined) {
    const a = accountFor(parsed.value.user);
    if ('problem' in a) return { ok: false, problems: [{ file, line: lineOfPath(text, ['user']), field: 'user', message: a.problem }] };
    account = a.account;
  }
  return { ok: true, value: compileJob(n.name, file, home, parsed.value, policy, sha256(text), account), text };
}

export function loadRuleFile(file: string): FileResult<LoadedRule> {
  const n = nameFromFile(file);
  if ('problem' in n) return { ok: false, problems: [n.problem] };
  const r = readText(file);
  if ('problem' in r) return { ok: false, problems: [r.problem] };
  const parsed = parseSpecText(file, r.text, RuleSchema);
  if (!parsed.ok) return parsed;
  return { ok: true, value: { name: n.name, file, rule: parsed.value, hash: sha256(r.text) }, text: r.text };
}

export const DEFAULT_POLICY: Policy = PolicySchema.parse({});

/** The digest's sender when digest.from is not set. */
export function defaultSender(): string {
  return `nightshift@${hostname()}`;
}

/**
 * Valid, but a sure way to lose the digest: without digest.from the mail comes from
 * nightshift@<this host's name>, a domain most mail servers refuse or file as spam. A warning,
 * not a problem: a policy that was valid stays valid.
 */
/** Whether `file` is the spec file of job `name` (jobs/NAME.yaml or .yml), not a rule or the policy of that name. */
export function isJobFileOf(jobsDir: string, file: string, name: string): boolean {
  return dirname(file) === jobsDir && (basename(file) === `${name}.yaml` || basename(file) === `${name}.yml`);
}

export function policyWarnings(file: string, policy: Policy, text: string): SpecProblem[] {
  const { digest } = policy;
  // Only when a mail would go out: with no recipient nothing is sent from anyone.
  if (digest.from !== undefined || (!digest.smtp && !digest.sendmail) || digest.to.length === 0) return [];
  return [
    {
      file,
      line: lineOfPath(text, ['digest']),
      field: 'digest.from',
      message: `not set, so the digest is sent from ${defaultSender()}, which most mail servers refuse or file as spam; set digest.from in policy.yaml to an address your mail server accepts for this machine (e.g. from: "nightshift@your-domain.example")`,
    },
  ];
}

/** A missing policy file means defaults; an unreadable or invalid one is a problem (and fails closed for actions). */
export function loadPolicyFile(file: string): FileResult<Policy> & { missing?: boolean } {
  if (!existsSync(file)) return { ok: true, value: DEFAULT_POLICY, text: '', missing: true };
  const r = readText(file);
  if ('problem' in r) return { ok: false, problems: [r.problem] };
  const parsed = parseSpecText(file, r.text, PolicySchema);
  if (!parsed.ok) return parsed;
  return { ok: true, value: parsed.value, text: r.text };
}

export function listSpecFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries
    .filter(isSpecFile)
    .sort()
    .map((e) => join(dir, e));
}

export interface LoadedHome {
  paths: HomePaths;
  policy: Policy;
  policyOk: boolean;
  policyMissing: boolean;
  jobs: Map<string, Job>;
  /** The text of each valid job file, by file. */
  jobTexts: Map<string, string>;
  rules: Map<string, LoadedRule>;
  problems: SpecProblem[];
  warnings: SpecProblem[];
  /** Jobs whose file is invalid now and that run as their last good version (restoreLastGood). */
  lastGood: Map<string, LastGood>;
  /** The text of the policy file when it is there and valid (kept as its last good version). */
  policyText: string | null;
  /** When the policy file is invalid and its last good version is in force: when that was saved. */
  lastGoodPolicy: { savedAt: number } | null;
}

/** The one sentence said in the log, status and the digest while the policy file is invalid (law 3). */
export function policyInvalidSentence(policyFile: string): string {
  return `${policyFile} is invalid: the last good policy keeps scheduling and the digest, and every autonomous action (fixes, brains, agent jobs) is stopped until the file is valid again`;
}

/** A job whose file is invalid now: it runs as the last valid text of that file, saved at `savedAt`. */
export interface LastGood {
  job: string;
  file: string;
  savedAt: number;
}

/** The last valid text of a job file, as the daemon keeps it (store/specs.ts). */
export type LastGoodLookup = (file: string) => { text: string; saved_at: number } | undefined;

/**
 * An invalid edit never replaces a job: each job file invalid now is put back as its last valid
 * text (kept in SQLite by the daemon) and named in `home.lastGood`. The daemon at start and every
 * reading command go through here, so all of them show the jobs that really run.
 */
export function restoreLastGood(home: LoadedHome, lookup: LastGoodLookup): void {
  const policy = home.policyOk && !home.policyMissing ? undefined : lookup(home.paths.policyFile);
  const parsed = policy ? parseSpecText(home.paths.policyFile, policy.text, PolicySchema) : undefined;
  if (policy && parsed?.ok) {
    // A policy that was there and is gone is not "the defaults": the kill switch it named may be
    // on. As when it is deleted while nightshift runs: fail closed until it is back (law 3).
    if (home.policyMissing) {
      home.policyOk = false;
      home.policyMissing = false;
      home.problems.push({
        file: home.paths.policyFile,
        line: 1,
        field: '',
        message: 'the policy file was deleted; autonomous actions are halted until it is restored',
      });
    }
    home.policy = parsed.value;
    home.lastGoodPolicy = { savedAt: policy.saved_at };
    // Jobs without a time zone of their own follow the policy's.
    for (const [name, job] of home.jobs)
      home.jobs.set(name, compileJob(name, job.file, job.home, job.spec, home.policy, job.hash, job.account));
  }
  const files = new Set(home.problems.map((p) => p.file).filter((f) => resolve(f, '..') === home.paths.jobsDir));
  for (const file of files) {
    const cached = lookup(file);
    if (!cached) continue;
    const r = jobFromText(file, cached.text, home.paths.home, home.policy);
    if (!r.ok || home.jobs.has(r.value.name)) continue;
    home.jobs.set(r.value.name, r.value);
    home.lastGood.set(r.value.name, { job: r.value.name, file, savedAt: cached.saved_at });
  }
}

/** Loads every file of a home; a bad file is reported and left out, the rest loads. */
export function loadHome(paths: HomePaths): LoadedHome {
  const problems: SpecProblem[] = [];
  const warnings: SpecProblem[] = [];
  const pol = loadPolicyFile(paths.policyFile);
  const policy = pol.ok ? pol.value : DEFAULT_POLICY;
  if (!pol.ok) problems.push(...pol.problems);
  else if (!pol.missing) warnings.push(...policyWarnings(paths.policyFile, pol.value, pol.text));
  if (!existsSync(paths.jobsDir))
    warnings.push({ file: paths.jobsDir, line: 1, field: '', message: 'the jobs folder does not exist; no jobs loaded' });

  const texts = new Map<string, string>();
  const jobs = loadNamed(
    'job',
    listSpecFiles(paths.jobsDir),
    (f) => loadJobFile(f, paths.home, policy),
    problems,
    (r) => {
      texts.set(r.value.name, r.text);
      return [];
    },
  );
  problems.push(...checkDependencies(jobs, texts));
  warnings.push(...scheduleWarnings(jobs, texts));
  const rules = loadNamed('rule', listSpecFiles(paths.rulesDir), loadRuleFile, problems, (r) =>
    checkRuleTouches(r.value, r.text, paths, policy),
  );
  warnings.push(...ruleWarnings(rules.values(), jobs));
  problems.sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1));
  const jobTexts = new Map([...jobs.values()].map((j) => [j.file, texts.get(j.name)!]));
  return {
    paths,
    policy,
    policyOk: pol.ok,
    policyMissing: pol.ok && pol.missing === true,
    jobs,
    jobTexts,
    rules,
    problems,
    warnings,
    lastGood: new Map(),
    policyText: pol.ok && !pol.missing ? pol.text : null,
    lastGoodPolicy: null,
  };
}

/**
 * Loads spec files of one kind by name: a file with problems, or a second file with a name already
 * taken, is reported and left out. `check` may find more problems in a loaded one (it is left out
 * too) or keep what it needs from it.
 */
function loadNamed<T extends { name: string; file: string }>(
  kind: 'job' | 'rule',
  files: string[],
  load: (file: string) => FileResult<T>,
  problems: SpecProblem[],
  check: (r: { value: T; text: string }) => SpecProblem[],
): Map<string, T> {
  const out = new Map<string, T>();
  for (const file of files) {
    const r = load(file);
    if (!r.ok) {
      problems.push(...r.problems);
      continue;
    }
    const other = out.get(r.value.name);
    if (other) {
      problems.push({
        file,
        line: 1,
        field: 'name',
        message: `duplicate ${kind} name "${r.value.name}": ${other.file} already defines it`,
      });
      continue;
    }
    const more = check(r);
    if (more.length) {
      problems.push(...more);
      continue;
    }
    out.set(r.value.name, r.value);
  }
  return out;
}

/**
 * A rule may not name a protected path in `touches` (law 4), nor restart a unit the policy does not
 * list. Checked here so that `validate` refuses it with its line, and again right before every fix
 * (a symlink may appear; the policy may change).
 */
export function checkRuleTouches(
  rule: LoadedRule,
  text: string,
  paths: HomePaths,
  policy: Policy,
  zone: Zone = protectedZone(paths, policy),
): SpecProblem[] {
  const problems: SpecProblem[] = [];
  const unit = rule.rule.action.restart;
  if (unit !== undefined && !policy.restartUnits.includes(unit)) {
    problems.push({
      file: rule.file,
      line: lineOfPath(text, ['action', 'restart']),
      field: 'action.restart',
      message: `"${unit}" is not in the policy's restartUnits (${policy.restartUnits.join(', ') || 'none'}); list it there (and in the polkit rule, deploy/README.md) to let nightshift restart it`,
    });
  }
  rule.rule.action.touches.forEach((t, i) => {
    const g = guardTouches([t], paths.home, zone);
    if (!g.ok)
      problems.push({
        file: rule.file,
        line: lineOfPath(text, ['action', 'touches', i]),
        field: `action.touches[${i}]`,
        message: g.reason,
      });
  });
  return problems;
}

/**
 * A schedule Debian's crontab accepts is valid here too, even where it never runs or cron ignores
 * part of it ("2#3" is read as 2): said, so that the operator is not left to find out.
 */
export function scheduleWarnings(jobs: Map<string, Job>, texts?: Map<string, string>): SpecProblem[] {
  const out: SpecProblem[] = [];
  for (const job of jobs.values()) {
    if (job.schedule?.kind !== 'cron') continue;
    const { never, notes } = job.schedule.expr;
    if (never === null && notes.length === 0) continue;
    const line = lineOf(job, texts, ['schedule']);
    for (const note of notes) out.push({ file: job.file, line, field: 'schedule', message: note });
    if (never !== null)
      out.push({ file: job.file, line, field: 'schedule', message: `${never}; the job will never be started on schedule` });
  }
  return out;
}

/** A rule whose job glob matches no job is allowed (the job may come later), but said. */
export function ruleWarnings(rules: Iterable<LoadedRule>, jobs: Map<string, Job>): SpecProblem[] {
  const out: SpecProblem[] = [];
  for (const r of rules) {
    if ([...jobs.keys()].some((name) => globMatch(r.rule.match.job, name))) continue;
    // The line is a courtesy; the file is read under the same limits as when it was loaded.
    const read = readText(r.file);
    const line = 'text' in read ? lineOfPath(read.text, ['match', 'job']) : 1;
    out.push({
      file: r.file,
      line,
      field: 'match.job',
      message: `"${r.rule.match.job}" matches no job in jobs/ (yet); the rule applies once one does`,
    });
  }
  return out;
}

/** The line of a field in a job's spec (read from disk when the caller has no text at hand). */
function lineOf(job: Job, texts: Map<string, string> | undefined, path: Array<string | number>): number {
  let text = texts?.get(job.name);
  if (text === undefined) {
    const read = readText(job.file);
    if (!('text' in read)) return 1;
    text = read.text;
  }
  return lineOfPath(text, path);
}

/** dependsOn must name existing jobs, not the job itself, and form no cycle. */
export function checkDependencies(jobs: Map<string, Job>, texts?: Map<string, string>, only?: string): SpecProblem[] {
  const problems: SpecProblem[] = [];
  // A reload checks the changed job alone (and cycles through it): 10,000 jobs must not be re-read.
  const subjects = only !== undefined ? [jobs.get(only)].filter((j): j is Job => j !== undefined) : [...jobs.values()];
  for (const job of subjects) {
    (job.spec.dependsOn ?? []).forEach((dep, i) => {
      // The line is looked up only for a problem: it may mean re-reading the file.
      if (dep === job.name)
        problems.push({
          file: job.file,
          line: lineOf(job, texts, ['dependsOn', i]),
          field: `dependsOn[${i}]`,
          message: 'a job cannot depend on itself',
        });
      else if (!jobs.has(dep))
        problems.push({
          file: job.file,
          line: lineOf(job, texts, ['dependsOn', i]),
          field: `dependsOn[${i}]`,
          message: `no job named "${dep}" (jobs/${dep}.yaml does not exist)`,
        });
    });
  }
  // cycles: depth-first search with colours
  const colour = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (name: string): void => {
    colour.set(name, 1);
    stack.push(name);
    for (const dep of jobs.get(name)?.spec.dependsOn ?? []) {
      if (!jobs.has(dep) || dep === name) continue;
      if (colour.get(dep) === 1) {
        const cycle = [...stack.slice(stack.indexOf(dep)), dep].join(' -> ');
        const job = jobs.get(name)!;
        problems.push({
          file: job.file,
          line: lineOf(job, texts, ['dependsOn']),
          field: 'dependsOn',
          message: `dependency cycle: ${cycle}`,
        });
      } else if (!colour.has(dep)) visit(dep);
    }
    stack.pop();
    colour.set(name, 2);
  };
  for (const name of only !== undefined ? [only] : [...jobs.keys()].sort()) if (jobs.has(name) && !colour.has(name)) visit(name);
  return problems;
}
