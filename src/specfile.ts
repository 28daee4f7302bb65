// Reads one YAML spec file and validates it with a zod schema, turning every problem into
// `FILE:LINE: field: message` so that an operator can go straight to the line.
import { isMap, isNode, isPair, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';

export interface SpecProblem {
  file: string;
  line: number;
  field: string;
  message: string;
}

export function formatProblem(p: SpecProblem): string {
  return `${p.file}:${p.line}: ${p.field ? `${p.field}: ` : ''}${p.message}`;
}

export type SpecResult<T> = { ok: true; value: T } | { ok: false; problems: SpecProblem[] };

export function parseSpecText<S extends z.ZodType>(file: string, text: string, schema: S): SpecResult<z.output<S>> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  const lineAt = (offset: number | undefined): number => (offset === undefined ? 1 : lineCounter.linePos(offset).line);

  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((e) => ({ file, line: lineAt(e.pos[0]), field: 'yaml', message: yamlMessage(e.message) })),
    };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return { ok: false, problems: [{ file, line: 1, field: 'yaml', message: (err as Error).message }] };
  }
  if (data === null || data === undefined) {
    return { ok: false, problems: [{ file, line: 1, field: '', message: 'the file is empty; it must be a mapping of fields (see DESIGN.md)' }] };
  }
  if (typeof data !== 'object' || Array.isArray(data)) {
    return {
      ok: false,
      problems: [{ file, line: lineAt(doc.contents?.range?.[0]), field: '', message: 'expected a mapping of fields ("field: value" lines)' }],
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
          message: `unknown field${suggest(key, knownKeysAt(schema, path))}`,
        });
      }
      continue;
    }
    problems.push({
      file,
      line: lineAt(nearestNode(doc, path)?.range?.[0]),
      field: fieldName(path),
      message: friendly(issue, valueAt(data, path)),
    });
  }
  problems.sort((a, b) => a.line - b.line);
  return { ok: false, problems };
}

function yamlMessage(message: string): string {
  // The yaml package appends a position and a code excerpt in some messages; our line prefix already says where.
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
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
  return `${typeof value} ${String(value)}`;
}

function friendly(issue: z.core.$ZodIssue, value: unknown): string {
  switch (issue.code) {
    case 'invalid_type':
      if (value === undefined) return 'is required';
      if (issue.message && !issue.message.startsWith('Invalid input')) return `${issue.message} (got ${describe(value)})`;
      return `expected ${issue.expected === 'int' ? 'a whole number' : `a ${issue.expected}`}, got ${describe(value)}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')} (got ${describe(value)})`;
    case 'too_small':
      if (issue.message && !issue.message.startsWith('Too small')) return issue.message;
      return issue.origin === 'array' ? `needs at least ${String(issue.minimum)} item(s)` : `must be at least ${String(issue.minimum)}`;
    case 'too_big':
      if (issue.message && !issue.message.startsWith('Too big')) return issue.message;
      return `must be at most ${String(issue.maximum)}`;
    case 'invalid_union':
      return `has the wrong type (got ${describe(value)})`;
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
