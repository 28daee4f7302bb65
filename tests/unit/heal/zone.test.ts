import { chmodSync, mkdirSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { homePaths } from '../../../src/config/paths.js';
import { restoreSnapshot, takeSnapshot } from '../../../src/heal/snapshot.js';
import { PolicySchema, type Policy } from '../../../src/config/schema.js';
import { guardTouches, installRoot, protectedZone, resolveTouch, zoneHit, type Zone } from '../../../src/config/zone.js';
import { diffZone, hashZone, zoneExclude, zoneRoots } from '../../../src/heal/zone.js';
import { cleanup, makeHome, ROOT, tempDir } from '../../support/helpers.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach(cleanup));
const temp = (prefix: string): string => {
  const d = realpathSync(tempDir(prefix));
  dirs.push(d);
  return d;
};

function policy(over: Record<string, unknown> = {}): Policy {
  return PolicySchema.parse(over);
}

/** A home with a job, a rule, a policy and a state folder, plus a fake nightshift install. */
function setup(
  pol: Record<string, unknown> = {},
  opts: { state?: string } = {},
): { home: string; install: string; zone: Zone; outside: string } {
  const home = realpathSync(makeHome({ export: 'command: ["true"]\nevery: 1h\n' }, 'maxAttempts: 2\n'));
  dirs.push(home);
  writeFileSync(join(home, 'rules', 'clear-lock.yaml'), 'match: { job: export, kind: [failed] }\naction: { command: ["true"] }\n');
  const state = opts.state ?? join(home, 'state');
  mkdirSync(join(state, 'logs'), { recursive: true });
  writeFileSync(join(state, 'nightshift.db'), 'db');
  const install = temp('ns-install-');
  for (const d of ['dist', 'src', 'node_modules/pino']) mkdirSync(join(install, d), { recursive: true });
  writeFileSync(join(install, 'package.json'), '{"name":"nightshift"}');
  writeFileSync(join(install, 'package-lock.json'), '{}');
  writeFileSync(join(install, 'dist', 'cli.js'), 'console.log(1)');
  writeFileSync(join(install, 'node_modules', 'pino', 'index.js'), 'x');
  const zone = protectedZone(homePaths(home, state), policy(pol), { installDir: install });
  return { home, install, zone, outside: temp('ns-outside-') };
}

function refused(touches: string[], home: string, zone: Zone): string {
  const g = guardTouches(touches, home, zone);
  if (g.ok) throw new Error(`expected ${JSON.stringify(touches)} to be refused, got ${JSON.stringify(g.paths)}`);
  return g.reason;
}

describe('guardTouches: the protected zone by path', () => {
  it('allows a harmless path outside the zone and returns it resolved', () => {
    const { home, zone, outside } = setup();
    const g = guardTouches([join(outside, 'shop', 'state') + '/', 'data/export.lock'], home, zone);
    expect(g).toEqual({ ok: true, paths: [join(outside, 'shop', 'state'), join(home, 'data', 'export.lock')] });
  });

  it("refuses '..' in the text, even when it would land outside the zone", () => {
    const { home, zone, outside } = setup();
    expect(refused([`${outside}/a/../b`], home, zone)).toMatch(/touches\[0\] ".*\/a\/\.\.\/b" uses '\.\.'/);
    expect(refused(['state/../data'], home, zone)).toMatch(/uses '\.\.'/);
    expect(resolveTouch('..', home)).toEqual({ ok: false, reason: "uses '..': write the path without it" });
  });

  it('refuses a path that is a link to rules/ (checked after realpath), and paths below it', () => {
    const { home, zone, outside } = setup();
    symlinkSync(join(home, 'rules'), join(outside, 'innocent'));
    const reason = refused([join(outside, 'tmp'), join(outside, 'innocent')], home, zone);
    expect(reason).toContain(`touches[1] "${join(outside, 'innocent')}" resolves to ${join(home, 'rules')}`);
    expect(reason).toContain(`rules/ (${join(home, 'rules')})`);
    expect(refused([join(outside, 'innocent', 'new-rule.yaml')], home, zone)).toContain('which is inside the protected zone: rules/');
  });

  it('refuses a dangling link whose target would be created inside the zone', () => {
    const { home, zone, outside } = setup();
    symlinkSync(join(home, 'jobs', 'planted.yaml'), join(outside, 'dangling'));
    expect(refused([join(outside, 'dangling')], home, zone)).toContain(`resolves to ${join(home, 'jobs', 'planted.yaml')}`);
  });

  it('resolves a path that does not exist yet through the link of the folder above it', () => {
    const { home, zone, outside } = setup();
    mkdirSync(join(outside, 'real'));
    symlinkSync(join(outside, 'real'), join(outside, 'linked'));
    expect(resolveTouch(join(outside, 'linked', 'new', 'deep', 'file.txt'), home)).toEqual({
      ok: true,
      path: join(outside, 'real', 'new', 'deep', 'file.txt'),
    });
    expect(guardTouches([join(outside, 'linked', 'new')], home, zone)).toEqual({ ok: true, paths: [join(outside, 'real', 'new')] });
    // the same, with the link pointing into the home's protected folder
    symlinkSync(join(home, 'protected'), join(outside, 'to-protected'));
    expect(refused([join(outside, 'to-protected', 'not-yet', 'x.yaml')], home, zone)).toContain(
      `resolves to ${join(home, 'protected', 'not-yet', 'x.yaml')}`,
    );
  });

  it('refuses the home itself, an ancestor of it and /: restoring them would rewrite the zone', () => {
    const { home, zone } = setup();
    expect(refused([dirname(home)], home, zone)).toMatch(/which contains the protected zone: jobs\//);
    expect(refused(['/'], home, zone)).toContain('which contains the protected zone');
    expect(refused([home], home, zone)).toContain('which contains');
    expect(refused(['.'], home, zone)).toContain('which contains');
  });

  it('refuses the state folder, also when it lives outside the home', () => {
    const stateOut = temp('ns-state-');
    const { home, zone } = setup({}, { state: join(stateOut, 'st') });
    expect(refused([join(stateOut, 'st', 'snapshots')], home, zone)).toContain(`the state folder (${join(stateOut, 'st')})`);
    expect(refused([stateOut], home, zone)).toContain('which contains the protected zone: the state folder');
  });

  it('refuses paths matched by a policy.protect glob, absolute or relative to the home, and the folders holding them', () => {
    const base = temp('ns-etc-');
    mkdirSync(join(base, 'nginx', 'sites'), { recursive: true });
    mkdirSync(join(base, 'app'), { recursive: true });
    const { home, zone } = setup({ protect: [`${base}/nginx/**`, 'secrets/*.env', `${base}/app/*.key`] });
    expect(refused([join(base, 'nginx', 'sites', 'shop.conf')], home, zone)).toContain(`policy.protect "${base}/nginx/**"`);
    expect(refused([join(base, 'nginx')], home, zone)).toContain('policy.protect');
    expect(refused([base], home, zone)).toContain(`which contains the protected zone: policy.protect "${base}/nginx/**"`);
    expect(refused(['secrets/db.env'], home, zone)).toContain('policy.protect "secrets/*.env"');
    expect(refused([join(base, 'app', 'tls.key')], home, zone)).toContain('*.key');
    // what the globs do not cover stays allowed
    expect(guardTouches([join(base, 'app', 'cache'), 'secrets-old/db.env', join(base, 'nginx-logs')], home, zone).ok).toBe(true);
  });

  it('a glob written through a link protects the real folder too', () => {
    const base = temp('ns-etc-');
    mkdirSync(join(base, 'real-nginx'));
    symlinkSync(join(base, 'real-nginx'), join(base, 'nginx'));
    const { home, zone } = setup({ protect: [`${base}/nginx/**`] });
    expect(refused([join(base, 'real-nginx', 'x.conf')], home, zone)).toContain('policy.protect');
  });

  it("refuses the nightshift install's own files but not the rest of its folder (where the example home lives)", () => {
    const { home, install, zone } = setup();
    expect(refused([join(install, 'dist', 'cli.js')], home, zone)).toContain(`the nightshift install: dist/ (${join(install, 'dist')})`);
    expect(refused([join(install, 'node_modules', 'pino')], home, zone)).toContain('node_modules/');
    expect(refused([join(install, 'package.json')], home, zone)).toContain('package.json');
    expect(refused([join(install, 'src')], home, zone)).toContain('src/');
    expect(guardTouches([join(install, 'bench', 'out'), join(install, 'demo-output')], home, zone).ok).toBe(true);
  });

  it('the install root is the package root, from src/ under vitest as from dist/', () => {
    expect(installRoot()).toBe(realpathSync(ROOT));
    const { home } = setup();
    const zone = protectedZone(homePaths(home), policy());
    expect(zoneHit(zone, join(realpathSync(ROOT), 'dist', 'heal', 'zone.js'))).toContain('the nightshift install: dist/');
    expect(zoneHit(zone, join(realpathSync(ROOT), 'README.md'))).toBeNull();
  });

  it('refuses a kill switch moved out of the state folder, and the folder holding it', () => {
    const run = temp('ns-run-');
    const { home, zone } = setup({ killSwitch: join(run, 'KILL') });
    expect(refused([join(run, 'KILL')], home, zone)).toContain(`the kill switch (${join(run, 'KILL')})`);
    expect(refused([run], home, zone)).toContain('which contains the protected zone: the kill switch');
  });

  it('names the entry, what it resolved to and the protected thing; the whole list must pass', () => {
    const { home, zone, outside } = setup();
    const reason = refused([join(outside, 'ok'), 'rules/x.yaml'], home, zone);
    expect(reason).toBe(
      `touches[1] "rules/x.yaml" is ${join(home, 'rules', 'x.yaml')}, which is inside the protected zone: rules/ (${join(home, 'rules')}). No fix may change jobs/, rules/, protected/, the state folder, nightshift itself or policy.protect paths.`,
    );
    expect(guardTouches([], home, zone)).toEqual({ ok: true, paths: [] });
  });
});

describe('hashZone and diffZone: the protected zone by content', () => {
  it('sees a write into rules/ made through a link planted in a touched folder', async () => {
    const { home, zone, outside } = setup();
    const touched = join(outside, 'work');
    mkdirSync(touched);
    expect(guardTouches([touched], home, zone).ok).toBe(true);
    const before = await hashZone(zone);
    // the "fix": plant a link in its own folder and write through it
    symlinkSync(join(home, 'rules'), join(touched, 'escape'));
    writeFileSync(join(touched, 'escape', 'allow-everything.yaml'), 'match: { job: "*" }\n');
    const after = await hashZone(zone);
    expect(diffZone(before, after)).toEqual([join(home, 'rules', 'allow-everything.yaml')]);
  });

  it("does not see the daemon's own writes to state/ (database, logs, snapshots, digests, KILL), but sees others there", async () => {
    const { home, zone } = setup();
    const state = join(home, 'state');
    const before = await hashZone(zone);
    writeFileSync(join(state, 'nightshift.db'), 'db changed');
    writeFileSync(join(state, 'nightshift.db-wal'), 'wal');
    writeFileSync(join(state, 'logs', 'run-1.log'), 'output');
    mkdirSync(join(state, 'snapshots', 'heal-1'), { recursive: true });
    mkdirSync(join(state, 'digests'));
    writeFileSync(join(state, 'KILL'), '');
    expect(diffZone(before, await hashZone(zone))).toEqual([]);
    writeFileSync(join(state, 'planted.json'), '{}');
    expect(diffZone(before, await hashZone(zone))).toEqual([join(state, 'planted.json')]);
  });

  it('sees content, mode, link-target and type changes in jobs/, protected/ and the install, not in node_modules/', async () => {
    const { home, install, zone } = setup();
    symlinkSync('export.yaml', join(home, 'jobs', 'alias.yaml'));
    const before = await hashZone(zone);
    writeFileSync(join(home, 'jobs', 'export.yaml'), 'command: ["rm", "-rf", "/"]\nevery: 1h\n');
    chmodSync(join(home, 'protected', 'policy.yaml'), 0o666);
    symlinkSync('/etc/passwd', join(home, 'jobs', 'alias.yaml.tmp'));
    writeFileSync(join(install, 'dist', 'cli.js'), 'patched');
    writeFileSync(join(install, 'node_modules', 'pino', 'index.js'), 'patched');
    expect(diffZone(before, await hashZone(zone))).toEqual([
      join(home, 'jobs', 'alias.yaml.tmp'),
      join(home, 'jobs', 'export.yaml'),
      join(home, 'protected', 'policy.yaml'),
      join(install, 'dist', 'cli.js'),
    ]);
  });

  it('hashes files a policy.protect glob covers, and only those', async () => {
    const base = temp('ns-srv-');
    mkdirSync(join(base, 'shop'), { recursive: true });
    writeFileSync(join(base, 'shop', 'secrets.env'), 'A=1');
    writeFileSync(join(base, 'shop', 'orders.csv'), 'id\n');
    mkdirSync(join(base, 'conf', 'a', 'b'), { recursive: true });
    writeFileSync(join(base, 'conf', 'a', 'b', 'site.conf'), 'listen 80;');
    writeFileSync(join(base, 'conf', 'a', 'notes.txt'), 'n');
    const { zone } = setup({ protect: [`${base}/*/secrets.env`, `${base}/conf/**/*.conf`] });
    const before = await hashZone(zone);
    expect(Object.keys(before)).toContain(join(base, 'shop', 'secrets.env'));
    expect(Object.keys(before)).toContain(join(base, 'conf', 'a', 'b', 'site.conf'));
    expect(Object.keys(before)).not.toContain(join(base, 'shop', 'orders.csv'));
    expect(Object.keys(before)).not.toContain(join(base, 'conf', 'a', 'notes.txt'));
    writeFileSync(join(base, 'shop', 'orders.csv'), 'id\n1\n'); // the job's own output: not the zone
    writeFileSync(join(base, 'conf', 'a', 'notes.txt'), 'changed');
    expect(diffZone(before, await hashZone(zone))).toEqual([]);
    writeFileSync(join(base, 'conf', 'a', 'new.conf'), 'planted');
    expect(diffZone(before, await hashZone(zone))).toEqual([join(base, 'conf', 'a', 'new.conf')]);
    rmSync(join(base, 'conf', 'a', 'new.conf'));
    writeFileSync(join(base, 'shop', 'secrets.env'), 'A=2');
    expect(diffZone(before, await hashZone(zone))).toEqual([join(base, 'shop', 'secrets.env')]);
  });

  it("a zone snapshot restores the zone after an emergency and leaves the daemon's live files alone", async () => {
    const { home, zone, install } = setup();
    const snap = join(home, 'state', 'snapshots', 'heal-7', 'zone');
    const exclude = zoneExclude(zone);
    const before = await hashZone(zone);
    expect(zoneRoots(zone)).toEqual(
      [
        join(home, 'jobs'),
        join(home, 'protected'),
        join(home, 'rules'),
        join(home, 'state'),
        join(install, 'dist'),
        join(install, 'package-lock.json'),
        join(install, 'package.json'),
      ].sort(),
    );
    await takeSnapshot(zoneRoots(zone), snap, { exclude });
    writeFileSync(join(home, 'rules', 'clear-lock.yaml'), 'tampered');
    writeFileSync(join(home, 'rules', 'new.yaml'), 'planted');
    writeFileSync(join(home, 'state', 'logs', 'run-2.log'), 'written by the daemon meanwhile');
    await restoreSnapshot(snap, { exclude });
    expect(diffZone(before, await hashZone(zone))).toEqual([]);
    expect(readdirSync(join(home, 'state', 'logs'))).toEqual(['run-2.log']);
    expect(readdirSync(join(home, 'state', 'snapshots', 'heal-7', 'zone'))).toContain('manifest.json');
  });
});
