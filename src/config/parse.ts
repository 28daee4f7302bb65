// Reads one YAML spec file and validates it with a zod schema, turning every problem into
// `FILE:LINE: field: message` so that an operator can go straight to the line.
import jsyaml from 'js-yaml';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import type { Document, Node, YAMLError } from 'yaml';
import type { z } from 'zod';
import { oneLine } from '../text.js';
import { errorMessage } from '../errors.js';

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
  const quick = quickParse(text);
  if (quick !== undefined) {
    const result = schema.safeParse(quick);
    if (result.success) return { ok: true, value: result.data };
  }
  const lineCounter = new (yaml().LineCounter)();
  const doc = yaml().parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  const lineAt = (offset: number | undefined): number => (offset === undefined ? 1 : lineCounter.linePos(offset).line);

  if (doc.errors.length > 0) {
    const problems: SpecProblem[] = [];
    for (const e of doc.errors) {
      const p = yamlProblem(file, text, doc, e, lineAt);
      if (!problems.some((q) => q.line === p.line && q.message === p.message)) problems.push(p);
    }
    return { ok: false, problems };
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
    return {
      ok: false,
      problems: [
        { file, line: lineAt(doc.contents?.range?.[0]), field: '', message: 'expected a mapping of fields ("field: value" lines)' },
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

// Two YAML readers, on purpose. `yaml` keeps every node's position, which FILE:LINE messages need,
// but builds a whole document model: 10,000 spec files cost over a second of it. js-yaml 4 reads the
// same files about ten times faster and knows no positions. So a spec is read by js-yaml first, and
// when that and the schema both accept it, that is the answer; anything else (a syntax error, a
// schema problem, anything the quick reader has doubts about) is read again by `yaml`, whose
// answer stands. The quick reader must therefore never accept a text with another meaning than
// `yaml` gives it: its schema resolves plain scalars with exactly the YAML 1.2 core patterns of
// `yaml` (js-yaml's own core schema also reads 0b101 and -0x1 as numbers), and a text with tags, a
// __proto__ key or values shared through anchors goes to `yaml` (tests/quickread.test.ts compares
// the two on thousands of generated texts).
// yaml is needed only to place a problem on its line: loaded on first need, it stays out of an
// idle daemon's memory (a few MB) while every spec is fine.
let yamlLib: typeof Yaml | undefined;
const yaml = (): typeof Yaml => (yamlLib ??= createRequire(import.meta.url)('yaml') as typeof Yaml);

const scalar = (tag: string, test: RegExp, construct: (s: string) => unknown): jsyaml.Type =>
  new jsyaml.Type(`tag:yaml.org,2002:${tag}`, {
    kind: 'scalar',
    resolve: (s: unknown) => typeof s === 'string' && test.test(s),
    construct,
  });
const QUICK_SCHEMA = jsyaml.FAILSAFE_SCHEMA.extend({
  // The patterns and conversions of yaml/dist/schema/core (null, bool, int, float), in its order.
  implicit: [
    scalar('null', /^(?:~|[Nn]ull|NULL)?$/, () => null),
    scalar('bool', /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/, (s) => s[0] === 't' || s[0] === 'T'),
    scalar('int', /^(?:0o[0-7]+|[-+]?[0-9]+|0x[0-9a-fA-F]+)$/, (s) =>
      s.startsWith('0o') ? parseInt(s.slice(2), 8) : s.startsWith('0x') ? parseInt(s.slice(2), 16) : parseInt(s, 10),
    ),
    scalar(
      'float',
      /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+|[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*))$/,
      (s) => (/nan$/i.test(s) ? NaN : /inf$/i.test(s) ? (s[0] === '-' ? -Infinity : Infinity) : parseFloat(s)),
    ),
  ],
});

/** The spec's data by the quick reader, or undefined when `yaml` must decide. */
export function quickParse(text: string): unknown {
  if (!plainLayout(text)) return undefined;
  let data: unknown;
  try {
    data = jsyaml.load(text, { schema: QUICK_SCHEMA });
  } catch {
    return undefined;
  }
  return isTree(data, new Set()) ? data : undefined;
}

/**
 * Only a text of the usual layout takes the quick path, checked line by line against a small
 * grammar: `name: value`, `- name: value`, `- value`, `name:` opening a nested block, comments.
 * Names are plain words; a value is a plain text without quotes, brackets, `#` or `:`, one quoted
 * text, a [...] of such scalars or a {name: scalar, ...} of them, or a block text `|`, `|-`, `>`,
 * `>-` under a name, all closed on their line; indentation nests in the usual way. Everything
 * else (anchors, aliases, tags, complex or null keys, multi-line quotes and brackets, block
 * indicators, lines of spaces in block texts, tabs, several documents) goes to `yaml` alone:
 * those are the corners where the two readers have been seen to part ways.
 */
function plainLayout(text: string): boolean {
  if (/[\t\r]|__proto__|\\U/.test(text)) return false;
  const levels = [0]; // indents of the open blocks, innermost last
  let opens = false; // the previous line was `name:` with nothing after it
  let block: { parent: number; indent: number } | null = null; // inside a block text
  for (const line of text.split('\n')) {
    const indent = line.length - line.trimStart().length;
    const body = line.slice(indent);
    if (block) {
      if (line === '') continue;
      if (body !== '' && indent > block.parent) {
        // Every line at least as deep as the first: the readers differ on the rest.
        if (block.indent < 0) block.indent = indent;
        else if (indent < block.indent) return false;
        continue;
      }
      if (body === '') return false; // spaces only: the readers disagree on what it adds
      block = null;
    }
    if (body === '' || body.startsWith('#')) continue;
    const m = LINE.exec(body);
    if (!m) return false;
    const dash = m[1] ?? '';
    const key = m[2];
    const value = withoutComment(m[3] ?? m[4] ?? '');
    if (value === null) return false;
    if (key !== undefined && RESERVED_KEY.test(key)) return false;
    // Indentation: a sibling of an open block, or one level deeper right after `name:`.
    while (levels.length > 1 && levels[levels.length - 1]! > indent) levels.pop();
    const top = levels[levels.length - 1]!;
    if (indent > top) {
      if (!opens) return false;
      levels.push(indent);
    } else if (indent < top) return false;
    else if (opens && dash === '' && key !== undefined) return false; // `name:` then a sibling: an empty value, read alike, but keep it simple
    if (dash) levels.push(indent + dash.length);
    opens = key !== undefined && value === '';
    if (BLOCK_HEADER.test(value)) {
      if (key === undefined) return false; // `- |`: measured from elsewhere by each reader
      block = { parent: indent + dash.length, indent: -1 };
      opens = false;
    } else if (key === undefined && value === '') return false; // a bare `-`
  }
  return true;
}

const NAME = '[A-Za-z_][A-Za-z0-9_./-]{0,199}';
// At most one `- `, then `name:` (with a value after a space, or nothing), or an item's value
// (with any trailing comment: see withoutComment).
const LINE = new RegExp(`^(- +)?(?:(${NAME}):(?: +(.*))?|(?<=^- +)(.*))$`);
// Names that YAML reads as null or true/false, not as text.
const RESERVED_KEY = /^(?:null|Null|NULL|true|True|TRUE|false|False|FALSE)$/;
const BLOCK_HEADER = /^[|>]-?$/;
// A plain text: not starting with an indicator (a lone `-` neither) or a quote; no bracket or `#`
// in it, and a `:` only inside a word (02:30, http://x), never before a space or at the end.
const PLAIN = `(?:-(?=[^\\s-])|[^\\s'"\\[\\]{}#&*!|>%@\`,?:-])(?:[^\\[\\]{}#:]|:(?=[^\\s\\[\\]{}#:]))*`;
const PLAIN_IN_FLOW = `(?:-(?=[^\\s,-])|[^\\s'"\\[\\]{}#&*!|>%@\`,?:-])[^'"\\[\\]{}#:,]*`;
const QUOTED = `"(?:[^"\\\\]|\\\\.)*"|'(?:[^']|'')*'`;
const IN_FLOW = `(?:${QUOTED}|${PLAIN_IN_FLOW})`;
// In {...}: `name: ` or, JSON style, a quoted name with the `:` right after it.
const FLOW_KEY = `(?:${NAME}: +|"${NAME}": *|'${NAME}': *)`;
const VALUE = new RegExp(
  `^(?:${QUOTED}|${PLAIN}|\\[ *(?:${IN_FLOW}(?: *, *${IN_FLOW})*)? *\\]|\\{ *(?:${FLOW_KEY}${IN_FLOW}(?: *, *${FLOW_KEY}${IN_FLOW})*)? *\\})$`,
);

/**
 * The value without a trailing ` # comment`: the whole rest when it is a value (a quoted text may
 * hold " #"), else the part before the first ` #` that leaves a value. null: neither.
 */
function withoutComment(rest: string): string | null {
  const whole = rest.trimEnd();
  if (whole === '' || BLOCK_HEADER.test(whole) || isValue(whole)) return whole;
  for (let i = rest.indexOf(' #'); i >= 0; i = rest.indexOf(' #', i + 1)) {
    const v = rest.slice(0, i).trimEnd();
    if (v === '' || BLOCK_HEADER.test(v) || isValue(v)) return v;
  }
  return null;
}

const FLOW_MAP_KEY = new RegExp(`(?:\\{|,) *(${NAME}):`, 'g');

function isValue(value: string): boolean {
  const v = value.trimEnd();
  if (!VALUE.test(v)) return false;
  if (!v.startsWith('{')) return true;
  // Keys in {...}: the regex took names; none may be read as null or a boolean.
  for (const m of v.matchAll(FLOW_MAP_KEY)) if (RESERVED_KEY.test(m[1]!)) return false;
  return true;
}

/** No collection reached twice: an alias to a list or mapping is left to `yaml` and its alias limit. */
function isTree(value: unknown, seen: Set<object>): boolean {
  if (value === null || typeof value !== 'object') return true;
  if (seen.has(value)) return false;
  seen.add(value);
  for (const v of Array.isArray(value) ? value : Object.values(value)) if (!isTree(v, seen)) return false;
  return true;
}

function yamlMessage(message: string): string {
  if (message.startsWith('Source contains multiple documents')) {
    return 'the file holds more than one YAML document (a "---" line starts another); a spec is one document';
  }
  // The yaml package appends a position and a code excerpt in some messages; our line prefix already says where.
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
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
    yaml().visit(doc, {
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
    yaml().visit(doc, { Seq: (_k, n) => onCollection(n), Map: (_k, n) => onCollection(n) });
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
  const lineCounter = new (yaml().LineCounter)();
  const doc = yaml().parseDocument(text, { lineCounter, prettyErrors: false });
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
    if (yaml().isNode(node)) return node;
  }
  return undefined;
}

function keyNode(doc: Document, path: ReadonlyArray<string | number>): Node | undefined {
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
  if (!yaml().isMap(parent)) return undefined;
  const key = path[path.length - 1];
  for (const item of parent.items) {
    if (yaml().isPair(item) && yaml().isScalar(item.key) && item.key.value === key) return item.key;
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
      return issue.origin === 'array' ? `needs at least ${String(issue.minimum)} item(s)` : `must be at least ${String(issue.minimum)}`;
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
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDist) {
      bestDist = d;
      best = k;
    }
  }
  return best !== undefined && bestDist <= 2 ? ` (did you mean "${best}"?)` : '';
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}
