// `nightshift start`: run the daemon in the foreground (for systemd; logs JSON to stdout)
import { closeSync, existsSync } from 'node:fs';
import { closeInheritedFds } from '../../run/proc.js';
import { Daemon } from '../../daemon.js';
import { LockHeld } from '../../store/lock.js';
import { createLogger } from '../../log.js';
import { errorMessage } from '../../errors.js';
import { EXIT, UsageError, type Command } from '../context.js';

export const startCommand: Command = {
  summary: 'run the daemon in the foreground (for systemd; logs JSON to stdout)',
  usage: 'nightshift [--home DIR] [--state DIR] start',
  help: 'Loads every job in DIR/jobs, schedules them, and runs until SIGTERM. A second daemon on the same\nstate folder is refused. SIGTERM stops scheduling, stops running jobs (SIGTERM, then SIGKILL after\ntheir killGrace), records everything and exits 0; a second SIGTERM kills the jobs at once.',
  options: {},
  run: async (ctx) => {
    if (ctx.positionals.length) throw new UsageError(`unexpected argument "${ctx.positionals[0]}"`);
    if (!existsSync(ctx.paths.home)) throw new UsageError(`the home folder ${ctx.paths.home} does not exist (use --home DIR)`);
    const closed = closeInheritedFds(closeSync);
    const log = createLogger();
    if (closed.length)
      log.info({ fds: closed }, 'closed file descriptors inherited without close-on-exec (no process nightshift starts may get them)');
    let exitCode: number = EXIT.ok;
    const daemon: Daemon = new Daemon({
      paths: ctx.paths,
      log,
      onHomeLost: () => {
        exitCode = EXIT.homeMoved;
        onSignal('SIGTERM');
      },
    });
    // Handlers first: until one is installed a SIGTERM kills node outright, and start() already
    // runs jobs (catch-up runs) — a stop during start-up would orphan them. A signal that comes
    // during start() is acted on once start() has returned.
    let signals = 0;
    let started = false;
    let stopRequested: ((sig: NodeJS.Signals) => void) | null = null;
    let pendingSignal: NodeJS.Signals | null = null;
    const onSignal = (sig: NodeJS.Signals): void => {
      signals++;
      if (signals === 1) {
        if (stopRequested) stopRequested(sig);
        else pendingSignal = sig;
      } else {
        log.warn({ signal: sig }, 'second stop signal: killing running jobs now');
        daemon.forceStop();
        // Still starting: nothing would act on the first signal before start() returns, which a
        // hung start never does. Open runs become "interrupted" at the next start.
        if (!started) process.exit(EXIT.unhealthy);
      }
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    try {
      await daemon.start();
      started = true;
    } catch (err) {
      if (err instanceof LockHeld) {
        ctx.io.err(`nightshift: ${err.message}`);
        return EXIT.usage;
      }
      log.fatal({ err: errorMessage(err) }, 'nightshift could not start');
      ctx.io.err(`nightshift: could not start: ${errorMessage(err)}`);
      return EXIT.unhealthy;
    }
    return await new Promise<number>((resolve) => {
      stopRequested = (sig) => {
        log.info({ signal: sig }, 'stop requested');
        daemon.stop().then(
          () => resolve(exitCode),
          (err: unknown) => {
            log.error({ err: errorMessage(err) }, 'stopping failed');
            resolve(EXIT.unhealthy);
          },
        );
      };
      if (pendingSignal) stopRequested(pendingSignal);
      process.on('uncaughtException', (err) => {
        log.fatal({ err: err.message, stack: err.stack }, 'nightshift crashed; systemd will restart it and open runs become "interrupted"');
        process.exit(EXIT.unhealthy);
      });
      process.on('unhandledRejection', (err) => log.error({ err: errorMessage(err) }, 'unhandled rejection (ignored)'));
    });
  },
};
