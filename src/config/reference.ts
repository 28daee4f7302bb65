// docs/reference.md, written from the zod schemas (schema.ts) and nothing else: every field of a
// job, a rule and the policy with its type, default, an example and what it does. The schemas are
// walked, not described a second time, so the reference cannot drift from what `validate` accepts;
// `npm run docs` writes the file and a test fails when the file and the schemas disagree.
import type { z } from 'zod';
import { formatDuration } from './duration.js';
import { JobSpecSchema, PolicySchema, RuleSchema, type FieldDoc } from './schema.js';

/** One documented field, with its place in the YAML (`retries.count`, `expect.files[].path`). */
export type Field = {
  path: string;
  type: string;
  required: boolean;
  /** The group a required field is required in (`retries`), or undefined at the top. */
  within: string | undefined;
  /** The default as the operator would write it, or undefined when there is none. */
  default: string | undefined;
  doc: string;
  example: string | undefined;
};

export type Section = { title: string; file: string; intro: string; schema: z.ZodType; fields: Field[] };

type Def = {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  element?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  entries?: Record<string, string>;
  options?: z.ZodType[];
  valueType?: z.ZodType;
  defaultValue?: unknown;
  format?: string;
};
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;
const metaOf = (s: z.ZodType): (Partial<FieldDoc> & { kind?: string }) | undefined =>
  s.meta() as (Partial<FieldDoc> & { kind?: string }) | undefined;

/** Peels optional/default/prefault/transform wrappers: what is left says the type. */
function unwrap(s: z.ZodType): { base: z.ZodType; optional: boolean; dflt: { value: unknown } | undefined; kind: string | undefined } {
  let optional = false;
  let dflt: { value: unknown } | undefined;
  let kind: string | undefined;
  let cur = s;
  for (;;) {
    kind ??= metaOf(cur)?.kind;
    const d = defOf(cur);
    if (d.type === 'optional') optional = true;
    else if (d.type === 'default' || d.type === 'prefault') {
      optional = true;
      dflt ??= { value: d.defaultValue };
    } else if (d.type !== 'pipe') break;
    cur = (d.type === 'pipe' ? d.in : d.innerType)!;
  }
  return { base: cur, optional, dflt, kind };
}

function typeText(s: z.ZodType): string {
  const { base, kind } = unwrap(s);
  if (kind) return kind;
  const d = defOf(base);
  switch (d.type) {
    case 'string':
      return d.format === 'email' ? 'e-mail address' : 'text';
    case 'boolean':
      return 'true or false';
    case 'number': {
      const n = base as unknown as { minValue: number | null; maxValue: number | null };
      // An int's own bounds (±2^53) are no limit an operator needs to read.
      const bound = (v: number | null): number | undefined => (v !== null && Math.abs(v) < Number.MAX_SAFE_INTEGER ? v : undefined);
      const [lo, hi] = [bound(n.minValue), bound(n.maxValue)];
      const range = lo !== undefined && hi !== undefined ? `, ${lo} to ${hi}` : lo !== undefined ? `, at least ${lo}` : '';
      return `${d.format === 'safeint' ? 'whole number' : 'number'}${range}`;
    }
    case 'enum':
      return `one of ${Object.values(d.entries!)
        .map((v) => `\`${v}\``)
        .join(', ')}`;
    case 'array':
      return `list of ${defOf(unwrap(d.element!).base).type === 'object' ? 'mappings' : typeText(d.element!)}`;
    case 'record':
      return `mapping of names to ${typeText(d.valueType!)}`;
    case 'union':
      return d.options!.map(typeText).join(' or ');
    case 'object':
      return 'mapping';
    default:
      return d.type;
  }
}

function defaultText(value: unknown, kind: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number' && kind?.startsWith('duration')) return formatDuration(value);
  if (Array.isArray(value)) return value.length === 0 ? 'none' : JSON.stringify(value);
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined; // a group ({}) whose fields have their own defaults
}

/** Every field of an object schema, depth first, with the path the YAML spells it by. */
export function fieldsOf(schema: z.ZodType, prefix = ''): Field[] {
  const shape = defOf(unwrap(schema).base).shape;
  if (!shape) throw new Error(`${prefix || 'the schema'} is not a mapping`);
  const out: Field[] = [];
  for (const [key, field] of Object.entries(shape)) {
    const path = prefix + key;
    const meta = metaOf(field);
    if (!meta?.doc) throw new Error(`${path} has no doc in src/config/schema.ts: every field is documented there`);
    const { base, optional, dflt, kind } = unwrap(field);
    out.push({
      path,
      type: typeText(field),
      required: !optional,
      within: prefix ? prefix.replace(/(\[\])?\.$/, '') : undefined,
      default: dflt ? defaultText(dflt.value, kind) : undefined,
      doc: meta.doc,
      example: meta.example,
    });
    const d = defOf(base);
    if (d.type === 'object') out.push(...fieldsOf(base, `${path}.`));
    else if (d.type === 'array' && defOf(unwrap(d.element!).base).type === 'object') out.push(...fieldsOf(d.element!, `${path}[].`));
  }
  return out;
}

export function sections(): Section[] {
  const section = (title: string, file: string, intro: string, schema: z.ZodType): Section => ({
    title,
    file,
    intro,
    schema,
    fields: fieldsOf(schema),
  });
  return [
    section(
      'Job spec',
      'jobs/NAME.yaml',
      "One job per file; the file's name without `.yaml` is the job's name (lower-case letters, digits, `-` and `_`, at most 63). A job with `command` or `shell` is run by nightshift; one with neither is external: something else runs it and proves life by pinging. An edit takes effect within a second; an invalid one is refused with its file, line and field, and the last good version of the job keeps running.",
      JobSpecSchema,
    ),
    section(
      'Rule',
      'rules/NAME.yaml',
      'One heal rule per file: which alerts it answers, the fix, and the independent probe that says whether the fix worked. Rules are tried in file-name order.',
      RuleSchema,
    ),
    section(
      'Policy',
      'protected/policy.yaml',
      'The guardrails for the whole home. Every field is optional. While the file is invalid (or was deleted), the last good policy keeps scheduling and the digest, and every autonomous action is stopped until the file is valid again.',
      PolicySchema,
    ),
  ];
}

export function referenceMarkdown(): string {
  const out: string[] = [
    '# Reference: the fields of jobs, rules and the policy',
    '',
    '<!-- Written by `npm run docs` from src/config/schema.ts; do not edit by hand (a test compares them). -->',
    '',
    'The types:',
    '',
    '- *duration*: a number with a unit, `500ms`, `30s`, `15m`, `2h`, `1d`, or several (`1h30m`).',
    '- *command*: a list, the program and its arguments, e.g. `["python3", "export.py"]`. It is never passed',
    '  through a shell; the program is looked up on `PATH` as a shell would.',
    '- *cron line*: what Debian\'s cron reads, in quotes: `"0 3 * * *"` (an unquoted `*` means something else to YAML).',
    '- *time zone*: an IANA name such as `Europe/Zurich` or `UTC`.',
    '- *regular expression*: JavaScript syntax, in quotes.',
    '- *job name*: lower-case letters, digits, `-` and `_`, at most 63, e.g. `db-backup`.',
    '- a *path* is text; a relative one is relative to the home folder unless its field says otherwise.',
    'The commands are in [cli.md](cli.md).',
    '',
  ];
  for (const s of sections()) out.push(`- [${s.title} (\`${s.file}\`)](#${anchor(s)})`);
  for (const s of sections()) {
    out.push('', `## ${s.title} (\`${s.file}\`)`, '', s.intro, '', '| field | type | default |', '| --- | --- | --- |');
    for (const f of s.fields)
      out.push(
        `| [\`${f.path}\`](#${fieldAnchor(s, f)}) | ${f.type} | ${f.required ? `**required**${f.within ? ` in \`${f.within}\`` : ''}` : (f.default ?? '—')} |`,
      );
    for (const f of s.fields) {
      const need = f.required ? `required${f.within ? ` in \`${f.within}\`` : ''}` : f.default ? `default \`${f.default}\`` : 'optional';
      out.push('', `### ${s.title}: \`${f.path}\``, '', `${f.type}; ${need}.`, '', f.doc);
      if (f.example) out.push('', '```yaml', f.example, '```');
    }
  }
  return `${out.join('\n')}\n`;
}

// GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.
const slug = (text: string): string =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9 _-]/g, '')
    .replace(/ /g, '-');
const anchor = (s: Section): string => slug(`${s.title} (${s.file})`);
const fieldAnchor = (s: Section, f: Field): string => slug(`${s.title}: ${f.path}`);
