#!/usr/bin/env node
// Records what Debian's own `crontab` says of a generated corpus of cron expressions, into
// tests/fixtures/crontab-verdicts.json; tests/unit/schedule/crontab-oracle.test.ts holds
// nightshift's parser to it. Run it again after changing the corpus (needs the `cron` package:
// `apt-get install cron`; `crontab -n` is a dry run that installs nothing):
//
//   node tests/support/record-crontab-verdicts.mjs
//
// The corpus is seeded, so the same expressions come out each time. Only expressions of at most
// five fields are asked: in a crontab line a sixth word is the command, so "valid" could not be
// told apart from "the rest was taken as a command" (nightshift's six-field form has seconds
// first, which Debian's cron does not have). For the same reason @nicknames stand alone, and
// @reboot is left out (a schedule of nightshift is a time; @reboot is not one).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
// The seeded generator the benches use (plain JavaScript: this script runs without a build).
import { rng } from '../../bench/lib.mjs';

const COUNT = 5000;
const OUT = resolve(import.meta.dirname, '..', 'fixtures', 'crontab-verdicts.json');

const rnd = rng(20261205);
const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));

const FIELDS = [
  { min: 0, max: 59 },
  { min: 0, max: 23 },
  { min: 1, max: 31 },
  { min: 1, max: 12, names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'] },
  { min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
];
// Steps within the field's span, beyond it (Debian takes */100: the first value only), and wrong.
const STEPS = ['1', '2', '3', '5', '7', '10', '13', '15', '24', '30', '31', '32', '59', '60', '61', '99', '100', '1000', '02'];
const BAD_STEPS = ['0', '', 'x', '-1', '1.5', '*'];

function value(f) {
  const r = rnd();
  if (f.names && r < 0.3) {
    const n = pick(f.names);
    return pick([n, n, n.toUpperCase(), n[0].toUpperCase() + n.slice(1)]);
  }
  if (r < 0.37) return `0${int(f.min, Math.min(f.max, 9))}`;
  return String(int(f.min, f.max));
}

function badValue(f) {
  const names = f.names ? [`${f.names[0]}day`, `${f.names[1]}x`, f.names[2].slice(0, 2)] : ['jan', 'mon'];
  return pick([
    String(f.min - 1),
    String(f.max + 1),
    String(f.max + 2),
    '60',
    '99',
    '100',
    '1000',
    'foo',
    '?',
    'L',
    '5L',
    '1W',
    'LW',
    '2#3',
    '',
    '-1',
    '1.5',
    'x1',
    ...names,
  ]);
}

/** An item of a field: usually well-formed (a value, a range either way round, a step), sometimes not. */
function item(f, good) {
  if (!good) {
    const r = rnd();
    if (r < 0.4) return badValue(f);
    if (r < 0.6) return `${value(f)}-${badValue(f)}`;
    if (r < 0.75) return `*/${pick(BAD_STEPS)}`;
    return pick(['*-3', '1-', '-3', '1--3', '1-3-5', '1/2/3', '*/', '/5', '*/*', '**', `${value(f)}-*`, '*/2/2']);
  }
  const r = rnd();
  if (r < 0.35) return value(f);
  if (r < 0.55) return `${value(f)}-${value(f)}`;
  if (r < 0.72) return `*/${pick(STEPS)}`;
  if (r < 0.82) return `${value(f)}-${value(f)}/${pick(STEPS)}`;
  if (r < 0.88) return `${value(f)}/${pick(STEPS)}`;
  return '*';
}

function field(f) {
  const n = rnd() < 0.75 ? 1 : int(2, 3);
  const bad = rnd() < 0.08 ? int(0, n - 1) : -1;
  let s = Array.from({ length: n }, (_, i) => item(f, i !== bad)).join(',');
  const r = rnd();
  if (r < 0.01) s = `${s},`;
  else if (r < 0.02) s = `,${s}`;
  else if (r < 0.025 && n > 1) s = s.replace(',', ',,');
  return s;
}

/** Mostly plausible expressions (each field valid by itself, one field perturbed), some wild. */
function expression() {
  const r = rnd();
  if (r < 0.04)
    return pick([
      '@yearly',
      '@annually',
      '@monthly',
      '@weekly',
      '@daily',
      '@midnight',
      '@hourly',
      '@DAILY',
      '@Hourly',
      '@day',
      '@',
      '@ daily',
    ]);
  const fields = FIELDS.map((f) => field(f));
  if (r < 0.08) fields.pop();
  const sep = () => (rnd() < 0.9 ? ' ' : pick(['  ', '\t', ' \t ']));
  return fields.map((s, i) => (i === 0 ? s : sep() + s)).join('');
}

const seen = new Set();
const corpus = [];
// A few named on purpose: the issue's case, steps beyond the range, days that never come, ranges
// with an end out of range, text after an item (Debian's cron ignores it), Quartz syntax.
for (const e of [
  '1 1 */100,1-7 * MON',
  '0 0 */32 * *',
  '* * * * */8',
  '0 0 30 2 *',
  '0 0 31 4,6 *',
  '5-1 * * * *',
  '0 0 * * 0-7',
  '0 0 * * fri-sun',
  '0 0 * * 7-0',
  '0 12 * jan-dec/2 mon-fri',
  '99-1 * * * *',
  '1-99 * * * *',
  '0 0 0-5 * *',
  '0 0 * 13-1 *',
  '0 0 * * 8-1',
  '60-59 * * * *',
  '*/0 * * * *',
  '1-5/0 * * * *',
  '*5 * * * *',
  '*-3 * * * *',
  '1- * * * *',
  '1-,2 * * * *',
  ',1 * * * *',
  '1,,2 * * * *',
  '1, * * * *',
  '0 0 * * mon/2',
  '0 0 * * */mon',
  '0 0 * * 1-5/mon',
  '0 0 * * sun-7',
  '0 0 * JAN-mar *',
  '01 * * * *',
  '0x1 * * * *',
  '5L * * * *',
  '1-3-5 * * * *',
  '1.5 * * * *',
  '*/5/2 * * * *',
  '0-59/100 * * * *',
  '0 0 * * 2#3',
  '0 0 L * *',
  '0 0 ? * *',
  '0 0 * * 1W',
  // Numbers as atoi reads them (the low 32 bits; a step of 0 refused), words of 1,000 characters,
  // blanks that are not spaces or tabs (found by the review).
  '4294967297 * * * *',
  '4294967296-4294967305 * * * *',
  '* * * * 4294967303',
  '*/4294967296 * * * *',
  '*/2147483648 * * * *',
  '*/99999999999999999999 * * * *',
  '*/4294967297 * * * *',
  `${'0'.repeat(1100)}1 * * * *`,
  `${'0'.repeat(990)}1 * * * *`,
  '\v0 0 * * *',
  '\u00a00 0 * * *',
  '0 0 * * *\v',
  '0\f0 * * * *',
]) {
  seen.add(e);
  corpus.push(e);
}
while (corpus.length < COUNT) {
  const e = expression();
  if (e.trim() === '' || e.trim().split(/\s+/).length > 5 || seen.has(e)) continue;
  seen.add(e);
  corpus.push(e);
}

const dir = mkdtempSync(join(tmpdir(), 'crontab-oracle-'));
const verdicts = [];
try {
  for (const expr of corpus) {
    const file = join(dir, 'crontab');
    writeFileSync(file, `${expr} true\n`);
    const r = spawnSync('crontab', ['-n', file], { encoding: 'utf8' });
    if (r.error) throw new Error(`crontab could not be run (${r.error.message}); install Debian's cron package`);
    verdicts.push({ expr, valid: r.status === 0 });
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const version = spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'cron'], { encoding: 'utf8' }).stdout || 'unknown';
writeFileSync(
  OUT,
  `${JSON.stringify({ oracle: `crontab -n of Debian's cron ${version}`, count: verdicts.length, valid: verdicts.filter((v) => v.valid).length, verdicts }, null, 0).replace(/\},\{/g, '},\n{')}\n`,
);
console.log(`${verdicts.length} expressions, ${verdicts.filter((v) => v.valid).length} valid by crontab -n; written to ${OUT}`);
