#!/usr/bin/env node
// A job that prints 1 GiB: the daemon's memory must stay flat (output is drained into a capped
// log, never buffered). Prints baseline and peak RSS of the daemon while the job runs.
//   node bench/flood.mjs [--bytes N]
import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const args = process.argv.slice(2);
const bytes = Number(args[args.indexOf('--bytes') + 1] || 1024 ** 3) || 1024 ** 3;

const rssKb = (pid) => {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
};

const home = mkdtempSync(join(tmpdir(), 'ns-flood-'));
mkdirSync(join(home, 'jobs'));
writeFileSync(join(home, 'jobs', 'flood.yaml'), `command: ["node", "${join(ROOT, 'tests', 'fixtures', 'flood.js')}", "${bytes}"]\ntimeout: 10m\n`);
const daemon = execa('node', [CLI, '--home', home, 'start'], { reject: false, buffer: false, stdin: 'ignore' });
let out = '';
daemon.stdout.on('data', (c) => (out += c));
try {
  while (!out.includes('nightshift started')) await sleep(20);
  await sleep(1000);
  const base = rssKb(daemon.pid);
  let peak = base;
  const t0 = Date.now();
  const run = execa('node', [CLI, '--home', home, 'run', 'flood', '--json'], { reject: false });
  let done = false;
  run.finally(() => (done = true));
  while (!done) {
    peak = Math.max(peak, rssKb(daemon.pid));
    await sleep(50);
  }
  const r = await run;
  const row = JSON.parse(r.stdout);
  const result = {
    bytes: row.output_bytes,
    outcome: row.outcome,
    seconds: (Date.now() - t0) / 1000,
    logFileBytes: statSync(row.log_path).size,
    daemonRssBaselineMB: +(base / 1024).toFixed(1),
    daemonRssPeakMB: +(peak / 1024).toFixed(1),
    growthMB: +((peak - base) / 1024).toFixed(1),
  };
  console.log(`flood: ${(result.bytes / 1024 ** 3).toFixed(2)} GiB printed in ${result.seconds.toFixed(1)} s, outcome ${result.outcome}, log file ${result.logFileBytes} bytes`);
  console.log(`daemon RSS: baseline ${result.daemonRssBaselineMB} MB, peak ${result.daemonRssPeakMB} MB, growth ${result.growthMB} MB`);
  mkdirSync(join(ROOT, 'bench', 'out'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'out', 'flood.json'), JSON.stringify(result, null, 2));
} finally {
  daemon.kill('SIGTERM');
  await daemon;
  rmSync(home, { recursive: true, force: true });
}
