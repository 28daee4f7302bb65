#!/usr/bin/env node
// Idle cost next to the tools users already know, measured side by side in one window on the
// same machine: nightshift with 101 jobs, a bare `node` process, Debian cron with the same 101
// lines, and PM2 with the same 101 jobs as cron-restarted apps. None of the schedules can fire
// during the window.
//
//   node bench/peers-idle.mjs [--seconds 600] [--settle 10] [--jobs 101] [--quick] [--keep] [--dist DIR]
//   (--quick: a 60 s window)
//
// Decisions:
// - Schedules: 101 five-field cron expressions in UTC (cron has no per-line time zone), drawn
//   like bench/lib.mjs's writeHome (daily, hourly, weekly, weekdays, monthly, every-6h, yearly,
//   lists) so that none fires from 2 minutes before the start until 10 minutes after the window;
//   names are written as numbers (Vixie cron has no ranges of names). The same expressions are
//   given to every tool; nightshift's jobs carry `timezone: UTC`.
// - The job: the same command for every tool, `/bin/bash -c 'echo "$EPOCHREALTIME NAME" >> FILE'`
//   (nightshift: argv command; cron: SHELL=/bin/bash in the cron.d file, so cron execs bash -c;
//   PM2: script /bin/bash, interpreter none). Each tool writes its own FILE; any line stamped
//   inside the window means a job ran and the figures are not idle (printed as a warning).
// - nightshift runs as the benches start it (lib.mjs startDaemon: node flags of
//   deploy/nightshift.service). Bare node: `node -e "setInterval(()=>{}, 1<<30)"`.
// - cron: `cron -f` in a private mount namespace holding only our /etc/cron.d file (peers-lib.mjs).
// - PM2: its God daemon with 101 apps {cron_restart, autorestart: false}; PM2 starts every app
//   once at `pm2 start` (it has no "wait for the first cron instant"), so those first runs end
//   before the window opens. Measured: the God daemon and its children. `pm2 kill` afterwards.
// - A peer that cannot be installed is printed as skipped and left empty (n/a) in the CSV.
// - Figures over the window only (samples at its start and end, all tools back to back):
//   RSS = sum of VmRSS over the process tree at the end (and of the main process alone);
//   CPU = utime+stime of the tree (ticks; children reaped in the window through cutime+cstime),
//   cross-checked with the threads' schedstat ns; wakeups = voluntary + involuntary context
//   switches summed over every thread of every process of the tree.
// Writes bench/out/peers-idle.json and bench/results/peers-idle.csv (+ .svg via chart.mjs).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { drawChart, RESULTS_DIR, writeCsv } from './chart.mjs';
import { Child, figure, flags, isMsg, machineInfo, MB, printFigures, printMachine, rng, round, runMain, safeCron, sleep, startDaemon, table, tempDir, toYaml, writeResult, deployedNodeFlags } from './lib.mjs';
import { diffTree, ensureCron, ensurePm2, numericCron, onCleanup, runCleanups, sampleTree, startCron, startPm2, waitCronUp } from './peers-lib.mjs';

const values = flags({ seconds: { type: 'string' }, settle: { type: 'string' }, jobs: { type: 'string' } });
const seconds = Number(values.seconds ?? (values.quick ? 60 : 600));
const settleMs = Number(values.settle ?? 10) * 1000;
const nJobs = Number(values.jobs ?? 101);
const command = `node bench/peers-idle.mjs ${process.argv.slice(2).join(' ')}`.trim();

/** The same 101 UTC schedules for every tool, none due in the window. */
function schedules(window) {
  const r = rng(101);
  const kinds = ['daily', 'daily', 'hourly', 'weekly', 'weekdays', 'monthly', 'every6h', 'yearly', 'list'];
  const out = [];
  for (let i = 0; i < nJobs; i++) {
    const name = `idle-${String(i).padStart(3, '0')}`;
    out.push({ name, expr: numericCron(safeCron(r, 'UTC', window, kinds[i % kinds.length])) });
  }
  return out;
}

const jobScript = (name, file) => `echo "$EPOCHREALTIME ${name}" >> ${file}`;

/** Lines of a job-output file stamped between two epoch-ms instants. */
function linesBetween(file, fromMs, toMs) {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { total: 0, inWindow: 0 };
  }
  const ts = text.split('\n').filter(Boolean).map((l) => Number(l.split(' ')[0]) * 1000);
  return { total: ts.length, inWindow: ts.filter((t) => t >= fromMs && t <= toMs).length };
}

await runMain(values, async () => {
  try {
    const machine = machineInfo(values);
    console.log(`== peers-idle: ${nJobs} jobs, none due; one ${seconds} s window for nightshift, bare node, Debian cron and PM2 side by side (settle ${settleMs / 1000} s)`);
    printMachine(machine);

    const tmp = tempDir('peers-idle');
    // lib.mjs's signal handler exits without its temp cleanup; this one also runs on Ctrl-C.
    onCleanup('remove temp folder', () => values.keep || rmSync(tmp, { recursive: true, force: true }));
    const now = Date.now();
    const window = { from: now - 2 * 60_000, to: now + 120_000 + settleMs + seconds * 1000 + 10 * 60_000 };
    const jobs = schedules(window);
    const files = { nightshift: join(tmp, 'ran-nightshift.txt'), cron: join(tmp, 'ran-cron.txt'), pm2: join(tmp, 'ran-pm2.txt') };

    // Peers: install what is missing, or skip with a clear line.
    const cronInfo = ensureCron();
    const pm2Info = ensurePm2();
    for (const [n, info] of [['Debian cron', cronInfo], ['PM2', pm2Info]]) {
      console.log(info.ok ? `peer ${n}: ${info.version ?? '?'} (${info.how})` : `peer ${n}: SKIPPED — ${info.why}`);
    }

    // nightshift home
    const home = join(tmp, 'home');
    const state = join(tmp, 'state');
    mkdirSync(join(home, 'jobs'), { recursive: true });
    mkdirSync(join(home, 'rules'), { recursive: true });
    mkdirSync(join(home, 'protected'), { recursive: true });
    writeFileSync(join(home, 'protected', 'policy.yaml'), toYaml({ timezone: 'UTC' }));
    for (const j of jobs) {
      writeFileSync(
        join(home, 'jobs', `${j.name}.yaml`),
        toYaml({ description: 'peers-idle: never due in the window', schedule: j.expr, timezone: 'UTC', command: ['/bin/bash', '-c', jobScript(j.name, files.nightshift)], timeout: '5m' }),
      );
    }

    const procs = {};
    const skipped = {};
    // PM2 first: its CLI is synchronous and blocks this process for a few seconds.
    if (pm2Info.ok) {
      try {
        const apps = jobs.map((j) => ({
          name: j.name,
          script: '/bin/bash',
          args: ['-c', jobScript(j.name, files.pm2)],
          interpreter: 'none',
          cron_restart: j.expr,
          autorestart: false,
        }));
        const t0 = performance.now();
        procs.pm2 = startPm2(pm2Info, { home: join(tmp, 'pm2-home'), apps });
        console.log(`PM2 ${pm2Info.version}: God daemon pid ${procs.pm2.pid}, ${apps.length} apps, pm2 start took ${round(performance.now() - t0, 0)} ms`);
      } catch (err) {
        skipped.pm2 = String(err.message ?? err);
        console.log(`peer PM2: SKIPPED — ${skipped.pm2}`);
      }
    } else skipped.pm2 = pm2Info.why;

    if (cronInfo.ok) {
      try {
        procs.cron = startCron({ lines: jobs.map((j) => `${j.expr} root ${jobScript(j.name, files.cron)}`), envLines: ['SHELL=/bin/bash', 'PATH=/usr/local/bin:/usr/bin:/bin'], tmp, name: 'nsb-peers-idle' });
        await waitCronUp(procs.cron);
        console.log(`Debian cron ${cronInfo.version}: pid ${procs.cron.pid}, ${jobs.length} lines, ${procs.cron.mode}`);
      } catch (err) {
        skipped.cron = String(err.message ?? err);
        console.log(`peer Debian cron: SKIPPED — ${skipped.cron}`);
        if (procs.cron) await procs.cron.stop();
        delete procs.cron;
      }
    } else skipped.cron = cronInfo.why;

    const bare = new Child('bare node', process.execPath, ['-e', 'setInterval(()=>{}, 1<<30)']);
    const daemon = startDaemon(values, { home, state });
    const started = await daemon.waitFor(isMsg('nightshift started'), { timeoutMs: 60_000, what: '"nightshift started"' });
    console.log(`nightshift: pid ${daemon.pid}, ${started.obj.jobs} jobs, ${started.obj.problems} problems, node flags ${deployedNodeFlags().join(' ')}; bare node pid ${bare.pid}`);
    if (started.obj.jobs !== nJobs || started.obj.problems) throw new Error(`nightshift loaded ${started.obj.jobs} jobs with ${started.obj.problems} problems (expected ${nJobs}, 0)`);
    await sleep(settleMs);

    const roots = { nightshift: daemon.pid, 'bare node': bare.pid, 'Debian cron': procs.cron?.pid, PM2: procs.pm2?.pid };
    const tools = Object.keys(roots).filter((t) => roots[t]);
    const wallFrom = Date.now();
    const a = Object.fromEntries(tools.map((t) => [t, sampleTree(roots[t])]));
    const progressEvery = Math.min(60, seconds);
    for (let left = seconds; left > 0; left -= progressEvery) {
      await sleep(Math.min(progressEvery, left) * 1000);
      if (left - progressEvery > 0) console.log(`  ${seconds - left + progressEvery} / ${seconds} s`);
    }
    const b = Object.fromEntries(tools.map((t) => [t, sampleTree(roots[t])]));
    const wallTo = Date.now();

    await daemon.stop();
    await bare.stop();
    if (procs.cron) await procs.cron.stop();
    if (procs.pm2) procs.pm2.stop();
    const db = new Database(join(state, 'nightshift.db'), { readonly: true });
    const nsRuns = db.prepare('SELECT count(*) AS n FROM runs').get().n;
    db.close();
    const ran = {
      nightshift: { ...linesBetween(files.nightshift, wallFrom, wallTo), runsRecorded: nsRuns },
      'Debian cron': linesBetween(files.cron, wallFrom, wallTo),
      PM2: linesBetween(files.pm2, wallFrom, wallTo),
    };

    const res = {};
    for (const t of tools) res[t] = diffTree(a[t], b[t]);
    const all = ['nightshift', 'bare node', 'Debian cron', 'PM2'];
    const skipWhy = { 'Debian cron': skipped.cron, PM2: skipped.pm2 };
    const rows = all.map((t) => {
      const d = res[t];
      if (!d) return { tool: t, 'RSS tree MB': 'skipped', 'RSS main MB': '', 'CPU ms': '', 'CPU ms (schedstat)': '', wakeups: '', 'wakeups main': '', processes: '', threads: '', 'job runs in window': '' };
      return {
        tool: t,
        'RSS tree MB': MB(d.rssTreeKB),
        'RSS main MB': MB(d.rssMainKB),
        'CPU ms': d.cpuMs,
        'CPU ms (schedstat)': d.cpuSchedMs,
        wakeups: d.wakeups,
        'wakeups main': d.wakeupsMain,
        processes: d.processes,
        threads: d.threads,
        'job runs in window': ran[t]?.inWindow ?? '',
      };
    });
    console.log(`\nwindow: ${round((wallTo - wallFrom) / 1000, 1)} s`);
    console.log(table(rows));
    for (const t of all) if (!res[t]) console.log(`${t}: skipped — ${skipWhy[t]}`);
    for (const t of ['nightshift', 'Debian cron', 'PM2']) {
      if (ran[t].inWindow) console.log(`WARNING: ${t} ran ${ran[t].inWindow} job(s) during the window — its figures are not idle`);
    }
    if (nsRuns) console.log(`WARNING: nightshift recorded ${nsRuns} run(s)`);
    console.log(`PM2's own first runs at "pm2 start" (before the window): ${ran.PM2.total - ran.PM2.inWindow}`);

    const subtitle = `${machine.nproc} CPU, ${round(machine.memTotalMB / 1024, 1)} GB RAM, ${machine.node}, ${machine.date.slice(0, 16).replace('T', ' ')} UTC, ${seconds} s window`;
    const notes = [
      `${nJobs} UTC cron schedules, none due in the window; same job command for every tool. Command: ${command}`,
      'RSS: sum of VmRSS over the process tree at the end (main = the top process); CPU: utime+stime of the tree in the window;',
      'wakeups: voluntary + involuntary context switches of all threads of the tree in the window.',
      ...all.filter((t) => !res[t]).map((t) => `${t}: skipped (${skipWhy[t]})`),
    ];
    mkdirSync(RESULTS_DIR, { recursive: true });
    const csv = writeCsv(
      join(RESULTS_DIR, 'peers-idle.csv'),
      { title: `Idle cost: ${nJobs} jobs, none due, ${seconds} s side by side`, subtitle, notes },
      ['tool', 'RSS tree [MB]', 'RSS main process [MB]', `CPU time in ${seconds} s [ms]`, `wakeups in ${seconds} s [context switches]`],
      all.map((t) => (res[t] ? [t, MB(res[t].rssTreeKB), MB(res[t].rssMainKB), res[t].cpuMs, res[t].wakeups] : [t, '', '', '', ''])),
    );
    console.log(`\nCSV: ${csv}\nchart: ${drawChart(csv)}`);

    const figs = [];
    for (const t of tools) {
      figs.push(figure(`peers-idle[${t}]: RSS tree`, MB(res[t].rssTreeKB), 'MB'));
      figs.push(figure(`peers-idle[${t}]: CPU over ${seconds} s`, res[t].cpuMs, 'ms'));
      figs.push(figure(`peers-idle[${t}]: wakeups over ${seconds} s`, res[t].wakeups, ''));
    }
    console.log('');
    printFigures(figs);
    writeResult('peers-idle', {
      bench: 'peers-idle',
      command,
      machine,
      params: { jobs: nJobs, seconds, settleMs, schedules: jobs.map((j) => j.expr), jobCommand: jobScript('NAME', 'FILE') },
      peers: { cron: cronInfo, pm2: { ...pm2Info, bin: undefined }, cronMode: procs.cron?.mode ?? null },
      skipped: skipWhy,
      window: { from: new Date(wallFrom).toISOString(), to: new Date(wallTo).toISOString() },
      ran,
      results: res,
      figures: figs,
    });
  } finally {
    runCleanups();
  }
});
