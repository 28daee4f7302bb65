// `npm run docs`: writes docs/reference.md (every field, from the zod schemas) and docs/cli.md
// (every command, from the same text as --help). A test fails when the files and their sources
// disagree, so the reference in the repository is always the one the program enforces.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { referenceMarkdown } from '../config/reference.js';
import { COMMANDS, mainHelp } from './main.js';

export function cliMarkdown(): string {
  const out = [
    '# Reference: the commands',
    '',
    "<!-- Written by `npm run docs` from the commands' --help (src/cli/); do not edit by hand (a test compares them). -->",
    '',
    'What `nightshift --help` and `nightshift COMMAND --help` print. The fields of jobs, rules and the',
    'policy are in [reference.md](reference.md).',
    '',
    '```text',
    mainHelp('docs'),
    '```',
  ];
  for (const [name, c] of Object.entries(COMMANDS)) {
    out.push('', `## ${name}`, '', c.summary, '', '```text', `usage: ${c.usage}`, '', c.help, '```');
  }
  return `${out.join('\n')}\n`;
}

export function writeDocs(dir: string): string[] {
  const files: [string, string][] = [
    ['reference.md', referenceMarkdown()],
    ['cli.md', cliMarkdown()],
  ];
  for (const [name, text] of files) writeFileSync(join(dir, name), text);
  return files.map(([name]) => join(dir, name));
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const written = writeDocs(fileURLToPath(new URL('../../docs', import.meta.url)));
  process.stdout.write(`wrote ${written.join(', ')}\n`);
}
