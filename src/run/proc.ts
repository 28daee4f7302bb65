// What Linux's /proc says about processes: the one place that reads it, for process-group
// liveness (zombies excluded), our own open files, and the one reaper of what a crashed daemon
// left behind (its runs' and its fixes' processes).
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';

export interface ProcInfo {
  pid: number;
  /** The command name (at most 15 characters), as the kernel keeps it. */
  comm: string;
  ppid: number;
  /** One-letter state; Z is a zombie waiting for its reaper. */
  state: string;
  pgrp: number;
  /** Start time in clock ticks since boot. */
  startTicks: number;
}

/** Every process /proc shows, or null when there is no /proc to read. */
export function listProcesses(): ProcInfo[] | null {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return null;
  }
  const out: ProcInfo[] = [];
  for (const e of entries) {
    const c = e.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${e}/stat`, 'latin1');
    } catch {
      continue; // gone meanwhile
    }
    // Fields after the command name (which may contain spaces and parentheses): state ppid pgrp ...
    const close = stat.lastIndexOf(')');
    const rest = stat.slice(close + 2).split(' ');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    out.push({ pid: Number(e), comm, state: rest[0] ?? '?', ppid: Number(rest[1]), pgrp: Number(rest[2]), startTicks: Number(rest[19]) });
  }
  return out;
}

/** The environment of a process as NAME=value strings, or null when it cannot be read. */
export function processEnv(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
  } catch {
    return null;
  }
}

/** The PID namespace a process lives in (its inode, as "pid:[N]"), or null when it cannot be read. */
export function pidNamespace(pid: number): string | null {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return null;
  }
}

/**
 * Closes every file descriptor above 2 that this process inherited without close-on-exec (a pipe
 * or socket of the shell or supervisor that started it): child processes would inherit it in
 * turn, through every sandbox, and a unix socket among them is a way out. Node opens its own with
 * close-on-exec; the IPC channel of a parent node, if any, is kept. Returns the fds closed.
 */
export function closeInheritedFds(closeFd: (fd: number) => void): number[] {
  const keep = new Set([0, 1, 2, Number(process.env.NODE_CHANNEL_FD ?? -1)]);
  const closed: number[] = [];
  let fds: string[];
  try {
    fds = readdirSync('/proc/self/fdinfo');
  } catch {
    return closed; // no /proc: nothing to learn
  }
  for (const name of fds) {
    const fd = Number(name);
    if (keep.has(fd)) continue;
    let flags: number;
    try {
      const m = /^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${name}`, 'latin1'));
      if (!m) continue;
      flags = parseInt(m[1]!, 8);
    } catch {
      continue; // the fd of the readdir itself, or closed meanwhile
    }
    const O_CLOEXEC = 0o2000000;
    if (flags & O_CLOEXEC) continue;
    try {
      closeFd(fd);
      closed.push(fd);
    } catch {
      // not ours to close after all
    }
  }
  return closed;
}

/** When this machine booted (ms since the epoch), from /proc/stat; null when unknown. */
export function bootTimeMs(): number | null {
  try {
    const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    return m ? Number(m[1]) * 1000 : null;
  } catch {
    return null;
  }
}

// Linux reports process start times in clock ticks; USER_HZ is 100 on every architecture we run on.
const TICK_MS = 10;

/** Live (non-zombie) members of a process group, with their start time in ms since the epoch. */
export function groupMembers(pgid: number, bootMs: number): Array<{ pid: number; startedAt: number }> {
  return (listProcesses() ?? [])
    .filter((p) => p.pgrp === pgid && p.state !== 'Z')
    .map((p) => ({ pid: p.pid, startedAt: bootMs + p.startTicks * TICK_MS }));
}

/** Something a dead daemon started: a run or a fix, by the id in its processes' environment. */
export interface Owner {
  id: number;
  /** Its recorded process group, if any. */
  pgid: number | null;
  /** When it began (ms since the epoch): only processes started after that can be its own. */
  since: number;
  /** When its first process (the group's leader) was started, if recorded. */
  leaderAt: number | null;
}

/** How far a leader's start (from /proc, in clock ticks since boot) may lie from the recorded one. */
const LEADER_START_SLACK_MS = 2000;

/**
 * The one reaper. Processes left by a daemon that died, for each owner: those whose environment
 * carries `${envName}=<id>` and our state folder (so a recycled pid is never hit), and those still
 * in the owner's process group that dropped their environment (env -i), when the group is still
 * provably the owner's (see below); only within this boot, and only members started after the
 * owner began. Each is sent SIGKILL; returns the pids, by owner id.
 */
export function reapLeftovers(owners: readonly Owner[], envName: string, stateDir: string): Map<number, number[]> {
  const found = new Map<number, Set<number>>(owners.map((o) => [o.id, new Set<number>()]));
  if (owners.length === 0) return new Map();
  for (const p of listProcesses() ?? []) {
    if (p.pid === process.pid) continue;
    const env = processEnv(p.pid);
    if (!env || !env.includes(`NIGHTSHIFT_STATE=${stateDir}`)) continue;
    const id = Number(env.find((v) => v.startsWith(`${envName}=`))?.slice(envName.length + 1));
    found.get(id)?.add(p.pid);
  }
  const boot = bootTimeMs();
  for (const o of owners) {
    if (o.pgid === null || boot === null || boot >= o.since) continue;
    const members = groupMembers(o.pgid, boot);
    // The id alone is never enough: once the group's last member is gone, a new process (another
    // nightshift's run, anything) may get that pid and lead a group of its own. While any member
    // lives, though, the kernel does not give the group's id to anyone else. So the group is ours
    // when its leader is gone (its survivors are the owner's), or when the living leader carries
    // our state folder and the owner's id, or started when the owner's first process did.
    const leader = members.find((m) => m.pid === o.pgid);
    const ours =
      leader === undefined ||
      found.get(o.id)!.has(leader.pid) ||
      (o.leaderAt !== null && Math.abs(leader.startedAt - o.leaderAt) <= LEADER_START_SLACK_MS);
    if (!ours) continue;
    for (const m of members) if (m.startedAt >= o.since - 1000) found.get(o.id)!.add(m.pid);
  }
  const out = new Map<number, number[]>();
  for (const [id, pids] of found) {
    const killed: number[] = [];
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      } catch {
        // gone meanwhile
      }
    }
    out.set(id, killed);
  }
  return out;
}

/** Where an open file of this process is now (the kernel follows renames): the first whose path ends so. */
export function openFileEndingIn(suffix: string): string | null {
  try {
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        const target = readlinkSync(`/proc/self/fd/${fd}`);
        if (target.endsWith(suffix)) return target;
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    // no /proc
  }
  return null;
}

/**
 * This boot of the machine: the kernel's id of it (a new one at every boot) and when it began
 * (btime of /proc/stat), or null where there is none to read. @reboot jobs run once per boot id.
 * NIGHTSHIFT_BOOT_ID_FILE stands in for a boot in tests: its text is the id, its mtime the start.
 */
export function bootInfo(): { id: string; at: number } | null {
  const stand = process.env.NIGHTSHIFT_BOOT_ID_FILE;
  try {
    if (stand) return { id: readFileSync(stand, 'utf8').trim(), at: statSync(stand).mtimeMs };
    const id = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1];
    return id && btime ? { id, at: Number(btime) * 1000 } : null;
  } catch {
    return null;
  }
}
