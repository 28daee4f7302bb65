import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LoadedRule } from '../../../src/config/home.js';
import { globMatch } from '../../../src/glob.js';
import { demoted, effectiveLevel, matchRule, mismatch, ruleLevel } from '../../../src/heal/rules.js';
import { PolicySchema, RuleSchema } from '../../../src/config/schema.js';
import type { LadderRow } from '../../../src/store/store.js';
import { cleanup, cli, job, makeHome } from '../../support/helpers.js';

const rule = (name: string, spec: Record<string, unknown>, hash = `h-${name}`): LoadedRule => ({
  name,
  file: `/home/rules/${name}.yaml`,
  rule: RuleSchema.parse({ action: { command: ['true'] }, ...spec }),
  hash,
});

const facts = { job: 'orders-export', kind: 'hung' as const, exitCode: 75, outputTail: 'error: lock /srv/x.lock held by pid 12\n' };

describe('rule matching', () => {
  it('globs match job names with * ? and {a,b}, and nothing else', () => {
    expect(globMatch('orders-*', 'orders-export')).toBe(true);
    expect(globMatch('orders-*', 'order-export')).toBe(false);
    expect(globMatch('job-?', 'job-1')).toBe(true);
    expect(globMatch('job-?', 'job-12')).toBe(false);
    expect(globMatch('{a,b}-sync', 'b-sync')).toBe(true);
    expect(globMatch('{a,b}-sync', 'c-sync')).toBe(false);
    expect(globMatch('a.b', 'axb')).toBe(false); // a dot is a dot
  });

  it('matches on job, kind, exit code and an output regex, and says why not', () => {
    expect(
      mismatch(rule('r', { match: { job: 'orders-*', kind: ['hung'], exitCode: [75], output: 'lock .* held' } }).rule, facts),
    ).toBeNull();
    expect(mismatch(rule('r', { match: { job: 'orders-*', kind: ['failed'] } }).rule, facts)).toContain('kind hung');
    expect(mismatch(rule('r', { match: { job: 'orders-*', exitCode: [1] } }).rule, facts)).toContain('exit code 75');
    expect(mismatch(rule('r', { match: { job: 'orders-*', output: 'disk full' } }).rule, facts)).toContain('output does not match');
    expect(mismatch(rule('r', { match: { job: 'billing' } }).rule, facts)).toContain('job orders-export');
  });

  it('the first matching rule in name order wins', () => {
    const rules = [
      rule('20-generic', { match: { job: '*' } }),
      rule('10-lock', { match: { job: 'orders-*', output: 'lock' } }),
      rule('05-other', { match: { job: 'x' } }),
    ];
    expect(matchRule(rules, facts)?.name).toBe('10-lock');
    expect(matchRule(rules, { ...facts, outputTail: 'nothing' })?.name).toBe('20-generic');
    expect(matchRule([rule('a', { match: { job: 'x' } })], facts)).toBeNull();
  });
});

describe('autonomy in force', () => {
  const policy = PolicySchema.parse({});
  it('is the lowest of rule, job and policy', () => {
    const r = rule('r', { match: { job: '*' }, autonomy: 'auto' });
    expect(effectiveLevel(r, job('j', { command: ['true'] }), policy, undefined)).toBe('auto');
    expect(effectiveLevel(r, job('j', { command: ['true'], autonomy: 'gated' }), policy, undefined)).toBe('gated');
    expect(effectiveLevel(r, job('j', { command: ['true'] }), PolicySchema.parse({ autonomy: 'shadow' }), undefined)).toBe('shadow');
    expect(effectiveLevel(rule('s', { match: { job: '*' } }), job('j', { command: ['true'] }), policy, undefined)).toBe('shadow'); // rules start in shadow
  });

  it('pilot is auto only for the jobs its glob names, gated for the rest', () => {
    const r = rule('p', { match: { job: '*' }, autonomy: 'pilot', jobs: 'export-*' });
    expect(ruleLevel(r, 'export-orders', undefined)).toBe('auto');
    expect(ruleLevel(r, 'billing', undefined)).toBe('gated');
  });

  it('a demotion holds while the rule file is the one demoted; an edit (new hash) ends it', () => {
    const r = rule('r', { match: { job: '*' }, autonomy: 'auto' }, 'hash-1');
    const ladder: LadderRow = { rule: 'r', level: 'gated', rule_hash: 'hash-1', at: 0, reason: 'rolled back' };
    expect(ruleLevel(r, 'j', ladder)).toBe('gated');
    expect(ruleLevel({ ...r, hash: 'hash-2' }, 'j', ladder)).toBe('auto');
    expect(demoted('auto')).toBe('gated');
    expect(demoted('gated')).toBe('shadow');
    expect(demoted('shadow')).toBe('shadow');
  });
});

describe('rules in nightshift validate', () => {
  it('touches in the protected zone is an error with its line; a job glob that matches no job is a warning', async () => {
    const home = makeHome({ export: 'command: ["true"]\n' });
    try {
      writeFileSync(join(home, 'rules', 'later.yaml'), 'match: { job: "billing-*" }\naction: { rerun: true }\n');
      let r = await cli(['--home', home, 'validate']);
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toContain('later.yaml:1: match.job: "billing-*" matches no job');
      writeFileSync(
        join(home, 'rules', 'bad.yaml'),
        'match: { job: export }\naction:\n  command: ["true"]\n  touches:\n    - /tmp\n    - protected/policy.yaml\n',
      );
      r = await cli(['--home', home, 'validate']);
      expect(r.exitCode).toBe(2);
      expect(r.stdout + r.stderr).toMatch(/bad\.yaml:6: action\.touches\[1\]: .*protected/);
    } finally {
      cleanup(home);
    }
  });
});
