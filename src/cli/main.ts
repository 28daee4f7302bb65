// The command line. Reading commands work from the files and SQLite alone; acting commands talk to
// the daemon over its socket. Exit codes: 0 ok, 1 unhealthy/failed, 2 usage or invalid config,
// 3 daemon not reachable.
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { DaemonUnreachable } from '../control/socket.js';
import { VERSION } from '../daemon.js';
import { homePaths } from '../config/paths.js';
import { StoreError } from '../store/store.js';
import { errorMessage } from '../errors.js';
import { assertHome, EXIT, UsageError, type Out, GLOBAL_OPTIONS, type Command, type Ctx } from './context.js';
import { startCommand } from './commands/start.js';
import { validateCommand } from './commands/validate.js';
import { statusCommand } from './commands/status.js';
import { nextCommand } from './commands/next.js';
import { runCommand } from './commands/run.js';
import { historyCommand } from './commands/history.js';
import { logsCommand } from './commands/logs.js';
import { pingCommand } from './commands/ping.js';
import { pingUrlCommand } from './commands/ping-url.js';
import { alertsCommand } from './commands/alerts.js';
import { healsCommand } from './commands/heals.js';
import { approveCommand } from './commands/approve.js';
import { denyCommand } from './commands/deny.js';
import { killCommand } from './commands/kill.js';
import { digestCommand } from './commands/digest.js';
import { pauseCommand } from './commands/pause.js';
import { resumeCommand } from './commands/resume.js';
import { loginCommand } from './commands/login.js';
import { importCommand } from './commands/import.js';

export const COMMANDS: Record<string, Command> = {
  start: startCommand,
  validate: validateCommand,
  status: statusCommand,
  next: nextCommand,
  run: runCommand,
  history: historyCommand,
  logs: logsCommand,
  ping: pingCommand,
  'ping-url': pingUrlCommand,
  alerts: alertsCommand,
  heals: healsCommand,
  approve: approveCommand,
  deny: denyCommand,
  kill: killCommand,
  digest: digestCommand,
  pause: pauseCommand,
  resume: resumeCommand,
  login: loginCommand,
  import: importCommand,
};

/** The reference pages shipped beside the program (dist/ and src/ both sit beside docs/). */
const INSTALLED_DOCS = fileURLToPath(new URL('../../docs', import.meta.url));

export function mainHelp(docs = INSTALLED_DOCS): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length)) + 2;
  return [
    `nightshift ${VERSION} — a self-healing job supervisor for one server`,
    '',
    'usage: nightshift [--home DIR] [--state DIR] COMMAND [options]',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}${c.summary}`),
    '',
    'options:',
    '  --home DIR    the home folder with jobs/, rules/, protected/ (default: $NIGHTSHIFT_HOME or the current folder)',
    '  --state DIR   where runtime data lives (default: $NIGHTSHIFT_STATE or HOME/state)',
    '  --help        help for a command: nightshift COMMAND --help',
    '',
    'exit codes: 0 ok, 1 unhealthy/failed, 2 usage or invalid config, 3 daemon not reachable, 4 (start) the home was moved away while nightshift ran',
    '',
    `every field of jobs, rules and the policy: ${docs}/reference.md`,
    `every command: ${docs}/cli.md`,
  ].join('\n');
}

export async function main(
  argv: string[],
  io: Out = { out: (s) => process.stdout.write(`${s}\n`), err: (s) => process.stderr.write(`${s}\n`) },
): Promise<number> {
  // Global options may stand before the command; the command word is the first positional.
  const cmdIndex = argv.findIndex((a, i) => !a.startsWith('-') && !(i > 0 && (argv[i - 1] === '--home' || argv[i - 1] === '--state')));
  const cmdName = cmdIndex >= 0 ? argv[cmdIndex]! : undefined;
  if (cmdName === undefined) {
    if (argv.includes('--version')) {
      io.out(VERSION);
      return EXIT.ok;
    }
    if (argv.includes('--help') || argv.includes('-h') || argv.length === 0) {
      io.out(mainHelp());
      return argv.length === 0 ? EXIT.usage : EXIT.ok;
    }
    io.err(`nightshift: no command given\n\n${mainHelp()}`);
    return EXIT.usage;
  }
  if (cmdName === 'help') {
    const topic = argv[cmdIndex + 1];
    const c = topic ? COMMANDS[topic] : undefined;
    io.out(c ? `usage: ${c.usage}\n\n${c.summary}\n\n${c.help}` : mainHelp());
    return EXIT.ok;
  }
  const cmd = COMMANDS[cmdName];
  if (!cmd) {
    io.err(`nightshift: unknown command "${cmdName}"\n\n${mainHelp()}`);
    return EXIT.usage;
  }
  const rest = [...argv.slice(0, cmdIndex), ...argv.slice(cmdIndex + 1)];
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...cmd.options }, allowPositionals: true, strict: true });
  } catch (err) {
    io.err(`nightshift ${cmdName}: ${errorMessage(err).split('\n')[0]}\nusage: ${cmd.usage}`);
    return EXIT.usage;
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) {
    io.out(`usage: ${cmd.usage}\n\n${cmd.summary}\n\n${cmd.help}`);
    return EXIT.ok;
  }
  // An empty variable is an unset one.
  const home = (values.home as string | undefined) ?? (process.env.NIGHTSHIFT_HOME || process.cwd());
  const state = (values.state as string | undefined) ?? (process.env.NIGHTSHIFT_STATE || undefined);
  const ctx: Ctx = { paths: homePaths(home, state), values, positionals: parsed.positionals, io };
  try {
    if (cmdName !== 'start') assertHome(ctx.paths);
    return await cmd.run(ctx);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`nightshift ${cmdName}: ${err.message}\nusage: ${cmd.usage}`);
      return EXIT.usage;
    }
    if (err instanceof DaemonUnreachable) {
      io.err(`nightshift ${cmdName}: ${err.message}. Start it with: systemctl start nightshift (or nightshift start)`);
      return EXIT.unreachable;
    }
    if (err instanceof StoreError) {
      io.err(`nightshift ${cmdName}: ${err.message}`);
      return EXIT.usage;
    }
    io.err(`nightshift ${cmdName}: ${errorMessage(err)}`);
    return EXIT.unhealthy;
  }
}
