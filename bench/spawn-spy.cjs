// Preloaded into the daemon by `bench/latency.mjs --spy` (node --require): wraps
// child_process.spawn to note, for every child, the wall-clock time (ms, fractional) when spawn()
// was called and when it returned, so a run's start latency can be split into
// "before spawn()", "inside spawn()" (fork/exec) and "after spawn() until started_at".
// Lines "pid called returned" are kept in memory and written to $SPY_OUT at exit.
'use strict';
const cp = require('node:child_process');
const { syncBuiltinESMExports } = require('node:module');
const { writeFileSync } = require('node:fs');

const out = process.env.SPY_OUT;
const records = [];
const now = () => performance.timeOrigin + performance.now();
const original = cp.spawn;
cp.spawn = function spawn(...args) {
  const called = now();
  const child = original.apply(this, args);
  records.push(`${child.pid ?? 0} ${called} ${now()}`);
  return child;
};
syncBuiltinESMExports(); // ESM importers (execa: import { spawn } from 'node:child_process') see the wrapper
process.on('exit', () => {
  if (out) writeFileSync(out, records.join('\n') + '\n');
});
