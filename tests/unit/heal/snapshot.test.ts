import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  lchownSync,
  linkSync,
  lstatSync,
  openSync,
  statSync,
  writeSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  diffTree,
  dropSnapshot,
  fileChanges,
  manifestDigest,
  manifestState,
  readManifest,
  restoreSnapshot,
  snapshotChanges,
  SnapshotError,
  takeSnapshot,
  treeState,
  type TreeState,
} from '../../../src/heal/snapshot.js';
import { HEAL_FILES_CHARS, HEAL_FILES_NAMED } from '../../../src/model.js';
import { cleanup, ROOT, tempDir } from '../../support/helpers.js';

const base = realpathSync(tempDir('ns-snap-'));
afterAll(() => cleanup(base));

let n = 0;
function fresh(): { root: string; snaps: string; outside: string } {
  const d = join(base, `case-${++n}`);
  mkdirSync(join(d, 'snaps'), { recursive: true });
  mkdirSync(join(d, 'outside'));
  writeFileSync(join(d, 'outside', 'keep.txt'), 'outside, must never change\n');
  return { root: join(d, 'root'), snaps: join(d, 'snaps'), outside: join(d, 'outside') };
}

/** Files in nested folders, modes 0600/0755/0444, an empty folder, a read-only folder, links. */
function buildTree(root: string): void {
  mkdirSync(join(root, 'nested', 'deep'), { recursive: true });
  mkdirSync(join(root, 'bin'));
  mkdirSync(join(root, 'empty'), { mode: 0o750 });
  chmodSync(join(root, 'empty'), 0o750);
  writeFileSync(join(root, 'a.txt'), 'hello\n');
  writeFileSync(join(root, 'secret.env'), 'TOKEN=abc\n', { mode: 0o600 });
  chmodSync(join(root, 'secret.env'), 0o600);
  writeFileSync(join(root, 'bin', 'run.sh'), '#!/bin/sh\necho run\n');
  chmodSync(join(root, 'bin', 'run.sh'), 0o755);
  writeFileSync(join(root, 'nested', 'deep', 'x.yaml'), 'a: 1\n');
  writeFileSync(join(root, 'nested', 'deep', 'blob.bin'), randomBytes(300_000)); // large: kept in blobs/
  writeFileSync(join(root, 'nested', 'deep', 'blob2.bin'), randomBytes(200_000)); // small: kept in the pack
  writeFileSync(join(root, 'nested', 'same-as-a.txt'), 'hello\n'); // same content as a.txt
  writeFileSync(join(root, 'empty-file'), '');
  symlinkSync('a.txt', join(root, 'link'));
  symlinkSync('/nonexistent/target', join(root, 'dangling'));
  mkdirSync(join(root, 'ro'));
  writeFileSync(join(root, 'ro', 'f'), 'read only\n');
  chmodSync(join(root, 'ro', 'f'), 0o444);
  chmodSync(join(root, 'ro'), 0o555);
}

/** Everything a fix can do to a tree. */
function mutate(root: string, outside: string): void {
  writeFileSync(join(root, 'a.txt'), 'changed\n'); // content
  chmodSync(join(root, 'secret.env'), 0o644); // mode
  unlinkSync(join(root, 'nested', 'deep', 'x.yaml')); // a deleted file
  writeFileSync(join(root, 'nested', 'deep', 'blob.bin'), randomBytes(300_000)); // same size, other bytes (large file)
  writeFileSync(join(root, 'nested', 'deep', 'blob2.bin'), randomBytes(200_000)); // same size, other bytes (small file)
  rmSync(join(root, 'empty'), { recursive: true }); // a deleted folder
  writeFileSync(join(root, 'new.txt'), 'created\n'); // a created file
  mkdirSync(join(root, 'newdir', 'sub'), { recursive: true }); // created folders
  writeFileSync(join(root, 'newdir', 'sub', 'f'), 'x');
  unlinkSync(join(root, 'bin', 'run.sh')); // a file replaced by a folder
  mkdirSync(join(root, 'bin', 'run.sh'));
  writeFileSync(join(root, 'bin', 'run.sh', 'inside'), 'x');
  chmodSync(join(root, 'ro'), 0o755);
  rmSync(join(root, 'ro'), { recursive: true }); // a folder replaced by a file
  writeFileSync(join(root, 'ro'), 'now a file');
  unlinkSync(join(root, 'link')); // a link pointed elsewhere
  symlinkSync('/etc/passwd', join(root, 'link'));
  symlinkSync(outside, join(root, 'planted')); // a planted link to elsewhere
  chmodSync(join(root, 'nested'), 0o700); // a folder's mode
}

describe('snapshot and restore', () => {
  it('restores a tree mutated every way to exactly its former state (content, modes, types, links)', async () => {
    const { root, snaps, outside } = fresh();
    buildTree(root);
    const before = await treeState([root]);
    const outsideBefore = await treeState([outside]);
    const manifest = await takeSnapshot([root], join(snaps, 's1'));
    expect(manifestState(manifest)).toEqual(before);
    expect(manifest.files).toBe(9);

    mutate(root, outside);
    const mutated = await treeState([root]);
    const changedPaths = diffTree(before, mutated).map((c) => c.path);
    // every path mutate() touched, and nothing else
    expect([...changedPaths].sort()).toEqual(
      [
        'a.txt',
        'bin/run.sh',
        'bin/run.sh/inside',
        'empty',
        'link',
        'nested',
        'nested/deep/blob.bin',
        'nested/deep/blob2.bin',
        'nested/deep/x.yaml',
        'new.txt',
        'newdir',
        'newdir/sub',
        'newdir/sub/f',
        'planted',
        'ro',
        'ro/f',
        'secret.env',
      ]
        .map((p) => join(root, p))
        .sort(),
    );

    const r = await restoreSnapshot(join(snaps, 's1'));
    expect(await treeState([root])).toEqual(before);
    expect(diffTree(before, await treeState([root]))).toEqual([]);
    expect(await treeState([outside])).toEqual(outsideBefore);
    expect(readFileSync(join(root, 'nested', 'deep', 'x.yaml'), 'utf8')).toBe('a: 1\n');
    // Each count is known from mutate(): a wrong count means something restored twice, not at all,
    // or put back when it had not changed.
    // changed: a.txt, secret.env (mode), blob.bin, blob2.bin, bin/run.sh (a folder before), ro (a file
    // before), link (another target), nested (mode)
    expect(r.changed).toBe(8);
    // recreated: x.yaml, empty/, ro/f
    expect(r.recreated).toBe(3);
    // removed: new.txt, newdir/sub/f, newdir/sub, newdir, planted, bin/run.sh/inside, the folder bin/run.sh
    expect(r.removed).toBe(7);
    expect(r.notRestored).toEqual([]);
  });

  it('special files: a named pipe made since is removed, one removed is made again (its mode too), one changed back; a socket made since is removed, one removed is reported', async () => {
    const { root, snaps } = fresh();
    mkdirSync(join(root, 'q'), { recursive: true });
    const mkfifo = (p: string, mode: string): Promise<unknown> => execa('mkfifo', ['-m', mode, p]);
    await mkfifo(join(root, 'q', 'kept'), '600');
    await mkfifo(join(root, 'q', 'deleted'), '640');
    const listen = (p: string): Promise<Server> =>
      new Promise((res) => {
        const srv = createServer();
        srv.listen(p, () => res(srv));
      });
    // Listening until the end: node removes a socket's file when its server closes.
    const old = await listen(join(root, 'q', 'old.sock'));
    await mkfifo(join(root, 'q', 'was-pipe'), '600');
    const before = await treeState([root]);
    expect(before[join(root, 'q', 'kept')]).toMatchObject({ type: 'special', special: 'fifo', mode: 0o600 });
    await takeSnapshot([root], join(snaps, 's'));

    // The fix: makes a pipe and a socket, removes a pipe and the socket, changes a mode, turns a pipe into a file.
    await mkfifo(join(root, 'q', 'new-pipe'), '666');
    const fresh1 = await listen(join(root, 'q', 'new.sock'));
    unlinkSync(join(root, 'q', 'deleted'));
    unlinkSync(join(root, 'q', 'old.sock'));
    chmodSync(join(root, 'q', 'kept'), 0o666);
    unlinkSync(join(root, 'q', 'was-pipe'));
    writeFileSync(join(root, 'q', 'was-pipe'), 'a file now');
    // As root, a device node too (a fix never can: it has no CAP_MKNOD; a job as root could).
    const asRoot = process.getuid?.() === 0;
    if (asRoot) await execa('mknod', [join(root, 'q', 'new-dev'), 'c', '1', '3']);
    const changed = diffTree(before, await treeState([root])).map((c) => c.path.slice(root.length + 3));
    expect(changed.sort()).toEqual(['deleted', 'kept', ...(asRoot ? ['new-dev'] : []), 'new-pipe', 'new.sock', 'old.sock', 'was-pipe']);

    const r = await restoreSnapshot(join(snaps, 's'));
    const after = await treeState([root]);
    expect(existsSync(join(root, 'q', 'new-pipe'))).toBe(false);
    expect(existsSync(join(root, 'q', 'new-dev'))).toBe(false);
    expect(existsSync(join(root, 'q', 'new.sock'))).toBe(false);
    expect(after[join(root, 'q', 'deleted')]).toMatchObject({ type: 'special', special: 'fifo', mode: 0o640 });
    expect(after[join(root, 'q', 'kept')]).toMatchObject({ type: 'special', special: 'fifo', mode: 0o600 });
    expect(after[join(root, 'q', 'was-pipe')]).toMatchObject({ type: 'special', special: 'fifo' });
    // The socket alone cannot be made again: said so, and the rest is exactly as before.
    expect(r.notRestored).toEqual([expect.stringMatching(/old\.sock \(a socket/)]);
    const { [join(root, 'q', 'old.sock')]: _gone, ...rest } = before;
    expect(after).toEqual(rest);
    old.close();
    fresh1.close();
  });

  it('owners come back (as root): a file given away, a file replaced, a folder and a link of another user', async () => {
    const { root, snaps } = fresh();
    mkdirSync(join(root, 'd'), { recursive: true });
    writeFileSync(join(root, 'd', 'given'), 'g\n');
    writeFileSync(join(root, 'd', 'replaced'), 'r\n');
    symlinkSync('given', join(root, 'd', 'ln'));
    const asRoot = process.getuid?.() === 0;
    // As root the tree belongs to another user; otherwise everything is the runner's (the only owner it can give).
    const [uid, gid] = asRoot ? [1234, 5678] : [process.getuid!(), process.getgid!()];
    for (const p of ['d', 'd/given', 'd/replaced']) chownSync(join(root, p), uid, gid);
    lchownSync(join(root, 'd', 'ln'), uid, gid);
    const before = await treeState([root]);
    await takeSnapshot([root], join(snaps, 's'));
    if (asRoot) {
      chownSync(join(root, 'd', 'given'), 0, 0);
      chownSync(join(root, 'd'), 0, 0);
      lchownSync(join(root, 'd', 'ln'), 0, 0);
    }
    unlinkSync(join(root, 'd', 'replaced'));
    writeFileSync(join(root, 'd', 'replaced'), 'new\n'); // a new file, the fixer's own
    await restoreSnapshot(join(snaps, 's'));
    expect(await treeState([root])).toEqual(before);
    for (const p of ['d', 'd/given', 'd/replaced']) expect(statSync(join(root, p)).uid, p).toBe(uid);
    expect(lstatSync(join(root, 'd', 'ln')).gid).toBe(gid);
  });

  it('hard links come back as one file: a link the fix broke (a file replaced by a copy) is one file again', async () => {
    const { root, snaps } = fresh();
    mkdirSync(join(root, 'a'), { recursive: true });
    mkdirSync(join(root, 'b'));
    writeFileSync(join(root, 'a', 'data'), 'shared\n');
    linkSync(join(root, 'a', 'data'), join(root, 'b', 'data'));
    const manifest = await takeSnapshot([root], join(snaps, 's'));
    expect(manifest.entries.find((e) => e.path === join(root, 'b', 'data'))?.linkOf).toBe(join(root, 'a', 'data'));
    // The fix: rewrites one name (a new file: the link is broken) and changes the other's content.
    unlinkSync(join(root, 'b', 'data'));
    writeFileSync(join(root, 'b', 'data'), 'its own\n');
    writeFileSync(join(root, 'a', 'data'), 'changed\n');
    await restoreSnapshot(join(snaps, 's'));
    const a = statSync(join(root, 'a', 'data'));
    const b = statSync(join(root, 'b', 'data'));
    expect([b.dev, b.ino]).toEqual([a.dev, a.ino]);
    expect(a.nlink).toBe(2);
    expect(readFileSync(join(root, 'b', 'data'), 'utf8')).toBe('shared\n');
  });

  it("a restore by an ordinary user leaves alone a folder it does not own and that did not change (the install's dist/ in the zone)", async () => {
    const { root, snaps } = fresh();
    mkdirSync(join(root, 'theirs'), { recursive: true });
    mkdirSync(join(root, 'mine'));
    writeFileSync(join(root, 'theirs', 'cli.js'), 'code\n');
    writeFileSync(join(root, 'mine', 'f'), 'before\n');
    const asRoot = process.getuid?.() === 0;
    // As root: the tree is nobody's but `theirs`, which stays root's; the restore runs as nobody.
    if (asRoot) {
      for (const p of ['', 'mine', 'mine/f']) chownSync(join(root, p), 65534, 65534);
      for (const p of [base, join(base, `case-${n}`), snaps]) chmodSync(p, 0o777);
    }
    await takeSnapshot([root], join(snaps, 's'));
    if (asRoot) execFileSync('chown', ['-R', '65534:65534', join(snaps, 's')]);
    writeFileSync(join(root, 'mine', 'f'), 'changed by the fix\n');
    const restore = `import(${JSON.stringify(join(ROOT, 'dist', 'heal', 'snapshot.js'))}).then((m) => m.restoreSnapshot(${JSON.stringify(join(snaps, 's'))})).then((r) => console.log(JSON.stringify(r)))`;
    const argv = asRoot
      ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', 'node', '-e', restore]
      : ['node', '-e', restore];
    const r = await execa(argv[0]!, argv.slice(1), { reject: false });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).changed).toBe(1);
    expect(readFileSync(join(root, 'mine', 'f'), 'utf8')).toBe('before\n');
  });

  it('a root that did not exist at snapshot time is removed on restore, file or folder', async () => {
    const { root, snaps } = fresh();
    mkdirSync(root);
    const later = join(root, 'later.lock');
    const laterDir = join(root, 'later-dir');
    const m = await takeSnapshot([later, laterDir], join(snaps, 's'));
    expect(m.entries.map((e) => e.type)).toEqual(['absent', 'absent']);
    writeFileSync(later, 'lock');
    mkdirSync(join(laterDir, 'a', 'b'), { recursive: true });
    writeFileSync(join(laterDir, 'a', 'b', 'c'), 'x');
    const r = await restoreSnapshot(join(snaps, 's'));
    expect(existsSync(later)).toBe(false);
    expect(existsSync(laterDir)).toBe(false);
    expect(readdirSync(root)).toEqual([]);
    expect(r.removed).toBe(5);
  });

  it('a file root is restored, and a deleted folder above a root is created again', async () => {
    const { root, snaps } = fresh();
    mkdirSync(join(root, 'state'), { recursive: true });
    writeFileSync(join(root, 'state', 'export.lock'), 'pid 42\n');
    const before = await treeState([join(root, 'state', 'export.lock')]);
    await takeSnapshot([join(root, 'state', 'export.lock')], join(snaps, 's'));
    rmSync(join(root, 'state'), { recursive: true });
    await restoreSnapshot(join(snaps, 's'));
    expect(await treeState([join(root, 'state', 'export.lock')])).toEqual(before);
  });

  it('restoring twice gives the same tree, and the second restore changes nothing', async () => {
    const { root, snaps, outside } = fresh();
    buildTree(root);
    const before = await treeState([root]);
    await takeSnapshot([root], join(snaps, 's'));
    mutate(root, outside);
    const first = await restoreSnapshot(join(snaps, 's'));
    expect(first.changed + first.removed + first.recreated).toBeGreaterThan(0);
    const second = await restoreSnapshot(join(snaps, 's'));
    expect(second).toEqual({ changed: 0, removed: 0, recreated: 0, notRestored: [] });
    expect(await treeState([root])).toEqual(before);
  });

  it('a restore interrupted at any step, then run again, gives the same tree', async () => {
    const { root, snaps, outside } = fresh();
    buildTree(root);
    const before = await treeState([root]);
    await takeSnapshot([root], join(snaps, 'before'));
    mutate(root, outside);
    const mutated = await treeState([root]);
    await takeSnapshot([root], join(snaps, 'mutated'));

    let steps = 0;
    await restoreSnapshot(join(snaps, 'before'), { onStep: () => void steps++ });
    expect(steps).toBeGreaterThan(20);
    const crash = new Error('simulated crash');
    for (let k = 0; k < steps; k++) {
      await restoreSnapshot(join(snaps, 'mutated'));
      expect(await treeState([root])).toEqual(mutated);
      let seen = 0;
      await expect(
        restoreSnapshot(join(snaps, 'before'), {
          onStep: () => {
            if (seen++ === k) throw crash;
          },
        }),
      ).rejects.toBe(crash);
      await restoreSnapshot(join(snaps, 'before'));
      expect(await treeState([root]), `interrupted before step ${k}`).toEqual(before);
    }
  });

  it('a restore killed with SIGKILL halfway (a real process), then run again, gives the same tree', async () => {
    const lib = join(ROOT, 'dist', 'heal', 'snapshot.js');
    expect(existsSync(lib), 'dist/snapshot.js: run "npm run build" first').toBe(true);
    const { root, snaps } = fresh();
    for (let i = 0; i < 60; i++) {
      mkdirSync(join(root, `d${i % 6}`), { recursive: true });
      writeFileSync(join(root, `d${i % 6}`, `f${i}`), randomBytes(40_000 + i));
    }
    const before = await treeState([root]);
    await takeSnapshot([root], join(snaps, 's'));
    const damage = (): void => {
      for (let i = 0; i < 60; i++) {
        const f = join(root, `d${i % 6}`, `f${i}`);
        if (i % 3 === 0) rmSync(f, { force: true });
        else writeFileSync(f, randomBytes(40_000 + i));
      }
      rmSync(join(root, 'd5'), { recursive: true, force: true });
      writeFileSync(join(root, 'extra'), 'x');
    };
    // The changes a restore of this damage makes (the same for every round: only the bytes differ).
    damage();
    const steps: string[] = [];
    await restoreSnapshot(join(snaps, 's'), { onStep: (what) => void steps.push(what) });
    const total = steps.length;
    expect(total).toBeGreaterThan(40);
    // a file's new copy is written beside it, then renamed into place: killed in between, a copy is left
    const renameAt = steps.indexOf('rename', 10) + 1;
    expect(renameAt).toBeGreaterThan(0);
    // The child stops right before its k-th change (k - 1 are on disk), says so, and is killed
    // there: the kill lands inside the restore, not before or after it.
    const script = (k: number): string =>
      `const { restoreSnapshot } = await import(${JSON.stringify(lib)}); let n = 0; await restoreSnapshot(${JSON.stringify(join(snaps, 's'))}, { onStep: (what, path) => { if (++n === ${k}) { console.log('at step ' + n + ': ' + what + ' ' + path); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 600000); } } }); console.log('done');`;
    for (const k of [2, renameAt, Math.floor((2 * total) / 3), total]) {
      damage();
      const damaged = await treeState([root]);
      const child = execa('node', ['--input-type=module', '-e', script(k)], { reject: false, buffer: false });
      let out = '';
      try {
        await new Promise<void>((res) => {
          child.stdout.on('data', (b: Buffer) => {
            out += b.toString();
            if (out.includes('\n')) res();
          });
          child.stdout.on('end', () => res());
        });
        expect(out).toMatch(new RegExp(`^at step ${k}: ${steps[k - 1]!} `));
      } finally {
        // Also when the check above fails: the child would otherwise wait ten minutes.
        child.kill('SIGKILL');
      }
      const r = await child;
      expect(r.signal, `killed at step ${k}`).toBe('SIGKILL');
      expect(out).not.toContain('done');
      // partway: some changes were made, not all of them
      const partial = await treeState([root]);
      expect(partial, `changes before step ${k} are on disk`).not.toEqual(damaged);
      expect(partial, `the restore killed at step ${k} of ${total} did not finish`).not.toEqual(before);
      const copiesLeft = Object.keys(partial).filter((p) => p.includes('.nightshift-restore-'));
      expect(copiesLeft, `a new copy not yet renamed into place at step ${k}`).toHaveLength(steps[k - 1] === 'rename' ? 1 : 0);
      await restoreSnapshot(join(snaps, 's'));
      expect(await treeState([root]), `killed at step ${k} of ${total}`).toEqual(before);
    }
  });

  it('never writes through a link planted where a folder or a file was', async () => {
    const { root, snaps, outside } = fresh();
    mkdirSync(join(root, 'sub'), { recursive: true });
    writeFileSync(join(root, 'sub', 'f'), 'original sub/f\n');
    writeFileSync(join(root, 'keep.txt'), 'original keep\n');
    const before = await treeState([root]);
    const outsideBefore = await treeState([outside]);
    await takeSnapshot([root], join(snaps, 's'));
    // the fix swaps the folder for a link to an outside folder, and the file for a link to a file there
    rmSync(join(root, 'sub'), { recursive: true });
    symlinkSync(outside, join(root, 'sub'));
    rmSync(join(root, 'keep.txt'));
    symlinkSync(join(outside, 'keep.txt'), join(root, 'keep.txt'));
    await restoreSnapshot(join(snaps, 's'));
    expect(await treeState([outside])).toEqual(outsideBefore);
    expect(readdirSync(outside)).toEqual(['keep.txt']);
    expect(await treeState([root])).toEqual(before);
  });

  it('refuses to restore through a link planted above a root, and changes nothing', async () => {
    const { root, snaps, outside } = fresh();
    mkdirSync(join(root, 'app', 'state'), { recursive: true });
    writeFileSync(join(root, 'app', 'state', 'x'), 'x');
    await takeSnapshot([join(root, 'app', 'state')], join(snaps, 's'));
    rmSync(join(root, 'app'), { recursive: true });
    symlinkSync(outside, join(root, 'app'));
    const outsideBefore = await treeState([outside]);
    await expect(restoreSnapshot(join(snaps, 's'))).rejects.toThrow(/link was planted above it|not recreating it through a link/);
    expect(await treeState([outside])).toEqual(outsideBefore);
  });

  it('a snapshot without manifest.json is incomplete: readManifest says null, restore refuses', async () => {
    const { root, snaps } = fresh();
    buildTree(root);
    const dir = join(snaps, 's');
    await takeSnapshot([root], dir);
    expect(readManifest(dir)).not.toBeNull();
    unlinkSync(join(dir, 'manifest.json')); // as if the daemon died before writing it
    expect(readManifest(dir)).toBeNull();
    expect(readManifest(join(snaps, 'never-taken'))).toBeNull();
    await expect(restoreSnapshot(dir)).rejects.toThrow(/incomplete \(no manifest\.json\)/);
    await expect(restoreSnapshot(dir)).rejects.toBeInstanceOf(SnapshotError);
  });

  it('a manifest rewritten after the snapshot (by the fix) is refused when its digest was kept', async () => {
    const { root, snaps } = fresh();
    buildTree(root);
    const dir = join(snaps, 's');
    await takeSnapshot([root], dir);
    const digest = manifestDigest(dir)!;
    expect(digest).toMatch(/^[0-9a-f]{64}$/);
    writeFileSync(join(root, 'a.txt'), 'changed by the fix\n');
    const mutated = await treeState([root]);
    const m = readManifest(dir)!;
    m.entries = m.entries.filter((e) => e.path !== join(root, 'secret.env'));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
    await expect(restoreSnapshot(dir, { expectDigest: digest })).rejects.toThrow(/was changed after the snapshot was taken/);
    expect(await treeState([root])).toEqual(mutated);
  });

  it('a copy that no longer matches its sha256 stops the restore before anything changes', async () => {
    const { root, snaps } = fresh();
    buildTree(root);
    const dir = join(snaps, 's');
    const m = await takeSnapshot([root], dir);
    writeFileSync(join(root, 'a.txt'), 'changed by the fix\n');
    const mutated = await treeState([root]);
    // a small file's copy, inside the pack
    const secret = m.entries.find((e) => e.path === join(root, 'secret.env'))!;
    expect(secret.at).toBeTypeOf('number');
    const fd = openSync(join(dir, 'pack'), 'r+');
    writeSync(fd, Buffer.from('X'), 0, 1, secret.at);
    closeSync(fd);
    await expect(restoreSnapshot(dir)).rejects.toThrow(/secret\.env no longer matches its sha256/);
    expect(await treeState([root])).toEqual(mutated);
  });

  it('a large copy that no longer matches its sha256 stops the restore too', async () => {
    const { root, snaps } = fresh();
    mkdirSync(root);
    writeFileSync(join(root, 'big.bin'), randomBytes(600_000));
    writeFileSync(join(root, 'small.txt'), 'small');
    const dir = join(snaps, 's');
    const m = await takeSnapshot([root], dir);
    const big = m.entries.find((e) => e.path === join(root, 'big.bin'))!;
    expect(big.at).toBeUndefined(); // large files are kept apart, in blobs/<sha256>
    writeFileSync(join(root, 'small.txt'), 'changed');
    writeFileSync(join(dir, 'blobs', big.sha256!), randomBytes(600_000));
    await expect(restoreSnapshot(dir)).rejects.toThrow(/big\.bin no longer matches its sha256; nothing was restored/);
    expect(readFileSync(join(root, 'small.txt'), 'utf8')).toBe('changed');
  });

  it('excluded paths are neither copied nor removed nor compared', async () => {
    const { root, snaps } = fresh();
    mkdirSync(join(root, 'logs'), { recursive: true });
    writeFileSync(join(root, 'logs', 'old.log'), 'old');
    writeFileSync(join(root, 'conf'), 'c=1');
    const exclude = (p: string): boolean => p === join(root, 'logs');
    const m = await takeSnapshot([root], join(snaps, 's'), { exclude });
    expect(m.entries.map((e) => e.path)).toEqual([root, join(root, 'conf')]);
    writeFileSync(join(root, 'logs', 'new.log'), 'new');
    writeFileSync(join(root, 'conf'), 'c=2');
    await restoreSnapshot(join(snaps, 's'), { exclude });
    expect(readFileSync(join(root, 'conf'), 'utf8')).toBe('c=1');
    expect(readdirSync(join(root, 'logs')).sort()).toEqual(['new.log', 'old.log']);
  });

  it('refuses a tree larger than maxBytes, and leaves no partial snapshot behind', async () => {
    const { root, snaps } = fresh();
    buildTree(root);
    const dir = join(snaps, 's');
    await expect(takeSnapshot([root], dir, { maxBytes: 1000 })).rejects.toThrow(/more than the limit of 1000/);
    expect(existsSync(dir)).toBe(false);
  });

  it('dropSnapshot removes it, manifest first', async () => {
    const { root, snaps } = fresh();
    buildTree(root);
    const dir = join(snaps, 's');
    await takeSnapshot([root], dir);
    await expect(takeSnapshot([root], dir)).rejects.toThrow(/already holds a complete snapshot/);
    await dropSnapshot(dir);
    expect(existsSync(dir)).toBe(false);
    await dropSnapshot(dir); // again: no error
  });
});

describe('fileChanges: what a fix changed, created or removed, from the manifest', () => {
  const file = (sha256: string, mode = 0o644): TreeState[string] => ({ type: 'file', mode, uid: 1, gid: 1, sha256, size: 1 });
  const dir = (mode = 0o755): TreeState[string] => ({ type: 'dir', mode, uid: 1, gid: 1 });

  it('sorts every difference into changed (content, mode, owner, type, link target), created and removed, by path', () => {
    const before: TreeState = {
      '/w': dir(),
      '/w/content': file('a'),
      '/w/mode': file('a'),
      '/w/owner': file('a'),
      '/w/type': file('a'),
      '/w/link': { type: 'link', uid: 1, gid: 1, target: 'x' },
      '/w/same': file('a'),
      '/w/gone': dir(),
      '/w/gone/f': file('a'),
      '/absent-root': { type: 'absent' },
    };
    const after: TreeState = {
      '/w': dir(),
      '/w/content': file('b'),
      '/w/mode': file('a', 0o600),
      '/w/owner': { ...file('a'), uid: 2 },
      '/w/type': dir(),
      '/w/type/inside': file('a'),
      '/w/link': { type: 'link', uid: 1, gid: 1, target: 'y' },
      '/w/same': file('a'),
      '/w/new': file('c'),
      '/absent-root': dir(),
    };
    expect(fileChanges(before, after)).toEqual({
      changed: ['/w/content', '/w/link', '/w/mode', '/w/owner', '/w/type'],
      created: ['/absent-root', '/w/new', '/w/type/inside'],
      removed: ['/w/gone', '/w/gone/f'],
      counts: { changed: 5, created: 3, removed: 2 },
    });
    // the same rule as diffTree, which the protected-zone check and the rollback tests use
    const total = diffTree(before, after).length;
    const c = fileChanges(before, after).counts;
    expect(c.changed + c.created + c.removed).toBe(total);
  });

  it('nothing changed, and a root absent before and after: empty lists', () => {
    const s: TreeState = { '/w': dir(), '/w/a': file('a'), '/none': { type: 'absent' } };
    expect(fileChanges(s, { ...s, '/none': { type: 'absent' } })).toEqual({
      changed: [],
      created: [],
      removed: [],
      counts: { changed: 0, created: 0, removed: 0 },
    });
  });

  it('names at most HEAL_FILES_NAMED paths of each kind, and counts them all', () => {
    const before: TreeState = { '/w': dir() };
    const after: TreeState = { '/w': dir() };
    for (let i = 0; i < HEAL_FILES_NAMED + 50; i++) after[`/w/f${String(i).padStart(4, '0')}`] = file('x');
    before['/w/old'] = file('x');
    const r = fileChanges(before, after);
    expect(r.created).toHaveLength(HEAL_FILES_NAMED);
    expect(r.created[0]).toBe('/w/f0000');
    expect(r.counts).toEqual({ changed: 0, created: HEAL_FILES_NAMED + 50, removed: 1 });
    expect(r.removed).toEqual(['/w/old']);
  });

  it('names no more than HEAL_FILES_CHARS characters of paths in each list (long names cannot bloat the record)', () => {
    const long = 'n'.repeat(4000);
    const after: TreeState = { '/w': dir() };
    for (let i = 0; i < 100; i++) after[`/w/${i}${long}`] = file('x');
    const r = fileChanges({ '/w': dir() }, after);
    expect(r.counts.created).toBe(100);
    expect(r.created.length).toBeGreaterThan(0);
    expect(r.created.join('').length).toBeLessThanOrEqual(HEAL_FILES_CHARS);
    expect(r.created.length).toBeLessThan(100);
  });

  it('snapshotChanges: a real tree against its snapshot manifest; folders nightshift made for the fix are not counted as created', async () => {
    const { root, snaps } = fresh();
    mkdirSync(join(root, 'data'), { recursive: true });
    writeFileSync(join(root, 'data', 'a.csv'), 'id\n1\n');
    writeFileSync(join(root, 'old.txt'), 'old\n');
    const cache = join(base, `case-${n}`, 'cache');
    await takeSnapshot([root, cache], join(snaps, 's'));
    const digest = manifestDigest(join(snaps, 's'))!;
    // the fix: one file changed, one created, one removed; the folder of a touch made for it
    writeFileSync(join(root, 'data', 'a.csv'), 'id\n2\n');
    writeFileSync(join(root, 'data', 'b.csv'), 'new\n');
    unlinkSync(join(root, 'old.txt'));
    mkdirSync(cache);
    expect(await snapshotChanges(join(snaps, 's'), { expectDigest: digest, madeForFix: [cache] })).toEqual({
      changed: [join(root, 'data', 'a.csv')],
      created: [join(root, 'data', 'b.csv')],
      removed: [join(root, 'old.txt')],
      counts: { changed: 1, created: 1, removed: 1 },
    });
    // what the fix put in such a folder is its own
    writeFileSync(join(cache, 'x'), 'x');
    expect((await snapshotChanges(join(snaps, 's'), { madeForFix: [cache] })).created).toEqual([
      join(cache, 'x'),
      join(root, 'data', 'b.csv'),
    ]);
    // without the list, the folder counts as created
    expect((await snapshotChanges(join(snaps, 's'))).created).toContain(cache);
    // a manifest that is not the one taken is refused
    await expect(snapshotChanges(join(snaps, 's'), { expectDigest: 'f'.repeat(64) })).rejects.toThrow(/changed after the snapshot/);
    await expect(snapshotChanges(join(snaps, 'none'))).rejects.toThrow(/incomplete/);
  });
});
