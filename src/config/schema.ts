// The zod schemas here are the single source of the shapes of job specs, rules and the policy:
// the TypeScript types are inferred from them, never written twice.
import { z } from 'zod';
import { parseCron } from '../schedule/cron.js';
import { formatDuration, parseDuration } from './duration.js';
import { nameProblem } from '../names.js';
import { isValidTimeZone } from '../schedule/timezone.js';
import { errorMessage } from '../errors.js';

const duration = z.string({ error: 'expected a duration such as "30s", "15m" or "1h30m"' }).transform((text, ctx) => {
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
});

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
  .min(1, 'must name at least the program to run, e.g. ["python3", "export.py"]');

const regex = z.string().superRefine((text, ctx) => {
  try {
    new RegExp(text);
  } catch (err) {
    // V8 says "Invalid regular expression: /PATTERN/: REASON"; the field and line already show the pattern.
    const reason = errorMessage(err).replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a valid regular expression: ${reason}` });
  }
});

const name = z.string().superRefine((text, ctx) => {
  const bad = nameProblem(text);
  if (bad) ctx.addIssue({ code: 'custom', message: bad });
});

const timezone = z.string().refine(isValidTimeZone, {
  error: (iss) => `unknown time zone "${String(iss.input)}"; use an IANA name such as Europe/Zurich or UTC`,
});

const cron = z.string().transform((text, ctx) => {
  try {
    return parseCron(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: errorMessage(err) });
    return z.NEVER;
  }
});

const autonomy = z.enum(['shadow', 'gated', 'auto']);
export type Autonomy = z.infer<typeof autonomy>;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const JobSpecSchema = z
  .strictObject({
    description: z.string().optional(),
    schedule: cron.optional(),
    every: duration
      .refine((ms) => ms >= 1000, { message: 'must be at least 1s (a run every few milliseconds would bury the history)' })
      .optional(),
    timezone: timezone.optional(),
    command: argv.optional(),
    shell: z.string().min(1, 'is empty').optional(),
    cwd: z.string().min(1).optional(),
    env: z
      .record(
        z.string().regex(ENV_NAME, 'environment variable names use letters, digits and "_", and do not start with a digit'),
        z
          .union([z.string(), z.number(), z.boolean()], {
            error: 'an environment value must be a single text value, e.g. EXPORT_DIR: /srv/share',
          })
          .transform(String),
      )
      .optional(),
    timeout: atMost(positiveDuration, 7 * 86_400_000, '7d').default(3_600_000),
    killGrace: atMost(duration, 3_600_000, '1h').default(10_000),
    concurrency: z.enum(['forbid', 'allow', 'replace']).default('forbid'),
    catchUp: z.boolean().default(false),
    retries: z
      .strictObject({
        count: z.int().min(0).max(10, 'at most 10 retries'),
        delay: atMost(duration, 86_400_000, '1d').default(30_000),
      })
      .optional(),
    precheck: argv.optional(),
    expect: z
      .strictObject({
        files: z
          .array(
            z.strictObject({
              path: z.string().min(1),
              maxAge: positiveDuration.optional(),
              minBytes: z.int().min(0).optional(),
            }),
          )
          .optional(),
        outputMatches: regex.optional(),
        minDuration: duration.optional(),
      })
      .optional(),
    dependsOn: z.array(name).optional(),
    heartbeat: z
      .strictObject({
        grace: duration.optional(),
        file: z.string().min(1).optional(),
      })
      .optional(),
    autonomy: autonomy.optional(),
    agent: z.boolean().default(false),
    seeAllProcesses: z.boolean().default(false),
    enabled: z.boolean().default(true),
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
      for (const field of ['precheck', 'retries'] as const) {
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

export const PolicySchema = z.strictObject({
  timezone: timezone.optional(),
  killSwitch: z.string().min(1).optional(),
  autonomy: autonomy.default('auto'),
  maxAttempts: z.int().min(1).max(2, 'must be 1 or 2: at most 2 attempts per incident is a hard cap, then a human decides').default(2),
  protect: z.array(z.string().min(1)).default([]),
  /** The only units a rule's `restart:` may name; the daemon restarts them itself (polkit allows exactly these). */
  restartUnits: z.array(serviceUnit).default([]),
  brain: z.strictObject({ maxRunsPerDay: z.int().min(0).default(12), wallclock: positiveDuration.default(20 * 60_000) }).prefault({}),
  digest: z
    .strictObject({
      at: z
        .string()
        .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a time of day as "HH:MM", e.g. "07:00"')
        .default('07:00'),
      to: z.array(z.email('is not an e-mail address')).default([]),
      from: z.email('is not an e-mail address').optional(),
      smtp: z
        .strictObject({
          host: z.string().min(1),
          port: z.int().min(1).max(65535).default(25),
          secure: z.boolean().default(false),
          user: z.string().optional(),
          pass: z.string().optional(),
        })
        .optional(),
      sendmail: z.string().min(1).optional(),
    })
    .superRefine((d, ctx) => {
      if (d.smtp && d.sendmail) ctx.addIssue({ code: 'custom', path: ['sendmail'], message: 'use either "smtp" or "sendmail", not both' });
    })
    .prefault({}),
  deadman: argv.optional(),
  page: z
    .strictObject({
      allow: z.array(z.string().min(1)).default([]),
      command: argv.optional(),
    })
    .prefault({}),
  /**
   * How long records are kept (a full disk is the one fault that stops a supervisor). Defaults:
   * a quarter of run history (and at most 10,000 runs per job: an every-minute job keeps about a
   * week), a month of pings, a year of incidents, heals, events, pages and digests — enough for
   * the digest, the watchdog and a rule's evidence. A job's newest run and newest success, open
   * alerts and heals in flight are never removed.
   */
  retention: z
    .strictObject({
      runs: atLeastADay.default(90 * DAY_MS),
      runsPerJob: z.int().min(100, 'must be at least 100').default(10_000),
      heartbeats: atLeastADay.default(30 * DAY_MS),
      alerts: atLeastADay.default(365 * DAY_MS),
      events: atLeastADay.default(365 * DAY_MS),
      digests: atLeastADay.default(365 * DAY_MS),
    })
    .prefault({}),
});

export type Policy = z.output<typeof PolicySchema>;

const alertKind = z.enum(['missed', 'failed', 'hung', 'wrong']);

export const RuleSchema = z
  .strictObject({
    description: z.string().optional(),
    match: z.strictObject({
      job: z.string().min(1),
      kind: z.array(alertKind).min(1).optional(),
      exitCode: z.array(z.int()).min(1).optional(),
      output: regex.optional(),
    }),
    autonomy: z.enum(['shadow', 'gated', 'auto', 'pilot']).default('shadow'),
    jobs: z.string().min(1).optional(),
    maxAttempts: z.int().min(1).max(2, 'must be 1 or 2: at most 2 attempts per incident is a hard cap, then a human decides').optional(),
    action: z
      .strictObject({
        command: argv.optional(),
        rerun: z.boolean().optional(),
        brain: argv.optional(),
        restart: serviceUnit.optional(),
        touches: z.array(z.string().min(1)).default([]),
        timeout: positiveDuration.default(120_000),
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
    probe: z
      .strictObject({
        rerun: z.boolean().optional(),
        command: argv.optional(),
        timeout: positiveDuration.default(120_000),
      })
      .prefault({}),
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
