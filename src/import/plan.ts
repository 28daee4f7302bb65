// From a parsed crontab to what nightshift would create: one job spec (YAML text, with where each
// line came from) per line that runs and finishes, a systemd unit for each line that starts a
// daemon, and the drop-in that lets the service write where the commands write. Pure: the
// accounts, the system's zone and what exists on disk come in as functions.
import { posix } from 'node:path';
import { parseCrontab, splitPercent, cronDNameProblem, type CronJobLine, type CrontabKind, type CrontabProblem } from './crontab.js';
import { commandWrites, daemonReason, folderOf, foregroundCommand, isPlainWords, nameHint, plainWords } from './shell.js';
import { isValidTimeZone } from '../schedule/timezone.js';
import { oneLine } from '../text.js';

export interface Account {
  name: string;
  home: string;
}

export interface ImportOptions {
  kind: CrontabKind;
  /** What was read, for comments and messages: a file's path, or "the crontab of kevin (crontab -l)". */
  source: string;
  /** The path of the file when it is in /etc/cron.d (cron's rule for names applies), else null. */
  cronDFile?: string | null;
  /** A user crontab's owner: HOME and LOGNAME under cron. */
  owner: Account | null;
  /** A user crontab imported with --user NAME: written as `user:`. */
  userField: string | null;
  /** The account of a system crontab's user column, or null when there is none. */
  account: (name: string) => Account | null;
  /** The zone Debian's cron ran the lines in (the system's). */
  systemZone: string;
  exists: (path: string) => boolean;
}

export interface PlannedWrite {
  /** The word as the command has it (after the variables known were expanded). */
  word: string;
  how: string;
  /** The absolute path, or null when only known at run time. */
  path: string | null;
  /** The folder the service must be able to write, or null (unknown, or handled by the unit). */
  folder: string | null;
}

export interface PlannedJob {
  name: string;
  line: number;
  text: string;
  schedule: string;
  timezone: string | null;
  run: { shell: string } | { command: string[] };
  cwd: string;
  env: Array<[string, string]>;
  user: string | null;
  enabled: boolean;
  notes: string[];
  writes: PlannedWrite[];
  /** The job file's text. */
  yaml: string;
}

export interface PlannedUnit {
  name: string;
  line: number;
  text: string;
  reason: string;
  /** The unit file's text, for /etc/systemd/system/NAME.service. */
  unit: string;
  notes: string[];
}

export interface ImportPlan {
  source: string;
  kind: CrontabKind;
  jobs: PlannedJob[];
  units: PlannedUnit[];
  problems: CrontabProblem[];
  /** Lines cron accepts that run nothing. */
  empty: Array<{ line: number; text: string }>;
  /** Why Debian's cron never ran any line of this file, or null. */
  ignoredBecause: string | null;
  /** Folders to grant with ReadWritePaths=, each with the lines that write there. */
  readWrite: Array<{ path: string; exists: boolean; lines: number[] }>;
  /** Folders a command writes that the drop-in does not grant, and why. */
  notGranted: Array<{ path: string; lines: number[]; why: string }>;
  /** Writes whose place is only known at run time. */
  unknownWrites: Array<{ line: number; word: string; how: string }>;
  /** A job works in, or writes, a home folder, which the unit hides (ProtectHome=yes). */
  protectHome: boolean;
  /** The drop-in for `systemctl edit nightshift`, or null when nothing needs granting. */
  dropIn: string | null;
}

/** Cron's defaults (entry.c: SHELL and PATH when the crontab does not set them). */
export const CRON_SHELL = '/bin/sh';
export const CRON_PATH = '/usr/bin:/bin';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A YAML double-quoted scalar: JSON's escapes, plus the characters YAML may not hold raw. */
export function yamlString(s: string): string {
  return JSON.stringify(s).replace(
    /[\u007f-\u0084\u0086-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Text for a one-line YAML (or unit) comment: no line break or control character can end it. */
export function commentText(s: string, max = 400): string {
  return oneLine(s, max);
}

/** A word for /bin/sh in single quotes. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A value for a systemd unit setting in double quotes: C escapes, and % and $ doubled (specifiers, variables). */
function sdQuote(s: string, dollar = true): string {
  let q = s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%');
  if (dollar) q = q.replace(/\$/g, '$$$$');
  return `"${q}"`;
}

/** A job name from a hint: lower case, letters, digits, "-" and "_", at most 63 characters. */
export function slug(hint: string | null): string {
  const s = (hint ?? '')
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^[-_]+/, '')
    .slice(0, 60)
    .replace(/[-_]+$/, '');
  return s;
}

/** Folders the unit already lets jobs write (PrivateTmp) or that are no files at all. */
function handledByUnit(path: string): string | null {
  if (path === '/dev/null' || path.startsWith('/dev/') || path.startsWith('/proc/')) return 'a device';
  if (/^\/(tmp|var\/tmp)(\/|$)/.test(path)) return 'the private /tmp of the unit';
  return null;
}

const HOME_DIRS = /^\/(home|root|run\/user)(\/|$)/;

function envOf(line: CronJobLine, account: Account): { env: Array<[string, string]>; dropped: string[] } {
  const map = new Map<string, string>(line.env);
  // entry.c: SHELL, HOME and PATH are defaults; LOGNAME is always the crontab's owner.
  if (!map.has('SHELL')) map.set('SHELL', CRON_SHELL);
  if (!map.has('PATH')) map.set('PATH', CRON_PATH);
  if (!map.has('HOME')) map.set('HOME', account.home);
  map.set('LOGNAME', account.name);
  const first = ['SHELL', 'PATH', 'HOME', 'LOGNAME'];
  const ordered: Array<[string, string]> = [
    ...first.map((k): [string, string] => [k, map.get(k)!]),
    ...[...map].filter(([k]) => !first.includes(k)),
  ];
  const dropped = ordered.filter(([k]) => !ENV_NAME.test(k)).map(([k]) => k);
  return { env: ordered.filter(([k]) => ENV_NAME.test(k)), dropped };
}

function jobYaml(j: Omit<PlannedJob, 'yaml'>, source: string): string {
  const out = [
    `# Imported by \`nightshift import crontab\` from ${commentText(source, 200)}`,
    `# from crontab line ${j.line}: ${commentText(j.text)}`,
  ];
  for (const n of j.notes) out.push(`# note: ${commentText(n, 1000)}`);
  out.push(
    `description: ${yamlString(`crontab line ${j.line}: ${oneLine('shell' in j.run ? j.run.shell : j.run.command.join(' '), 120)}`)}`,
  );
  out.push(`schedule: ${yamlString(j.schedule)}`);
  if (j.timezone !== null) out.push(`timezone: ${yamlString(j.timezone)}`);
  if ('shell' in j.run) out.push(`shell: ${yamlString(j.run.shell)}`);
  else out.push(`command: [${j.run.command.map(yamlString).join(', ')}]`);
  out.push(`cwd: ${yamlString(j.cwd)}`);
  out.push('env:');
  for (const [k, v] of j.env) out.push(`  ${yamlString(k)}: ${yamlString(v)}`);
  if (j.user !== null) out.push(`user: ${yamlString(j.user)}`);
  if (!j.enabled) out.push('enabled: false');
  return `${out.join('\n')}\n`;
}

function unitText(
  name: string,
  line: CronJobLine,
  command: string,
  reason: string,
  account: Account,
  env: Array<[string, string]>,
  cwd: string,
): string {
  const shell = env.find(([k]) => k === 'SHELL')?.[1] ?? CRON_SHELL;
  const forking = /screen|tmux|daemon|start-stop-daemon/.test(reason) && !/nohup|setsid|\(&\)/.test(reason);
  const out = [
    `# /etc/systemd/system/${name}.service — instead of crontab line ${line.line}:`,
    `#   ${commentText(line.text)}`,
    `# (${reason}; a nightshift run must finish, and its sandbox ends whatever it leaves running)`,
    '[Unit]',
    `Description=${name} (was crontab line ${line.line})`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    `Type=${forking ? 'forking' : 'simple'}`,
    `User=${account.name}`,
    `WorkingDirectory=${cwd}`,
    ...env.map(([k, v]) => `Environment=${sdQuote(`${k}=${v}`, false)}`),
    '# check that ExecStart runs the program itself (in the foreground for Type=simple)',
    `ExecStart=${shell} -c ${sdQuote(forking ? command : foregroundCommand(command))}`,
  ];
  if (line.stdin !== null)
    for (const l of line.stdin.replace(/\n$/, '').split('\n')) out.push(`StandardInputText=${sdQuote(l, false).slice(1, -1)}`);
  out.push('Restart=on-failure', '', '[Install]', 'WantedBy=multi-user.target');
  return `${out.join('\n')}\n`;
}

export function planImport(text: string, o: ImportOptions): ImportPlan {
  const parsed = parseCrontab(text, { kind: o.kind, userExists: (n) => o.account(n) !== null });
  const cronD = o.cronDFile ? cronDNameProblem(posix.basename(o.cronDFile)) : null;
  const ignoredBecause = cronD ?? parsed.ignoredBecause;
  const taken = new Map<string, number>();
  const uniqueName = (line: CronJobLine): string => {
    const base = slug(nameHint(line.command)) || `line-${line.line}`;
    const n = (taken.get(base) ?? 0) + 1;
    taken.set(base, n);
    return n === 1 ? base : `${base}-${n}`;
  };
  const jobs: PlannedJob[] = [];
  const units: PlannedUnit[] = [];
  for (const line of parsed.jobs) {
    const account = o.kind === 'system' ? o.account(line.user!)! : o.owner!;
    const notes: string[] = [];
    const { env, dropped } = envOf(line, account);
    const get = (k: string) => env.find(([n]) => n === k)?.[1];
    for (const d of dropped)
      notes.push(
        `cron set the variable ${JSON.stringify(d)}, whose name nightshift cannot pass on (letters, digits and "_" only): left out`,
      );
    // A carriage return at the end (Windows line ends) was part of the last word under cron.
    let { command, stdin } = line;
    if (line.carriageReturn) {
      ({ command, stdin } = splitPercent(line.written.replace(/\r$/, '')));
      notes.push(
        'the line ends in a carriage return (Windows line ends): under cron it was part of the last word (a file named "log\\r", or "command not found"); imported without it',
      );
    }
    const shell = get('SHELL') ?? CRON_SHELL;
    const cwd = get('HOME') ?? account.home;
    const userField = o.kind === 'system' ? line.user : o.userField;
    const name = uniqueName({ ...line, command });
    const daemon = daemonReason(command);
    if (daemon) {
      const unitNotes = [`${daemon}: a nightshift run must finish, so this line becomes a systemd unit, not a job`];
      if (line.when.kind === 'cron')
        unitNotes.push(`it ran on "${line.when.schedule}" (probably to start the daemon again when it died: Restart=on-failure does that)`);
      units.push({
        name,
        line: line.line,
        text: line.text,
        reason: daemon,
        unit: unitText(name, { ...line, stdin }, command, daemon, account, env, cwd),
        notes: unitNotes,
      });
      continue;
    }
    let run: PlannedJob['run'];
    if (stdin !== null) {
      run = { shell: `printf '%s' ${shQuote(stdin)} | ${shell === CRON_SHELL ? CRON_SHELL : shQuote(shell)} -c ${shQuote(command)}` };
      notes.push(
        `the text after "%" is the command's standard input (${Buffer.byteLength(stdin)} bytes, newlines where cron had "%"): printf pipes the same bytes into ${shell} -c`,
      );
    } else if (shell === CRON_SHELL) run = isPlainWords(command) ? { command: plainWords(command) } : { shell: command };
    else {
      run = { command: [shell, '-c', command] };
      notes.push(`SHELL=${shell}: cron ran the line with ${shell} -c, and so does this job (shell: would be /bin/sh)`);
    }
    let timezone: string | null = null;
    let schedule: string;
    if (line.when.kind === 'reboot') {
      schedule = '@reboot';
      notes.push("@reboot: once per boot of the machine, as Debian's cron (not at every start of nightshift)");
    } else {
      schedule = line.when.schedule;
      timezone = o.systemZone;
      const cronTz = get('CRON_TZ');
      // CRON_TZ="" is no zone: the system's, as without it.
      if (cronTz !== undefined && cronTz !== '') {
        if (isValidTimeZone(cronTz)) {
          timezone = cronTz;
          notes.push(
            `CRON_TZ=${cronTz}: Debian's cron ignores CRON_TZ (it ran this line in the system's zone, ${o.systemZone}); cronie reads it. Imported as timezone: ${cronTz} — write timezone: ${o.systemZone} to keep Debian's times`,
          );
        } else
          notes.push(
            `CRON_TZ=${cronTz} is not a time zone nightshift knows; timezone: is the system's (${o.systemZone}), where Debian's cron ran it`,
          );
      }
      if (line.when.expr.never) notes.push(line.when.expr.never);
      for (const n of line.when.expr.notes) notes.push(n);
    }
    const mailto = get('MAILTO');
    if (mailto !== undefined)
      notes.push(
        mailto === ''
          ? 'MAILTO="": cron sent no mail; nightshift sends none per run either'
          : `MAILTO=${mailto}: cron mailed the output of every run that printed something; nightshift mails no run's output — failures and what the heal loop did go to the daily digest: add ${mailto} to digest.to in protected/policy.yaml`,
      );
    if (o.kind === 'user') {
      const first = command.trim().split(/[ \t]+/)[0] ?? '';
      const onPath = (get('PATH') ?? CRON_PATH).split(':').some((d) => d !== '' && o.exists(posix.join(d, first)));
      if (first && !first.includes('/') && !onPath && o.account(first) !== null && /[ \t]/.test(command.trim()))
        notes.push(
          `the command starts with "${first}", a user name: in a user crontab cron runs "${first}" as a program. If this is /etc/crontab or a file of /etc/cron.d, import it with --system`,
        );
    }
    if (ignoredBecause) notes.push(`imported disabled (enabled: false): ${ignoredBecause}`);
    const writes: PlannedWrite[] = commandWrites(command, Object.fromEntries(env), cwd).map((w) => {
      if (w.path === null) {
        // Only the file's name is known at run time ($(date +%F).tar.gz): its folder is not.
        const dir = posix.dirname(w.word.text);
        const known = !w.folder && dir.startsWith('/') && !/[$`]/.test(dir) ? posix.normalize(dir) : null;
        return { word: w.word.text, how: w.how, path: null, folder: known && !handledByUnit(`${known}/`) ? known : null };
      }
      const folder = folderOf(w.path, w.folder);
      return { word: w.word.text, how: w.how, path: w.path, folder: handledByUnit(w.path) || handledByUnit(`${folder}/`) ? null : folder };
    });
    if (writes.some((w) => w.path !== null && /^\/(tmp|var\/tmp)(\/|$)/.test(w.path)))
      notes.push(
        'it writes under /tmp or /var/tmp: the unit gives nightshift its own (PrivateTmp=yes), so other programs do not see those files',
      );
    const job: Omit<PlannedJob, 'yaml'> = {
      name,
      line: line.line,
      text: line.text,
      schedule,
      timezone,
      run,
      cwd,
      env,
      user: userField,
      enabled: ignoredBecause === null,
      notes,
      writes,
    };
    jobs.push({ ...job, yaml: jobYaml(job, o.source) });
  }
  // The folders to grant: deduplicated, none inside another.
  const byFolder = new Map<string, Set<number>>();
  for (const j of jobs) for (const w of j.writes) if (w.folder) byFolder.set(w.folder, (byFolder.get(w.folder) ?? new Set()).add(j.line));
  const folders = [...byFolder.keys()].sort();
  const grantable = folders.filter((f) => grantRefusal(f) === null);
  const top = grantable.filter((f) => !grantable.some((g) => g !== f && f.startsWith(`${g}/`)));
  const readWrite = top.map((path) => {
    const lines = new Set<number>();
    for (const [f, ls] of byFolder) if (f === path || f.startsWith(`${path}/`)) for (const l of ls) lines.add(l);
    return { path, exists: o.exists(path), lines: [...lines].sort((a, b) => a - b) };
  });
  const notGranted = folders.flatMap((path) => {
    const why = grantRefusal(path);
    return why === null ? [] : [{ path, lines: [...byFolder.get(path)!].sort((a, b) => a - b), why }];
  });
  const unknownWrites = jobs.flatMap((j) =>
    j.writes.filter((w) => w.path === null && w.folder === null).map((w) => ({ line: j.line, word: w.word, how: w.how })),
  );
  const protectHome = jobs.some((j) => HOME_DIRS.test(j.cwd) || j.writes.some((w) => w.folder !== null && HOME_DIRS.test(w.folder)));
  const pathWord = (p: string, exists: boolean) => {
    const w = /[\s"'\\]/.test(p) ? sdQuote(p, false) : p;
    return exists ? w : `-${w}`;
  };
  const dropIn =
    readWrite.length || protectHome
      ? [
          '[Service]',
          ...(readWrite.length ? [`ReadWritePaths=${readWrite.map((r) => pathWord(r.path, r.exists)).join(' ')}`] : []),
          ...(protectHome ? ['ProtectHome=read-only'] : []),
        ].join('\n') + '\n'
      : null;
  return {
    source: o.source,
    kind: o.kind,
    jobs,
    units,
    problems: parsed.problems,
    empty: parsed.empty,
    ignoredBecause,
    readWrite,
    notGranted,
    unknownWrites,
    protectHome,
    dropIn,
  };
}

const OWN = ['/etc/nightshift', '/opt/nightshift', '/var/lib/nightshift'];
const SYSTEM = ['/etc', '/usr', '/boot', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/proc', '/sys', '/dev'];
const within = (p: string, dir: string): boolean => p === dir || p.startsWith(`${dir}/`);

/**
 * Why a folder must not go into the drop-in (null: it may): the unit's protection is what keeps
 * every job from the system and from nightshift's own folders, and one line of a crontab must not
 * undo it for all of them.
 */
export function grantRefusal(path: string): string | null {
  if (path === '/') return "the whole file system: that would undo the unit's protection for every job";
  const inOwn = OWN.find((d) => within(path, d));
  if (inOwn) return `inside ${inOwn}, nightshift's own (its home, install or state), which no job may write`;
  const sys = SYSTEM.find((d) => within(path, d) || within(d, path));
  if (sys)
    return `a system folder (${sys}): granting it would let every job change the system; change the command, or keep this line in cron`;
  const hasOwn = OWN.find((d) => within(d, path));
  if (hasOwn) return `contains ${hasOwn}, nightshift's own (its home, install or state): grant a folder inside it instead`;
  return null;
}
