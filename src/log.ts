// JSON lines on stdout for journald: one event per state change. Synchronous writes, because a
// daemon that is about to die must not lose the line that says why.
import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

export const REDACT_PATHS = [
  'env',
  '*.env',
  'spec.env',
  '*.spec.env',
  'smtp.pass',
  '*.smtp.pass',
  'policy.digest.smtp.pass',
  'pass',
  'password',
];

export function createLogger(opts: { level?: string; destination?: NodeJS.WritableStream | number } = {}): Logger {
  const dest = typeof opts.destination === 'object' ? opts.destination : pino.destination({ dest: opts.destination ?? 1, sync: true });
  return pino(
    {
      level: opts.level ?? process.env.NIGHTSHIFT_LOG_LEVEL ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
