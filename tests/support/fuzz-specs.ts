// Valid job, rule and policy texts and a random editor of them, for the fuzzing tests.

export const VALID = {
  job: [
    'description: Export the orders',
    'schedule: "0 3 * * *"',
    'timezone: Europe/Zurich',
    'command: ["python3", "export.py", "--day", "yesterday"]',
    'env: { EXPORT_DIR: /srv/share }',
    'timeout: 15m',
    'killGrace: 10s',
    'concurrency: forbid',
    'catchUp: true',
    'retries: { count: 1, delay: 30s }',
    'expect:',
    '  files:',
    '    - { path: /srv/share/orders.csv, maxAge: 2h, minBytes: 100 }',
    '  outputMatches: "exported [1-9][0-9]* orders"',
    'heartbeat:',
    '  grace: 10m',
    '',
  ].join('\n'),
  rule: [
    'description: A hung export holds a stale lock',
    'match:',
    '  job: nightly-export',
    '  kind: [hung, failed]',
    '  exitCode: [1, 75]',
    '  output: "lock .* held"',
    'autonomy: gated',
    'action:',
    '  command: ["rm", "-f", "/srv/shop/state/export.lock"]',
    '  touches: ["/srv/shop/state/"]',
    '  timeout: 2m',
    'probe:',
    '  rerun: true',
    '',
  ].join('\n'),
  policy: [
    'timezone: Europe/Zurich',
    'autonomy: auto',
    'maxAttempts: 2',
    'protect: ["/etc/nginx/**"]',
    'brain: { maxRunsPerDay: 12, wallclock: 20m }',
    'digest:',
    '  at: "07:00"',
    '  to: ["kevin@example.com"]',
    'page:',
    '  allow: [protected-zone, heal-blocked]',
    '',
  ].join('\n'),
};

const NOISE = [
  ':',
  '{',
  '}',
  '[',
  ']',
  '"',
  "'",
  '-',
  '#',
  '\t',
  '\n',
  ' ',
  'x',
  '9',
  '*',
  '&',
  '!',
  '%',
  '@',
  '|',
  '>',
  '\\',
  '\u0000',
  'é',
];
const WRONG_VALUES = [
  '[]',
  '{}',
  '-1',
  '0',
  'yes',
  'null',
  '"',
  '1e309',
  '99999999999999999999',
  '"2h2h"',
  '[1, 2]',
  '*anchor',
  '!!binary x',
];

/** One random edit of a valid text: characters, lines, values, truncation, indentation. */
export function mutate(text: string, r: () => number): string {
  const lines = text.split('\n');
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  const i = Math.floor(r() * lines.length);
  switch (Math.floor(r() * 8)) {
    case 0: {
      const p = Math.floor(r() * text.length);
      return text.slice(0, p) + text.slice(p + 1);
    }
    case 1: {
      const p = Math.floor(r() * text.length);
      return text.slice(0, p) + pick(NOISE) + text.slice(p);
    }
    case 2:
      lines.splice(i, 0, lines[i] ?? '');
      return lines.join('\n');
    case 3:
      lines.splice(i, 1);
      return lines.join('\n');
    case 4: {
      const l = lines[i] ?? '';
      const colon = l.indexOf(':');
      if (colon >= 0) lines[i] = `${l.slice(0, colon + 1)} ${pick(WRONG_VALUES)}`;
      return lines.join('\n');
    }
    case 5:
      return text.slice(0, Math.floor(r() * text.length));
    case 6:
      lines[i] = ` ${lines[i] ?? ''}`;
      return lines.join('\n');
    default: {
      const l = lines[i] ?? '';
      lines[i] = l.replace(/[a-zA-Z]+/, (w) => `${w}${pick(['x', 'Typo', '_'])}`);
      return lines.join('\n');
    }
  }
}
