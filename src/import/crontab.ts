// A crontab as Debian's cron (3.0pl1, the package `cron`) reads it: which lines set variables,
// which are jobs, which it refuses, what it hands to $SHELL -c and what to standard input. Pure:
// no files, no clock, no processes. Each rule below names the function of Debian's source it
// follows (env.c load_env, entry.c load_entry, user.c load_user, do_command.c child_process,
// database.c valid_name); what a real cron did with the tricky cases is recorded in
// tests/unit/config/crontab.test.ts.
import { CronError, parseCron, type CronExpr } from '../schedule/cron.js';
import { errorMessage } from '../errors.js';

export type CrontabKind = 'user' | 'system';

/** When a line runs: at boot, or a cron expression (its five fields, or an @nickname). */
export type When = { kind: 'reboot' } | { kind: 'cron'; schedule: string; expr: CronExpr };

export interface CronJobLine {
  /** 1-based line number in the file. */
  line: number;
  /** The line as written, without its newline. */
  text: string;
  when: When;
  /** The user column of a system crontab; null in a user crontab. */
  user: string | null;
  /** The command part of the line as written (after the time fields and the user column). */
  written: string;
  /** What cron passes to `$SHELL -c`: up to the first unescaped %, with \% and \\ unescaped. */
  command: string;
  /** The bytes cron writes to the command's standard input (after the first %), or null for none. */
  stdin: string | null;
  /** The crontab's variables in force for this line, in order (a later one replaces an earlier one). */
  env: Array<[string, string]>;
  /** The line ended in a carriage return (a file saved with Windows line ends). */
  carriageReturn: boolean;
}

export interface CrontabProblem {
  line: number;
  text: string;
  message: string;
}

export interface ParsedCrontab {
  jobs: CronJobLine[];
  /** Lines cron refuses (each one makes Debian's cron ignore the whole file). */
  problems: CrontabProblem[];
  /** Lines cron accepts but that run nothing (an empty command). */
  empty: Array<{ line: number; text: string }>;
  /** Why Debian's cron ignores this whole file, or null: then none of its lines ever ran. */
  ignoredBecause: string | null;
}

/** Debian's cron refuses a command of MAX_COMMAND - 1 (999) characters or more (entry.c). */
export const MAX_COMMAND_CHARS = 999;
/** MAX_ENVSTR in cron.h: NAME=VALUE must be shorter than 999 characters. */
const MAX_ENVSTR = 1000;

/** C's isspace in the C locale. */
const isSpace = (c: string | undefined): boolean => c !== undefined && ' \t\n\v\f\r'.includes(c);
const isBlank = (c: string | undefined): boolean => c === ' ' || c === '\t';

const enum S {
  NAMEI,
  NAME,
  EQ1,
  EQ2,
  VALUEI,
  VALUE,
  FINI,
  ERROR,
}

/**
 * A variable setting as env.c's load_env reads it, or null when the line is not one (then cron reads
 * it as a job line). `NAME = value`: blanks around "=" are optional; a value is taken literally (no
 * $VAR, a "#" is part of it); an unquoted value loses its trailing blanks; a value in matching
 * quotes loses them too (strdtb runs after), keeps its leading ones, and quotes inside it that
 * match again are stripped once more ("'x'" gives x). `NAME=` alone is not a setting (write
 * NAME=""), nor is anything after a closing quote.
 */
export function parseEnvLine(text: string): { name: string; value: string } | null {
  let state = S.NAMEI;
  let quote = '';
  let name = '';
  let val = '';
  let inName = true;
  let i = 0;
  while (state !== S.ERROR && i < text.length) {
    const c = text[i]!;
    switch (state) {
      case S.NAMEI:
      case S.VALUEI:
      case S.NAME:
      case S.VALUE: {
        if (state === S.NAMEI || state === S.VALUEI) {
          if (c === "'" || c === '"') {
            quote = c;
            i++;
          }
          state = state === S.NAMEI ? S.NAME : S.VALUE;
          if (i >= text.length) break;
        }
        const d = text[i]!;
        if (quote) {
          if (d === quote) {
            state = state === S.NAME ? S.EQ1 : S.FINI;
            i++;
            break;
          }
          if (state === S.NAME && d === '=') {
            state = S.ERROR;
            break;
          }
        } else if (state === S.NAME) {
          if (isSpace(d)) {
            i++;
            state = S.EQ1;
            break;
          }
          if (d === '=') {
            state = S.EQ1;
            break;
          }
        }
        if (inName) name += d;
        else val += d;
        i++;
        break;
      }
      case S.EQ1:
        if (c === '=') {
          state = S.EQ2;
          inName = false;
          quote = '';
        } else if (!isSpace(c)) state = S.ERROR;
        i++;
        break;
      case S.EQ2:
      case S.FINI:
        if (isSpace(c)) i++;
        else state = state === S.EQ2 ? S.VALUEI : S.ERROR;
        break;
      default:
        state = S.ERROR;
    }
  }
  if (state !== S.FINI && !(state === S.VALUE && !quote)) return null;
  // strdtb: trailing blanks go, from a quoted value too.
  val = val.replace(/[ \t\n\v\f\r]+$/, '');
  if (val.length >= 2 && (val[0] === "'" || val[0] === '"') && val[val.length - 1] === val[0]) val = val.slice(1, -1);
  if (name.length + 1 + val.length >= MAX_ENVSTR - 1) return null;
  return { name, value: val };
}

/**
 * do_command.c: the command is the text up to the first % not escaped by a backslash, with \% made %
 * and \\ made \ (other backslashes stay); the rest, if any, is written to standard input with each
 * % made a newline and \% made %, other backslashes kept, and a newline added when it does not end
 * in one. An empty rest ("cmd%") writes nothing: the command reads end of file, as without a %.
 */
export function splitPercent(written: string): { command: string; stdin: string | null } {
  let command = '';
  let escaped = false;
  let i = 0;
  let rest: string | null = null;
  for (; i < written.length; i++) {
    const ch = written[i]!;
    if (escaped) {
      if (ch === '%' || ch === '\\') command = command.slice(0, -1) + ch;
      else command += ch;
      escaped = false;
      continue;
    }
    if (ch === '\\') {
      command += ch;
      escaped = true;
      continue;
    }
    if (ch === '%') {
      rest = written.slice(i + 1);
      break;
    }
    command += ch;
  }
  if (rest === null || rest === '') return { command, stdin: null };
  let out = '';
  let needNewline = false;
  escaped = false;
  for (const c of rest) {
    let ch = c;
    if (escaped) {
      if (ch !== '%') out += '\\';
    } else if (ch === '%') ch = '\n';
    escaped = ch === '\\';
    if (!escaped) {
      out += ch;
      needNewline = ch !== '\n';
    }
  }
  if (escaped) out += '\\';
  if (needNewline) out += '\n';
  return { command, stdin: out };
}

/**
 * database.c valid_name: Debian's cron reads a file of /etc/cron.d only when its name is made of
 * letters, digits, "_" and "-" (run-parts' rule; no dots, so package leftovers such as
 * foo.dpkg-old are skipped). Returns why it skips one, or null. (cron -l, LSB names, is not followed.)
 */
export function cronDNameProblem(base: string): string | null {
  if (/^[A-Za-z0-9_-]+$/.test(base)) return null;
  const why = base.startsWith('.')
    ? 'it starts with a dot'
    : base.includes('.')
      ? 'it has a dot'
      : 'it has characters other than letters, digits, "_" and "-"';
  return `Debian's cron skips a file of /etc/cron.d named "${base}" (${why}): none of its lines ever ran`;
}

const NICKNAMES = new Set(['yearly', 'annually', 'monthly', 'weekly', 'daily', 'midnight', 'hourly']);

/** The next blank-separated word at `at` (get_list reads to a blank or the end of the line). */
function wordAt(text: string, at: number): { word: string; end: number } {
  let end = at;
  while (end < text.length && !isBlank(text[end])) end++;
  return { word: text.slice(at, end), end };
}

function skipBlanks(text: string, at: number): number {
  while (at < text.length && isBlank(text[at])) at++;
  return at;
}

const FIELD_NAMES = ['minute', 'hour', 'day-of-month', 'month', 'day-of-week'];

type Entry = { ok: true; when: When; user: string | null; written: string } | { ok: false; message: string } | { ok: 'empty' };

/** entry.c load_entry, for one line that is not a variable setting (leading blanks already skipped). */
function readEntry(text: string, kind: CrontabKind, userExists: (name: string) => boolean): Entry {
  let at = 0;
  let when: When;
  if (text.startsWith('@')) {
    // The word after "@" up to a blank, compared as written: "@DAILY" is refused.
    const { word, end } = wordAt(text, 1);
    at = end;
    if (word === 'reboot') when = { kind: 'reboot' };
    else if (NICKNAMES.has(word)) {
      const schedule = `@${word}`;
      when = { kind: 'cron', schedule, expr: parseCron(schedule) };
    } else {
      const lower = word.toLowerCase();
      const hint = lower === 'reboot' || NICKNAMES.has(lower) ? ` (nicknames are lower case to Debian's cron: @${lower})` : '';
      return { ok: false, message: `bad time specifier "@${word}"${hint}` };
    }
  } else {
    const fields: string[] = [];
    for (let f = 0; f < 5; f++) {
      at = skipBlanks(text, at);
      const { word, end } = wordAt(text, at);
      if (word === '') {
        // Debian reads field by field: a first word that is no minute is "bad minute".
        try {
          parseCron([...fields, ...Array<string>(5 - f).fill('*')].join(' '));
        } catch (err) {
          const setting = /^[A-Za-z_][A-Za-z0-9_]*=[ \t]*$/.test(text)
            ? ` (to Debian's cron "${text.trim()}" with nothing after "=" is not a setting: write ${text.trim()}"")`
            : '';
          return { ok: false, message: `bad ${FIELD_NAMES[0]}: ${errorMessage(err)}${setting}` };
        }
        return { ok: false, message: `bad ${FIELD_NAMES[f]}: the line ends after ${f} time field(s); cron needs 5` };
      }
      fields.push(word);
      at = end;
    }
    const schedule = fields.join(' ');
    try {
      when = { kind: 'cron', schedule, expr: parseCron(schedule) };
    } catch (err) {
      return { ok: false, message: err instanceof CronError ? err.message : errorMessage(err) };
    }
  }
  at = skipBlanks(text, at);
  let user: string | null = null;
  if (kind === 'system') {
    const { word, end } = wordAt(text, at);
    if (word === '' || end >= text.length)
      return {
        ok: false,
        message: word === '' ? 'bad username: the user column is missing' : 'bad command: nothing after the user column',
      };
    if (!userExists(word)) return { ok: false, message: `bad username "${word}": no such user on this machine (getent passwd ${word})` };
    user = word;
    // get_string stops at the one blank after the name; the blanks after it belong to the command,
    // where they mean nothing to a shell.
    at = skipBlanks(text, end);
  } else if (text[at] === '*') {
    return {
      ok: false,
      message:
        'bad command: it starts with "*". Debian\'s cron has no seconds field: a sixth time field is read as the command (in /etc/crontab and /etc/cron.d the sixth word is the user: import those with --system)',
    };
  }
  const written = text.slice(at);
  // What cron measures: in a system crontab, the blanks after the user's one delimiter count too.
  const measured = kind === 'system' ? text.length - (text.slice(0, at).trimEnd().length + 1) : written.length;
  if (measured >= MAX_COMMAND_CHARS)
    return { ok: false, message: `bad command: ${measured} characters; Debian's cron refuses ${MAX_COMMAND_CHARS} or more` };
  if (written === '') return { ok: 'empty' };
  return { ok: true, when, user, written };
}

/**
 * user.c load_user: line by line, a variable setting or a job; blank lines and lines starting with
 * "#" (after blanks) are skipped. A refused line, or a last line without its newline, makes
 * Debian's cron ignore the whole file (crontab(1) refuses to install such a file).
 */
export function parseCrontab(text: string, opts: { kind: CrontabKind; userExists?: (name: string) => boolean }): ParsedCrontab {
  const userExists = opts.userExists ?? (() => true);
  const lines = text.split('\n');
  // The piece after the last newline: empty when the file ends with one.
  const last = lines.pop() ?? '';
  const jobs: CronJobLine[] = [];
  const problems: CrontabProblem[] = [];
  const empty: Array<{ line: number; text: string }> = [];
  const env: Array<[string, string]> = [];
  let ignoredBecause: string | null = null;
  const all = last === '' ? lines : [...lines, last];
  for (let n = 0; n < all.length; n++) {
    const raw = all[n]!;
    const body = raw.slice(skipBlanks(raw, 0));
    if (body === '' || body.startsWith('#')) continue;
    if (n === lines.length) {
      // skip_comments reads a comment or blanks to the end of the file; anything else without a
      // newline makes load_env hit the end of the file with text read: the file is ignored.
      ignoredBecause = `its last line (${n + 1}) has no newline at the end: Debian's cron ignores the whole file ("Missing newline before EOF") and crontab refuses to install it`;
      problems.push({ line: n + 1, text: raw, message: 'no newline at the end of the file: cron ignores the whole file' });
      break;
    }
    const setting = parseEnvLine(body);
    if (setting) {
      const at = env.findIndex(([k]) => k === setting.name);
      if (at >= 0) env.splice(at, 1);
      env.push([setting.name, setting.value]);
      continue;
    }
    const e = readEntry(body, opts.kind, userExists);
    if (e.ok === 'empty') {
      empty.push({ line: n + 1, text: raw });
      continue;
    }
    if (!e.ok) {
      const cr =
        body.endsWith('\r') && body.replace(/\r$/, '').trim() === ''
          ? ' (a blank line ending in a carriage return: the file has Windows line ends)'
          : '';
      problems.push({ line: n + 1, text: raw, message: `${e.message}${cr}` });
      continue;
    }
    const carriageReturn = e.written.endsWith('\r');
    const { command, stdin } = splitPercent(e.written);
    jobs.push({
      line: n + 1,
      text: raw,
      when: e.when,
      user: e.user,
      written: e.written,
      command,
      stdin,
      env: env.map(([k, v]) => [k, v]),
      carriageReturn,
    });
  }
  if (problems.length && ignoredBecause === null)
    ignoredBecause = `line ${problems[0]!.line} is refused (${problems[0]!.message}): Debian's cron ignores the whole file ("Syntax error, this crontab file will be ignored") and crontab refuses to install it`;
  return { jobs, problems, empty, ignoredBecause };
}
