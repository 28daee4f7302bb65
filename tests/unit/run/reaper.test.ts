// The one reaper (run/proc.ts reapLeftovers), with real processes: it kills what a dead daemon left
// of its own runs, and nothing else, even when a process group id has been taken by someone else.
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { groupMembers, bootTimeMs, reapLeftovers } from '../../../src/run/proc.js';
import { waitFor } from '../../support/helpers.js';

const started: ChildProcess[] = [];
afterEach(() => {
  for (const c of started.splice(0)) {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

function group(env: Record<string, string>, script: string): ChildProcess {
  const c = spawn('/bin/sh', ['-c', script], {
    detached: true,
    stdio: 'ignore',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
  });
  started.push(c);
  return c;
}
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('reapLeftovers', () => {
  it('leaves alone a process group that is not ours, though it has the recorded group id (found by the review)', async () => {
    // Another nightshift's run (another state folder) leads the group whose id we recorded.
    const other = group({ NIGHTSHIFT_STATE: '/var/lib/other/state', NIGHTSHIFT_RUN_ID: '7' }, 'exec sleep 30');
    await sleep(200);
    const t = Date.now() - 5000;
    const reaped = reapLeftovers([{ id: 42, pgid: other.pid!, since: t, leaderAt: t }], 'NIGHTSHIFT_RUN_ID', '/var/lib/ours/state');
    expect(reaped.get(42)).toEqual([]);
    expect(alive(other.pid!)).toBe(true);
  });

  it('kills the survivors of our group whose leader is gone, though none carries an environment', async () => {
    // The leader (with our environment) forks an env -i sleeper and exits; the group lives on in it.
    const since = Date.now();
    const leader = group({ NIGHTSHIFT_STATE: '/var/lib/ours/state', NIGHTSHIFT_RUN_ID: '43' }, 'env -i sleep 30 & exit 0');
    const pgid = leader.pid!;
    await waitFor(() => (groupMembers(pgid, bootTimeMs()!).length === 1 && !alive(pgid)) || undefined, 5000, 'only the sleeper left');
    const [sleeper] = groupMembers(pgid, bootTimeMs()!).map((m) => m.pid);
    const reaped = reapLeftovers([{ id: 43, pgid, since, leaderAt: since }], 'NIGHTSHIFT_RUN_ID', '/var/lib/ours/state');
    expect(reaped.get(43)).toEqual([sleeper]);
    await waitFor(() => !alive(sleeper!) || undefined, 5000, 'the sleeper gone');
  });

  it('kills our run: the process that carries our state and run id, and one in its group that dropped its environment', async () => {
    const since = Date.now();
    const ours = group({ NIGHTSHIFT_STATE: '/var/lib/ours/state', NIGHTSHIFT_RUN_ID: '42' }, 'env -i sleep 30 & exec sleep 30');
    await waitFor(() => groupMembers(ours.pid!, bootTimeMs()!).length === 2 || undefined, 5000, 'both processes of the group');
    const members = groupMembers(ours.pid!, bootTimeMs()!).map((m) => m.pid);
    const reaped = reapLeftovers([{ id: 42, pgid: ours.pid!, since, leaderAt: since }], 'NIGHTSHIFT_RUN_ID', '/var/lib/ours/state');
    expect([...(reaped.get(42) ?? [])].sort()).toEqual([...members].sort());
    await waitFor(() => members.every((p) => !alive(p)) || undefined, 5000, 'the group gone');
  });
});
