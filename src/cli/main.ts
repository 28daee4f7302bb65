// The command line. Reading commands work from the files and SQLite alone; acting commands talk to
// the daemon over its socket. Exit codes: 0 ok, 1 unhealthy/failed, 2 usage or invalid config,
// 3 daemon not reachable.
import { closeSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { closeInheritedFds } from '../run/proc.js';
import { userInfo } from 'node:os';
import { dirname } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { callDaemon, daemonListening, DaemonUnreachable } from '../control/socket.js';
import { Daemon, VERSION } from '../daemon.js';
import { composeDigest, digestDate, digestWindow, digestZone } from '../report/digest.js';
import { DigestService } from '../notify/digester.js';
import { containment } from '../run/launch.js';
import { loadHome, type LoadedHome, type LoadedRule } from '../config/home.js';
import { homePaths, type HomePaths } from '../config/paths.js';
import { LockHeld } from '../store/lock.js';
import { createLogger } from '../log.js';
import { NAME_PATTERN } from '../names.js';
import { formatInstant, nextInstants } from '../schedule/instants.js';
import { formatProblem } from '../config/parse.js';
import { checkKillSwitch, killSwitchPath, type KillState } from '../control/killswitch.js';
import { buildStatus, renderAlerts, renderRuns, renderStatus, type LiveInfo } from '../report/status.js';
import { oneLine, textAsData } from '../text.js';
import { Store, StoreError, type RunRow } from '../store/store.js';
import { demotionLines, hasHeals, healLines, healStatusLines, healViews, renderHeals, ruleEvidence } from '../report/healview.js';
import { errorMessage } from '../errors.js';
import { systemClock, wallNow } from '../clock.js';

export const EXIT = { ok: 0, unhealthy: 1, usage: 2, unreachable: 3, homeMoved: 4 } as const;

class UsageError extends Error {}

interface Out {
  out: (s: string) => void;
  err: (s: string) => void;
}

const GLOBAL_OPTIONS = {
  home: { type: 'string' },
  state: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

interface Command {
  summary: string;
  usage: string;
  help: string;
  options: ParseArgsConfig['options'];
  run: (ctx: Ctx) => number | Promise<number>;
}

interface Ctx {
  paths: HomePaths;
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  io: Out;
}

/**
 * JSON for scripts. JSON.stringify escapes C0 control characters but lets C1 ones and the
 * characters that reorder text (U+202E) through: escaped too, the same data, inert on a terminal.
 */
const json = (v: unknown): string =>
  JSON.stringify(v, null, 2).replace(
    /[\u0080-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );

function loadHomeOrFail(ctx: Ctx): LoadedHome {
  if (!existsSync(ctx.paths.home)) throw new UsageError(`the home folder ${ctx.paths.home} does not exist (use --home DIR)`);
  return loadHome(ctx.paths);
}

function openStore(ctx: Ctx): Store | null {
  return Store.openForReading(ctx.paths.db);
}

async function liveInfo(ctx: Ctx): Promise<LiveInfo | null> {
  if (!(await daemonListening(ctx.paths.socket))) return null;
  try {
    const r = await callDaemon(ctx.paths.socket, 'GET', '/status');
    return r.status === 200 ? (r.body as LiveInfo) : null;
  } catch {
    return null;
  }
}

function positiveInt(v: string | boolean | undefined, what: string, dflt: number, max = 100_000): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`${what} must be a whole number from 1 to ${max}, got "${String(v)}"`);
  return n;
}

function jobName(ctx: Ctx, required = true): string | undefined {
  const name = ctx.positionals[0];
  if (name === undefined) {
    if (required) throw new UsageError('which job? give its name (the file name in jobs/ without .yaml)');
    return undefined;
  }
  if (!NAME_PATTERN.test(name)) throw new UsageError(`"${name}" is not a valid job name (lower-case letters, digits, "-" and "_")`);
  if (ctx.positionals.length > 1) throw new UsageError(`unexpected argument "${ctx.positionals[1]}"`);
  return name;
}

async function act(ctx: Ctx, method: 'GET' | 'POST', path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await callDaemon(ctx.paths.socket, method, path);
  return {
    status: r.status,
    body: (typeof r.body === 'object' && r.body !== null ? r.body : { error: String(r.body) }) as Record<string, unknown>,
  };
}

const COMMANDS: Record<string, Command> = {
  start: {
    summary: 'run the daemon in the foreground (for systemd; logs JSON to stdout)',
    usage: 'nightshift [--home DIR] [--state DIR] start',
    help: 'Loads every job in DIR/jobs, schedules them, and runs until SIGTERM. A second daemon on the same\nstate folder is refused. SIGTERM stops scheduling, stops running jobs (SIGTERM, then SIGKILL after\ntheir killGrace), records everything and exits 0; a second SIGTERM kills the jobs at once.',
    options: {},
    run: async (ctx) => {
      if (ctx.positionals.length) throw new UsageError(`unexpected argument "${ctx.positionals[0]}"`);
      if (!existsSync(ctx.paths.home)) throw new UsageError(`the home folder ${ctx.paths.home} does not exist (use --home DIR)`);
      const closed = closeInheritedFds(closeSync);
      const log = createLogger();
      if (closed.length)
        log.info({ fds: closed }, 'closed file descriptors inherited without close-on-exec (no process nightshift starts may get them)');
      let exitCode: number = EXIT.ok;
      const daemon: Daemon = new Daemon({
        paths: ctx.paths,
        log,
        onHomeLost: () => {
          exitCode = EXIT.homeMoved;
          onSignal('SIGTERM');
        },
      });
      // Handlers first: until one is installed a SIGTERM kills node outright, and start() already
      // runs jobs (catch-up runs) — a stop during start-up would orphan them. A signal that comes
      // during start() is acted on once start() has returned.
      let signals = 0;
      let started = false;
      let stopRequested: ((sig: NodeJS.Signals) => void) | null = null;
      let pendingSignal: NodeJS.Signals | null = null;
      const onSignal = (sig: NodeJS.Signals): void => {
        signals++;
        if (signals === 1) {
          if (stopRequested) stopRequested(sig);
          else pendingSignal = sig;
        } else {
          log.warn({ signal: sig }, 'second stop signal: killing running jobs now');
          daemon.forceStop();
          // Still starting: nothing would act on the first signal before start() returns, which a
          // hung start never does. Open runs become "interrupted" at the next start.
          if (!started) process.exit(EXIT.unhealthy);
        }
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      try {
        await daemon.start();
        started = true;
      } catch (err) {
        if (err instanceof LockHeld) {
          ctx.io.err(`nightshift: ${err.message}`);
          return EXIT.usage;
        }
        log.fatal({ err: errorMessage(err) }, 'nightshift could not start');
        ctx.io.err(`nightshift: could not start: ${errorMessage(err)}`);
        return EXIT.unhealthy;
      }
      return await new Promise<number>((resolve) => {
        stopRequested = (sig) => {
          log.info({ signal: sig }, 'stop requested');
          daemon.stop().then(
            () => resolve(exitCode),
            (err: unknown) => {
              log.error({ err: errorMessage(err) }, 'stopping failed');
              resolve(EXIT.unhealthy);
            },
          );
        };
        if (pendingSignal) stopRequested(pendingSignal);
        process.on('uncaughtException', (err) => {
          log.fatal(
            { err: err.message, stack: err.stack },
            'nightshift crashed; systemd will restart it and open runs become "interrupted"',
          );
          process.exit(EXIT.unhealthy);
        });
        process.on('unhandledRejection', (err) => log.error({ err: errorMessage(err) }, 'unhandled rejection (ignored)'));
      });
    },
  },

  validate: {
    summary: 'check every job, rule and the policy; errors as FILE:LINE: field: message',
    usage: 'nightshift [--home DIR] validate [--json]',
    help: 'Exit 0 when everything is valid, 2 on any error. Warnings do not fail.',
    options: { json: { type: 'boolean' } },
    run: (ctx) => {
      const home = loadHomeOrFail(ctx);
      const problems = home.problems.map(formatProblem);
      const warnings = home.warnings.map(formatProblem);
      if (ctx.values.json) {
        ctx.io.out(
          json({
            ok: problems.length === 0,
            jobs: home.jobs.size,
            rules: home.rules.size,
            problems: home.problems,
            warnings: home.warnings,
            containment: containment(),
          }),
        );
      } else {
        for (const p of problems) ctx.io.out(p);
        for (const w of warnings) ctx.io.out(`warning: ${w}`);
        const c = containment();
        if (!c.ok)
          ctx.io.out(
            `warning: containment unavailable: jobs will run uncontained and no fix, brain or probe will run (heal outcome uncontained): ${c.reason}`,
          );
        ctx.io.out(
          problems.length === 0
            ? `ok: ${home.jobs.size} job(s), ${home.rules.size} rule(s), policy ${home.policyMissing ? 'not present (defaults)' : 'valid'}`
            : `${problems.length} problem(s); fix them — the daemon keeps the last good version of each file meanwhile`,
        );
      }
      return problems.length ? EXIT.usage : EXIT.ok;
    },
  },

  status: {
    summary: 'one line per job: state, last run, next run, last success; problems',
    usage: 'nightshift [--home DIR] status [--json]',
    help: 'Works with or without a running daemon. Exit 1 when a job is failing or the configuration has problems.',
    options: { json: { type: 'boolean' } },
    run: async (ctx) => {
      const home = loadHomeOrFail(ctx);
      const store = openStore(ctx);
      try {
        const now = wallNow();
        const report = buildStatus(home, store, await liveInfo(ctx), now, killOf(home));
        const ruleHash = (rule: string): string | undefined => home.rules.get(rule)?.hash;
        const approvals = store && hasHeals(store) ? store.pendingApprovals().filter((a) => (a.expires_at ?? 0) > now) : [];
        report.pendingApprovals = approvals.length;
        const demotedRules = store && hasHeals(store) ? store.ladderAll().filter((l) => ruleHash(l.rule) === l.rule_hash) : [];
        if (ctx.values.json) ctx.io.out(json({ ...report, approvals, demotedRules }));
        else {
          const extra = store ? healStatusLines(store, now, ruleHash) : [];
          ctx.io.out([renderStatus(report), ...(extra.length ? ['', ...extra] : [])].join('\n'));
        }
        return report.healthy ? EXIT.ok : EXIT.unhealthy;
      } finally {
        store?.close();
      }
    },
  },

  next: {
    summary: 'the next N scheduled instants of a job',
    usage: 'nightshift [--home DIR] next JOB [--from ISO] [--count N] [--json]',
    help: "Prints instants as ISO 8601 with the offset of the job's time zone, daylight-saving changes included.",
    options: { from: { type: 'string' }, count: { type: 'string' }, json: { type: 'boolean' } },
    run: (ctx) => {
      const name = jobName(ctx)!;
      const home = loadHomeOrFail(ctx);
      const job = home.jobs.get(name);
      if (!job)
        throw new UsageError(
          `no valid job named "${name}"${home.problems.some((p) => p.file.includes(`/${name}.`)) ? ' (its spec has errors: run nightshift validate)' : ''}`,
        );
      let from = wallNow();
      if (typeof ctx.values.from === 'string') {
        from = Date.parse(ctx.values.from);
        if (Number.isNaN(from)) throw new UsageError(`--from "${ctx.values.from}" is not an ISO date-time, e.g. 2026-03-29T00:00:00+01:00`);
      }
      const count = positiveInt(ctx.values.count, '--count', 5, 10_000);
      const instants = job.schedule ? nextInstants(job.schedule, from, count) : [];
      if (ctx.values.json) {
        ctx.io.out(json({ job: name, timezone: job.timezone, instants: instants.map((i) => formatInstant(i, job.timezone)) }));
      } else if (!job.schedule) {
        ctx.io.out(
          `${name} has no schedule: it runs only when asked (nightshift run ${name})${job.managed ? '' : ' or when something pings it'}`,
        );
      } else {
        for (const i of instants) ctx.io.out(formatInstant(i, job.timezone));
      }
      return EXIT.ok;
    },
  },

  run: {
    summary: 'run a job now (trigger manual), wait, print the outcome',
    usage: 'nightshift [--home DIR] run JOB [--json]',
    help: 'Needs the daemon. Exit 0 when the run is ok, 1 otherwise, 3 when the daemon is not running.',
    options: { json: { type: 'boolean' } },
    run: async (ctx) => {
      const name = jobName(ctx)!;
      const r = await act(ctx, 'POST', `/run/${name}`);
      if (r.status !== 200) {
        ctx.io.err(`nightshift: ${String(r.body.error)}`);
        return r.status === 404 || r.status === 400 ? EXIT.usage : EXIT.unhealthy;
      }
      const row = r.body.run as RunRow;
      if (ctx.values.json) ctx.io.out(json(row));
      else {
        ctx.io.out(`run #${row.id} of ${row.job}: ${row.outcome} — ${oneLine(row.reason ?? '', 2000)}`);
        if (row.output_tail) ctx.io.out(`--- last output ---\n${textAsData(row.output_tail).trimEnd()}`);
        if (row.log_path) ctx.io.out(`(full log: ${row.log_path})`);
      }
      return row.outcome === 'ok' ? EXIT.ok : EXIT.unhealthy;
    },
  },

  history: {
    summary: 'recent runs, newest first',
    usage: 'nightshift [--home DIR] history [JOB] [--limit N] [--json]',
    help: 'Reads SQLite directly; works with the daemon down.',
    options: { limit: { type: 'string' }, json: { type: 'boolean' } },
    run: (ctx) => {
      const name = jobName(ctx, false);
      const limit = positiveInt(ctx.values.limit, '--limit', 20);
      const store = openStore(ctx);
      const rows = store ? store.history(name ?? null, limit) : [];
      store?.close();
      if (ctx.values.json) ctx.io.out(json(rows));
      else {
        const home = existsSync(ctx.paths.home) ? loadHome(ctx.paths) : null;
        ctx.io.out(renderRuns(rows, (j) => home?.jobs.get(j)?.timezone ?? 'UTC'));
      }
      return EXIT.ok;
    },
  },

  ping: {
    summary: 'heartbeat for an external job: success (default), --start or --fail',
    usage: 'nightshift [--home DIR] ping JOB [--start|--fail] [--json]',
    help:
      'Needs the daemon. --start then a later ping records the duration; a start with no end within the\n' +
      "job's timeout raises a hung alert. The same works with curl:\n" +
      '  curl --unix-socket STATE/nightshift.sock http://x/ping/JOB[/start|/fail]\n' +
      'An unknown job is refused (exit 2) and nothing is recorded.',
    options: { start: { type: 'boolean' }, fail: { type: 'boolean' }, json: { type: 'boolean' } },
    run: async (ctx) => {
      const name = jobName(ctx)!;
      if (ctx.values.start && ctx.values.fail) throw new UsageError('give --start or --fail, not both');
      const suffix = ctx.values.start ? '/start' : ctx.values.fail ? '/fail' : '';
      const r = await act(ctx, 'POST', `/ping/${name}${suffix}`);
      if (r.status !== 200) {
        ctx.io.err(`nightshift ping: ${String(r.body.error)}`);
        return r.status === 404 || r.status === 400 ? EXIT.usage : EXIT.unhealthy;
      }
      if (ctx.values.json) ctx.io.out(json(r.body));
      else
        ctx.io.out(
          `${name}: ${String(r.body.kind)} recorded${typeof r.body.durationMs === 'number' ? ` (ran ${r.body.durationMs} ms since its start ping)` : ''}`,
        );
      return EXIT.ok;
    },
  },

  alerts: {
    summary: 'open alerts (or --all), with what happened in plain words',
    usage: 'nightshift [--home DIR] alerts [--all] [--limit N] [--json]',
    help: 'Reads SQLite directly; works with the daemon down. Exit 1 when an alert is open.',
    options: { all: { type: 'boolean' }, limit: { type: 'string' }, json: { type: 'boolean' } },
    run: (ctx) => {
      if (ctx.positionals.length) throw new UsageError(`unexpected argument "${ctx.positionals[0]}"`);
      const limit = positiveInt(ctx.values.limit, '--limit', 100);
      const store = openStore(ctx);
      const rows = store ? (ctx.values.all ? store.alerts(limit) : store.openAlerts().slice(0, limit)) : [];
      const open = store ? store.openAlerts().length : 0;
      store?.close();
      ctx.io.out(
        ctx.values.json ? json(rows) : rows.length ? renderAlerts(rows, wallNow()) : ctx.values.all ? 'No alerts yet.' : 'No open alerts.',
      );
      return open > 0 ? EXIT.unhealthy : EXIT.ok;
    },
  },

  heals: {
    summary: 'heal attempts, newest first, with every step, its timing and outcome',
    usage: 'nightshift [--home DIR] heals [JOB] [--limit N] [--json]',
    help:
      'Reads SQLite directly; works with the daemon down. Each attempt shows the rule, the autonomy level in\n' +
      'force, every step (kill-switch, pre-check, rule, cap, autonomy, guard, snapshot, fix, probe, verdict,\n' +
      'rollback) with how long it took, and the outcome. Proposals and approval requests are printed in full.\n' +
      'Exit 1 when an approval is waiting or an incident is blocked.',
    options: { limit: { type: 'string' }, json: { type: 'boolean' } },
    run: (ctx) => {
      const name = jobName(ctx, false);
      const limit = positiveInt(ctx.values.limit, '--limit', 20);
      const store = openStore(ctx);
      try {
        const rows = store ? healViews(store, limit, name) : [];
        const evidence = store ? ruleEvidence(store) : [];
        const waiting = store && hasHeals(store) ? store.pendingApprovals().length : 0;
        if (ctx.values.json) ctx.io.out(json({ attempts: rows, rules: evidence }));
        else {
          ctx.io.out(renderHeals(rows, wallNow()));
          const rules = existsSync(ctx.paths.home) ? loadHome(ctx.paths).rules : new Map<string, LoadedRule>();
          const demoted = store ? demotionLines(store, (rule) => rules.get(rule)?.hash) : [];
          if (demoted.length) ctx.io.out(`\n${demoted.join('\n')}`);
          if (evidence.length) {
            ctx.io.out('\nEvidence per rule (for promotion reviews):');
            for (const e of evidence)
              ctx.io.out(
                `  ${e.rule}: ${e.cases} case(s); ${Object.entries(e.outcomes)
                  .map(([o, n]) => `${n} ${o}`)
                  .join(', ')}`,
              );
          }
        }
        const blocked = rows.some((r) => r.outcome === 'blocked' || r.outcome === 'rollback-failed');
        return waiting > 0 || blocked ? EXIT.unhealthy : EXIT.ok;
      } finally {
        store?.close();
      }
    },
  },

  approve: {
    summary: 'let a gated heal run its fix (ID from status or heals)',
    usage: 'nightshift [--home DIR] approve ID [--json]',
    help: 'Needs the daemon. The attempt continues from the guard step: snapshot, fix, probe, verdict.\nAn ID that does not exist, was answered already or has expired (after 24 h) exits 2.',
    options: { json: { type: 'boolean' } },
    run: async (ctx) => answerHeal(ctx, 'approve'),
  },

  deny: {
    summary: 'refuse a gated heal (nothing runs; the alert stays open)',
    usage: 'nightshift [--home DIR] deny ID [--json]',
    help: 'Needs the daemon. An ID that does not exist, was answered already or has expired exits 2.',
    options: { json: { type: 'boolean' } },
    run: async (ctx) => answerHeal(ctx, 'deny'),
  },

  kill: {
    summary: 'the kill switch: on | off | status (works without the daemon)',
    usage: 'nightshift [--home DIR] kill on|off|status [--json]',
    help:
      'On creates the kill-switch file (policy.killSwitch, default STATE/KILL); off removes it. Plain touch/rm\n' +
      'do the same. While it is on, agent jobs and every autonomous action are halted. status exits 1 when on.',
    options: { json: { type: 'boolean' } },
    run: async (ctx) => {
      const verb = ctx.positionals[0];
      if (!verb || !['on', 'off', 'status'].includes(verb) || ctx.positionals.length > 1)
        throw new UsageError('say "kill on", "kill off" or "kill status"');
      const home = loadHomeOrFail(ctx);
      const path = killSwitchPath(ctx.paths, home.policyOk ? home.policy : null);
      if (verb === 'on') {
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, `kill switch turned on by ${userInfoName()} at ${new Date(wallNow()).toISOString()}\n`);
      } else if (verb === 'off') {
        rmSync(path, { force: true });
      }
      const k = killOf(home);
      // A running daemon journals the flip itself when it sees the file; two writers would race.
      if (verb !== 'status' && !(await daemonListening(ctx.paths.socket))) recordKillFlip(ctx, k);
      if (ctx.values.json) ctx.io.out(json({ on: k.halted, reason: k.reason, path: k.path }));
      else ctx.io.out(k.halted ? `kill switch ON: ${k.reason}` : `kill switch off (${k.path} absent)`);
      if (verb === 'off' && k.halted)
        ctx.io.err('nightshift kill: still halted — fix the policy file (nightshift validate) to turn it off');
      return k.halted ? (verb === 'on' ? EXIT.ok : EXIT.unhealthy) : EXIT.ok;
    },
  },

  digest: {
    summary: 'print (and --send) the daily digest for a day',
    usage: 'nightshift [--home DIR] digest [--date YYYY-MM-DD] [--send] [--json]',
    help:
      'The digest covers the 24 hours that end at policy.digest.at on that day (policy time zone); the\n' +
      'default day is today. --send also writes STATE/digests/DAY.md, stores it and e-mails it now.\n' +
      'Exit 1 when jobs need you or the mail could not be sent.',
    options: { date: { type: 'string' }, send: { type: 'boolean' }, json: { type: 'boolean' } },
    run: async (ctx) => {
      if (ctx.positionals.length) throw new UsageError(`unexpected argument "${ctx.positionals[0]}"`);
      const home = loadHomeOrFail(ctx);
      const date = typeof ctx.values.date === 'string' ? ctx.values.date : digestDate(digestZone(home.policy), wallNow());
      if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`))) {
        throw new UsageError(`--date "${date}" is not a day like 2026-11-22`);
      }
      const kill = killOf(home);
      if (ctx.values.send) {
        const store = Store.open(ctx.paths.db);
        try {
          const service = new DigestService({
            store,
            paths: ctx.paths,
            getJobs: () => home.jobs,
            getPolicy: () => home.policy,
            getKill: () => kill,
            clock: systemClock,
            log: createLogger({ level: 'silent' }),
            getHeals: (w) => healLines(store, w.from, w.to),
          });
          const r = await service.runFor(date, { send: true });
          if (ctx.values.json) ctx.io.out(json(r));
          else {
            ctx.io.out(r.text);
            ctx.io.out(r.sent ? `\n(sent; saved as ${r.file ?? 'a row in SQLite'})` : `\n(NOT sent: ${r.error ?? 'unknown reason'})`);
          }
          const needsYou = store.openAlerts().some((a) => a.folded_under === null && home.jobs.has(a.job));
          return r.sent && !needsYou ? EXIT.ok : EXIT.unhealthy;
        } finally {
          store.close();
        }
      }
      const store = openStore(ctx);
      if (!store) {
        ctx.io.out('No records yet: nightshift has not run with this state folder.');
        return EXIT.ok;
      }
      try {
        const window = digestWindow(home.policy, date);
        const d = composeDigest({
          store,
          jobs: home.jobs,
          policy: home.policy,
          kill,
          date,
          window,
          now: wallNow(),
          heals: healLines(store, window.from, window.to),
          containment: containment(),
        });
        ctx.io.out(ctx.values.json ? json({ date, ...d }) : d.text);
        return d.needsYou > 0 ? EXIT.unhealthy : EXIT.ok;
      } finally {
        store.close();
      }
    },
  },

  pause: {
    summary: 'stop scheduling a job (or --all); its instants are recorded as skipped-paused',
    usage: 'nightshift [--home DIR] pause JOB|--all',
    help: 'Needs the daemon. A running process is not stopped. Pending retries are dropped.',
    options: { all: { type: 'boolean' } },
    run: async (ctx) => pauseResume(ctx, 'pause'),
  },

  resume: {
    summary: 'restart scheduling a paused job (or --all); its clock starts afresh',
    usage: 'nightshift [--home DIR] resume JOB|--all',
    help: 'Needs the daemon. Instants that passed while paused are not caught up.',
    options: { all: { type: 'boolean' } },
    run: async (ctx) => pauseResume(ctx, 'resume'),
  },
};

async function answerHeal(ctx: Ctx, verb: 'approve' | 'deny'): Promise<number> {
  const id = ctx.positionals[0];
  if (id === undefined) throw new UsageError(`which heal? give its ID (nightshift status lists the ones waiting): nightshift ${verb} ID`);
  if (!/^[1-9][0-9]{0,15}$/.test(id)) throw new UsageError(`"${id}" is not a heal ID (a number, as nightshift status or heals shows it)`);
  if (ctx.positionals.length > 1) throw new UsageError(`unexpected argument "${ctx.positionals[1]}"`);
  const r = await act(ctx, 'POST', `/${verb}/${id}`);
  if (r.status !== 200) {
    ctx.io.err(`nightshift ${verb}: ${String(r.body.error)}`);
    return r.status === 404 || r.status === 410 || r.status === 400 ? EXIT.usage : EXIT.unhealthy;
  }
  ctx.io.out(ctx.values.json ? json(r.body) : `heal #${String(r.body.attempt)} (${String(r.body.job)}): ${String(r.body.status)}`);
  return EXIT.ok;
}

async function pauseResume(ctx: Ctx, verb: 'pause' | 'resume'): Promise<number> {
  let path: string;
  if (ctx.values.all) {
    if (ctx.positionals.length) throw new UsageError('give either a job name or --all, not both');
    path = `/${verb}-all`;
  } else path = `/${verb}/${jobName(ctx)!}`;
  const r = await act(ctx, 'POST', path);
  if (r.status !== 200) {
    ctx.io.err(`nightshift: ${String(r.body.error)}`);
    return r.status === 404 ? EXIT.usage : EXIT.unhealthy;
  }
  const changed = (r.body.changed as string[]) ?? [];
  ctx.io.out(changed.length ? `${verb}d: ${changed.join(', ')}` : `nothing to ${verb}: already ${verb}d`);
  return EXIT.ok;
}

/** A flip made while the daemon is down is journaled at once, so status and the digest show it. */
function recordKillFlip(ctx: Ctx, k: KillState): void {
  if (!existsSync(ctx.paths.db)) return;
  let store: Store | null = null;
  try {
    store = Store.open(ctx.paths.db);
    if (store.killSwitchRecordedOn() !== k.halted) {
      store.recordEvent(
        wallNow(),
        'kill-switch',
        null,
        k.halted
          ? `kill switch turned on (nightshift kill on by ${userInfoName()})`
          : `kill switch turned off (nightshift kill off by ${userInfoName()})`,
        { on: k.halted },
      );
    }
  } catch {
    // the daemon records the flip when it sees the file; this is a convenience
  } finally {
    store?.close();
  }
}

function killOf(home: LoadedHome): KillState {
  return checkKillSwitch(killSwitchPath(home.paths, home.policyOk ? home.policy : null), home.policyOk);
}

function userInfoName(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

function mainHelp(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length)) + 2;
  return [
    `nightshift ${VERSION} — a self-healing job supervisor for one server`,
    '',
    'usage: nightshift [--home DIR] [--state DIR] COMMAND [options]',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}${c.summary}`),
    '',
    'options:',
    '  --home DIR    the home folder with jobs/, rules/, protected/ (default: $NIGHTSHIFT_HOME or the current folder)',
    '  --state DIR   where runtime data lives (default: HOME/state)',
    '  --help        help for a command: nightshift COMMAND --help',
    '',
    'exit codes: 0 ok, 1 unhealthy/failed, 2 usage or invalid config, 3 daemon not reachable, 4 (start) the home was moved away while nightshift ran',
  ].join('\n');
}

export async function main(
  argv: string[],
  io: Out = { out: (s) => process.stdout.write(`${s}\n`), err: (s) => process.stderr.write(`${s}\n`) },
): Promise<number> {
  // Global options may stand before the command; the command word is the first positional.
  const cmdIndex = argv.findIndex((a, i) => !a.startsWith('-') && !(i > 0 && (argv[i - 1] === '--home' || argv[i - 1] === '--state')));
  const cmdName = cmdIndex >= 0 ? argv[cmdIndex]! : undefined;
  if (cmdName === undefined) {
    if (argv.includes('--version')) {
      io.out(VERSION);
      return EXIT.ok;
    }
    if (argv.includes('--help') || argv.includes('-h') || argv.length === 0) {
      io.out(mainHelp());
      return argv.length === 0 ? EXIT.usage : EXIT.ok;
    }
    io.err(`nightshift: no command given\n\n${mainHelp()}`);
    return EXIT.usage;
  }
  if (cmdName === 'help') {
    const topic = argv[cmdIndex + 1];
    const c = topic ? COMMANDS[topic] : undefined;
    io.out(c ? `usage: ${c.usage}\n\n${c.summary}\n\n${c.help}` : mainHelp());
    return EXIT.ok;
  }
  const cmd = COMMANDS[cmdName];
  if (!cmd) {
    io.err(`nightshift: unknown command "${cmdName}"\n\n${mainHelp()}`);
    return EXIT.usage;
  }
  const rest = [...argv.slice(0, cmdIndex), ...argv.slice(cmdIndex + 1)];
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...cmd.options }, allowPositionals: true, strict: true });
  } catch (err) {
    io.err(`nightshift ${cmdName}: ${errorMessage(err).split('\n')[0]}\nusage: ${cmd.usage}`);
    return EXIT.usage;
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) {
    io.out(`usage: ${cmd.usage}\n\n${cmd.summary}\n\n${cmd.help}`);
    return EXIT.ok;
  }
  const home = (values.home as string | undefined) ?? process.env.NIGHTSHIFT_HOME ?? process.cwd();
  const ctx: Ctx = { paths: homePaths(home, values.state as string | undefined), values, positionals: parsed.positionals, io };
  try {
    return await cmd.run(ctx);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`nightshift ${cmdName}: ${err.message}\nusage: ${cmd.usage}`);
      return EXIT.usage;
    }
    if (err instanceof DaemonUnreachable) {
      io.err(`nightshift ${cmdName}: ${err.message}. Start it with: systemctl start nightshift (or nightshift start)`);
      return EXIT.unreachable;
    }
    if (err instanceof StoreError) {
      io.err(`nightshift ${cmdName}: ${err.message}`);
      return EXIT.usage;
    }
    io.err(`nightshift ${cmdName}: ${errorMessage(err)}`);
    return EXIT.unhealthy;
  }
}
