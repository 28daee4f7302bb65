// `nightshift import crontab`: crontab lines into job specs — a preview first, files only with --write
import { execFileSync } from 'node:child_process';
import { lookupAccount } from '../../run/account.js';
import { chownSync, existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { errorCode, errorMessage } from '../../errors.js';
import { firstInvalidUtf8, jobFromText, loadHome, loadPolicyFile, DEFAULT_POLICY } from '../../config/home.js';
import { formatProblem } from '../../config/parse.js';
import { planImport, type Account, type ImportPlan } from '../../import/plan.js';
import { systemTimeZone } from '../../schedule/timezone.js';
import { oneLine } from '../../text.js';
import { EXIT, UsageError, json, type Command, type Ctx } from '../context.js';

/** An account as cron finds it (the system's name service), or null. */
function findAccount(name: string): Account | null {
  const a = lookupAccount(name);
  return a ? { name: a.name, home: a.home } : null;
}

function readInput(
  ctx: Ctx,
  file: string | undefined,
  user: string | undefined,
): { text: string; source: string; file: string | null } | number {
  let buf: Buffer;
  let source: string;
  if (file === '-') {
    buf = readFileSync(0);
    source = 'standard input';
  } else if (file !== undefined) {
    try {
      buf = readFileSync(file);
    } catch (err) {
      throw new UsageError(`cannot read ${file} (${errorCode(err) ?? errorMessage(err)})`);
    }
    source = resolve(file);
  } else {
    const who = user ?? userInfo().username;
    const args = user ? ['-l', '-u', user] : ['-l'];
    try {
      // CRONTAB_NOHEADER=N would list the "DO NOT EDIT" header too; the default leaves it out.
      buf = execFileSync('crontab', args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
    } catch (err) {
      const e = err as { code?: string; status?: number; stderr?: Buffer };
      if (e.code === 'ENOENT') throw new UsageError('crontab is not installed here: give the file to import (or - for standard input)');
      const said = (e.stderr?.toString('utf8') ?? '').trim();
      if (/^no crontab for /m.test(said)) {
        ctx.io.out(`${who} has no crontab (${oneLine(said)}): nothing to import`);
        return EXIT.ok;
      }
      throw new UsageError(`crontab ${args.join(' ')} failed: ${oneLine(said || errorMessage(err))}`);
    }
    source = `the crontab of ${who} (crontab ${args.join(' ')})`;
  }
  const bad = firstInvalidUtf8(buf);
  if (bad !== -1) {
    const line = buf.subarray(0, bad).reduce((n, b) => (b === 0x0a ? n + 1 : n), 1);
    throw new UsageError(
      `${source}:${line}: byte ${bad} is not UTF-8 (0x${buf[bad]!.toString(16).padStart(2, '0')}); job specs are UTF-8 text: convert the file first (iconv)`,
    );
  }
  return { text: buf.toString('utf8'), source, file: file === undefined || file === '-' ? null : resolve(file) };
}

function pad(s: string, n: number): string {
  return s.length >= n ? `${s} ` : s.padEnd(n);
}

function printPlan(ctx: Ctx, plan: ImportPlan, exists: (name: string) => boolean): void {
  const out = (s = '') => ctx.io.out(s);
  out(
    `Importing ${oneLine(plan.source)} (${plan.kind === 'system' ? 'a system crontab: the sixth word is the user' : 'a user crontab'}). Nothing is written without --write.`,
  );
  if (plan.ignoredBecause) out(`note: ${plan.ignoredBecause}. Its jobs are imported disabled (enabled: false).`);
  out();
  // A note several lines share (MAILTO, CRON_TZ) is said once, with its lines.
  const shared = new Map<string, number[]>();
  for (const j of plan.jobs) for (const n of j.notes) shared.set(n, [...(shared.get(n) ?? []), j.line]);
  for (const [n, lines] of shared) if (lines.length < 2) shared.delete(n);
  if (shared.size) {
    out('Notes for several lines:');
    for (const [n, lines] of shared) out(`  lines ${lines.join(', ')}: ${oneLine(n, 1000)}`);
    out();
  }
  if (plan.jobs.length) {
    const rows = plan.jobs.map((j) => ({
      line: String(j.line),
      schedule: j.schedule + (j.timezone && j.timezone !== 'UTC' ? ` (${j.timezone})` : ''),
      name: j.name,
      as: j.user ?? '-',
      cmd: oneLine('shell' in j.run ? j.run.shell : j.run.command.join(' '), 70),
    }));
    const w = (k: keyof (typeof rows)[number], h: string) => Math.max(h.length, ...rows.map((r) => r[k].length)) + 2;
    const wl = w('line', 'LINE');
    const ws = w('schedule', 'SCHEDULE');
    const wn = w('name', 'JOB');
    const wa = w('as', 'USER');
    out(`${pad('LINE', wl)}${pad('SCHEDULE', ws)}${pad('JOB', wn)}${pad('USER', wa)}COMMAND`);
    plan.jobs.forEach((j, i) => {
      const r = rows[i]!;
      out(`${pad(r.line, wl)}${pad(r.schedule, ws)}${pad(r.name, wn)}${pad(r.as, wa)}${r.cmd}`);
      if (exists(j.name)) out(`${' '.repeat(wl)}note: jobs/${j.name}.yaml exists already: it is kept, never overwritten`);
      for (const n of j.notes) if (!shared.has(n)) out(`${' '.repeat(wl)}note: ${oneLine(n, 1000)}`);
      for (const wr of j.writes)
        out(
          `${' '.repeat(wl)}writes: ${oneLine(wr.word, 200)} (${wr.how})${wr.folder !== null ? ` — folder ${oneLine(wr.folder)}` : wr.path === null ? ' — where is only known at run time' : ' — nothing to grant'}`,
        );
    });
    out();
  } else out('No line to import as a job.\n');
  for (const e of plan.empty) out(`line ${e.line}: no command (cron runs nothing): skipped`);
  if (plan.units.length) {
    out('Lines that start a daemon: not imported as jobs. Use a systemd unit instead (a nightshift run must finish):');
    for (const u of plan.units) {
      out();
      out(`line ${u.line} (${u.reason}):`);
      for (const n of u.notes.slice(1)) out(`note: ${oneLine(n, 1000)}`);
      out(u.unit.trimEnd());
      out(`# then: systemctl daemon-reload && systemctl enable --now ${u.name}.service`);
    }
    out();
  }
  if (plan.readWrite.length || plan.notGranted.length || plan.unknownWrites.length || plan.protectHome) {
    out('What the service may write: the unit has ProtectSystem=strict, so a job that writes elsewhere fails with');
    out('"Read-only file system" (EROFS). The places below are what these commands write, as far as a reading of');
    out('the command can tell (redirections, tee, cp/mv/rsync destinations, tar -f, pg_dump -f, mysqldump');
    out('--result-file, curl/wget -o, find -delete, rm, … — docs/cron.md has the list); check the rest yourself.');
    for (const r of plan.readWrite)
      out(
        `  ${oneLine(r.path)}  (line${r.lines.length > 1 ? 's' : ''} ${r.lines.join(', ')})${r.exists ? '' : ' — does not exist yet: create it, or the "-" lets the unit start without it'}`,
      );
    for (const r of plan.notGranted)
      out(`  ${oneLine(r.path)}  (line${r.lines.length > 1 ? 's' : ''} ${r.lines.join(', ')}) — NOT in the drop-in: ${r.why}`);
    for (const u of plan.unknownWrites)
      out(`  line ${u.line}: ${oneLine(u.word, 200)} (${u.how}) — only known at run time: add its folder yourself`);
    if (plan.protectHome)
      out('  a job works in or writes a home folder, which the unit hides (ProtectHome=yes): the drop-in makes homes readable');
    if (plan.dropIn) {
      out();
      out('The drop-in that grants them (systemctl edit nightshift, paste, save; then systemctl restart nightshift):');
      out(plan.dropIn.trimEnd());
    }
    out();
  }
}

export const importCommand: Command = {
  summary: 'turn crontab lines into job specs: a preview first, files only with --write',
  usage: 'nightshift [--home DIR] import crontab [FILE|-] [--system] [--user NAME] [--write] [--json]',
  help:
    'Reads a user crontab — by default the output of `crontab -l` (`crontab -l -u NAME` with --user NAME),\n' +
    'or FILE, or standard input with "-" — or with --system a file with the user column (/etc/crontab, a\n' +
    'file of /etc/cron.d/), and prints a preview: each line with its schedule, the job name it gets, the\n' +
    'account it runs as, what it writes and notes. Nothing is written without --write.\n' +
    '\n' +
    "Lines mean what they meant to Debian's cron: NAME=value lines apply to the lines below them (taken\n" +
    "literally; quotes stripped only when they match); cron's defaults SHELL=/bin/sh, PATH=/usr/bin:/bin,\n" +
    'HOME and LOGNAME of the account go into the job\'s env and HOME is its cwd; "%" ends the command and the\n' +
    'rest is its standard input ("\\%" is a %); @reboot runs once per boot; @daily and the other nicknames stay\n' +
    "as they are (lower case only, as cron). The job's timezone is the system's, where cron ran it; CRON_TZ\n" +
    "(cronie's; Debian's cron ignores it) becomes timezone: with a note. Without --system the sixth word is\n" +
    "the command's first word, as in cron. A line that starts a daemon (&, nohup, setsid, screen -dm, tmux\n" +
    'new -d) is not imported: a systemd unit to use instead is printed. MAILTO becomes a note: nightshift\n' +
    'mails no run output; failures go to the digest (digest.to).\n' +
    '\n' +
    '--write creates HOME/jobs/NAME.yaml for each job, each saying which line it came from, checked as\n' +
    'validate checks them; an existing file is never overwritten. It never edits a crontab: comment the\n' +
    'old lines out yourself (it says which), or each job runs twice. The preview also prints the systemd\n' +
    'drop-in (ReadWritePaths=) that lets the service write where the commands write.\n' +
    '\n' +
    '--user NAME (a user crontab) and the user column (--system) become user: NAME (the daemon must run as\n' +
    'root for it); without them no user: is written and the job runs as the daemon does.\n' +
    '\n' +
    "A line cron refuses is reported as FILE:LINE: why, and skipped; since Debian's cron then ignores the\n" +
    'whole file, the other lines are imported disabled (enabled: false). Exit 0 when there is something to\n' +
    'import (or nothing at all), 2 on a usage error, unreadable input, or when every job line is refused,\n' +
    '1 when --write could not write a job (its spec was not valid here). More: docs/cron.md.',
  options: { system: { type: 'boolean' }, user: { type: 'string' }, write: { type: 'boolean' }, json: { type: 'boolean' } },
  run: (ctx) => {
    const [what, file, extra] = ctx.positionals;
    if (what !== 'crontab')
      throw new UsageError(
        what === undefined
          ? 'import what? only "crontab" is known: nightshift import crontab'
          : `cannot import "${what}": only "crontab" is known`,
      );
    if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
    const system = ctx.values.system === true;
    const user = typeof ctx.values.user === 'string' ? ctx.values.user : undefined;
    if (system && user !== undefined)
      throw new UsageError('--system reads the user of each line from its user column; --user is for a user crontab');
    if (system && file === undefined)
      throw new UsageError('--system needs the file: /etc/crontab, a file of /etc/cron.d/, or - for standard input');
    let owner: Account | null = null;
    if (!system) {
      if (user !== undefined) {
        owner = findAccount(user);
        if (!owner) throw new UsageError(`no account named "${user}" here (getent passwd ${user})`);
      } else {
        const me = userInfo();
        owner = { name: me.username, home: me.homedir };
      }
    }
    const input = readInput(ctx, file, user);
    if (typeof input === 'number') return input;
    let cronDFile: string | null = null;
    if (system && input.file) {
      let real = input.file;
      try {
        real = join(realpathSync(dirname(input.file)), input.file.slice(dirname(input.file).length + 1));
      } catch {
        // as given
      }
      if (dirname(real) === '/etc/cron.d') cronDFile = real;
    }
    const accounts = new Map<string, Account | null>();
    const account = (name: string) => {
      if (!accounts.has(name)) accounts.set(name, findAccount(name));
      return accounts.get(name)!;
    };
    const plan = planImport(input.text, {
      kind: system ? 'system' : 'user',
      source: input.source,
      cronDFile,
      owner,
      userField: system ? null : (user ?? null),
      account,
      systemZone: systemTimeZone(),
      exists: existsSync,
    });
    const jobFile = (name: string) => join(ctx.paths.jobsDir, `${name}.yaml`);
    const where = input.file ?? input.source;
    for (const p of plan.problems) ctx.io.err(`${oneLine(where)}:${p.line}: ${oneLine(p.message, 1000)} — skipped`);
    const nothing = plan.jobs.length === 0 && plan.units.length === 0 && plan.problems.length > 0;

    type Written = { name: string; file: string; status: 'written' | 'exists' | 'same' | 'invalid'; problems?: string[] };
    const results: Written[] = [];
    if (ctx.values.write) {
      const pol = loadPolicyFile(ctx.paths.policyFile);
      const policy = pol.ok ? pol.value : DEFAULT_POLICY;
      if (plan.jobs.length) mkdirSync(ctx.paths.jobsDir, { recursive: true });
      for (const j of plan.jobs) {
        const f = jobFile(j.name);
        if (existsSync(f)) {
          let same = false;
          try {
            same = readFileSync(f, 'utf8') === j.yaml;
          } catch {
            // kept either way
          }
          results.push({ name: j.name, file: f, status: same ? 'same' : 'exists' });
          continue;
        }
        const checked = jobFromText(f, j.yaml, ctx.paths.home, policy);
        if (!checked.ok) {
          results.push({ name: j.name, file: f, status: 'invalid', problems: checked.problems.map(formatProblem) });
          continue;
        }
        try {
          // wx: never replaces a file, even one created since the check above.
          // 0640 in the group of jobs/ (root:nightshift when installed): a job's env may hold what
          // the crontab (0600) held; the daemon reads it through the group, nobody else does.
          writeFileSync(f, j.yaml, { flag: 'wx', mode: 0o640 });
          const group = statSync(ctx.paths.jobsDir).gid;
          try {
            if (statSync(f).gid !== group) chownSync(f, -1, group);
          } catch {
            // not a member of that group (not root): the file keeps the writer's own group
          }
          results.push({ name: j.name, file: f, status: 'written' });
        } catch (err) {
          if (errorCode(err) === 'EEXIST') results.push({ name: j.name, file: f, status: 'exists' });
          else throw err;
        }
      }
    }
    // The written files as validate sees them, among the whole home.
    const written = results.filter((r) => r.status === 'written');
    const homeProblems = written.length
      ? loadHome(ctx.paths)
          .problems.filter((p) => written.some((r) => r.file === p.file))
          .map(formatProblem)
      : [];

    if (ctx.values.json) {
      ctx.io.out(json({ ...plan, written: ctx.values.write ? results : null, problemsAfterWrite: homeProblems }));
    } else {
      printPlan(ctx, plan, (name) => existsSync(jobFile(name)) && !written.some((r) => r.name === name));
      if (!system && user === undefined && owner && plan.jobs.length > 0) {
        // The jobs get no user: they run as whatever account nightshift runs as, which is not
        // necessarily the one whose crontab this was (under the plain unit: nightshift).
        ctx.io.out(
          `Who runs them: these jobs get no "user:", so they run as the account nightshift runs as (under the plain unit: nightshift), ` +
            `with HOME and the working folder of ${owner.name} (${owner.home}) as cron gave them. If that account may not use ${owner.home}, ` +
            `or the jobs need the rights of ${owner.name}, import with --user ${owner.name} instead (nightshift must then run as root: "Root mode" in deploy/README.md).`,
        );
        ctx.io.out('');
      }
      if (!ctx.values.write) {
        if (plan.jobs.length)
          ctx.io.out(`Run again with --write to create ${plan.jobs.length} file(s) in ${ctx.paths.jobsDir}/ (existing ones are kept).`);
      } else {
        for (const r of results) {
          if (r.status === 'written') ctx.io.out(`written: ${r.file}`);
          else if (r.status === 'same') ctx.io.out(`already imported: ${r.file} (the same text; kept)`);
          else if (r.status === 'exists')
            ctx.io.out(`kept: ${r.file} exists and is different; not overwritten (remove it, or rename the job, to import this line)`);
          else {
            ctx.io.out(`not written: ${r.file} would not be valid here:`);
            for (const p of r.problems ?? []) ctx.io.out(`  ${p}`);
          }
        }
        for (const p of homeProblems) ctx.io.out(`problem: ${p}`);
        if (written.length && !homeProblems.length)
          ctx.io.out(`ok: ${written.length} job file(s) written and valid; the daemon picks them up by itself (nightshift status)`);
        const imported = results.filter((r) => r.status !== 'invalid').map((r) => plan.jobs.find((j) => j.name === r.name)!.line);
        const lines = [...imported, ...plan.units.map((u) => u.line)].sort((a, b) => a - b);
        if (lines.length)
          ctx.io.out(
            `Now comment out line${lines.length > 1 ? 's' : ''} ${lines.join(', ')} of ${oneLine(where)} (put "#" in front; ${plan.kind === 'user' ? 'crontab -e' : 'edit the file'}), or each job runs twice: nightshift never edits a crontab.`,
          );
      }
    }
    if (nothing) return EXIT.usage;
    if (results.some((r) => r.status === 'invalid')) return EXIT.unhealthy;
    return EXIT.ok;
  },
};
