// The kill switch: one file whose presence stops every autonomous action. It is checked
// synchronously right before each action (a watcher event can arrive late), and anything that
// makes the answer uncertain — an unreadable policy, a file we cannot stat — counts as "on".
import { lstatSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { HomePaths } from '../config/paths.js';
import type { Policy } from '../config/schema.js';
import { errorCode, errorMessage } from '../errors.js';

export interface KillState {
  halted: boolean;
  /** Plain words for status, logs and the digest. */
  reason: string;
  path: string;
  since: number | null;
}

export function killSwitchPath(paths: HomePaths, policy: Policy | null): string {
  const p = policy?.killSwitch;
  if (!p) return paths.defaultKill;
  return isAbsolute(p) ? p : resolve(paths.home, p);
}

/** `policyOk: false` means the policy cannot be read: fail closed, whatever the file says. */
export function checkKillSwitch(path: string, policyOk: boolean): KillState {
  if (!policyOk) {
    return {
      halted: true,
      reason: 'the policy file cannot be read, so the kill switch cannot be located: failing closed',
      path,
      since: null,
    };
  }
  try {
    const st = lstatSync(path);
    return { halted: true, reason: `the kill switch is on (${path} exists)`, path, since: st.mtimeMs };
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT') return { halted: false, reason: 'the kill switch is off', path, since: null };
    return {
      halted: true,
      reason: `cannot tell whether the kill switch ${path} is on (${code ?? errorMessage(err)}): failing closed`,
      path,
      since: null,
    };
  }
}
