// The zod schemas here are the single source of the shapes of job specs, rules and the policy:
// the TypeScript types are inferred from them, never written twice.
import { z } from 'zod';
import { parseCron } from '../schedule/cron.js';
import { formatDuration, parseDuration } from './duration.js';
import { nameProblem } from '../names.js';
import { isValidTimeZone } from '../schedule/timezone.js';
import { errorMessage } from '../errors.js';
import { hasWildcard } from '../glob.js';

/**
 * What docs/reference.md says of a field (`npm run docs` writes it from these schemas; a test fails
 * when the file and the schemas disagree): what the field does, and a YAML example of it that the
 * test validates with the schema. `kind` names a value's type in the operator's words.
 */
export type FieldDoc = { doc: string; example?: string };
const doc = <T extends z.ZodType>(schema: T, text: string, example?: string): T => schema.meta({ doc: text, example });

const duration = z
  .string({ error: 'expected a duration such as "30s", "15m" or "1h30m"' })
  .transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === null) {
      ctx.addIssue({
        code: 'custom',
        message: text.trim().startsWith('-')
          ? `"${text}" is negative; a duration is a positive number with a unit (ms, s, m, h, d), e.g. "30s" or "1h30m"`
          : `"${text}" is not a duration; write a number with a unit (ms, s, m, h, d), e.g. "30s" or "1h30m"`,
      });
      return z.NEVER;
    }
    return ms;
  })
  .meta({ kind: 'duration' });

const positiveDuration = duration.refine((ms) => ms > 0, { message: 'must be longer than 0' });

const DAY_MS = 86_400_000;
/** A retention: shorter than a day would throw away what today's digest is made of. */
const atLeastADay = duration.refine((ms) => ms >= DAY_MS, { message: 'must be at least 1d (the digest reads a whole day)' });

/** A duration with an upper bound, said in the operator's units (timers cannot wait forever). */
const atMost = (base: typeof duration, maxMs: number, maxText: string) =>
  base.refine((ms) => ms <= maxMs, { error: (iss) => `must be at most ${maxText} (got ${formatDuration(Number(iss.input))})` });

const argv = z
  .array(z.string({ error: 'each argument must be text (put numbers in quotes, e.g. "5")' }).min(1, 'an argument is empty'), {
    error: 'expected a list: the program and its arguments, e.g. ["python3", "export.py"]',
  })
  .min(1, 'must name at least the program to run, e.g. ["python3", "export.py"]')
  .meta({ kind: 'command' });

const regex = z
  .string()
  .superRefine((text, ctx) => {
    try {
      new RegExp(text);
    } catch (err) {
      // V8 says "Invalid regular expression: /PATTERN/: REASON"; the field and line already show the pattern.
      const reason = errorMessage(err).replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
      ctx.addIssue({ code: 'custom', message: `"${text}" is not a valid regular expression: ${reason}` });
    }
  })
  .meta({ kind: 'regular expression' });

const name = z
  .string()
  .superRefine((text, ctx) => {
    const bad = nameProblem(text);
    if (bad) ctx.addIssue({ code: 'custom', message: bad });
  })
  .meta({ kind: 'job name' });

const timezone = z
  .string()
  .refine(isValidTimeZone, {
    error: (iss) => `unknown time zone "${String(iss.input)}"; use an IANA name such as Europe/Zurich or UTC`,
  })
  .meta({ kind: 'time zone' });

/** `schedule: "@reboot"`: once per boot of the machine (not a time, so not a cron expression). */
export const AT_BOOT = '@reboot';

const cron = z
  .string()
  .transform((text, ctx) => {
    if (text.trim() === AT_BOOT) return AT_BOOT;
    try {
      return parseCron(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: errorMessage(err) });
      return z.NEVER;
    }
  })
  .meta({ kind: 'cron line' });

const autonomy = z.enum(['shadow', 'gated', 'auto']);
export type Autonomy = z.infer<typeof autonomy>;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// What useradd accepts (and a trailing $ for machine accounts), at most 32 characters.
const ACCOUNT_NAME = /^(?=.{1,32}$)[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/;

export const JobSpecSchema = z
  .strictObject({
    description: doc(
      z.string().optional(),
      'One line on what the job does, shown in `status` and the digest.',
      "description: Export yesterday's orders to the accounting share",
    ),
    schedule: doc(
      cron.optional(),
      "When the job runs: a cron line as Debian's cron reads it — 5 fields, or 6 with seconds first; names (`MON`, `JAN`); `@daily`-style nicknames; day-of-month OR day-of-week when both are restricted — in the job's `timezone`. Put it in quotes: an unquoted `*` means something else to YAML. Use `schedule` or `every`, not both; with neither, the job runs only when asked (`nightshift run`) or, for an external job, proves life by pinging.",
      'schedule: "0 3 * * *"',
    ),
    every: doc(
      duration
        .refine((ms) => ms >= 1000, { message: 'must be at least 1s (a run every few milliseconds would bury the history)' })
        .optional(),
      'A fixed real interval instead of a cron line, aligned to the Unix epoch (so `every: 1h` runs on the hour, UTC). At least 1s.',
      'every: 30s',
    ),
    timezone: doc(
      timezone.optional(),
      "The zone `schedule` is read in. Default: the policy's `timezone`, else the system's.",
      'timezone: Europe/Zurich',
    ),
    command: doc(
      argv.optional(),
      'What nightshift runs: the program and its arguments, never passed through a shell. A job with neither `command` nor `shell` is external: something else runs it and pings (`nightshift ping JOB`).',
      'command: ["python3", "export.py", "--day", "yesterday"]',
    ),
    shell: doc(
      z.string().min(1, 'is empty').optional(),
      'A command line for `/bin/sh -c`, the explicit opt-in to a shell (pipes, redirections). Use `command` or `shell`, not both.',
      'shell: "pg_dump shop | gzip > /backups/shop.sql.gz"',
    ),
    cwd: doc(
      z.string().min(1).optional(),
      "The folder the job runs in; a relative one is relative to the home folder. Default: the home folder; for a job with `user:`, that account's HOME, as under cron.",
      'cwd: /srv/shop',
    ),
    env: doc(
      z
        .record(
          z.string().regex(ENV_NAME, 'environment variable names use letters, digits and "_", and do not start with a digit'),
          z
            .union([z.string(), z.number(), z.boolean()], {
              error: 'an environment value must be a single text value, e.g. EXPORT_DIR: /srv/share',
            })
            .transform(String)
            .meta({ kind: 'text (a number or true/false is passed as text)' }),
        )
        .optional(),
      "Environment variables added to the daemon's own for this job; numbers and true/false are passed as text.",
      'env: { EXPORT_DIR: /srv/share, BATCH: 500 }',
    ),
    user: doc(
      z.string().regex(ACCOUNT_NAME, 'an account name such as www-data or backup (letters, digits, "_", "-", "."; at most 32)').optional(),
      "The account the job runs as, as cron runs a user's crontab: its uid, gid and groups, with `HOME` and `LOGNAME` (and `USER`) of the account and `SHELL=/bin/sh` set as cron sets them. Only a nightshift running as root can do this (the root-mode unit, deploy/README.md); fixes and probes still run unprivileged. Default: the account nightshift runs as.",
      'user: backup',
    ),
    timeout: doc(
      atMost(positiveDuration, 7 * 86_400_000, '7d').default(3_600_000),
      'How long a run may take. Then every process of the run gets SIGTERM, the whole sandbox SIGKILL after `killGrace`, the run ends `timeout` and the watchdog raises `hung`. At most 7d.',
      'timeout: 15m',
    ),
    killGrace: doc(
      atMost(duration, 3_600_000, '1h').default(10_000),
      'How long a run stopped by `timeout` (or by a `replace`, the kill switch or a stop) has between SIGTERM and SIGKILL. At most 1h.',
      'killGrace: 30s',
    ),
    concurrency: doc(
      z.enum(['forbid', 'allow', 'replace']).default('forbid'),
      'What happens when an instant comes while the previous run still runs: `forbid` records the instant as `skipped-overlap`; `allow` starts a second run; `replace` stops the old run (outcome `killed`) and then starts the new one.',
      'concurrency: replace',
    ),
    catchUp: doc(
      z.boolean().default(false),
      "After the daemon was down (or the clock jumped forward), run once for the instants it missed (trigger `catch-up`), as systemd's `Persistent=`. Off: the missed instants are only recorded.",
      'catchUp: true',
    ),
    retries: doc(
      z
        .strictObject({
          count: doc(
            z.int().min(0).max(10, 'at most 10 retries'),
            'How many times a failed run is run again before an alert is raised. At most 10.',
            'retries: { count: 2 }',
          ),
          delay: doc(
            atMost(duration, 86_400_000, '1d').default(30_000),
            'The wait before each retry. At most 1d.',
            'retries: { count: 2, delay: 5m }',
          ),
        })
        .optional(),
      'For transient failures: a failed run is retried before the watchdog raises `failed`. Only for jobs nightshift runs itself.',
      'retries: { count: 1, delay: 30s }',
    ),
    precheck: doc(
      argv.optional(),
      'An LLM-free gate run before each run: only a first stdout line `IDLE` with exit 0 skips the run (`skipped-precheck`, which counts as life); any other output, exit code or error means "run" (fail open). Only for jobs nightshift runs itself.',
      'precheck: ["./has-new-orders.sh"]',
    ),
    expect: doc(
      z
        .strictObject({
          files: doc(
            z
              .array(
                z.strictObject({
                  path: doc(
                    z
                      .string()
                      .min(1)
                      .refine((p) => !hasWildcard(p.slice(0, p.lastIndexOf('/') + 1)), {
                        message: 'a wildcard may only be in the file name, not in its folder, e.g. /var/backups/shop-*.sql.gz',
                      }),
                    'The file the run must leave behind; relative to `cwd` if set, else to the home folder. A wildcard in the file name (`*`, `?`, `{a,b}`) names a file by its date or number: the newest match is checked.',
                    'expect: { files: [{ path: "/var/backups/shop-*.sql.gz", maxAge: 1d }] }',
                  ),
                  maxAge: doc(
                    positiveDuration.optional(),
                    'The file must have been changed at most this long before it is checked, right after the run.',
                    'expect: { files: [{ path: /srv/share/orders.csv, maxAge: 2h }] }',
                  ),
                  minBytes: doc(
                    z.int().min(0).optional(),
                    'The file must be at least this big.',
                    'expect: { files: [{ path: /srv/share/orders.csv, minBytes: 100 }] }',
                  ),
                }),
              )
              .optional(),
            'Files a successful run must leave behind, each checked after the run.',
            'expect:\n  files:\n    - { path: /srv/share/orders.csv, maxAge: 2h, minBytes: 100 }',
          ),
          outputMatches: doc(
            regex.optional(),
            "The run's output (stdout and stderr together) must match this regular expression somewhere.",
            'expect: { outputMatches: "exported [1-9][0-9]* orders" }',
          ),
          minDuration: doc(
            duration.optional(),
            'A run that ends sooner than this is wrong too (it did not do its work).',
            'expect: { minDuration: 5s }',
          ),
        })
        .optional(),
      'What a successful run must have done, beyond exit 0. A run that exits 0 and breaks one of these ends `wrong`, and the watchdog raises `wrong` ("valid but wrong").',
      'expect:\n  outputMatches: "exported [1-9][0-9]* orders"\n  minDuration: 5s',
    ),
    dependsOn: doc(
      z.array(name).optional(),
      'Jobs this one needs. While one of them has an open alert, this job\'s alerts are folded under it ("blocked by db-backup") and are not raised or healed one by one.',
      'dependsOn: [db-backup]',
    ),
    heartbeat: doc(
      z
        .strictObject({
          grace: doc(
            duration.optional(),
            'How late a success may be, after the next expected instant, before the watchdog raises `missed`. Default: 5m for an external job; for a job nightshift runs, its `timeout` plus its retries plus 1m.',
            'heartbeat: { grace: 10m }',
          ),
          file: doc(
            z.string().min(1).optional(),
            'A file whose every touch counts as a success (relative to the home folder). For an external job, a way to ping; for a job nightshift runs, it makes the job long-running: it proves life while it runs.',
            'heartbeat: { file: /var/run/shop-worker.alive }',
          ),
        })
        .optional(),
      'How the watchdog knows the job is alive.',
      'heartbeat: { grace: 10m }',
    ),
    autonomy: doc(
      autonomy.optional(),
      "The highest level a heal of this job may run at (`shadow`: only a written proposal; `gated`: a person approves; `auto`). The lowest of this, the rule's and the policy's applies. Default: no limit of its own.",
      'autonomy: gated',
    ),
    agent: doc(
      z.boolean().default(false),
      'An autonomous agent loop (an LLM CLI): the kill switch stops it and keeps it from starting, and it always runs in its own PID namespace.',
      'agent: true',
    ),
    seeAllProcesses: doc(
      z.boolean().default(false),
      "Let the job see and signal the machine's other processes (`pkill -f stale-worker`): it shares the machine's PID namespace and is stopped by process group, as under cron; `status` lists it. Give it only to a job you trust as much as nightshift. Not for agent jobs.",
      'seeAllProcesses: true',
    ),
    enabled: doc(z.boolean().default(true), 'Off: the job is loaded and shown, but never scheduled.', 'enabled: false'),
  })
  .superRefine((job, ctx) => {
    if (job.schedule !== undefined && job.every !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['every'], message: 'use either "schedule" or "every", not both' });
    }
    if (job.every !== undefined && job.timezone !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['timezone'],
        message: '"every" is a fixed real interval; a time zone only applies to "schedule"',
      });
    }
    if (job.command !== undefined && job.shell !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['shell'], message: 'use either "command" (argv) or "shell", not both' });
    }
    if (job.agent && job.seeAllProcesses) {
      // An agent loop is autonomous: it stays in its own PID namespace, like a fix.
      ctx.addIssue({
        code: 'custom',
        path: ['seeAllProcesses'],
        message: 'an agent job (agent: true) always runs in its own PID namespace; remove seeAllProcesses',
      });
    }
    const managed = job.command !== undefined || job.shell !== undefined;
    if (!managed) {
      for (const field of ['precheck', 'retries', 'user'] as const) {
        if (job[field] !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: [field],
            message: `only applies to a job nightshift runs itself (add "command" or "shell")`,
          });
        }
      }
    }
  });

export type JobSpec = z.output<typeof JobSpecSchema>;

/** A systemd service unit, by its full name (what polkit's rule compares against). */
const serviceUnit = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:-]*(@[A-Za-z0-9._:-]+)?\.service$/,
    'expected a systemd service unit by its full name, e.g. "shop-worker.service" (a template needs its instance: "worker@1.service")',
  );

/** `HOST:PORT` (an IPv6 host in brackets) or `off`. */
const listenAddress = z
  .string()
  .refine((v) => v === 'off' || parseListen(v) !== null, {
    message: 'expected HOST:PORT such as 127.0.0.1:8787 (an IPv6 address in brackets: [::1]:8787), or off',
  })
  // A name may stand for two addresses (localhost: 127.0.0.1 and ::1); the daemon binds one, and a
  // job could take the other and receive what a browser sends there.
  .refine((v) => v === 'off' || parseListen(v) === null || /^[\d.]+$|:/.test(parseListen(v)!.host), {
    message: 'expected an IP address, not a name (127.0.0.1:8787 rather than localhost:8787)',
  });

/** The origin of a publicUrl as the dashboard compares it; null when it is not an address alone. */
export function publicOrigin(v: string): URL | null {
  if (!/^https?:\/\/[^/?#\s]+\/?$/.test(v)) return null;
  try {
    const u = new URL(v);
    return u.pathname === '/' && !u.username && !u.password ? u : null;
  } catch {
    return null;
  }
}

/**
 * The address people open the dashboard at: publicUrl's origin, or http:// and the listen
 * address. Null when the dashboard is off. Login links, page events and the digest link from it.
 */
export function dashboardOrigin(policy: Pick<Policy, 'dashboard'>): string | null {
  const d = policy.dashboard;
  return d.listen === 'off' ? null : originOf(d.listen, d.publicUrl);
}

/** The same for a dashboard being served, with the listen address and publicUrl it serves now. */
export function originOf(listen: string, publicUrl: string | null | undefined): string {
  // The origin, not the text as written: "https://ops.example/" must not give "https://ops.example//login".
  return publicUrl ? (publicOrigin(publicUrl)?.origin ?? publicUrl) : `http://${listen}`;
}

/** A page of the dashboard ("/heals#H-4") as a full address; null when the dashboard is off. */
export function dashboardLink(policy: Pick<Policy, 'dashboard'>, path: string): string | null {
  const origin = dashboardOrigin(policy);
  return origin === null ? null : `${origin}${path}`;
}

const LOOPBACK_HOST = /^(127\.\d+\.\d+\.\d+|\[::1\])$/;

const publicUrl = z
  .string()
  .refine((v) => publicOrigin(v) !== null, {
    message: 'expected the address alone, such as https://ops.shop.example (a valid host and port; no path, query or spaces)',
  })
  // Over plain http the session cookie would cross a network in clear text; only this machine may.
  .refine((v) => publicOrigin(v)?.protocol !== 'http:' || LOOPBACK_HOST.test(publicOrigin(v)!.hostname), {
    message: 'must be https (the reverse proxy in front terminates TLS); plain http is for this machine only (http://127.0.0.1:…)',
  })
  .transform((v) => v.replace(/\/$/, ''));

/** Host and port of a `listen` value; null when it is not HOST:PORT with a port from 1 to 65535. */
export function parseListen(v: string): { host: string; port: number } | null {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export function isLoopbackListen(v: string): boolean {
  const host = parseListen(v)?.host;
  return host === '::1' || (host !== undefined && /^127\.\d+\.\d+\.\d+$/.test(host));
}

export const PolicySchema = z.strictObject({
  timezone: doc(
    timezone.optional(),
    "The zone of the digest's time and of every job without a `timezone` of its own. Default: the system's.",
    'timezone: Europe/Zurich',
  ),
  killSwitch: doc(
    z.string().min(1).optional(),
    'The kill switch file: while it exists, every autonomous action stops (agent jobs, fixes, brains). Relative to the home folder. Default: `KILL` in the state folder. Kept elsewhere, put it in a folder of its own: that folder is read-only to every process nightshift starts.',
    'killSwitch: /run/nightshift/KILL',
  ),
  autonomy: doc(
    autonomy.default('auto'),
    "The ceiling for every heal: `shadow` (proposals only), `gated` (a person approves each fix) or `auto`. The lowest of this, the job's and the rule's level applies.",
    'autonomy: gated',
  ),
  maxAttempts: doc(
    z.int().min(1).max(2, 'must be 1 or 2: at most 2 attempts per incident is a hard cap, then a human decides').default(2),
    'Attempts that ran a fix, per incident; then the incident is `blocked` and waits for a person. 1 or 2.',
    'maxAttempts: 1',
  ),
  protect: doc(
    z.array(z.string().min(1)).default([]),
    'More paths (globs) no fix may change, added to the protected zone that is always there: `jobs/`, `rules/`, `protected/`, the state folder and the nightshift install. A rule that touches them is refused; a change to them during a fix is an emergency.',
    'protect: ["/etc/nginx/**"]',
  ),
  restartUnits: doc(
    z.array(serviceUnit).default([]),
    "The only systemd units a rule's `restart:` may name; the daemon runs `systemctl restart` itself (the polkit rule in `deploy/` allows exactly these).",
    'restartUnits: [shop-worker.service]',
  ),
  brain: doc(
    z
      .strictObject({
        maxRunsPerDay: doc(
          z.int().min(0).default(12),
          'How many brain fixes may run in 24 hours; beyond that a brain fix is refused.',
          'brain: { maxRunsPerDay: 4 }',
        ),
        wallclock: doc(
          positiveDuration.default(20 * 60_000),
          'How long one brain run may take; then it is killed and its fix rolled back.',
          'brain: { wallclock: 10m }',
        ),
      })
      .prefault({}),
    'Budgets for `brain` fixes: external agent commands such as an LLM CLI.',
    'brain: { maxRunsPerDay: 12, wallclock: 20m }',
  ),
  digest: doc(
    z
      .strictObject({
        at: doc(
          z
            .string()
            .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a time of day as "HH:MM", e.g. "07:00"')
            .default('07:00'),
          "The time of day the digest of the last 24 hours is written and sent, in the policy's `timezone`.",
          'digest: { at: "06:30" }',
        ),
        to: doc(
          z.array(z.email('is not an e-mail address')).default([]),
          'Who gets the digest by e-mail. Empty: it is only written to `state/digests/DAY.md` and kept in SQLite.',
          'digest: { to: ["kevin@example.com"], smtp: { host: 127.0.0.1 } }',
        ),
        from: doc(
          z.email('is not an e-mail address').optional(),
          "The sender of the digest. Default: `nightshift@` and the machine's host name, which many mail servers refuse: set a real address.",
          'digest: { from: "nightshift@shop.example" }',
        ),
        smtp: doc(
          z
            .strictObject({
              host: doc(z.string().min(1), 'The mail server.', 'digest: { smtp: { host: mail.shop.example } }'),
              port: doc(
                z.int().min(1).max(65535).default(25),
                'Its port: 25 or 587 (plain; with a login to a server off the loopback, STARTTLS is required), or 465 with `secure: true` (TLS from the start).',
                'digest: { smtp: { host: mail.shop.example, port: 587 } }',
              ),
              secure: doc(
                z.boolean().default(false),
                'TLS from the start of the connection (port 465).',
                'digest: { smtp: { host: mail.shop.example, port: 465, secure: true } }',
              ),
              user: doc(
                z.string().optional(),
                'A login, if the server wants one. Off the loopback, a login is only sent over TLS.',
                'digest: { smtp: { host: mail.shop.example, port: 587, user: nightshift, pass: "s3cret" } }',
              ),
              pass: doc(
                z.string().optional(),
                "The login's password (keep protected/ readable only by root).",
                'digest: { smtp: { host: mail.shop.example, user: nightshift, pass: "s3cret" } }',
              ),
            })
            .optional(),
          'Send the digest through this SMTP server.',
          'digest: { smtp: { host: 127.0.0.1, port: 25 } }',
        ),
        sendmail: doc(
          z.string().min(1).optional(),
          'Or send it with this sendmail program (the message on its stdin). Use `smtp` or `sendmail`, not both.',
          'digest: { sendmail: /usr/sbin/sendmail }',
        ),
      })
      .superRefine((d, ctx) => {
        if (d.smtp && d.sendmail)
          ctx.addIssue({ code: 'custom', path: ['sendmail'], message: 'use either "smtp" or "sendmail", not both' });
      })
      .prefault({}),
    'The daily digest: what happened in the last 24 hours, in plain words. A failed send is retried (1m, 5m, 15m, 1h, then every 6h).',
    'digest:\n  at: "07:00"\n  to: ["kevin@example.com"]\n  from: "nightshift@shop.example"\n  smtp: { host: 127.0.0.1, port: 25 }',
  ),
  deadman: doc(
    argv.optional(),
    'A command run at start, every hour and after each digest, so that something outside (such as a Healthchecks check) notices when nightshift itself stops.',
    'deadman: ["curl", "-fsS", "https://hc.example/ping/UUID"]',
  ),
  page: doc(
    z
      .strictObject({
        allow: doc(
          z.array(z.string().min(1)).default([]),
          "What may page: events (`protected-zone`, `heal-blocked`, `approval-requested`, `daemon-restart-loop`, `disk-full`), alert kinds (`missed`, `failed`, `hung`, `wrong`) or one job's alert (`db-backup:failed`). Everything else waits for the digest.",
          'page: { allow: [protected-zone, heal-blocked, daemon-restart-loop] }',
        ),
        command: doc(
          argv.optional(),
          'The command that pages, with the event as JSON on its stdin (never in its arguments): `event`, `fingerprint`, `job`, `message`, `at`, and `url`, the address of its card on the dashboard (null while the dashboard is off). At most once per event per hour, killed after 10s. deploy/README.md shows one that pushes to a phone with ntfy.',
          'page: { command: ["/usr/local/bin/notify-phone"] }',
        ),
      })
      .prefault({}),
    'The only things that may interrupt a person at once.',
    'page:\n  allow: [protected-zone, heal-blocked]\n  command: ["/usr/local/bin/notify-phone"]',
  ),
  dashboard: doc(
    z
      .strictObject({
        listen: doc(
          listenAddress.default('127.0.0.1:8787'),
          'Where the dashboard listens: `HOST:PORT`, or `off`. An address other than loopback needs `publicUrl` with https (a reverse proxy in front terminates TLS).',
          'dashboard: { listen: "127.0.0.1:9090" }',
        ),
        publicUrl: doc(
          publicUrl.optional(),
          'The address people open, when a reverse proxy serves the dashboard (links from `nightshift login` use it). Requests naming another host are refused.',
          'dashboard: { publicUrl: "https://ops.shop.example" }',
        ),
      })
      .prefault({})
      .superRefine((d, ctx) => {
        // A listen value that is not HOST:PORT has its own message; this one is about reach.
        const host = d.listen === 'off' ? null : parseListen(d.listen)?.host;
        if (!host || !/^[\d.]+$|:/.test(host) || isLoopbackListen(d.listen)) return;
        if (!d.publicUrl?.startsWith('https://'))
          ctx.addIssue({
            code: 'custom',
            path: ['listen'],
            message: `${d.listen} is reachable from other machines: set publicUrl to the https address of the reverse proxy in front of it (for example "https://ops.shop.example"), or listen on 127.0.0.1`,
          });
      }),
    'The web page served by the daemon: status, alerts, heals and the buttons a person may press (approve, deny, run, pause, kill switch). Log in with `nightshift login`.',
    'dashboard:\n  listen: 127.0.0.1:8787\n  publicUrl: https://ops.shop.example',
  ),
  // A full disk is the one fault that stops a supervisor: every table is pruned (store/retention.ts).
  retention: doc(
    z
      .strictObject({
        runs: doc(
          atLeastADay.default(90 * DAY_MS),
          "Finished runs older than this are removed with their logs (a quarter: enough for trends and a rule's evidence). A job's newest run and newest success are kept.",
          'retention: { runs: 30d }',
        ),
        runsPerJob: doc(
          z.int().min(100, 'must be at least 100').default(10_000),
          'And beyond this many runs of one job (an every-minute job keeps about a week).',
          'retention: { runsPerJob: 5000 }',
        ),
        heartbeats: doc(atLeastADay.default(30 * DAY_MS), 'Pings older than this are removed.', 'retention: { heartbeats: 7d }'),
        alerts: doc(
          atLeastADay.default(365 * DAY_MS),
          'Resolved incidents older than this are removed with their heal attempts; open ones never.',
          'retention: { alerts: 180d }',
        ),
        events: doc(
          atLeastADay.default(365 * DAY_MS),
          'The event journal (kill switch flips, clock jumps, restarts) and pages older than this are removed.',
          'retention: { events: 180d }',
        ),
        digests: doc(atLeastADay.default(365 * DAY_MS), 'Digests older than this are removed.', 'retention: { digests: 90d }'),
      })
      .prefault({}),
    'How long records are kept, so the state folder does not fill its disk. Each at least 1d (the digest reads a whole day). Pruned a minute after start and every six hours, in small batches.',
    'retention: { runs: 30d, runsPerJob: 5000 }',
  ),
});

export type Policy = z.output<typeof PolicySchema>;

const alertKind = z.enum(['missed', 'failed', 'hung', 'wrong']);

export const RuleSchema = z
  .strictObject({
    description: doc(
      z.string().optional(),
      'One line on the incident this rule answers, shown with its heals.',
      'description: A hung export holds a stale lock; clear it and run again.',
    ),
    match: doc(
      z.strictObject({
        job: doc(z.string().min(1), 'The job: its name, or a glob (`export-*`, `*`).', 'match: { job: "export-*" }'),
        kind: doc(
          z.array(alertKind).min(1).optional(),
          'Only alerts of these kinds. Default: any kind.',
          'match: { job: nightly-export, kind: [hung, failed] }',
        ),
        exitCode: doc(
          z.array(z.int()).min(1).optional(),
          "Only when the run's exit code is one of these.",
          'match: { job: nightly-export, exitCode: [1, 75] }',
        ),
        output: doc(
          regex.optional(),
          "Only when the end of the run's output (its last 4 KiB) matches this regular expression.",
          'match: { job: nightly-export, output: "lock .* held" }',
        ),
      }),
      'Which alerts this rule answers. Rules are tried in file-name order (name them `10-…`, `20-…`); the first whose `match` fits is the one used.',
      'match: { job: nightly-export, kind: [hung] }',
    ),
    autonomy: doc(
      z.enum(['shadow', 'gated', 'auto', 'pilot']).default('shadow'),
      "How far the rule may go on its own: `shadow` writes a proposal and runs nothing; `gated` waits for `nightshift approve H-ID` (a heal ID such as H-4) (within 24 h); `auto` runs the fix; `pilot` is `auto` for the jobs its `jobs` glob names and `gated` for the rest. The lowest of this, the job's and the policy's level applies, and a rolled-back fix in `auto` demotes the rule a rung until the file is edited.",
      'autonomy: auto',
    ),
    jobs: doc(
      z.string().min(1).optional(),
      'For `autonomy: pilot`: the jobs (a glob) the rule may fix on its own.',
      'autonomy: pilot\njobs: "export-*"',
    ),
    maxAttempts: doc(
      z.int().min(1).max(2, 'must be 1 or 2: at most 2 attempts per incident is a hard cap, then a human decides').optional(),
      "Attempts that ran a fix, per incident, for this rule; at most the policy's `maxAttempts`.",
      'maxAttempts: 1',
    ),
    action: doc(
      z
        .strictObject({
          command: doc(
            argv.optional(),
            'A fix command. It runs in a sandbox where the whole file system is read-only except its `touches`.',
            'action: { command: ["rm", "-f", "work/export/export.lock"], touches: ["work/export/export.lock"] }',
          ),
          rerun: doc(
            z.boolean().optional(),
            "Run the job again as the fix (a hung run's processes are killed first).",
            'action: { rerun: true }',
          ),
          brain: doc(
            argv.optional(),
            "An external agent command (an LLM CLI) as the fix, within the policy's `brain` budget. It gets the alert only as a JSON file named in `NIGHTSHIFT_ALERT_FILE`: alert text is data, never part of a command line.",
            'action: { brain: ["/usr/local/bin/fix-agent"], touches: ["work/cache/"] }',
          ),
          restart: doc(
            serviceUnit.optional(),
            "Restart a systemd unit as the fix; the daemon runs `systemctl restart` itself, only for units in the policy's `restartUnits`.",
            'action: { restart: shop-worker.service }',
          ),
          touches: doc(
            z.array(z.string().min(1)).default([]),
            'What the fix may change (relative to the home folder): snapshotted first, restored byte-exact on rollback, and the only paths the fix can write. A folder (ending in `/`, or one that exists) is writable whole; a file can be changed, created or removed. None may lie in the protected zone.',
            'action: { command: ["./clear-cache.sh"], touches: ["work/cache/"] }',
          ),
          timeout: doc(
            positiveDuration.default(120_000),
            'How long the fix may run; then it is killed and rolled back.',
            'action: { rerun: true, timeout: 5m }',
          ),
        })
        .superRefine((a, ctx) => {
          const kinds = [
            a.command !== undefined ? '"command"' : undefined,
            a.rerun ? '"rerun: true"' : undefined,
            a.brain !== undefined ? '"brain"' : undefined,
            a.restart !== undefined ? '"restart"' : undefined,
          ].filter((x) => x !== undefined);
          if (kinds.length === 0) {
            ctx.addIssue({ code: 'custom', message: 'has no action; give exactly one of "command", "rerun: true", "brain" or "restart"' });
          } else if (kinds.length > 1) {
            ctx.addIssue({
              code: 'custom',
              message: `has ${kinds.length} actions (${kinds.join(' and ')}); a rule takes exactly one of "command", "rerun: true", "brain" or "restart"`,
            });
          }
          if (a.restart !== undefined && a.touches.length > 0) {
            ctx.addIssue({
              code: 'custom',
              path: ['touches'],
              message: 'a restart touches no files (the daemon restarts the unit itself); remove "touches"',
            });
          }
        }),
      'What the heal does: exactly one of `command`, `rerun: true`, `brain` or `restart`.',
      'action:\n  command: ["rm", "-f", "work/export/export.lock"]\n  touches: ["work/export/export.lock"]\n  timeout: 2m',
    ),
    probe: doc(
      z
        .strictObject({
          rerun: doc(
            z.boolean().optional(),
            'Run the job again (trigger `probe`); it must end `ok`, its `expect` included. This is the default.',
            'probe: { rerun: true }',
          ),
          command: doc(
            argv.optional(),
            "Or an independent check: exit 0 means healthy. It may write nothing, and may not be the fix's own command (the maker is never the checker).",
            'probe: { command: ["curl", "-fsS", "http://127.0.0.1:8080/health"] }',
          ),
          timeout: doc(
            positiveDuration.default(120_000),
            'How long the probe command may run; then it counts as failed.',
            'probe: { command: ["./check.sh"], timeout: 30s }',
          ),
        })
        .prefault({}),
      'How nightshift checks, after the fix, that it worked. A fix that fails itself is not probed; a failed probe rolls the fix back.',
      'probe: { rerun: true }',
    ),
  })
  .superRefine((rule, ctx) => {
    if (rule.autonomy === 'pilot' && rule.jobs === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['autonomy'],
        message: '"pilot" must be limited to some jobs: add a "jobs" glob, e.g. jobs: "export-*"',
      });
    }
    if (rule.probe.command && rule.probe.rerun) {
      ctx.addIssue({ code: 'custom', path: ['probe'], message: 'use either "rerun: true" or "command", not both' });
    }
    const fix = rule.action.command ?? rule.action.brain;
    // The program by its name, not its path: `sh` and `/bin/sh` are the same maker.
    const same = (a: readonly string[], b: readonly string[]): boolean =>
      JSON.stringify([a[0]?.split('/').pop(), ...a.slice(1)]) === JSON.stringify([b[0]?.split('/').pop(), ...b.slice(1)]);
    if (fix && rule.probe.command && same(fix, rule.probe.command)) {
      ctx.addIssue({
        code: 'custom',
        path: ['probe', 'command'],
        message: 'the probe is the same command as the fix; the maker is never the checker — probe with an independent check',
      });
    }
  });

export type Rule = z.output<typeof RuleSchema>;
