// `nightshift kill`: the kill switch: on | off | status (works without the daemon)
import { daemonListening } from '../../control/socket.js';
import { killSwitchPath, setKillSwitch, switchWhy } from '../../control/killswitch.js';
import { wallNow } from '../../clock.js';
import { EXIT, UsageError, type Command, json, readHomeAsRun, recordKillFlip, killOf, userInfoName } from '../context.js';

export const killCommand: Command = {
  summary: 'the kill switch: on | off | status (works without the daemon)',
  usage: 'nightshift [--home DIR] kill on|off|status [--json]',
  help:
    'On creates the kill-switch file (policy.killSwitch, default STATE/KILL); off removes it. Plain touch/rm\n' +
    'do the same. While it is on, agent jobs and every autonomous action are halted. status exits 1 when on.',
  options: { json: { type: 'boolean' } },
  run: async (ctx) => {
    const verb = ctx.positionals[0];
    if (!verb || !['on', 'off', 'status'].includes(verb) || ctx.positionals.length > 1)
      throw new UsageError('say "kill on", "kill off" or "kill status"');
    // With the policy invalid, its last good version names the switch (as the daemon reads it).
    const home = readHomeAsRun(ctx);
    const path = killSwitchPath(ctx.paths, home.policy);
    if (verb !== 'status') setKillSwitch(path, verb === 'on', userInfoName(), wallNow());
    const k = killOf(home);
    // A running daemon journals the flip itself when it sees the file; two writers would race.
    if (verb !== 'status' && !(await daemonListening(ctx.paths.socket))) recordKillFlip(ctx, k);
    if (ctx.values.json) ctx.io.out(json({ on: k.switchOn, halted: k.halted, reason: k.reason, path: k.path }));
    else
      ctx.io.out(
        k.switchOn
          ? `kill switch ON (${switchWhy(k)}): autonomous actions and agent jobs are halted until nightshift kill off`
          : `kill switch off (${switchWhy(k)})`,
      );
    if (k.halted && !k.switchOn) ctx.io.err(`nightshift kill: autonomous actions stay stopped: ${k.reason} (nightshift validate)`);
    return k.halted ? (verb === 'on' ? EXIT.ok : EXIT.unhealthy) : EXIT.ok;
  },
};
