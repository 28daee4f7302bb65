// What Linux's /proc says about processes: the one place that reads it, for process-group
// liveness (zombies excluded) and for finding what a crashed daemon left behind.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

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
