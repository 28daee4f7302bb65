// Where a home keeps its parts: jobs/, rules/, protected/policy.yaml, and the state folder
// (database, logs, control socket, lock, the default kill switch). Every module asks here.
import { join, resolve } from 'node:path';

export interface HomePaths {
  home: string;
  jobsDir: string;
  rulesDir: string;
  protectedDir: string;
  policyFile: string;
  state: string;
  db: string;
  logs: string;
  socket: string;
  lock: string;
  defaultKill: string;
}

export function homePaths(home: string, state?: string): HomePaths {
  const h = resolve(home);
  const s = resolve(state ?? join(h, 'state'));
  return {
    home: h,
    jobsDir: join(h, 'jobs'),
    rulesDir: join(h, 'rules'),
    protectedDir: join(h, 'protected'),
    policyFile: join(h, 'protected', 'policy.yaml'),
    state: s,
    db: join(s, 'nightshift.db'),
    logs: join(s, 'logs'),
    socket: join(s, 'nightshift.sock'),
    lock: join(s, 'daemon.lock'),
    defaultKill: join(s, 'KILL'),
  };
}
