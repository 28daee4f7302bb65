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
