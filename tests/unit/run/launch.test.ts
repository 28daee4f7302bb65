// The launcher's sandbox, piece by piece, with real bwrap processes (the escape suite attacks it
// whole through a daemon).
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { homePaths } from '../../../src/config/paths.js';
import {
  fixMounts,
  launch,
  leashOf,
  removeCreated,
  removeStrays,
  SANDBOX_HOME,
  socketFilter,
  type Confinement,
} from '../../../src/run/launch.js';
import { PolicySchema } from '../../../src/config/schema.js';
import { cleanup, makeHome, tempDir } from '../../support/helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) cleanup(d);
});

async function inside(c: Confinement, script: string, cwd: string): Promise<{ code: number | undefined; out: string }> {
  const { sub } = launch(['sh', '-c', script], c, {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: SANDBOX_HOME },
    reject: false,
    all: true,
    stdin: 'ignore',
  });
  const r = await sub;
  return { code: r.exitCode, out: String(r.all ?? '') };
}

describe('the leash', () => {
  it('hides what a symbolic link in the install points to, not the link (bwrap cannot mount over a link)', () => {
    const install = tempDir('ns-install-');
    dirs.push(install);
    const real = tempDir('ns-real-modules-');
    dirs.push(real);
    mkdirSync(join(install, 'dist'));
    symlinkSync(real, join(install, 'node_modules'));
    const home = makeHome();
    dirs.push(home);
    const leash = leashOf(homePaths(home), null, join(home, 'state', 'KILL'), install);
    expect(leash.hiddenDirs).toContain(realpathSync(real));
    expect(leash.hiddenDirs).not.toContain(join(realpathSync(install), 'node_modules'));
  });

  it('a kill switch kept outside the state folder: its folder is read-only; one in the home: only the file is covered', () => {
    const home = makeHome();
    dirs.push(home);
    const run = tempDir('ns-run-');
    dirs.push(run);
    const outside = leashOf(homePaths(home), PolicySchema.parse({ killSwitch: join(run, 'KILL') }), join(run, 'KILL'));
    expect(outside.readOnly).toContain(realpathSync(run));
    const inHome = leashOf(homePaths(home), PolicySchema.parse({ killSwitch: 'KILL' }), join(home, 'KILL'));
    expect(inHome.readOnly).not.toContain(realpathSync(home));
    expect(inHome.hiddenFiles).toContain(join(realpathSync(home), 'KILL'));
  });

  it('a job writes where it likes but not into jobs/ or the hidden state; a switch kept elsewhere cannot be removed', async () => {
    const home = makeHome({ a: 'command: ["true"]\n' });
    dirs.push(home);
    const run = tempDir('ns-run-');
    dirs.push(run);
    mkdirSync(join(home, 'state'));
    writeFileSync(join(home, 'state', 'nightshift.db'), 'secret');
    writeFileSync(join(run, 'KILL'), '');
    const leash = leashOf(homePaths(home), PolicySchema.parse({ killSwitch: join(run, 'KILL') }), join(run, 'KILL'));
    const r = await inside(
      { profile: 'job', leash },
      `echo ok > ${home}/free.txt && echo wrote-free
echo x > ${home}/jobs/a.yaml || echo jobs-refused
cat ${home}/state/nightshift.db 2>/dev/null || echo state-hidden
rm -f ${run}/KILL || echo kill-kept`,
      home,
    );
    expect(r.out).toContain('wrote-free');
    expect(r.out).toContain('jobs-refused');
    expect(r.out).toContain('state-hidden');
    expect(r.out).toContain('kill-kept');
    expect(readFileSync(join(home, 'jobs', 'a.yaml'), 'utf8')).toBe('command: ["true"]\n');
    expect(existsSync(join(run, 'KILL'))).toBe(true);
  });

  it('a process without a cwd of its own starts where the daemon runs, as without a sandbox', async () => {
    const home = makeHome();
    dirs.push(home);
    const leash = leashOf(homePaths(home), null, join(home, 'state', 'KILL'));
    const { sub } = launch(
      ['pwd'],
      { profile: 'job', leash },
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, reject: false, stdin: 'ignore' },
    );
    expect(String((await sub).stdout).trim()).toBe(process.cwd());
  });
});

describe('a fix writes only its touches', () => {
  it('a touched file can be removed and made again; its neighbours stay read-only; a new neighbour is found and removed', async () => {
    const home = makeHome();
    dirs.push(home);
    const work = join(home, 'work');
    mkdirSync(work);
    writeFileSync(join(work, 'export.lock'), '123');
    writeFileSync(join(work, 'runs'), '7');
    const leash = leashOf(homePaths(home), null, join(home, 'state', 'KILL'));
    const m = fixMounts(['work/export.lock'], home);
    const r = await inside(
      { profile: 'fix', leash, fix: m },
      `rm work/export.lock && echo removed
echo again > work/export.lock && echo recreated
echo 8 > work/runs || echo runs-refused
rm work/runs || echo runs-kept
echo stray > work/stray && echo stray-written`,
      home,
    );
    expect(r.out).toContain('removed');
    expect(r.out).toContain('recreated');
    expect(r.out).toContain('runs-refused');
    expect(r.out).toContain('runs-kept');
    expect(readFileSync(join(work, 'runs'), 'utf8')).toBe('7');
    expect(readFileSync(join(work, 'export.lock'), 'utf8')).toBe('again\n');
    // A new name beside the touched file cannot be refused by a mount; it is found afterwards.
    expect(removeStrays(m)).toEqual([join(realpathSync(work), 'stray')]);
    expect(existsSync(join(work, 'stray'))).toBe(false);
  });

  it("a missing touched folder is made first; the fix sees a private /tmp and HOME and nothing of the machine's /tmp", async () => {
    const home = makeHome();
    dirs.push(home);
    const elsewhere = tempDir('ns-elsewhere-');
    dirs.push(elsewhere);
    writeFileSync(join(elsewhere, 'secret'), 's');
    const leash = leashOf(homePaths(home), null, join(home, 'state', 'KILL'));
    const m = fixMounts(['work/cache/'], home);
    expect(existsSync(join(home, 'work', 'cache'))).toBe(true);
    const r = await inside(
      { profile: 'fix', leash, fix: m },
      `date > work/cache/token && echo token-written
ls ${elsewhere} 2>/dev/null || echo elsewhere-hidden
echo x > $HOME/h && echo home-writable
echo x > ${home}/other 2>/dev/null || echo home-read-only`,
      home,
    );
    expect(r.out).toContain('token-written');
    expect(r.out).toContain('elsewhere-hidden');
    expect(r.out).toContain('home-writable');
    expect(r.out).toContain('home-read-only');
    expect(existsSync(join(home, 'other'))).toBe(false);
    // Folders made only for the touches go again when nothing is left in them.
    rmSync(join(home, 'work', 'cache', 'token'));
    removeCreated(m);
    expect(existsSync(join(home, 'work'))).toBe(false);
  });

  it('a probe command writes nothing at all', async () => {
    const home = makeHome();
    dirs.push(home);
    mkdirSync(join(home, 'work'));
    const leash = leashOf(homePaths(home), null, join(home, 'state', 'KILL'));
    const real = tempDir('ns-real-tmp-');
    dirs.push(real);
    writeFileSync(join(real, 'app.lock'), '1');
    // It checks the machine's /tmp, not a private one: a stale lock there is seen (read-only).
    const r = await inside(
      { profile: 'probe', leash },
      `echo x > work/p 2>/dev/null || echo probe-refused; test -d work && echo sees-work; test -e ${real}/app.lock && echo sees-real-tmp; rm -f ${real}/app.lock 2>/dev/null || echo tmp-read-only`,
      home,
    );
    expect(r.out).toContain('sees-real-tmp');
    expect(r.out).toContain('tmp-read-only');
    expect(existsSync(join(real, 'app.lock'))).toBe(true);
    expect(r.out).toContain('probe-refused');
    expect(r.out).toContain('sees-work');
    expect(existsSync(join(home, 'work', 'p'))).toBe(false);
  });

  it('a probe reaches a service over TCP on 127.0.0.1 but no unix socket; a job reaches both', async () => {
    const home = makeHome();
    dirs.push(home);
    const leash = leashOf(homePaths(home), null, join(home, 'state', 'KILL'));
    const sock = join(home, 'svc.sock');
    const seen: string[] = [];
    const unix = createServer((c) => {
      seen.push('unix');
      c.end();
    });
    const tcp = createServer((c) => {
      seen.push('tcp');
      c.end();
    });
    await new Promise<void>((res) => unix.listen(sock, res));
    await new Promise<void>((res) => tcp.listen(0, '127.0.0.1', res));
    const port = (tcp.address() as AddressInfo).port;
    const js = (target: string, label: string): string =>
      `${process.execPath} -e "require('net').connect(${target}).on('connect',()=>{console.log('${label}-ok');process.exit(0)}).on('error',(e)=>{console.log('${label}-'+e.code);process.exit(0)})"`;
    const script = `${js(`'${sock}'`, 'unix')}; ${js(`${port},'127.0.0.1'`, 'tcp')}`;
    try {
      const probe = await inside({ profile: 'probe', leash }, script, home);
      expect(probe.out).toContain('tcp-ok');
      expect(probe.out).toMatch(/unix-EACCES/);
      const job = await inside({ profile: 'job', leash }, script, home);
      expect(job.out).toContain('tcp-ok');
      expect(job.out).toContain('unix-ok');
      expect(seen.sort()).toEqual(['tcp', 'tcp', 'unix']);
    } finally {
      unix.close();
      tcp.close();
    }
  });

  it("a probe cannot reach the kernel keyrings (root's are uid 0's); a job can", async () => {
    const keyctl = ({ x64: 250, arm64: 219 } as Record<string, number>)[process.arch]!;
    const home = makeHome();
    dirs.push(home);
    const leash = leashOf(homePaths(home), null, join(home, 'state', 'KILL'));
    // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, create): the caller's user keyring.
    const script = `perl -e '$r = syscall(${keyctl}, 0, -4, 1); print "keyctl $r ", ($r < 0 ? $!+0 : 0), "\\n"'`;
    const probe = await inside({ profile: 'probe', leash }, script, home);
    expect(probe.out).toContain('keyctl -1 1'); // EPERM
    const job = await inside({ profile: 'job', leash }, script, home);
    expect(job.out).toMatch(/keyctl [1-9]\d* 0/);
  });

  it('the filter decides every system call it names, on x64 and on arm64 (run by a small classic-BPF interpreter); it is built for nothing else', () => {
    /** Runs a seccomp program over one seccomp_data: what the kernel would return. */
    const run = (prog: Buffer, d: { arch: number; nr: number; args: number[] }): number => {
      const data = Buffer.alloc(64);
      data.writeInt32LE(d.nr, 0);
      data.writeUInt32LE(d.arch, 4);
      d.args.forEach((v, i) => data.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)), 16 + i * 8));
      let A = 0;
      for (let pc = 0; pc < prog.length / 8;) {
        const op = prog.readUInt16LE(pc * 8);
        const jt = prog[pc * 8 + 2]!;
        const jf = prog[pc * 8 + 3]!;
        const k = prog.readUInt32LE(pc * 8 + 4);
        pc++;
        if (op === 0x20) A = data.readUInt32LE(k);
        else if (op === 0x54) A = (A & k) >>> 0;
        else if (op === 0x15) pc += A === k ? jt : jf;
        else if (op === 0x35) pc += A >= k ? jt : jf;
        else if (op === 0x06) return k;
        else throw new Error(`unknown opcode ${op.toString(16)}`);
      }
      throw new Error('fell off the end');
    };
    const ALLOW = 0x7fff0000;
    const errno = (e: number): number => 0x00050000 + e;
    const KILL = 0x80000000;
    const cases = {
      x64: { arch: 0xc000003e, socket: 41, socketpair: 53, ioUring: 425, keyctl: 250, openat: 257 },
      arm64: { arch: 0xc00000b7, socket: 198, socketpair: 199, ioUring: 425, keyctl: 219, openat: 56 },
    };
    for (const [name, c] of Object.entries(cases)) {
      const prog = socketFilter(name as NodeJS.Architecture)!;
      const call = (nr: number, ...args: number[]): number => run(prog, { arch: c.arch, nr, args });
      expect(call(c.socket, 1, 1, 0), `${name} socket(AF_UNIX)`).toBe(errno(13));
      expect(call(c.socket, 0x100000001, 1, 0), `${name} socket(AF_UNIX | high bits)`).toBe(errno(13));
      expect(call(c.socket, 2, 1, 0), `${name} socket(AF_INET)`).toBe(ALLOW);
      expect(call(c.socket, 10, 2, 0), `${name} socket(AF_INET6, DGRAM)`).toBe(ALLOW);
      expect(call(c.socketpair, 1, 1 | 0x80000 | 0x800, 0), `${name} socketpair(AF_UNIX, STREAM|CLOEXEC|NONBLOCK)`).toBe(ALLOW);
      expect(call(c.socketpair, 1, 5, 0), `${name} socketpair(AF_UNIX, SEQPACKET)`).toBe(ALLOW);
      expect(call(c.socketpair, 1, 2, 0), `${name} socketpair(AF_UNIX, DGRAM)`).toBe(errno(13));
      expect(call(c.socketpair, 1, 3 | 0x80000, 0), `${name} socketpair(AF_UNIX, RAW|CLOEXEC)`).toBe(errno(13));
      expect(call(c.ioUring, 8, 0), `${name} io_uring_setup`).toBe(errno(38));
      expect(call(c.keyctl, 0, -4, 1), `${name} keyctl`).toBe(errno(1));
      expect(call(c.openat, -100, 0, 0), `${name} openat`).toBe(ALLOW);
      expect(call(0x40000000 + 41, 1, 1, 0), `${name} an x32 call`).toBe(errno(38));
      expect(run(prog, { arch: 0x40000003, nr: 102, args: [1, 0] }), `${name} i386 socketcall`).toBe(KILL);
    }
    expect(socketFilter('ia32')).toBeNull();
  });
});
