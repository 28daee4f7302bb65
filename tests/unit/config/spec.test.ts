// Spec validation as an operator meets it: every malformed job, rule or policy must be refused with
// FILE:LINE: field: message, on the line where the mistake is, in words that say what to write instead.
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkDependencies,
  DEFAULT_POLICY,
  loadHome,
  loadJobFile,
  loadPolicyFile,
  loadRuleFile,
  type LoadedHome,
} from '../../../src/config/home.js';
import { homePaths } from '../../../src/config/paths.js';
import { JobSpecSchema, PolicySchema, RuleSchema } from '../../../src/config/schema.js';
import { formatProblem, parseSpecText, type SpecProblem } from '../../../src/config/parse.js';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ns-spec-'));
  temps.push(dir);
  return dir;
}

/** A home folder with the given files (paths relative to the home, e.g. "jobs/a.yaml"). */
function makeHome(files: Record<string, string>): string {
  const home = tempDir();
  for (const dir of ['jobs', 'rules', 'protected']) mkdirSync(join(home, dir));
  for (const [path, text] of Object.entries(files)) writeFileSync(join(home, path), text);
  return home;
}

/** Lines joined with "\n": fixtures read like the files they stand for, line numbers countable. */
const yaml = (...lines: string[]): string => `${lines.join('\n')}\n`;

interface Expected {
  line: number;
  field: string;
  /** Words the message must contain (each one), or patterns it must match. */
  says: Array<string | RegExp>;
}

function expectProblem(p: SpecProblem | undefined, file: string, want: Expected): void {
  expect(p, `a problem for ${want.field}`).toBeDefined();
  expect(p!.file).toBe(file);
  expect({ line: p!.line, field: p!.field }).toEqual({ line: want.line, field: want.field });
  for (const s of want.says) {
    if (typeof s === 'string') expect(p!.message).toContain(s);
    else expect(p!.message).toMatch(s);
  }
}

function problemsOf(file: string, text: string, schema: typeof JobSpecSchema | typeof RuleSchema | typeof PolicySchema): SpecProblem[] {
  const r = parseSpecText(file, text, schema as typeof JobSpecSchema);
  if (r.ok) throw new Error(`expected ${file} to be refused, but it is valid: ${JSON.stringify(r.value)}`);
  return r.problems;
}

interface Case extends Expected {
  name: string;
  text: string;
  /** How many problems the file has in all (default 1): no noise around the real one. */
  count?: number;
}

// ---------------------------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------------------------

const JOB_CASES: Case[] = [
  {
    name: 'an agent job may not leave its PID namespace',
    text: yaml('agent: true', 'command: ["claude", "-p", "loop"]', 'seeAllProcesses: true'),
    line: 3,
    field: 'seeAllProcesses',
    says: ['an agent job (agent: true) always runs in its own PID namespace'],
  },
  {
    name: 'unknown key, with a suggestion (shedule)',
    text: yaml(
      '# nightly export',
      'description: Export orders',
      'command: ["python3", "export.py"]',
      'shedule: "0 3 * * *"',
      'timeout: 15m',
    ),
    line: 4,
    field: 'shedule',
    says: ['unknown field', 'did you mean "schedule"?'],
  },
  {
    name: 'unknown key far from every known one: no wild guess',
    text: yaml('command: ["true"]', 'colour: blue'),
    line: 2,
    field: 'colour',
    says: ['unknown field'],
  },
  {
    name: 'unknown nested key in a list item (expect.files[0].maxage)',
    text: yaml(
      'description: Export',
      'command: ["python3", "export.py"]',
      'expect:',
      '  outputMatches: "exported"',
      '  files:',
      '    - path: /srv/share/orders.csv',
      '      maxage: 2h',
      '      minBytes: 100',
    ),
    line: 7,
    field: 'expect.files[0].maxage',
    says: ['unknown field', 'did you mean "maxAge"?'],
  },
  {
    name: 'command as a string instead of a list',
    text: yaml('description: Export', 'schedule: "0 3 * * *"', 'command: "python3 export.py --day yesterday"'),
    line: 3,
    field: 'command',
    says: ['expected a list', 'the program and its arguments', 'got the text "python3 export.py'],
  },
  {
    name: 'an argument that is a number',
    text: yaml('description: Sleep', 'command:', '  - sleep', '  - 5'),
    line: 4,
    field: 'command[1]',
    says: ['must be text', 'quotes', 'got the number 5'],
  },
  {
    name: 'an empty command list',
    text: yaml('description: Nothing to run', 'schedule: "@daily"', '', 'command: []'),
    line: 4,
    field: 'command',
    says: ['must name at least the program to run'],
  },
  {
    name: 'env value that is a list',
    text: yaml('command: ["./export.sh"]', 'env:', '  EXPORT_DIR: /srv/share', '  TARGETS: [a, b]'),
    line: 4,
    field: 'env.TARGETS',
    says: ['environment value', 'single text value', 'got a list'],
  },
  {
    name: 'env variable with an impossible name',
    text: yaml('command: ["./export.sh"]', 'env:', '  EXPORT_DIR: /srv/share', '  "EXPORT-DIR": /srv/other'),
    line: 4,
    field: 'env.EXPORT-DIR',
    says: ['environment variable names', 'letters, digits and "_"', 'got "EXPORT-DIR"'],
  },
  {
    name: 'retries.count as text',
    text: yaml('command: ["./export.sh"]', 'retries:', '  count: three', '  delay: 30s'),
    line: 3,
    field: 'retries.count',
    says: ['expected a number', 'got the text "three"'],
  },
  {
    name: 'retries.count not a whole number',
    text: yaml('command: ["./export.sh"]', 'retries:', '  delay: 30s', '  count: 1.5'),
    line: 4,
    field: 'retries.count',
    says: ['expected a whole number', 'got the number 1.5'],
  },
  {
    name: 'retries.count above the cap',
    text: yaml('command: ["./export.sh"]', 'retries: { count: 11 }'),
    line: 2,
    field: 'retries.count',
    says: ['at most 10 retries', 'got 11'],
  },
  {
    name: 'retries as a bare number instead of a mapping',
    text: yaml('description: x', 'command: ["./export.sh"]', 'retries: 3'),
    line: 3,
    field: 'retries',
    says: ['expected a mapping', 'got the number 3'],
  },
  {
    name: 'catchUp as "yes" (quoted)',
    text: yaml('command: ["./export.sh"]', 'schedule: "0 3 * * *"', 'catchUp: "yes"'),
    line: 3,
    field: 'catchUp',
    says: ['expected true or false', 'got the text "yes"'],
  },
  {
    name: 'catchUp: yes (YAML 1.2 reads it as text, not true)',
    text: yaml('command: ["./export.sh"]', 'schedule: "0 3 * * *"', '', 'catchUp: yes'),
    line: 4,
    field: 'catchUp',
    says: ['expected true or false', 'got the text "yes"'],
  },
  {
    name: 'cron with too few fields',
    text: yaml('description: Export', 'schedule: "0 3 * *"', 'command: ["./export.sh"]'),
    line: 2,
    field: 'schedule',
    says: ['expected 5 or 6 fields', 'got 4'],
  },
  {
    name: 'cron hour out of range',
    text: yaml('description: Export', 'command: ["./export.sh"]', '', "# at 25 o'clock", 'schedule: "0 25 * * *"'),
    line: 5,
    field: 'schedule',
    says: ['hour field', '25 is out of range 0-23'],
  },
  {
    name: 'cron with a step on a single value (Debian refuses it; cronie reads a-max)',
    text: yaml('description: Step', 'command: ["./export.sh"]', 'schedule: "5/20 * * * *"'),
    line: 3,
    field: 'schedule',
    says: ['a step needs a range', 'write 5-59/20 or */20'],
  },
  {
    name: 'cron with an unknown month name',
    text: yaml('command: ["./export.sh"]', 'schedule: "0 0 1 foo *"'),
    line: 2,
    field: 'schedule',
    says: ['month field', 'unknown month name "foo"', 'jan-dec'],
  },
  {
    name: 'cron with an unknown day name',
    text: yaml('command: ["./export.sh"]', 'timezone: UTC', 'schedule: "0 6 * * funday"'),
    line: 3,
    field: 'schedule',
    says: ['day-of-week field', 'unknown day name "funday"'],
  },
  {
    name: 'cron @reboot with more after it',
    text: yaml('description: At boot', 'command: ["./warm-cache.sh"]', 'schedule: "@reboot 5 * * * *"'),
    line: 3,
    field: 'schedule',
    says: ['@reboot stands alone', 'remove "5 * * * *"'],
  },
  {
    name: 'user that is no account name',
    text: yaml('command: ["./backup.sh"]', 'user: "backup; rm -rf /"'),
    line: 2,
    field: 'user',
    says: ['an account name such as www-data'],
  },
  {
    name: 'user of an external job',
    text: yaml('schedule: "@daily"', 'user: backup'),
    line: 2,
    field: 'user',
    says: ['only applies to a job nightshift runs itself'],
  },
  {
    name: 'cron nickname that does not exist',
    text: yaml('command: ["./export.sh"]', 'schedule: "@fortnightly"'),
    line: 2,
    field: 'schedule',
    says: ['unknown nickname "@fortnightly"', '@daily'],
  },
  {
    name: 'cron with Quartz syntax',
    text: yaml('command: ["./export.sh"]', 'schedule: "0 0 ? * MON"'),
    line: 2,
    field: 'schedule',
    says: ['Quartz syntax', 'Debian cron does not support'],
  },
  {
    name: 'unknown time zone',
    text: yaml('command: ["./export.sh"]', 'schedule: "0 3 * * *"', 'timezone: Europe/Zurik'),
    line: 3,
    field: 'timezone',
    says: ['unknown time zone "Europe/Zurik"', 'IANA name', 'Europe/Zurich'],
  },
  {
    name: 'a time zone with "every"',
    text: yaml('command: ["./export.sh"]', 'every: 5m', 'timezone: UTC'),
    line: 3,
    field: 'timezone',
    says: ['"every" is a fixed real interval', 'only applies to "schedule"'],
  },
  {
    name: '"every" and "schedule" together',
    text: yaml('description: Both', 'schedule: "*/5 * * * *"', 'command: ["./export.sh"]', 'every: 5m'),
    line: 4,
    field: 'every',
    says: ['use either "schedule" or "every", not both'],
  },
  {
    name: '"command" and "shell" together',
    text: yaml('description: Both', 'command: ["pg_dump", "shop"]', 'timeout: 10m', 'shell: "pg_dump shop | gzip > /backups/shop.sql.gz"'),
    line: 4,
    field: 'shell',
    says: ['use either "command"', 'or "shell", not both'],
  },
  {
    name: 'duration in words ("15 minutes")',
    text: yaml('command: ["./export.sh"]', 'timeout: 15 minutes'),
    line: 2,
    field: 'timeout',
    says: ['"15 minutes" is not a duration', 'a number with a unit', '"30s"'],
  },
  {
    name: 'duration without a unit (10)',
    text: yaml('command: ["./export.sh"]', 'schedule: "0 3 * * *"', 'killGrace: 10'),
    line: 3,
    field: 'killGrace',
    says: ['expected a duration such as "30s"', 'got the number 10'],
  },
  {
    name: 'negative duration ("-5s")',
    text: yaml('command: ["./export.sh"]', 'expect:', '  minDuration: -5s'),
    line: 3,
    field: 'expect.minDuration',
    says: ['"-5s" is negative', 'positive number with a unit'],
  },
  {
    name: 'zero timeout ("0s")',
    text: yaml('description: x', 'command: ["./export.sh"]', 'timeout: 0s'),
    line: 3,
    field: 'timeout',
    says: ['must be longer than 0'],
  },
  {
    name: 'zero interval (every: 0s)',
    text: yaml('command: ["./export.sh"]', 'every: 0s'),
    line: 2,
    field: 'every',
    says: ['must be at least 1s'],
  },
  {
    name: 'an interval under a second (every: 500ms)',
    text: yaml('command: ["./export.sh"]', 'every: 500ms'),
    line: 2,
    field: 'every',
    says: ['must be at least 1s', 'bury the history'],
  },
  {
    name: 'a timeout longer than a week',
    text: yaml('command: ["./export.sh"]', 'every: 1h', 'timeout: 30d'),
    line: 3,
    field: 'timeout',
    says: ['must be at most 7d (got 30d)'],
  },
  {
    name: 'a kill grace longer than an hour',
    text: yaml('command: ["./export.sh"]', 'killGrace: 2h'),
    line: 2,
    field: 'killGrace',
    says: ['must be at most 1h (got 2h)'],
  },
  {
    name: 'two YAML documents in one file',
    text: yaml('command: ["./export.sh"]', '---', 'command: ["./other.sh"]'),
    line: 2,
    field: 'yaml',
    says: ['more than one YAML document'],
  },
  {
    name: 'bad duration in heartbeat.grace',
    text: yaml('description: External', 'schedule: "0 6 * * 1-5"', 'heartbeat:', '  grace: soon'),
    line: 4,
    field: 'heartbeat.grace',
    says: ['"soon" is not a duration'],
  },
  {
    name: 'bad concurrency value',
    text: yaml('command: ["./export.sh"]', 'concurrency: sometimes'),
    line: 2,
    field: 'concurrency',
    says: ['must be one of "forbid", "allow", "replace"', 'got the text "sometimes"'],
  },
  {
    name: 'bad regular expression in outputMatches',
    text: yaml('command: ["./export.sh"]', 'expect:', '  minDuration: 5s', '  outputMatches: "exported ([0-9]+ orders"'),
    line: 4,
    field: 'expect.outputMatches',
    says: ['"exported ([0-9]+ orders" is not a valid regular expression', /unterminated group/i],
  },
  {
    name: 'a file expectation without its path',
    text: yaml('command: ["./export.sh"]', 'expect:', '  files:', '    - maxAge: 2h', '      minBytes: 10'),
    line: 4,
    field: 'expect.files[0].path',
    says: ['is required'],
  },
  {
    name: 'bad name in dependsOn',
    text: yaml('command: ["./export.sh"]', 'dependsOn:', '  - db-backup', '  - DB Backup'),
    line: 4,
    field: 'dependsOn[1]',
    says: ['"DB Backup" is not a valid name', 'lower-case letters, digits, "-" or "_"'],
  },
  {
    name: 'agent: "no"',
    text: yaml('command: ["./loop.sh"]', 'agent: "no"'),
    line: 2,
    field: 'agent',
    says: ['expected true or false', 'got the text "no"'],
  },
  {
    name: 'precheck on an external job (no command)',
    text: yaml('description: Legacy cron', 'schedule: "0 6 * * *"', 'precheck: ["./has-work.sh"]', 'heartbeat: { grace: 30m }'),
    line: 3,
    field: 'precheck',
    says: ['only applies to a job nightshift runs itself', 'add "command" or "shell"'],
  },
  {
    name: 'retries on an external job (no command)',
    text: yaml('description: Legacy cron', 'schedule: "0 6 * * *"', 'heartbeat:', '  grace: 30m', 'retries:', '  count: 2'),
    line: 5,
    field: 'retries',
    says: ['only applies to a job nightshift runs itself', 'add "command" or "shell"'],
  },
  {
    name: 'duplicate key in one file',
    text: yaml('description: Export', 'command: ["./export.sh"]', 'timeout: 5m', 'schedule: "0 3 * * *"', 'timeout: 10m'),
    line: 5,
    field: 'yaml',
    says: ['"timeout" appears twice', 'keep only one'],
  },
  {
    name: 'YAML bad indentation',
    text: yaml('command: ["./export.sh"]', 'expect:', '  files:', '    - path: /srv/x', '  outputMatches: "ok"', '    minDuration: 5s'),
    line: 6,
    field: 'yaml',
    says: ['bad indentation', 'same column'],
  },
  {
    name: 'YAML unclosed quote (reported where it opens, not at the end of the file)',
    text: yaml('command: ["./export.sh"]', 'description: "Export orders', 'schedule: "0 3 * * *"', 'timeout: 15m', 'catchUp: true'),
    line: 2,
    field: 'yaml',
    says: ['quote (")', 'never closed'],
  },
  {
    name: 'YAML unclosed list bracket (reported where it opens)',
    text: yaml('description: x', 'command: ["python3", "export.py"', 'timeout: 5m'),
    line: 2,
    field: 'yaml',
    says: ['"["', 'never closed with "]"'],
  },
  {
    name: 'YAML tab used for indentation',
    text: yaml('command: ["./export.sh"]', 'retries:', '\tcount: 1'),
    line: 3,
    field: 'yaml',
    says: ['tab', 'only allows spaces'],
  },
  {
    name: 'a description that is a list',
    text: yaml('command: ["./export.sh"]', 'description:', '  - Export', '  - orders'),
    line: 2,
    field: 'description',
    says: ['expected text, got a list'],
  },
  {
    name: 'an empty working directory (cwd: "")',
    text: yaml('command: ["./export.sh"]', 'timeout: 5m', 'cwd: ""'),
    line: 3,
    field: 'cwd',
    says: ['is empty'],
  },
  {
    name: 'an empty heartbeat file (heartbeat.file: "")',
    text: yaml('command: ["./worker.sh"]', 'heartbeat:', '  file: ""'),
    line: 3,
    field: 'heartbeat.file',
    says: ['is empty'],
  },
  {
    name: 'an empty expected file path',
    text: yaml('command: ["./export.sh"]', 'expect:', '  files:', '    - path: ""'),
    line: 4,
    field: 'expect.files[0].path',
    says: ['is empty'],
  },
  {
    name: 'a bad autonomy for one job',
    text: yaml('command: ["./export.sh"]', 'autonomy: full'),
    line: 2,
    field: 'autonomy',
    says: ['must be one of "shadow", "gated", "auto"', 'got the text "full"'],
  },
  {
    name: 'enabled: "no" (quoted)',
    text: yaml('command: ["./export.sh"]', 'enabled: "no"'),
    line: 2,
    field: 'enabled',
    says: ['expected true or false', 'got the text "no"'],
  },
  {
    name: 'an empty file',
    text: '',
    line: 1,
    field: '',
    says: ['the file has no fields (empty, or only comments)', '"field: value" lines'],
  },
  {
    name: 'a file with only comments',
    text: yaml('# TODO: write this job', '# command: ["./export.sh"]'),
    line: 1,
    field: '',
    says: ['the file has no fields (empty, or only comments)'],
  },
  {
    name: 'a list instead of a mapping',
    text: yaml('# two jobs in one file', '- command: ["./a.sh"]', '- command: ["./b.sh"]'),
    line: 2,
    field: '',
    says: ['expected a mapping of fields', '"field: value" lines'],
  },
  {
    name: 'a bare text instead of a mapping',
    text: yaml('python3 export.py'),
    line: 1,
    field: '',
    says: ['expected a mapping of fields'],
  },
  {
    name: 'a wildcard in the folder of an expected file',
    text: yaml('command: ["./backup.sh"]', 'expect:', '  files:', '    - path: "/var/backups/*/shop.sql.gz"'),
    line: 4,
    field: 'expect.files[0].path',
    says: ['a wildcard may only be in the file name', '/var/backups/shop-*.sql.gz'],
  },
  // What someone who knows crontab writes: the parser's words ("Unexpected alias at node end") replaced.
  {
    name: 'a schedule copied from a crontab, unquoted',
    text: yaml('command: ["./export.sh"]', 'schedule: */5 * * * *'),
    line: 2,
    field: 'yaml',
    says: ['put the value of "schedule" in quotes: schedule: "*/5 * * * *"', 'alias'],
  },
  {
    name: 'a crontab nickname, unquoted',
    text: yaml('schedule: @daily', 'command: ["./export.sh"]'),
    line: 1,
    field: 'yaml',
    says: ['put the value of "schedule" in quotes: schedule: "@daily"'],
  },
  {
    name: 'a whole crontab line pasted as the file',
    text: yaml('# from crontab -l', '0 3 * * * /usr/bin/backup.sh > /dev/null 2>&1'),
    line: 2,
    field: '',
    says: ['this looks like a crontab line', 'schedule: "0 3 * * *"', 'shell: "/usr/bin/backup.sh > /dev/null 2>&1"'],
  },
  {
    name: 'a crontab line that starts with a star, pasted',
    text: yaml('*/10 * * * * /usr/local/bin/sync'),
    line: 1,
    field: 'yaml',
    says: ['this looks like a crontab line', 'schedule: "*/10 * * * *"', 'shell: "/usr/local/bin/sync"'],
  },
  {
    name: 'a shell line whose quotes end before the value does',
    text: yaml('shell: "pg_dump shop" | gzip > /backups/shop.sql.gz'),
    line: 1,
    field: 'yaml',
    says: ['the quotes end before the value of "shell" does', 'shell: "\\"pg_dump shop\\" | gzip > /backups/shop.sql.gz"'],
  },
];

describe('job specs: each mistake as FILE:LINE: field: message', () => {
  it('refuses a mistake in every field a job file may hold (each field has a case above)', () => {
    const fields = Object.keys(JobSpecSchema.shape);
    const covered = new Set(JOB_CASES.map((c) => c.field.split(/[.[]/)[0]));
    expect(fields.filter((f) => !covered.has(f))).toStrictEqual([]);
  });

  it('a crontab hint replaces only what it explains: a duplicate block scalar and wrapped prose keep their own messages', () => {
    const file = 'jobs/export.yaml';
    const twice = problemsOf(file, yaml('shell: |', '  echo a', 'shell: |', '  echo b'), JobSpecSchema);
    expect(twice.map((p) => p.message)).toEqual([expect.stringContaining('"shell" appears twice')]);
    const prose = problemsOf(
      file,
      yaml('description: Export the orders to the', 'accounting share of the shop every night'),
      JobSpecSchema,
    );
    expect(prose.length).toBeGreaterThan(0);
    for (const p of prose) expect(p.message).not.toContain('crontab');
  });

  it.each(JOB_CASES)('$name', (c) => {
    const file = 'jobs/export.yaml';
    const problems = problemsOf(file, c.text, JobSpecSchema);
    expect(problems.map(formatProblem)).toHaveLength(c.count ?? 1);
    expectProblem(problems[0], file, c);
  });

  it('reports several mistakes of one file, each on its own line, in line order', () => {
    const text = yaml(
      'description: Export', // 1
      'schedule: "0 25 * * *"', // 2
      'command: "python3 export.py"', // 3
      'timeout: 15 minutes', // 4
      'concurrency: sometimes', // 5
      'shedule: "0 3 * * *"', // 6
    );
    const problems = problemsOf('jobs/export.yaml', text, JobSpecSchema);
    expect(problems.map((p) => [p.line, p.field])).toEqual([
      [2, 'schedule'],
      [3, 'command'],
      [4, 'timeout'],
      [5, 'concurrency'],
      [6, 'shedule'],
    ]);
  });

  it('formats a problem as FILE:LINE: field: message (and without a field when there is none)', () => {
    expect(formatProblem({ file: 'jobs/a.yaml', line: 7, field: 'timeout', message: 'must be longer than 0' })).toBe(
      'jobs/a.yaml:7: timeout: must be longer than 0',
    );
    expect(formatProblem({ file: 'jobs/a.yaml', line: 1, field: '', message: 'the file is empty' })).toBe(
      'jobs/a.yaml:1: the file is empty',
    );
  });

  it('applies the defaults to a minimal job', () => {
    const r = parseSpecText('jobs/min.yaml', yaml('command: ["true"]'), JobSpecSchema);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toMatchObject({
      command: ['true'],
      concurrency: 'forbid',
      killGrace: 10_000,
      timeout: 3_600_000,
      enabled: true,
      catchUp: false,
      agent: false,
    });
    expect(r.value.schedule).toBeUndefined();
    expect(r.value.every).toBeUndefined();
  });

  it('accepts the full example of a job spec', () => {
    const text = yaml(
      "description: Export yesterday's orders to the accounting share",
      'schedule: "0 3 * * *"',
      'timezone: Europe/Zurich',
      'command: ["python3", "export.py", "--day", "yesterday"]',
      'cwd: /srv/shop',
      'env: { EXPORT_DIR: /srv/share, DAYS: 1, DRY: false }',
      'timeout: 15m',
      'killGrace: 10s',
      'concurrency: forbid',
      'catchUp: true',
      'retries: { count: 1, delay: 30s }',
      'precheck: ["./has-new-orders.sh"]',
      'expect:',
      '  files:',
      '    - { path: /srv/share/orders.csv, maxAge: 2h, minBytes: 100 }',
      '  outputMatches: "exported [1-9][0-9]* orders"',
      '  minDuration: 5s',
      'dependsOn: [db-backup]',
      'heartbeat:',
      '  grace: 10m',
      'autonomy: auto',
      'agent: false',
      'enabled: true',
    );
    const r = parseSpecText('jobs/orders-export.yaml', text, JobSpecSchema);
    if (!r.ok) throw new Error(r.problems.map(formatProblem).join('\n'));
    expect(r.value.timeout).toBe(15 * 60_000);
    expect(r.value.retries).toStrictEqual({ count: 1, delay: 30_000 });
    expect(r.value.env).toStrictEqual({ EXPORT_DIR: '/srv/share', DAYS: '1', DRY: 'false' });
    expect(r.value.expect?.files?.[0]).toStrictEqual({ path: '/srv/share/orders.csv', maxAge: 7_200_000, minBytes: 100 });
    expect(r.value.catchUp).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

const RULE_CASES: Case[] = [
  {
    name: 'an empty path in touches',
    text: yaml('match: { job: export }', 'action:', '  command: ["./clear.sh"]', '  touches: ["work/", ""]'),
    line: 4,
    field: 'action.touches[1]',
    says: ['is empty'],
  },
  {
    name: 'the probe is the fix (the maker is never the checker)',
    text: yaml(
      'description: Clear the lock',
      'match:',
      '  job: nightly-export',
      'action:',
      '  command: ["rm", "-f", "/srv/shop/state/export.lock"]',
      'probe:',
      '  command: ["rm", "-f", "/srv/shop/state/export.lock"]',
    ),
    line: 7,
    field: 'probe.command',
    says: ['the probe is the same command as the fix', 'the maker is never the checker', 'independent check'],
  },
  {
    name: 'the probe is the brain command',
    text: yaml(
      'match: { job: export }',
      'action:',
      '  brain: ["claude", "-p", "fix it"]',
      'probe:',
      '  command: ["claude", "-p", "fix it"]',
    ),
    line: 5,
    field: 'probe.command',
    says: ['the maker is never the checker'],
  },
  {
    name: 'the probe is the fix under another path of the same program',
    text: yaml(
      'match: { job: export }',
      'action:',
      '  command: ["sh", "-c", "rm -f /tmp/x.lock"]',
      'probe:',
      '  command: ["/bin/sh", "-c", "rm -f /tmp/x.lock"]',
    ),
    line: 5,
    field: 'probe.command',
    says: ['the probe is the same command as the fix'],
  },
  {
    name: 'two actions',
    text: yaml('match:', '  job: nightly-export', 'action:', '  command: ["rm", "-f", "/srv/shop/state/export.lock"]', '  rerun: true'),
    line: 3,
    field: 'action',
    says: ['has 2 actions', '"command" and "rerun: true"', 'exactly one'],
  },
  {
    name: 'no action at all',
    text: yaml('match:', '  job: nightly-export', 'action:', '  touches: ["/srv/shop/state/"]'),
    line: 3,
    field: 'action',
    says: ['has no action', 'exactly one of "command", "rerun: true", "brain" or "restart"'],
  },
  {
    name: 'an unknown alert kind in match.kind',
    text: yaml('description: x', 'match:', '  job: nightly-export', '  kind: [hung, crashed]', 'action: { rerun: true }'),
    line: 4,
    field: 'match.kind[1]',
    says: ['must be one of "missed", "failed", "hung", "wrong"', 'got the text "crashed"'],
  },
  {
    name: '"kind" at the top instead of under match',
    text: yaml('match:', '  job: nightly-export', 'kind: [hung]', 'action: { rerun: true }'),
    line: 3,
    field: 'kind',
    says: ['unknown field', 'belongs under "match:"'],
  },
  {
    name: 'misspelt autonomy',
    text: yaml('match: { job: export }', 'autonmy: auto', 'action: { rerun: true }'),
    line: 2,
    field: 'autonmy',
    says: ['unknown field', 'did you mean "autonomy"?'],
  },
  {
    name: 'no match section',
    text: yaml('description: x', 'action:', '  rerun: true'),
    line: 1,
    field: 'match',
    says: ['is required'],
  },
  {
    name: 'pilot without a jobs glob',
    text: yaml('match: { job: "export-*" }', 'action: { rerun: true }', 'autonomy: pilot'),
    line: 3,
    field: 'autonomy',
    says: ['"pilot"', 'add a "jobs" glob'],
  },
  {
    name: 'probe with both rerun and command',
    text: yaml(
      'match: { job: export }',
      'action: { command: ["./fix.sh"] }',
      'probe:',
      '  rerun: true',
      '  command: ["curl", "-fsS", "http://127.0.0.1/health"]',
    ),
    line: 3,
    field: 'probe',
    says: ['use either "rerun: true" or "command", not both'],
  },
  {
    name: 'bad regular expression in match.output',
    text: yaml('match:', '  job: export', '  output: "lock (.* held"', 'action: { rerun: true }'),
    line: 3,
    field: 'match.output',
    says: ['is not a valid regular expression'],
  },
  {
    name: 'maxAttempts above the hard cap',
    text: yaml('match: { job: export }', 'action: { rerun: true }', 'maxAttempts: 5'),
    line: 3,
    field: 'maxAttempts',
    says: ['must be 1 or 2', 'hard cap', 'got 5'],
  },
];

describe('rules', () => {
  it.each(RULE_CASES)('$name', (c) => {
    const file = 'rules/clear-lock.yaml';
    const problems = problemsOf(file, c.text, RuleSchema);
    expect(problems.map(formatProblem)).toHaveLength(c.count ?? 1);
    expectProblem(problems[0], file, c);
  });

  it('accepts the example rule with its defaults', () => {
    const text = yaml(
      'description: A hung export holds a stale lock; clear it and run again.',
      'match:',
      '  job: nightly-export',
      '  kind: [hung, failed]',
      '  exitCode: [1, 75]',
      '  output: "lock .* held"',
      'autonomy: auto',
      'action:',
      '  command: ["rm", "-f", "/srv/shop/state/export.lock"]',
      '  touches: ["/srv/shop/state/"]',
      '  timeout: 2m',
      'probe:',
      '  rerun: true',
    );
    const r = parseSpecText('rules/clear-lock.yaml', text, RuleSchema);
    if (!r.ok) throw new Error(r.problems.map(formatProblem).join('\n'));
    expect(r.value.action.timeout).toBe(120_000);
    expect(r.value.probe).toStrictEqual({ rerun: true, timeout: 120_000 });
    const minimal = parseSpecText('rules/r.yaml', yaml('match: { job: x }', 'action: { rerun: true }'), RuleSchema);
    expect(minimal.ok && minimal.value.autonomy).toBe('shadow');
  });
});

// ---------------------------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------------------------

const POLICY_CASES: Case[] = [
  {
    name: 'maxAttempts: 3',
    text: yaml('# guardrails', 'timezone: Europe/Zurich', 'autonomy: auto', 'maxAttempts: 3'),
    line: 4,
    field: 'maxAttempts',
    says: ['must be 1 or 2', 'at most 2 attempts per incident', 'hard cap', 'got 3'],
  },
  {
    name: 'digest time "7am"',
    text: yaml('timezone: Europe/Zurich', 'digest:', '  to: [kevin@example.com]', '  at: 7am'),
    line: 4,
    field: 'digest.at',
    says: ['time of day as "HH:MM"', '"07:00"', 'got the text "7am"'],
  },
  {
    name: 'digest time "24:00"',
    text: yaml('digest:', '  at: "24:00"'),
    line: 2,
    field: 'digest.at',
    says: ['"HH:MM"', 'got the text "24:00"'],
  },
  {
    name: 'a bad e-mail address in digest.to',
    text: yaml('digest:', '  at: "07:00"', '  to:', '    - kevin@example.com', '    - kevin at example dot com'),
    line: 5,
    field: 'digest.to[1]',
    says: ['is not an e-mail address', 'kevin at example dot com'],
  },
  {
    name: 'a bad e-mail address in digest.from',
    text: yaml('digest:', '  to: [kevin@example.com]', '  from: nightshift'),
    line: 3,
    field: 'digest.from',
    says: ['is not an e-mail address', 'got the text "nightshift"'],
  },
  {
    name: 'smtp and sendmail together',
    text: yaml('digest:', '  smtp: { host: 127.0.0.1, port: 25 }', '  sendmail: /usr/sbin/sendmail'),
    line: 3,
    field: 'digest.sendmail',
    says: ['use either "smtp" or "sendmail", not both'],
  },
  {
    name: 'misspelt killSwitch',
    text: yaml('timezone: UTC', 'killswitch: /run/nightshift/KILL'),
    line: 2,
    field: 'killswitch',
    says: ['unknown field', 'did you mean "killSwitch"?'],
  },
  {
    name: 'unknown policy time zone',
    text: yaml('autonomy: auto', 'timezone: Mars/Olympus'),
    line: 2,
    field: 'timezone',
    says: ['unknown time zone "Mars/Olympus"'],
  },
  {
    name: 'a bad autonomy ceiling',
    text: yaml('autonomy: full'),
    line: 1,
    field: 'autonomy',
    says: ['must be one of "shadow", "gated", "auto"', 'got the text "full"'],
  },
  {
    name: 'brain wallclock in words',
    text: yaml('brain:', '  maxRunsPerDay: 12', '  wallclock: 20 minutes'),
    line: 3,
    field: 'brain.wallclock',
    says: ['"20 minutes" is not a duration'],
  },
  {
    name: 'page command as a string',
    text: yaml('page:', '  allow: [protected-zone]', '  command: /usr/local/bin/notify-phone'),
    line: 3,
    field: 'page.command',
    says: ['expected a list', 'got the text "/usr/local/bin/notify-phone"'],
  },
  {
    name: 'dashboard on every address without https in front',
    text: yaml('dashboard:', '  listen: 0.0.0.0:8787'),
    line: 2,
    field: 'dashboard.listen',
    says: ['0.0.0.0:8787 is reachable from other machines', 'set publicUrl to the https address'],
  },
  {
    name: 'dashboard behind a proxy said as http',
    text: yaml('dashboard:', '  listen: 10.0.0.5:8787', '  publicUrl: http://ops.shop.example'),
    count: 2, // and publicUrl itself: it must be https
    line: 2,
    field: 'dashboard.listen',
    says: ['reachable from other machines'],
  },
  {
    name: 'dashboard listen without a port',
    text: yaml('dashboard:', '  listen: localhost'),
    line: 2,
    field: 'dashboard.listen',
    says: ['expected HOST:PORT such as 127.0.0.1:8787'],
  },
  {
    name: 'dashboard publicUrl with a port no URL can have',
    text: yaml('dashboard:', '  publicUrl: https://ops.example:99999'),
    line: 2,
    field: 'dashboard.publicUrl',
    says: ['expected the address alone'],
  },
  {
    name: 'dashboard publicUrl over plain http to another machine',
    text: yaml('dashboard:', '  publicUrl: http://ops.shop.example'),
    line: 2,
    field: 'dashboard.publicUrl',
    says: ['must be https'],
  },
  {
    name: 'dashboard listen on a name (two addresses: the daemon would hold one)',
    text: yaml('dashboard:', '  listen: localhost:9000'),
    line: 2,
    field: 'dashboard.listen',
    says: ['expected an IP address, not a name'],
  },
  {
    name: 'dashboard publicUrl with a path',
    text: yaml('dashboard:', '  publicUrl: https://ops.shop.example/nightshift'),
    line: 2,
    field: 'dashboard.publicUrl',
    says: ['expected the address alone'],
  },
];

describe('policy: the dashboard', () => {
  const ok = (text: string) => {
    const r = parseSpecText('protected/policy.yaml', text, PolicySchema as unknown as typeof JobSpecSchema);
    if (!r.ok) throw new Error(r.problems.map(formatProblem).join('; '));
    return (r.value as unknown as { dashboard: unknown }).dashboard;
  };
  it('is on at 127.0.0.1:8787 by default; off; loopback; anything else behind https', () => {
    expect(DEFAULT_POLICY.dashboard).toEqual({ listen: '127.0.0.1:8787' });
    expect(ok('dashboard: { listen: "off" }')).toEqual({ listen: 'off' });
    expect(ok('dashboard: { listen: "[::1]:9000" }')).toEqual({ listen: '[::1]:9000' });
    expect(ok('dashboard: { listen: "0.0.0.0:8787", publicUrl: "https://ops.shop.example/" }')).toEqual({
      listen: '0.0.0.0:8787',
      publicUrl: 'https://ops.shop.example',
    });
  });
});

describe('policy', () => {
  it.each(POLICY_CASES)('$name', (c) => {
    const file = 'protected/policy.yaml';
    const problems = problemsOf(file, c.text, PolicySchema);
    expect(problems.map(formatProblem)).toHaveLength(c.count ?? 1);
    expectProblem(problems[0], file, c);
  });

  it('applies the defaults when the policy file is missing', () => {
    const r = loadPolicyFile(join(tempDir(), 'protected', 'policy.yaml'));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.missing).toBe(true);
    expect(r.value).toEqual(DEFAULT_POLICY);
    expect(r.value).toMatchObject({ autonomy: 'auto', maxAttempts: 2, protect: [], digest: { at: '07:00', to: [] } });
  });

  it('reports an invalid policy file with its real path and line', () => {
    const home = makeHome({ 'protected/policy.yaml': yaml('timezone: UTC', 'maxAttempts: 3') });
    const file = join(home, 'protected', 'policy.yaml');
    const r = loadPolicyFile(file);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toHaveLength(1);
    expectProblem(r.problems[0], file, { line: 2, field: 'maxAttempts', says: ['hard cap'] });
  });
});

// ---------------------------------------------------------------------------------------------
// Files and homes: names, duplicates, dependencies
// ---------------------------------------------------------------------------------------------

const JOB = yaml('description: a job', 'command: ["true"]');

function load(home: string): LoadedHome {
  return loadHome(homePaths(home));
}

describe('job and rule files', () => {
  it.each([
    ['Bad Name.yaml', 'Bad Name'],
    ['UPPER.yaml', 'UPPER'],
    ['-dash.yaml', '-dash'],
  ])('refuses the file name %s', (fileName, name) => {
    const home = makeHome({ [`jobs/${fileName}`]: JOB });
    const file = join(home, 'jobs', fileName);
    const r = loadJobFile(file, home, DEFAULT_POLICY);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toHaveLength(1);
    expectProblem(r.problems[0], file, {
      line: 1,
      field: 'name',
      says: [`"${name}" is not a valid name`, 'lower-case letters', 'the file name without .yaml'],
    });
  });

  it('refuses a bad rule file name the same way', () => {
    const home = makeHome({ 'rules/Clear Lock.yaml': yaml('match: { job: x }', 'action: { rerun: true }') });
    const file = join(home, 'rules', 'Clear Lock.yaml');
    const r = loadRuleFile(file);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expectProblem(r.problems[0], file, { line: 1, field: 'name', says: ['"Clear Lock" is not a valid name'] });
  });

  it('loads a job file into a compiled job with the defaults', () => {
    const home = makeHome({ 'jobs/nightly.yaml': yaml('schedule: "30 2 * * *"', 'shell: "echo hi"') });
    const r = loadJobFile(join(home, 'jobs', 'nightly.yaml'), home, { ...DEFAULT_POLICY, timezone: 'Europe/Zurich' });
    if (!r.ok) throw new Error(r.problems.map(formatProblem).join('\n'));
    const job = r.value;
    expect(job.name).toBe('nightly');
    expect(job.managed).toBe(true);
    expect(job.timezone).toBe('Europe/Zurich');
    expect(job.schedule).toMatchObject({ kind: 'cron', tz: 'Europe/Zurich' });
    expect(job.spec).toMatchObject({ concurrency: 'forbid', killGrace: 10_000, timeout: 3_600_000, enabled: true, catchUp: false });
    expect(job.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('reports a YAML error of a real file with its path and line', () => {
    const home = makeHome({ 'jobs/export.yaml': yaml('description: x', 'command: ["true"]', 'timeout: 5m', 'timeout: 6m') });
    const file = join(home, 'jobs', 'export.yaml');
    const r = loadJobFile(file, home, DEFAULT_POLICY);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expectProblem(r.problems[0], file, { line: 4, field: 'yaml', says: ['"timeout" appears twice'] });
  });
});

describe('a home: checks across files', () => {
  it('loads the repository example home with zero problems', () => {
    const home = load(ROOT);
    expect(home.problems.map(formatProblem)).toEqual([]);
    expect(home.policyOk).toBe(true);
    expect(home.policyMissing).toBe(false);
    expect(home.jobs.size).toBeGreaterThanOrEqual(5);
    for (const name of ['heartbeat-demo', 'inbox-sweep', 'legacy-report', 'nightly-backup', 'orders-export']) {
      expect(home.jobs.has(name), name).toBe(true);
    }
    expect(home.jobs.get('legacy-report')!.managed).toBe(false);
    expect(home.jobs.get('heartbeat-demo')!.spec).toMatchObject({
      concurrency: 'forbid',
      killGrace: 10_000,
      enabled: true,
      catchUp: false,
    });
    expect(home.jobs.get('inbox-sweep')!.spec.timeout).toBe(30_000);
  });

  it('refuses two files with the same name (a.yaml and a.yml), keeping the first', () => {
    const home = makeHome({ 'jobs/a.yaml': JOB, 'jobs/a.yml': JOB, 'jobs/b.yaml': JOB });
    const h = load(home);
    expect(h.problems).toHaveLength(1);
    expectProblem(h.problems[0], join(home, 'jobs', 'a.yml'), {
      line: 1,
      field: 'name',
      says: ['duplicate job name "a"', join(home, 'jobs', 'a.yaml'), 'already defines it'],
    });
    expect([...h.jobs.keys()].sort()).toEqual(['a', 'b']);
    expect(h.jobs.get('a')!.file).toBe(join(home, 'jobs', 'a.yaml'));
  });

  it('refuses two rules with the same name', () => {
    const rule = yaml('match: { job: a }', 'action: { rerun: true }');
    const home = makeHome({ 'rules/r.yaml': rule, 'rules/r.yml': rule });
    const h = load(home);
    expect(h.problems).toHaveLength(1);
    expectProblem(h.problems[0], join(home, 'rules', 'r.yml'), { line: 1, field: 'name', says: ['duplicate rule name "r"'] });
    expect(h.rules.size).toBe(1);
  });

  it('refuses dependsOn an unknown job, on the line of that entry', () => {
    const home = makeHome({
      'jobs/db-backup.yaml': JOB,
      // the description mentions the names too: the line must be the one of the entry itself
      'jobs/export.yaml': yaml(
        'description: runs after db and db-backup',
        'command: ["./export.sh"]',
        'schedule: "0 4 * * *"',
        'dependsOn:',
        '  - db-backup',
        '  - db',
      ),
    });
    const h = load(home);
    expect(h.problems).toHaveLength(1);
    expectProblem(h.problems[0], join(home, 'jobs', 'export.yaml'), {
      line: 6,
      field: 'dependsOn[1]',
      says: ['no job named "db"', 'jobs/db.yaml does not exist'],
    });
  });

  it('refuses a job that depends on itself', () => {
    const home = makeHome({
      'jobs/export.yaml': yaml('# export depends on: export?', 'command: ["./export.sh"]', 'dependsOn: [export]'),
    });
    const h = load(home);
    expect(h.problems).toHaveLength(1);
    expectProblem(h.problems[0], join(home, 'jobs', 'export.yaml'), { line: 3, field: 'dependsOn[0]', says: ['cannot depend on itself'] });
  });

  it('refuses a dependency cycle, once, naming every job in it', () => {
    const home = makeHome({
      'jobs/a.yaml': yaml('description: first', 'command: ["true"]', 'dependsOn: [c]'),
      'jobs/b.yaml': yaml('description: second', 'command: ["true"]', 'dependsOn: [a]'),
      'jobs/c.yaml': yaml('description: third (no dependsOn here means none)', 'command: ["true"]', 'timeout: 1m', 'dependsOn:', '  - b'),
    });
    const h = load(home);
    expect(h.problems).toHaveLength(1);
    const p = h.problems[0]!;
    expect(p.field).toBe('dependsOn');
    expect(p.message).toContain('dependency cycle');
    expect(p.message).toMatch(/a -> c -> b -> a/);
    // reported once, at the edge that closes the loop (b -> a), on the dependsOn line of b
    expectProblem(p, join(home, 'jobs', 'b.yaml'), { line: 3, field: 'dependsOn', says: ['dependency cycle'] });
  });

  it('finds the same lines when the daemon re-checks dependencies without the texts', () => {
    const home = makeHome({
      'jobs/export.yaml': yaml('description: after db', 'command: ["./export.sh"]', 'dependsOn:', '  - ghost'),
    });
    const h = load(home);
    expect(checkDependencies(h.jobs)).toStrictEqual(h.problems);
    expect(h.problems[0]).toMatchObject({ line: 4, field: 'dependsOn[0]' });
  });

  it('reports bad files and keeps loading the good ones', () => {
    const home = makeHome({
      'jobs/good.yaml': JOB,
      'jobs/UPPER.yaml': JOB,
      'jobs/bad.yaml': yaml('command: ["true"]', 'timeout: soon'),
      'jobs/notes.txt': 'not a spec',
      'jobs/.hidden.yaml': 'garbage: [',
      'rules/broken.yaml': yaml('match: { job: good }', 'action: { rerun: true, command: ["x"] }'),
      'protected/policy.yaml': yaml('timezone: UTC', 'digest:', '  at: 7am'),
    });
    const h = load(home);
    expect(h.problems.map((p) => [p.file.slice(home.length + 1), p.line, p.field])).toEqual([
      ['jobs/UPPER.yaml', 1, 'name'],
      ['jobs/bad.yaml', 2, 'timeout'],
      ['protected/policy.yaml', 3, 'digest.at'],
      ['rules/broken.yaml', 2, 'action'],
    ]);
    expect([...h.jobs.keys()]).toEqual(['good']);
    expect(h.policyOk).toBe(false);
  });

  it('warns, but does not fail, when the jobs folder is missing', () => {
    const home = tempDir();
    const h = load(home);
    expect(h.problems).toEqual([]);
    expect(h.policyMissing).toBe(true);
    expect(h.warnings).toHaveLength(1);
    expect(h.warnings[0]!.message).toContain('the jobs folder does not exist');
  });

  it('warns, but stays valid, when mail is set up and digest.from is not: the default sender bounces', () => {
    const home = makeHome({
      'jobs/a.yaml': JOB,
      'protected/policy.yaml': yaml('timezone: UTC', 'digest:', '  to: ["ops@example.com"]', '  smtp: { host: 127.0.0.1, port: 25 }'),
    });
    const h = load(home);
    expect(h.problems).toEqual([]);
    expect(h.policyOk).toBe(true);
    expect(h.warnings.map((w) => [w.file.slice(home.length + 1), w.line, w.field])).toEqual([['protected/policy.yaml', 2, 'digest.from']]);
    expect(h.warnings[0]!.message).toMatch(/^not set, so the digest is sent from nightshift@\S+, which most mail servers refuse/);
    expect(h.warnings[0]!.message).toContain('set digest.from in policy.yaml');
    // Mail not set up (the digest only goes to its folder): nothing to warn about.
    const quiet = makeHome({ 'jobs/a.yaml': JOB, 'protected/policy.yaml': yaml('digest:', '  to: ["ops@example.com"]') });
    expect(load(quiet).warnings).toEqual([]);
    // A transport but no recipient: nothing is sent from anyone, so nothing to warn about either.
    const noOne = makeHome({ 'jobs/a.yaml': JOB, 'protected/policy.yaml': yaml('digest:', '  smtp: { host: 127.0.0.1, port: 25 }') });
    expect(load(noOne).warnings).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// The CLI (dist/cli.js is built by `npm test` before the tests run)
// ---------------------------------------------------------------------------------------------

const cli = (...args: string[]) => execa('node', [CLI, ...args], { reject: false, cwd: tmpdir(), env: { NIGHTSHIFT_HOME: '' } });

describe('nightshift validate', () => {
  const brokenHome = (): string =>
    makeHome({
      'jobs/ok.yaml': JOB,
      'jobs/export.yaml': yaml('description: Export', 'command: ["./export.sh"]', '', 'shedule: "0 3 * * *"'),
      'jobs/backup.yaml': yaml('description: Backup', 'shell: "tar czf /b.tgz /srv"', 'schedule: "0 0 32 * *"'),
      'rules/clear-lock.yaml': yaml(
        'match:',
        '  job: export',
        'action:',
        '  command: ["rm", "-f", "/srv/lock"]',
        'probe:',
        '  command: ["rm", "-f", "/srv/lock"]',
      ),
    });

  it('prints every problem as FILE:LINE: field: message and exits 2', async () => {
    const home = brokenHome();
    const r = await cli('--home', home, 'validate');
    expect(r.exitCode).toBe(2);
    const lines = String(r.stdout).split('\n');
    const problems = lines.filter((l) => l.startsWith(home));
    expect(problems).toHaveLength(3);
    expect(problems[0]).toBe(`${join(home, 'jobs', 'backup.yaml')}:3: schedule: day-of-month field "32": 32 is out of range 1-31`);
    expect(problems[1]).toBe(`${join(home, 'jobs', 'export.yaml')}:4: shedule: unknown field (did you mean "schedule"?)`);
    expect(problems[2]).toMatch(
      new RegExp(
        `^${join(home, 'rules', 'clear-lock.yaml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6: probe\\.command: .*the maker is never the checker`,
      ),
    );
    for (const p of problems) expect(p).toMatch(/^\/.+\.yaml:\d+: [\w.[\]]+: .+$/);
    expect(r.stdout).toContain('3 problem(s)');
  });

  it('exits 0 on a valid home', async () => {
    const home = makeHome({ 'jobs/a.yaml': JOB, 'jobs/b.yaml': yaml('every: 30s', 'command: ["true"]', 'dependsOn: [a]') });
    const r = await cli('--home', home, 'validate');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('ok: 2 job(s), 0 rule(s)');
  });

  it('accepts a schedule Debian takes that never runs or is partly ignored, and warns with the line', async () => {
    const home = makeHome({
      'jobs/never.yaml': yaml('description: Never', 'command: ["true"]', 'schedule: "0 0 30 2 *"'),
      'jobs/quartz.yaml': yaml('description: Second Tuesday?', 'command: ["true"]', '', 'schedule: "0 9 * * 2#2"'),
    });
    const r = await cli('--home', home, 'validate');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(
      `warning: ${join(home, 'jobs', 'never.yaml')}:3: schedule: "0 0 30 2 *" never runs: February has no day 30; the job will never be started on schedule`,
    );
    expect(r.stdout).toContain(
      `warning: ${join(home, 'jobs', 'quartz.yaml')}:4: schedule: day-of-week field "2#2": Debian's cron reads it up to "2" and ignores "#2"`,
    );
  });

  it('exits 0 on the repository example home', async () => {
    const r = await cli('--home', ROOT, 'validate');
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^ok: \d+ job\(s\)/m);
  });

  it('--json lists the problems as data', async () => {
    const home = brokenHome();
    const r = await cli('--home', home, 'validate', '--json');
    expect(r.exitCode).toBe(2);
    const out = JSON.parse(String(r.stdout)) as { ok: boolean; jobs: number; problems: SpecProblem[] };
    expect(out.ok).toBe(false);
    expect(out.jobs).toBe(1);
    expect(out.problems.map((p) => [p.file, p.line, p.field])).toEqual([
      [join(home, 'jobs', 'backup.yaml'), 3, 'schedule'],
      [join(home, 'jobs', 'export.yaml'), 4, 'shedule'],
      [join(home, 'rules', 'clear-lock.yaml'), 6, 'probe.command'],
    ]);
    expect(out.problems[1]!.message).toContain('did you mean "schedule"?');
  });

  it('--json on a valid home says ok', async () => {
    const home = makeHome({ 'jobs/a.yaml': JOB });
    const r = await cli('--home', home, 'validate', '--json');
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(String(r.stdout))).toMatchObject({ ok: true, jobs: 1, rules: 0, problems: [] });
  });

  it('validate --help exits 0 with the usage', async () => {
    const r = await cli('validate', '--help');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('usage: nightshift [--home DIR] validate [--json]');
  });

  it('an unknown option exits 2 with a usage line', async () => {
    const home = makeHome({ 'jobs/a.yaml': JOB });
    const r = await cli('--home', home, 'validate', '--strict');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('--strict');
    expect(r.stderr).toMatch(/^usage: nightshift \[--home DIR\] validate \[--json\]$/m);
  });

  it('a home that does not exist exits 2 and says so', async () => {
    const missing = join(tempDir(), 'nope');
    const r = await cli('--home', missing, 'validate');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`the home folder ${missing} does not exist`);
  });
});
