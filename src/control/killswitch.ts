// The kill switch: one file whose presence stops every autonomous action. It is checked
// synchronously right before each action (a watcher event can arrive late), and anything that
// makes the answer uncertain — an unreadable policy, a file we cannot stat — counts as "on".
import { lstatSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { HomePaths } from '../config/paths.js';
import type { Policy } from '../config/schema.js';
import { policyInvalidSentence } from '../config/home.js';
import { errorCode, errorMessage } from '../errors.js';

export interface KillState {
  /** Every autonomous action stops: the switch is on, its state is unknown, or the policy is invalid. */
  halted: boolean;
  /**
   * The switch itself: its file exists (or cannot be checked: fail closed). Only this is a "flip"
   * in the journal; an invalid policy halts too, but is said as what it is.
   */
  switchOn: boolean;
  /** Plain words for status, logs and the digest. */
  reason: string;
  path: string;
  since: number | null;
  /** Why the switch's state is unknown, without naming the switch (it counts as on: fail closed). */
  unknown?: string;
}

export function killSwitchPath(paths: HomePaths, policy: Policy | null): string {
  const p = policy?.killSwitch;
  if (!p) return paths.defaultKill;
  return isAbsolute(p) ? p : resolve(paths.home, p);
}

/**
 * The switch at `path` (the last good policy's, or the default), and whether anything else halts:
 * `policyOk: false` (the policy file is invalid or gone) halts every autonomous action (fail closed).
 */
export function checkKillSwitch(path: string, policyOk: boolean, policyFile = 'the policy file'): KillState {
  let sw: KillState;
  try {
    const st = lstatSync(path);
    sw = { halted: true, switchOn: true, reason: `the kill switch is on (${path} exists)`, path, since: st.mtimeMs };
  } catch (err) {
    const code = errorCode(err);
    sw =
      code === 'ENOENT'
        ? { halted: false, switchOn: false, reason: 'the kill switch is off', path, since: null }
        : {
            halted: true,
            switchOn: true,
            reason: `cannot tell whether the kill switch ${path} is on (${code ?? errorMessage(err)}): failing closed`,
            unknown: `cannot tell whether ${path} exists (${code ?? errorMessage(err)}): counted as on`,
            path,
            since: null,
          };
  }
  if (policyOk || sw.switchOn) return sw;
  return { ...sw, halted: true, reason: policyInvalidSentence(policyFile) };
}

/**
 * Why the switch counts as on, said once: "/srv/state/KILL exists", or why its state is unknown.
 * Status, `kill` and the journal put it after their own "kill switch …" words, so no line says
 * "kill switch" twice.
 */
export function switchWhy(k: KillState): string {
  if (!k.switchOn) return `${k.path} absent`;
  return k.since !== null ? `${k.path} exists` : (k.unknown ?? k.reason);
}

/**
 * Turns the switch on (creates its file, saying who and when) or off (removes it): what
 * `nightshift kill on|off` and the dashboard's button do. A running daemon notices the file.
 */
export function setKillSwitch(path: string, on: boolean, by: string, now: number): void {
  if (on) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `kill switch turned on by ${by} at ${new Date(now).toISOString()}\n`);
  } else rmSync(path, { force: true });
}
