#!/usr/bin/env -S node --max-semi-space-size=1 --memory-reducer-single-gc
// The program: `node dist/cli.js` (the `nightshift` command). The commands live in cli/; this
// path stays put so that a systemd unit written for an older version starts a newer one.
import { EXIT } from './cli/context.js';
import { main } from './cli/main.js';
import { errorMessage } from './errors.js';

// `nightshift history | head` closes the pipe early: the reader has what it wanted, which is not
// an error of ours (no stack trace). The daemon's own stdout is its log: a log reader that went
// away must not stop the jobs, so there the lines are dropped instead.
const daemon = process.argv.slice(2).includes('start');
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    if (!daemon) process.exit(process.exitCode ?? EXIT.ok);
  });
}
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // The daemon keeps handles open until its stop completes; commands end here.
    if (process.argv.slice(2).includes('start')) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`nightshift: ${errorMessage(err)}\n`);
    process.exit(EXIT.unhealthy);
  },
);
