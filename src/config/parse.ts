// Reads one YAML spec file and validates it with a zod schema, turning every problem into
// `FILE:LINE: field: message` so that an operator can go straight to the line. One reader, `yaml`:
// it keeps every node's position, which those lines need. (A second, faster reader once fronted it
// for 10,000 specs in under 3 s; the target is now 5 s, which `yaml` alone meets: bench/scale.mjs.)
import { isMap, isNode, isPair, isScalar, LineCounter, parseDocument, visit, type Document, type Node, type YAMLError } from 'yaml';
import type { z } from 'zod';
import { oneLine } from '../text.js';
import { closestName } from '../names.js';
import { errorMessage } from '../errors.js';
import { parseCron } from '../schedule/cron.js';

export interface SpecProblem {
  file: string;
  line: number;
  field: string;
  message: string;
}

/** FILE:LINE: field: message — the field and message may quote the file itself: shown as data. */
export function formatProblem(p: SpecProblem): string {
  return `${oneLine(p.file, 1000)}:${p.line}: ${p.field ? `${oneLine(p.field, 200)}: ` : ''}${oneLine(p.message, 2000)}`;
}

export type SpecResult<T> = { ok: true; value: T } | { ok: false; problems: SpecProblem[] };

export function parseSpecText<S extends z.ZodType>(file: string, text: string, schema: S): SpecResult<z.output<S>> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  const lineAt = (offset: number | undefined): number => (offset === undefined ? 1 : lineCounter.linePos(offset).line);

  if (doc.errors.length > 0) {
    const problems: Array<SpecProblem & { hinted: boolean }> = [];
    for (const e of doc.errors) {
      const p = yamlProblem(file, text, doc, e, lineAt);
      // One mistake a crontab user makes can read as several YAML errors on its line: say it once, plainly.
      const hint = crontabHint(text.split('\n')[p.line - 1] ?? '');
      if (hint) p.message = hint;
      if (!problems.some((q) => q.line === p.line && (q.message === p.message || hint))) problems.push({ ...p, hinted: !!hint });
    }
    // The parser's complaints after a hinted line are its echoes; the hint is what to fix there.
    const firstHint = problems.find((p) => p.hinted)?.line ?? Infinity;
    return { ok: false, problems: problems.filter((p) => p.hinted || p.line < firstHint).map(({ hinted: _h, ...p }) => p) };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return { ok: false, problems: [{ file, line: 1, field: 'yaml', message: errorMessage(err) }] };
  }
  if (data === null || data === undefined) {
    return {
      ok: false,
      problems: [
        {
          file,
          line: 1,
          field: '',
          message: 'the file has no fields (empty, or only comments); it must hold "field: value" lines, e.g. command: ["echo", "hello"]',
        },
      ],
    };
  }
  if (typeof data !== 'object' || Array.isArray(data)) {
    const line = lineAt(doc.contents?.range?.[0]);
    return {
      ok: false,
      problems: [
        {
          file,
          line,
          field: '',
          message: crontabHint(text.split('\n')[line - 1] ?? '') ?? 'expected a mapping of fields ("field: value" lines)',
        },
      ],
    };
  }
  const result = schema.safeParse(data);
  if (result.success) return { ok: true, value: result.data };

  const problems: SpecProblem[] = [];
  for (const issue of result.error.issues) {
    const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const keyPath = [...path, key];
        problems.push({
          file,
          line: lineAt(keyNode(doc, keyPath)?.range?.[0] ?? nearestNode(doc, path)?.range?.[0]),
          field: fieldName(keyPath),
          message: `unknown field${suggest(key, knownKeysAt(schema, path)) || belongsUnder(schema, path, key)}`,
        });
      }
      continue;
    }
    problems.push({
      file,
      line: lineAt(nodeForPath(doc, path)?.range?.[0]),
      field: fieldName(path),
      message: friendly(issue, valueAt(data, path)),
    });
  }
  problems.sort((a, b) => a.line - b.line);
  return { ok: false, problems };
}

function yamlMessage(message: string): string {
  if (message.startsWith('Source contains multiple documents')) {
    return 'the file holds more than one YAML document (a "---" line starts another); a spec is one document';
  }
  // The yaml package appends a position and a code excerpt in some messages; our line prefix already says where.
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

/** Five fields (or a nickname) that Debian's cron would read: a pasted line, not wrapped prose. */
function isCron(fields: string): boolean {
  try {
    parseCron(fields);
    return true;
  } catch {
    return false;
  }
}

/** What YAML makes of a value that starts with one of these characters, unquoted. */
const YAML_READS: Record<string, string> = {
  '*': 'a reference to an anchor (an alias)',
  '&': 'an anchor',
  '!': 'a tag',
  '%': 'a directive',
  '@': 'a reserved character',
  '`': 'a reserved character',
};

/**
 * The mistakes of someone who knows crontab: a schedule copied unquoted (`schedule: *\/5 * * * *`,
 * `schedule: @daily`), and a whole crontab line pasted as the file. Plain words instead of the
 * parser's ("Unexpected alias at node end").
 */
export function crontabHint(line: string): string | undefined {
  const field = /^\s*(?:-\s+)?([A-Za-z_][\w-]*):\s+(\S.*?)\s*$/.exec(line);
  if (field) {
    const [, key, value] = field as unknown as [string, string, string];
    const q = value[0]!;
    if (q === '"' || q === "'") {
      // A quoted part and then more (`shell: "a" | b`): the quotes end before the value does.
      const close = q === '"' ? /^"(?:[^"\\]|\\.)*"/.exec(value) : /^'(?:[^']|'')*'/.exec(value);
      const rest = close ? value.slice(close[0].length).trim() : '';
      if (close && rest && !rest.startsWith('#'))
        return `the quotes end before the value of "${key}" does; quote the whole value (a " inside as \\"): ${key}: ${JSON.stringify(value)}`;
      return undefined;
    }
    const reads = YAML_READS[q];
    if (!reads) return undefined;
    return `put the value of "${key}" in quotes: ${key}: ${JSON.stringify(value)} (unquoted, YAML reads a value that starts with "${value[0]}" as ${reads})`;
  }
  const cron = /^\s*((?:@(?:reboot|yearly|annually|monthly|weekly|daily|midnight|hourly))|(?:\S+\s+){4}\S+)\s+(\S.*)$/.exec(line);
  if (cron && !line.includes(': ') && isCron(cron[1]!))
    return `this looks like a crontab line; a job file has one field per line: schedule: ${JSON.stringify(cron[1])} and shell: ${JSON.stringify(cron[2])} (or command: [...], the program and its arguments)`;
  return undefined;
}

/** A YAML syntax error in words an operator can act on, on the line where the mistake is. */
function yamlProblem(file: string, text: string, doc: Document, e: YAMLError, lineAt: (offset: number | undefined) => number): SpecProblem {
  const at = e.pos[0];
  let line = lineAt(at);
  let message = yamlMessage(e.message);
  if (e.code === 'DUPLICATE_KEY') {
    const key = /^[^\s:#]+|^"[^"]*"|^'[^']*'/.exec(text.slice(at))?.[0];
    message = `${key ? `"${key.replace(/^["']|["']$/g, '')}"` : 'a field'} appears twice in the same mapping; keep only one`;
  } else if (e.code === 'MISSING_CHAR' && /quote/.test(e.message)) {
    // The parser notices the missing quote at the end of the file; the mistake is where the quote opens.
    let start: number | undefined;
    visit(doc, {
      Scalar(_key, node) {
        if ((node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') && node.range && node.range[0] <= at && at <= node.range[2]) {
          start = node.range[0];
        }
      },
    });
    if (start !== undefined) line = lineAt(start);
    const q = /'/.test(e.message) ? "'" : '"';
    message = `the quote (${q}) that starts on this line is never closed; add the closing ${q}`;
  } else if (e.code === 'TAB_AS_INDENT') {
    message = 'a tab is used for indentation; YAML only allows spaces';
  } else if (e.code === 'BAD_INDENT' && /^Flow (sequence|map)/.test(e.message)) {
    // Noticed where the text goes on without the closing bracket; point at the opening one.
    let start: number | undefined;
    const onCollection = (node: { flow?: boolean; range?: [number, number, number] | null }): void => {
      if (node.flow && node.range && node.range[0] < at && at <= node.range[2] && (start === undefined || node.range[0] > start)) {
        start = node.range[0];
      }
    };
    visit(doc, { Seq: (_k, n) => onCollection(n), Map: (_k, n) => onCollection(n) });
    if (start !== undefined) line = lineAt(start);
    const [open, close] = /^Flow sequence/.test(e.message) ? ['[', ']'] : ['{', '}'];
    message = `the "${open}" that starts on this line is never closed with "${close}" (or a line inside it is not indented enough)`;
  } else if (e.code === 'BAD_INDENT') {
    message = `bad indentation: ${message.charAt(0).toLowerCase()}${message.slice(1)}`;
  }
  return { file, line, field: 'yaml', message };
}

/** The line of the value at `path` in a spec's text (for checks made after parsing, such as dependsOn). */
export function lineOfPath(text: string, path: ReadonlyArray<string | number>): number {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const offset = nodeForPath(doc, path)?.range?.[0];
  return offset === undefined ? 1 : lineCounter.linePos(offset).line;
}

/** For a field of a mapping, its key (the line an operator looks for); else the closest existing node. */
function nodeForPath(doc: Document, path: ReadonlyArray<string | number>): Node | undefined {
  if (path.length > 0 && typeof path[path.length - 1] === 'string') {
    const key = keyNode(doc, path);
    if (key) return key;
  }
  return nearestNode(doc, path);
}

export function fieldName(path: ReadonlyArray<string | number>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

function nearestNode(doc: Document, path: ReadonlyArray<string | number>): Node | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(node)) return node;
  }
  return undefined;
}

function keyNode(doc: Document, path: ReadonlyArray<string | number>): Node | undefined {
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
  if (!isMap(parent)) return undefined;
  const key = path[path.length - 1];
  for (const item of parent.items) {
    if (isPair(item) && isScalar(item.key) && item.key.value === key) return item.key;
  }
  return undefined;
}

function valueAt(data: unknown, path: ReadonlyArray<string | number>): unknown {
  let cur: unknown = data;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the text "${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
  if (typeof value === 'boolean') return `${String(value)}`;
  if (typeof value === 'number' || typeof value === 'bigint') return `the number ${value}`;
  return `a ${typeof value}`;
}

// zod's type names, as an operator would say them.
const EXPECTED: Record<string, string> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping ("field: value" lines)',
  array: 'a list',
  record: 'a mapping ("name: value" lines)',
};

function friendly(issue: z.core.$ZodIssue, value: unknown): string {
  switch (issue.code) {
    case 'invalid_type':
      if (value === undefined) return 'is required';
      if (issue.message && !issue.message.startsWith('Invalid input')) return `${issue.message} (got ${describe(value)})`;
      return `expected ${EXPECTED[issue.expected] ?? `a ${issue.expected}`}, got ${describe(value)}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')} (got ${describe(value)})`;
    case 'too_small':
      if (issue.message && !issue.message.startsWith('Too small')) return issue.message;
      if (issue.origin === 'array') return `needs at least ${String(issue.minimum)} item(s)`;
      // An empty text (cwd: "", a path ""): zod's minimum is a length, not a value to reach.
      if (issue.origin === 'string') return Number(issue.minimum) === 1 ? 'is empty' : `needs at least ${String(issue.minimum)} characters`;
      return `must be at least ${String(issue.minimum)}`;
    case 'too_big':
      if (issue.message && !issue.message.startsWith('Too big'))
        return `${issue.message}${typeof value === 'number' ? ` (got ${value})` : ''}`;
      return `must be at most ${String(issue.maximum)}`;
    case 'invalid_union':
      if (issue.message && !issue.message.startsWith('Invalid input')) return `${issue.message} (got ${describe(value)})`;
      return `has the wrong type (got ${describe(value)})`;
    case 'invalid_key': {
      // A bad key of a record (env): zod only says "Invalid key in record"; the inner issue has our words.
      const inner = issue.issues[0]?.message;
      return `${inner && !inner.startsWith('Invalid') ? inner : 'is not a valid name'} (got "${String(issue.path[issue.path.length - 1] ?? '')}")`;
    }
    case 'invalid_format':
      if (issue.message && !issue.message.startsWith('Invalid')) return `${issue.message} (got ${describe(value)})`;
      return `has the wrong format (got ${describe(value)})`;
    default:
      return issue.message;
  }
}

// zod's unrecognized_keys issue does not say which keys were allowed, so walk the schema to the
// object at the issue's path and offer the closest known field.
function knownKeysAt(schema: z.ZodType, path: ReadonlyArray<string | number>): string[] {
  let cur: unknown = schema;
  const unwrap = (s: unknown): unknown => {
    for (let i = 0; i < 20; i++) {
      const def = (s as { _zod?: { def?: Record<string, unknown> } })?._zod?.def;
      if (!def) return s;
      if (def.type === 'optional' || def.type === 'default' || def.type === 'prefault' || def.type === 'nullable') s = def.innerType;
      else if (def.type === 'pipe') s = def.in;
      else return s;
    }
    return s;
  };
  for (const p of path) {
    cur = unwrap(cur);
    const def = (cur as { _zod?: { def?: Record<string, unknown> } })?._zod?.def;
    if (!def) return [];
    if (def.type === 'object') cur = (def.shape as Record<string, unknown>)[String(p)];
    else if (def.type === 'array') cur = def.element;
    else if (def.type === 'record') cur = def.valueType;
    else return [];
  }
  const def = (unwrap(cur) as { _zod?: { def?: Record<string, unknown> } })?._zod?.def;
  return def?.type === 'object' ? Object.keys(def.shape as Record<string, unknown>) : [];
}

/** A known field one level further down ("kind" at the top of a rule belongs under "match:"). */
function belongsUnder(schema: z.ZodType, path: ReadonlyArray<string | number>, key: string): string {
  for (const parent of knownKeysAt(schema, path)) {
    if (knownKeysAt(schema, [...path, parent]).includes(key) || knownKeysAt(schema, [...path, parent, 0]).includes(key)) {
      return ` ("${key}" belongs under "${parent}:")`;
    }
  }
  return '';
}

function suggest(key: string, known: string[]): string {
  const best = closestName(key, known);
  return best !== undefined ? ` (did you mean "${best}"?)` : '';
}
