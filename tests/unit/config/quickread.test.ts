// The quick YAML reader (js-yaml, src/config/parse.ts quickParse) may only ever give the answer `yaml`
// gives: whenever it accepts a text, `yaml` — as parseSpecText calls it — must read the same data
// without an error. Checked on texts generated to hit YAML's corners (every scalar style, tricky
// plain scalars, nesting, anchors, tags) and on thousands of random edits of valid specs.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { quickParse } from '../../../src/config/parse.js';
import { mutate, VALID } from '../../support/fuzz-specs.js';
import { ROOT } from '../../support/helpers.js';
import { mulberry32 } from '../../support/random-cron.js';

/** What parseSpecText reads with `yaml`: the data, or undefined when `yaml` reports an error. */
function slowRead(text: string): { data: unknown } | undefined {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, strict: true });
  if (doc.errors.length > 0) return undefined;
  try {
    return { data: doc.toJS({ maxAliasCount: 100 }) };
  } catch {
    return undefined;
  }
}

/** Deep equality that tells -0 from 0, NaN from null, and a missing key from an undefined one. */
function same(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return Object.is(a, b);
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return a === b;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length || Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  return ka.every(
    (k) => Object.prototype.hasOwnProperty.call(b, k) && same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
  );
}

// Plain scalars that YAML 1.1, 1.2 and js-yaml's own schemas read differently, and other corners.
const PLAIN = [
  '0x1F',
  '0o17',
  '017',
  '0b101',
  '-0x1',
  '+0x1',
  '1_000',
  '+.5',
  '-.5',
  '.5',
  '5.',
  '1e3',
  '1E+3',
  '-1.5e-3',
  '12e',
  '1.2.3',
  '.inf',
  '-.Inf',
  '+.INF',
  '.nan',
  '.NaN',
  '~',
  'null',
  'Null',
  'NULL',
  'nULL',
  'true',
  'True',
  'TRUE',
  'tRUE',
  'false',
  'yes',
  'no',
  'on',
  'off',
  'y',
  'n',
  '2026-01-01',
  '2026-01-01T10:00:00Z',
  '12:30',
  '1:20:30',
  '-0',
  '+0',
  '007',
  '9007199254740993',
  '1e309',
  '<<',
  '=',
  'a b',
  'x#y',
  'a-b',
  'echo $HOME',
  'a && b',
  'C:\\x',
  'é',
  '30s',
  '*/5 * * * *',
  '0 3 * * *',
];
const QUOTED = [
  '"\\U00110000"',
  '"\\U0001F600"',
  '"b"#c',
  "'b'#c",
  '[b]#c',
  '{b: c}#d',
  '"a\\tb"',
  "'it''s'",
  '"\\u00e9"',
  '"\\x41"',
  '"\\e"',
  '"\\/"',
  '"\\N"',
  '"\\_"',
  '"\\L"',
  '"#"',
  "''",
  '""',
  '"a\\\n  b"',
  "'a\n\n  b'",
];
const BLOCK = [
  '|1\n   \n',
  '|2\n    x\n   \n',
  '>1\n  \n',
  '|+\n  x\n  ',
  '|\n      \n  # c',
  '|\n  a\n  b',
  '>\n  a\n  b',
  '|-\n  a\n',
  '>+\n  a\n\n',
  '|2\n   a\n',
  '>-\n  x\n\n  y',
];

function scalar(r: () => number): string {
  const u = r();
  const pick = (xs: string[]): string => xs[Math.floor(r() * xs.length)]!;
  return u < 0.6 ? pick(PLAIN) : u < 0.9 ? pick(QUOTED) : pick(BLOCK);
}

/** A random document: a mapping of scalars, flow and block lists and mappings, anchors and aliases. */
function document(r: () => number): string {
  const lines: string[] = [];
  const keys = [
    'command',
    'env',
    'every',
    'timeout',
    'a',
    '1',
    'on',
    'x y',
    '"q"',
    '? k',
    '~',
    'null',
    'NULL',
    '',
    '- [a, b]',
    '- {a: 1}',
    'k'.repeat(1100),
    '-',
  ];
  let anchors = 0;
  for (let i = 0, n = 1 + Math.floor(r() * 5); i < n; i++) {
    const key = keys[Math.floor(r() * keys.length)]!;
    const u = r();
    if (u < 0.4) {
      const s = scalar(r);
      lines.push(`${key}: ${s.startsWith('|') || s.startsWith('>') ? s.replace(/\n/g, '\n  ') : s}`);
    } else if (u < 0.55) lines.push(`${key}: [${[scalar(r), scalar(r)].filter((s) => !/^[|>]/.test(s)).join(', ')}]`);
    else if (u < 0.65) lines.push(`${key}: {k1: ${PLAIN[Math.floor(r() * PLAIN.length)]}, k2: ${QUOTED[Math.floor(r() * QUOTED.length)]}}`);
    else if (u < 0.8)
      lines.push(`${key}:`, `  - ${PLAIN[Math.floor(r() * PLAIN.length)]}`, `  - [${PLAIN[Math.floor(r() * PLAIN.length)]}]`);
    else if (u < 0.85) lines.push(`${key}: &a${anchors++} [${PLAIN[Math.floor(r() * PLAIN.length)]}]`, `k${i}: *a${anchors - 1}`);
    else if (u < 0.88) lines.push(`${key}: &s${anchors++} 1`, ...Array.from({ length: 101 }, (_, j) => `s${i}x${j}: *s${anchors - 1}`));
    else if (u < 0.9) lines.push(`${key}:`, '  - x', '  -', ' - y');
    else lines.push(`${key}: !!str ${PLAIN[Math.floor(r() * PLAIN.length)]}`);
  }
  return `${lines.join('\n')}\n`;
}

function check(texts: string[]): { quick: number; total: number } {
  let quick = 0;
  for (const text of texts) {
    const q = quickParse(text);
    if (q === undefined) continue;
    quick++;
    const slow = slowRead(text);
    expect(slow, `yaml refuses a text the quick reader accepts:\n${text}`).toBeDefined();
    if (!same(q, slow!.data)) expect({ text, quick: q }).toEqual({ text, quick: slow!.data });
  }
  return { quick, total: texts.length };
}

describe('the quick YAML reader agrees with yaml', () => {
  it('on 20,000 generated documents with every scalar style and YAML corner', () => {
    const r = mulberry32(20261201);
    const { quick } = check(Array.from({ length: 20_000 }, () => document(r)));
    // Enough texts must take the quick path, or the comparison proves nothing (most hold tags,
    // anchors, odd keys or quotes across lines on purpose, and go to yaml).
    expect(quick).toBeGreaterThan(500);
  });

  it('on 6,000 random edits of valid job, rule and policy files', () => {
    const r = mulberry32(7);
    const texts: string[] = [];
    for (let n = 0; n < 6000; n++) {
      let text = VALID[(['job', 'rule', 'policy'] as const)[n % 3]!];
      for (let k = 1 + Math.floor(r() * 3); k > 0; k--) text = mutate(text, r);
      texts.push(text);
    }
    const { quick } = check(texts);
    expect(quick).toBeGreaterThan(1000);
  });

  it('reads every spec of the example home on the quick path', () => {
    for (const dir of ['jobs', 'rules', 'protected']) {
      for (const f of readdirSync(join(ROOT, dir)).filter((f) => f.endsWith('.yaml'))) {
        const text = readFileSync(join(ROOT, dir, f), 'utf8');
        const q = quickParse(text);
        expect(q, `${dir}/${f}`).toBeDefined();
        expect(same(q, slowRead(text)?.data), `${dir}/${f}`).toBe(true);
      }
    }
  });

  it('on the texts an independent review found the two readers to disagree on', () => {
    const found = [
      '~: 1\n',
      'null: 1\n',
      'NULL: x\n',
      '- {:}\n',
      'shell: echo hi\nevery: 1m\nenv:\n  ~: x\n',
      'env: {~: x, null: y}\n',
      '- [a, b]: c\n',
      '- [a]: c\n',
      '- {a: 1}: x\n',
      'a: "b"#c\n',
      "a: 'b'#c\n",
      'a: [b]#c\n',
      'a: {b: c}#d\n',
      '- {}#\n',
      'shell: "echo hi"#c\nevery: 1m\n',
      'a: "\\U00110000"\n',
      'command: ["/bin/echo", "\\UFFFFFFFF"]\n',
      `a: &x 1\n${Array.from({ length: 101 }, (_, i) => `k${i}: *x`).join('\n')}\n`,
      `l: [${Array(102).fill('*x').join(', ')}]\n`,
      `k${'x'.repeat(1100)}: 1\n`,
      `"k${'x'.repeat(1100)}": 1\n`,
      `- k${'x'.repeat(1100)}: 1\n`,
      'a: |1\n   \n',
      'shell: |2\n    echo hi\n   \nevery: 1m\n',
      'b: >1\n  \n',
      'a: |+\n  x\n  ',
      'a: |\n      \n  # c\nb: 1\n',
      'a:\n  - x\n  -\n - y\n',
      'a:\n  - #c\n - b\n',
      'a: &x\n  &y {k: v}\n',
    ];
    check(found);
  });

  it('leaves tags, __proto__ and shared collections to yaml', () => {
    expect(quickParse('a: !!str 1\n')).toBeUndefined();
    expect(quickParse('__proto__: {a: 1}\n')).toBeUndefined();
    expect(quickParse('a: &x [1]\nb: *x\n')).toBeUndefined();
    expect(quickParse('a: [1\n')).toBeUndefined();
    expect(quickParse('a: 1\na: 2\n')).toBeUndefined();
    expect(quickParse('a: 0b101\nb: -0x1\nc: +.5\n')).toEqual({ a: '0b101', b: '-0x1', c: 0.5 });
  });
});
