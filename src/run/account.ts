// The accounts jobs run as (the job field `user:`), looked up as cron looks them up: through the
// system's name service (getent), so accounts of LDAP or systemd-homed count as they do for cron.
import { spawnSync } from 'node:child_process';
import { userInfo } from 'node:os';

export interface Account {
  name: string;
  uid: number;
  gid: number;
  /** Every group the account is a member of (its primary group included), as initgroups sets them. */
  groups: number[];
  home: string;
}

/** Whether this process may start another account's processes. */
export function runsAsRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function getent(args: string[]): string | null {
  const r = spawnSync('getent', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.error) throw new Error(`cannot look up accounts: getent failed (${r.error.message})`);
  return r.status === 0 ? r.stdout : null;
}

/** The account of that name, or null when the machine has none. */
export function lookupAccount(name: string): Account | null {
  const pw = getent(['passwd', name])?.split('\n')[0];
  if (!pw) return null;
  const [pwName = name, , uid = '', gid = '', , home = '/'] = pw.split(':');
  const groups = new Set<number>([Number(gid)]);
  // `id -G` would do the same; getent's group database is the one cron's initgroups reads too.
  const initgroups = getent(['initgroups', pwName]);
  for (const g of initgroups?.trim().split(/\s+/).slice(1) ?? []) if (/^\d+$/.test(g)) groups.add(Number(g));
  return { name: pwName, uid: Number(uid), gid: Number(gid), groups: [...groups], home };
}

/**
 * Why a job with `user: NAME` cannot run here, or the account it runs as (null: as nightshift
 * itself, the account nightshift already runs as).
 */
export function accountFor(name: string): { account: Account | null } | { problem: string } {
  const self = userInfo();
  if (!runsAsRoot()) {
    if (name === self.username) return { account: null };
    return {
      problem:
        `the job runs as "${name}", but nightshift runs as "${self.username}" (uid ${self.uid}), and only root may start a process as another account: ` +
        'run nightshift with the root-mode unit (deploy/nightshift-root.service; see "Root mode" in deploy/README.md), ' +
        `or remove "user:" to run the job as ${self.username}. (\`nightshift validate\` judges as the account it runs as: run it as the service's account.)`,
    };
  }
  let account: Account | null;
  try {
    account = lookupAccount(name);
  } catch (err) {
    return { problem: (err as Error).message };
  }
  if (account === null) return { problem: `there is no account "${name}" on this machine (getent passwd ${name} finds nothing)` };
  return { account };
}

/**
 * The environment cron gives a user's job (HOME and LOGNAME of the account — Debian adds USER —
 * and SHELL=/bin/sh, whatever the account's login shell), over which the job's own `env` goes.
 */
export function accountEnv(a: Account): Record<string, string> {
  return { HOME: a.home, LOGNAME: a.name, USER: a.name, SHELL: '/bin/sh' };
}

/**
 * The argv prefix that starts the rest as the account: real and effective uid and gid, and the
 * account's groups (Node's own uid/gid options would clear the supplementary groups). `setpriv` by
 * its full path: it runs as root, and the job's env may bring a PATH of its own.
 */
export function asAccount(a: Account, setpriv: string): string[] {
  // --inh-caps: bwrap leaves the two capabilities setpriv needs in the inheritable set; they go too.
  return [setpriv, `--reuid=${a.uid}`, `--regid=${a.gid}`, `--groups=${a.groups.join(',')}`, '--inh-caps=-all', '--'];
}
