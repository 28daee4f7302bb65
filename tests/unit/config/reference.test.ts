// The reference in the repository is the one the program enforces: docs/reference.md is what the
// zod schemas say (every field documented, every example valid), docs/cli.md what --help prints,
// and no document sends a reader outside the repository.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { execa } from 'execa';
import { parse } from 'yaml';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { fieldsOf, referenceMarkdown, sections } from '../../../src/config/reference.js';
import { cliMarkdown } from '../../../src/cli/docs.js';
import { COMMANDS, mainHelp } from '../../../src/cli/main.js';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

describe('docs/reference.md and docs/cli.md', () => {
  it('docs/reference.md is what the schemas say (after a schema change, run `npm run docs`)', () => {
    expect(read('docs/reference.md')).toBe(referenceMarkdown());
  });

  it('docs/cli.md is what --help says (after a change of a command, run `npm run docs`)', () => {
    const text = read('docs/cli.md');
    expect(text).toBe(cliMarkdown());
    for (const [name, c] of Object.entries(COMMANDS))
      expect(text).toContain(`## ${name}\n\n${c.summary}\n\n\`\`\`text\nusage: ${c.usage}\n\n${c.help}\n`);
  });

  it('names every field a spec, rule or policy may hold, the nested ones with their path', () => {
    const paths = sections().map((s) => s.fields.map((f) => f.path));
    const [job, rule, policy] = paths as [string[], string[], string[]];
    // The fields the first hour found missing from the docs are there, under the path YAML uses.
    expect(policy).toEqual(
      expect.arrayContaining([
        'digest.from',
        'digest.smtp',
        'digest.smtp.secure',
        'digest.smtp.user',
        'digest.smtp.pass',
        'digest.sendmail',
        'page.command',
        'deadman',
      ]),
    );
    expect(job).toEqual(expect.arrayContaining(['retries.count', 'expect.files[].maxAge', 'heartbeat.file', 'seeAllProcesses']));
    expect(rule).toEqual(expect.arrayContaining(['match.output', 'action.touches', 'probe.command']));
    // Every key of every object schema has its entry: walk the schemas' shapes independently.
    const keys = (schema: z.ZodType, prefix = ''): string[] => {
      let s = schema as unknown as { _zod: { def: Record<string, unknown> } };
      for (;;) {
        const d = s._zod.def;
        if (d.type === 'optional' || d.type === 'default' || d.type === 'prefault') s = d.innerType as typeof s;
        else if (d.type === 'pipe') s = d.in as typeof s;
        else if (d.type === 'array' && (d.element as typeof s)._zod.def.type === 'object') {
          s = d.element as typeof s;
          prefix = prefix.replace(/\.$/, '[].');
        } else break;
      }
      const shape = s._zod.def.shape as Record<string, z.ZodType> | undefined;
      if (!shape) return [];
      return Object.entries(shape).flatMap(([k, v]) => [prefix + k, ...keys(v, `${prefix}${k}.`)]);
    };
    expect(paths).toEqual(sections().map((s) => keys(s.schema)));
    const md = read('docs/reference.md');
    for (const s of sections()) for (const f of s.fields) expect(md).toContain(`### ${s.title}: \`${f.path}\``);
  });

  it('states the defaults the program applies, in the units an operator writes', () => {
    const field = (title: string, path: string) =>
      sections()
        .find((s) => s.title === title)!
        .fields.find((f) => f.path === path)!;
    expect(field('Job spec', 'timeout')).toMatchObject({ default: '1h', type: 'duration', required: false });
    expect(field('Job spec', 'killGrace').default).toBe('10s');
    expect(field('Job spec', 'concurrency')).toMatchObject({ default: 'forbid', type: 'one of `forbid`, `allow`, `replace`' });
    expect(field('Job spec', 'retries.count')).toMatchObject({ required: true, within: 'retries', type: 'whole number, 0 to 10' });
    expect(field('Job spec', 'expect.files[].path')).toMatchObject({ required: true, within: 'expect.files' });
    expect(field('Policy', 'brain.wallclock').default).toBe('20m');
    expect(field('Policy', 'retention.runs').default).toBe('90d');
    expect(field('Policy', 'digest.smtp.port').default).toBe('25');
    expect(field('Policy', 'digest.at').default).toBe('07:00');
    expect(field('Rule', 'autonomy').default).toBe('shadow');
    // ...and each of them is what parsing an empty document really gives.
    const policy = sections()[2]!.schema.parse({}) as { brain: { wallclock: number }; retention: { runs: number }; digest: { at: string } };
    expect(policy.brain.wallclock).toBe(20 * 60_000);
    expect(policy.retention.runs).toBe(90 * 86_400_000);
    expect(policy.digest.at).toBe('07:00');
  });

  it('every example is valid: the schema accepts it in a document of its own, and it shows its field', () => {
    // The smallest document around an example: a job needs nothing (an external job), a rule a
    // match and an action. The example's top-level keys replace the base's.
    const bases: Record<string, Record<string, unknown>> = {
      'Job spec': { command: ['true'] },
      Rule: { match: { job: '*' }, action: { rerun: true } },
      Policy: {},
    };
    let checked = 0;
    for (const s of sections()) {
      for (const f of s.fields) {
        expect(f.example, `${s.title} ${f.path} has an example`).toBeTruthy();
        const value = parse(f.example!) as Record<string, unknown>;
        const doc = { ...bases[s.title], ...value };
        if ('shell' in value) delete doc.command;
        const result = s.schema.safeParse(doc);
        expect(result.success, `${s.title} ${f.path}: ${f.example}\n${result.error?.message}`).toBe(true);
        // The example sets the field it documents.
        let at: unknown = value;
        for (const key of f.path.split('.'))
          at = Array.isArray(at)
            ? (at[0] as Record<string, unknown>)[key.replace('[]', '')]
            : (at as Record<string, unknown>)?.[key.replace('[]', '')];
        expect(at, `${s.title} ${f.path}: the example sets the field`).not.toBeUndefined();
        checked++;
      }
    }
    expect(checked).toBe(sections().reduce((n, s) => n + s.fields.length, 0));
  });

  it('refuses to write a reference with a field that has no words', () => {
    const undocumented = z.strictObject({
      documented: z.string().meta({ doc: 'says what it does', example: 'documented: x' }),
      bare: z.string(),
    });
    expect(() => fieldsOf(undocumented)).toThrow('bare has no doc in src/config/schema.ts');
  });

  it('--help points at the reference pages, and they exist where it says', async () => {
    // As the installed program prints it (dist/), and as the source does.
    const installed = await execa(process.execPath, [join(ROOT, 'dist', 'cli.js'), '--help']);
    for (const help of [installed.stdout, mainHelp()]) {
      const [ref, cli] = [/every field of jobs, rules and the policy: (\S+)/.exec(help)?.[1], /every command: (\S+)/.exec(help)?.[1]];
      expect(ref).toBe(join(ROOT, 'docs', 'reference.md'));
      expect(cli).toBe(join(ROOT, 'docs', 'cli.md'));
      expect(existsSync(ref!) && existsSync(cli!)).toBe(true);
    }
  });
});

describe('the repository is complete for someone who clones it', () => {
  const SKIP = new Set(['node_modules', 'dist', 'state', '.git', 'work']);
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => {
      if (SKIP.has(n)) return [];
      const p = join(dir, n);
      return statSync(p).isDirectory() ? files(p) : [p];
    });
  const texts = files(ROOT).filter((p) => /\.(md|ts|mjs|cjs|js|json|yaml|yml|sh|service|rules)$/.test(p) || /\/\.ci\/run$/.test(p));

  it('every relative link in a Markdown file names a file in the repository (and its heading, if it names one)', () => {
    const broken: string[] = [];
    let links = 0;
    for (const md of texts.filter((p) => p.endsWith('.md'))) {
      const text = readFileSync(md, 'utf8');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        links++;
        const [path, hash] = target.split('#') as [string, string | undefined];
        const file = path === '' ? md : resolve(dirname(md), path);
        if (relative(ROOT, file).startsWith('..') || !existsSync(file)) {
          broken.push(`${relative(ROOT, md)}: ${target}`);
          continue;
        }
        if (hash && file.endsWith('.md')) {
          const slugs = [...readFileSync(file, 'utf8').matchAll(/^#+ (.*)$/gm)].map((h) =>
            h[1]!
              .toLowerCase()
              .replace(/[^a-z0-9 _-]/g, '')
              .replace(/ /g, '-'),
          );
          if (!slugs.includes(hash)) broken.push(`${relative(ROOT, md)}: ${target} (no such heading)`);
        }
      }
    }
    expect(broken).toEqual([]);
    expect(links).toBeGreaterThan(20);
  });

  it('no file points at the design notes outside the repository', () => {
    const outside = texts.filter((p) => /DESIGN\.md|\.\.\/shared\//.test(readFileSync(p, 'utf8'))).map((p) => relative(ROOT, p));
    expect(outside).toEqual([]);
  });

  it('the README sends readers to the reference and the concepts', () => {
    const readme = read('README.md');
    expect(readme).toContain('](docs/reference.md)');
    expect(readme).toContain('](docs/concepts.md');
  });
});
