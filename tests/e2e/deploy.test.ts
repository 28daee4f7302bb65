// The systemd unit is shipped code: systemd-analyze checks that it parses, and the settings the
// daemon's design depends on are pinned here so that a "harmless" edit cannot drop them.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RESTART_LOOP_STARTS, RESTART_LOOP_WINDOW_MS } from '../../src/daemon.js';

const root = resolve(import.meta.dirname, '..', '..');
const unitPath = join(root, 'deploy', 'nightshift.service');
const rootUnitPath = join(root, 'deploy', 'nightshift-root.service');
const verifyScript = join(root, 'deploy', 'verify.sh');
const unitText = readFileSync(unitPath, 'utf8');
const rootUnitText = readFileSync(rootUnitPath, 'utf8');
/** node's own flags for the daemon: one list, in the unit, npm start and the CLI's first line. */
const DAEMON_NODE_FLAGS = ['--max-semi-space-size=1', '--memory-reducer-single-gc'];

function requireSystemdAnalyze(): void {
  const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    // Deliberately a failure, not a skip: a skipped check looks green in CI while the unit
    // goes unverified. CI has systemd-analyze; locally, install it.
    throw new Error(
      'systemd-analyze is not available, so deploy/nightshift.service cannot be verified. ' +
        'Install systemd (Debian/Ubuntu: apt-get install systemd) and run again. ' +
        `(${probe.error?.message ?? `exit ${probe.status}: ${probe.stderr}`})`,
    );
  }
}

function runVerify(...args: string[]): { status: number | null; output: string } {
  const r = spawnSync('bash', [verifyScript, ...args], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const tmpDirs: string[] = [];
afterEach(() => {
  for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function mutatedUnit(edit: (text: string) => string, base: string = unitText): string {
  const dir = mkdtempSync(join(tmpdir(), 'ns-deploy-'));
  tmpDirs.push(dir);
  const path = join(dir, 'nightshift.service');
  const edited = edit(base);
  expect(edited).not.toBe(base);
  writeFileSync(path, edited);
  return path;
}

describe.each([
  { unit: 'nightshift.service', text: unitText },
  { unit: 'nightshift-root.service', text: rootUnitText },
])('deploy/verify.sh on deploy/$unit', ({ unit, text }) => {
  it('passes systemd-analyze verify', () => {
    requireSystemdAnalyze();
    const { status, output } = unit === 'nightshift.service' ? runVerify() : runVerify(join(root, 'deploy', unit));
    expect(status, output).toBe(0);
    expect(output).toContain(`${unit} OK`);
  });

  it('fails on mistakes that systemd-analyze only warns about', () => {
    requireSystemdAnalyze();
    const typo = runVerify(mutatedUnit((t) => t.replace(/^KillMode=mixed$/m, 'KillMode=mixed\nKilMode=mixed'), text));
    expect(typo.status, typo.output).toBe(1);
    expect(typo.output).toContain("Unknown key 'KilMode'");

    const badValue = runVerify(mutatedUnit((t) => t.replace(/^WatchdogSec=30s$/m, 'WatchdogSec=thirty'), text));
    expect(badValue.status, badValue.output).toBe(1);
    expect(badValue.output).toContain('thirty');
  });

  it('refuses a unit whose ExecStart no longer runs the package entry point', () => {
    requireSystemdAnalyze();
    const r = runVerify(mutatedUnit((t) => t.replace('/opt/nightshift/dist/cli.js', '/opt/nightshift/dist/main.js'), text));
    expect(r.status, r.output).toBe(1);
    expect(r.output).toContain('package.json bin');
  });

  it('refuses a unit that would keep bubblewrap from containing jobs and fixes', () => {
    requireSystemdAnalyze();
    const tunables = runVerify(
      mutatedUnit((t) => t.replace(/^ProtectKernelModules=yes$/m, 'ProtectKernelModules=yes\nProtectKernelTunables=yes'), text),
    );
    expect(tunables.status, tunables.output).toBe(1);
    expect(tunables.output).toContain('ProtectKernelTunables= keeps bubblewrap');
    const noUserNs = runVerify(mutatedUnit((t) => t.replace(/^RestrictNamespaces=.*$/m, 'RestrictNamespaces=mnt pid ipc'), text));
    expect(noUserNs.status, noUserNs.output).toBe(1);
    expect(noUserNs.output).toContain("RestrictNamespaces= must be exactly 'user mnt pid ipc'");
    const more = runVerify(mutatedUnit((t) => t.replace(/^RestrictNamespaces=.*$/m, 'RestrictNamespaces=user mnt pid ipc net'), text));
    expect(more.status, more.output).toBe(1);
  });
});

describe('deploy/verify.sh on a unit that runs the daemon as root', () => {
  it('refuses one without the capabilities bubblewrap and setpriv need, or without NoNewPrivileges', () => {
    requireSystemdAnalyze();
    const noSet = runVerify(mutatedUnit((t) => t.replace(/^CapabilityBoundingSet=.*\n/m, ''), rootUnitText));
    expect(noSet.status, noSet.output).toBe(1);
    expect(noSet.output).toContain('runs the daemon as root without CapabilityBoundingSet=');
    for (const cap of ['CAP_SYS_ADMIN', 'CAP_SETFCAP', 'CAP_SETUID', 'CAP_SETGID']) {
      const r = runVerify(
        mutatedUnit(
          (t) =>
            t.replace(
              /^CapabilityBoundingSet=(.*)$/m,
              (_, v: string) =>
                `CapabilityBoundingSet=${v
                  .split(' ')
                  .filter((c) => c !== cap)
                  .join(' ')}`,
            ),
          rootUnitText,
        ),
      );
      expect(r.status, r.output).toBe(1);
      expect(r.output).toContain(`CapabilityBoundingSet= lacks ${cap}`);
    }
    const nnp = runVerify(mutatedUnit((t) => t.replace(/^NoNewPrivileges=yes$/m, 'NoNewPrivileges=no'), rootUnitText));
    expect(nnp.status, nnp.output).toBe(1);
    expect(nnp.output).toContain('without NoNewPrivileges=yes');
  });

  it('refuses the plain unit with its User= dropped (it would run as root with every capability)', () => {
    requireSystemdAnalyze();
    const r = runVerify(mutatedUnit((t) => t.replace(/^User=nightshift\n/m, '')));
    expect(r.status, r.output).toBe(1);
    expect(r.output).toContain('runs the daemon as root without CapabilityBoundingSet=');
  });
});

/** [section] -> key -> values, active lines only (later assignments appended, as systemd does). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header?.[1]) {
      current = new Map();
      sections.set(header[1], current);
      continue;
    }
    const eq = line.indexOf('=');
    if (!current || eq < 0) throw new Error(`unparseable unit line: ${raw}`);
    const key = line.slice(0, eq).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

describe('the daemon runs with the same node flags however it is started', () => {
  it('the unit, npm start and the CLI first line name the same flags, and node accepts them', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: { start: string } };
    expect(pkg.scripts.start).toContain(`node ${DAEMON_NODE_FLAGS.join(' ')} dist/cli.js`);
    expect(readFileSync(join(root, 'src', 'cli.ts'), 'utf8').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${DAEMON_NODE_FLAGS.join(' ')}`);
    expect(unitText).toContain(`ExecStart=/usr/bin/node ${DAEMON_NODE_FLAGS.join(' ')} /opt/nightshift/dist/cli.js`);
    const r = spawnSync(process.execPath, [...DAEMON_NODE_FLAGS, '-e', 'process.exit(7)']);
    expect(r.status, String(r.stderr)).toBe(7);
  });
});

describe('deploy/nightshift.service contract', () => {
  const unit = parseUnit(unitText);
  const get = (section: string, key: string): string | undefined => unit.get(section)?.get(key)?.at(-1);

  it('runs the installed entry point as a notify service that only the daemon may notify', () => {
    expect(get('Service', 'ExecStart')).toBe(
      `/usr/bin/node ${DAEMON_NODE_FLAGS.join(' ')} /opt/nightshift/dist/cli.js --home /etc/nightshift --state /var/lib/nightshift start`,
    );
    expect(get('Service', 'Type')).toBe('notify');
    expect(get('Service', 'NotifyAccess')).toBe('main');
    expect(get('Service', 'WatchdogSec')).toBe('30s');
    expect(get('Service', 'Restart')).toBe('on-failure');
    expect(get('Service', 'RestartSec')).toBe('2s');
    expect(get('Install', 'WantedBy')).toBe('multi-user.target');
  });

  it('gives up restarting after 5 starts in 10 minutes ([Unit]), the loop the daemon pages for and the READMEs describe', () => {
    // systemd reads the start limit in [Unit]; in [Service] StartLimitIntervalSec is an unknown key
    // that systemd ignores (systemd-analyze verify says so), so the limit would silently change
    expect(get('Unit', 'StartLimitIntervalSec')).toBe('10min');
    expect(get('Unit', 'StartLimitBurst')).toBe('5');
    for (const key of ['StartLimitIntervalSec', 'StartLimitBurst', 'StartLimitInterval'])
      expect(unit.get('Service')?.has(key), `${key} in [Service]`).toBe(false);
    // The daemon's own count of a restart loop is the same: the last start systemd allows is the one
    // that raises daemon-restart-loop (a page only a later start could send would never go out).
    expect(RESTART_LOOP_STARTS).toBe(5);
    expect(RESTART_LOOP_WINDOW_MS).toBe(10 * 60_000);
    // what operators read says the same numbers
    const readme = readFileSync(join(root, 'README.md'), 'utf8').replace(/\s+/g, ' ');
    expect(readme).toContain('Five starts of the daemon within 10 minutes (a crash loop) raise the event `daemon-restart-loop`');
    const deployReadme = readFileSync(join(root, 'deploy', 'README.md'), 'utf8').replace(/\s+/g, ' ');
    expect(deployReadme).toContain('started more than 5 times in 10 minutes, systemd stops trying');
  });

  it('lets the daemon stop its own jobs, with time for their kill grace', () => {
    expect(get('Service', 'KillMode')).toBe('mixed');
    const stop = /^(\d+)(s|min)$/.exec(get('Service', 'TimeoutStopSec') ?? '');
    expect(stop, 'TimeoutStopSec in s or min').not.toBeNull();
    const seconds = Number(stop?.[1]) * (stop?.[2] === 'min' ? 60 : 1);
    expect(seconds).toBeGreaterThanOrEqual(30); // default killGrace 10 s + records + margin
  });

  it('runs as a dedicated user inside the sandbox, with only the state folder writable', () => {
    expect(get('Service', 'User')).toBe('nightshift');
    expect(get('Service', 'Group')).toBe('nightshift');
    expect(get('Service', 'StateDirectory')).toBe('nightshift');
    expect(get('Service', 'StateDirectoryMode')).toBe('0750');
    expect(get('Service', 'ProtectSystem')).toBe('strict');
    expect(get('Service', 'ReadWritePaths')).toBe('');
    expect(unitText).toMatch(/^#\s*ReadWritePaths=\/\S+/m); // the example for operators
    for (const key of ['NoNewPrivileges', 'PrivateTmp', 'ProtectHome', 'ProtectKernelModules', 'ProtectControlGroups']) {
      expect(get('Service', key), key).toBe('yes');
    }
    // sd_notify and the control socket are AF_UNIX.
    expect(get('Service', 'RestrictAddressFamilies')?.split(/\s+/).sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_UNIX']);
  });

  it('allows exactly the namespaces bubblewrap needs, and none of the settings that break it', () => {
    expect(get('Service', 'RestrictNamespaces')?.split(/\s+/).sort()).toEqual(['ipc', 'mnt', 'pid', 'user']);
    // Each of these makes bwrap fail inside the unit (checked: a read-only bind over /proc/sys
    // makes "Can't mount proc on /newroot/proc: Operation not permitted").
    for (const key of ['ProtectKernelTunables', 'ProtectProc', 'ProcSubset', 'PrivateUsers'])
      expect(get('Service', key), key).toBeUndefined();
  });

  it('does not set MemoryDenyWriteExecute, which kills V8 at start', () => {
    expect(get('Service', 'MemoryDenyWriteExecute')).toBeUndefined();
  });
});

describe('deploy/nightshift-root.service contract (root mode, against the plain unit)', () => {
  const plain = parseUnit(unitText);
  const rootUnit = parseUnit(rootUnitText);
  const get = (section: string, key: string): string | undefined => rootUnit.get(section)?.get(key)?.at(-1);
  /** The only [Service] keys in which root mode may differ from the plain unit, each for its reason. */
  const DIFFERENT = ['User', 'Group', 'ProtectHome', 'CapabilityBoundingSet'];

  it('is the plain unit in every other line: the same start, watchdog, restart limits, stop, state folder and sandbox', () => {
    expect(rootUnit.get('Unit')).toEqual(plain.get('Unit'));
    expect(rootUnit.get('Install')).toEqual(plain.get('Install'));
    const service = (u: Map<string, Map<string, string[]>>) =>
      [...(u.get('Service') ?? new Map<string, string[]>())].filter(([k]) => !DIFFERENT.includes(k));
    expect(service(rootUnit)).toEqual(service(plain));
    // which includes the leash: only the state folder writable, a private /tmp, no setuid gains,
    // bubblewrap's namespaces and nothing that breaks it
    for (const [key, value] of [
      ['ProtectSystem', 'strict'],
      ['ReadWritePaths', ''],
      ['PrivateTmp', 'yes'],
      ['NoNewPrivileges', 'yes'],
      ['StateDirectory', 'nightshift'],
      ['StateDirectoryMode', '0750'],
      ['UMask', '0027'],
      ['RestrictNamespaces', 'user mnt pid ipc'],
    ])
      expect(get('Service', key!), key).toBe(value);
    for (const key of ['ProtectKernelTunables', 'ProtectProc', 'ProcSubset', 'PrivateUsers', 'MemoryDenyWriteExecute'])
      expect(get('Service', key), key).toBeUndefined();
  });

  it('runs the daemon as root (no User=), with /home readable for jobs with `user:`, and only the capabilities bubblewrap, setpriv and a rollback need', () => {
    expect(get('Service', 'User')).toBeUndefined();
    expect(get('Service', 'Group')).toBeUndefined();
    expect(get('Service', 'ProtectHome')).toBe('read-only');
    expect(get('Service', 'CapabilityBoundingSet')?.split(/\s+/).sort()).toEqual(
      [
        'CAP_SYS_ADMIN', // bwrap: mounts (jobs of root's have no user namespace), the rollback's sandbox
        'CAP_SETFCAP', // bwrap: mapping uid 0 into a fix's user namespace
        'CAP_SETUID', // setpriv to a job's user:
        'CAP_SETGID',
        'CAP_SETPCAP', // bwrap --cap-drop ALL empties the bounding set
        'CAP_KILL', // stopping a job that runs as another user
        'CAP_CHOWN', // the rollback (launch.ts, profile restore) puts back owners and modes
        'CAP_FOWNER',
        'CAP_DAC_OVERRIDE',
        'CAP_FSETID',
      ].sort(),
    );
  });

  it('says at its top what root mode changes for safety', () => {
    const header = rootUnitText.slice(0, rootUnitText.indexOf('[Unit]')).replace(/^# ?/gm, '').replace(/\s+/g, ' ');
    expect(header).toContain("Jobs of root's crontab run as uid 0, as they did under cron, but WITHOUT ANY CAPABILITY");
    expect(header).toContain("reads another user's 0600 file");
    expect(header).toContain('Jobs with `user: NAME` run as that account');
    expect(header).toContain('Fixes, brains and probes keep running unprivileged: uid 65534 inside a user namespace');
    expect(header).toContain('The leash holds');
    // and the launcher does what it says: fixes and probes as 65534 without capabilities, jobs as root without any
    const launch = readFileSync(join(root, 'src', 'run', 'launch.ts'), 'utf8');
    expect(launch).toMatch(/SANDBOX_UID = 65534/);
    expect(launch).toMatch(/'--unshare-user', '--uid', String\(SANDBOX_UID\).*'--cap-drop', 'ALL'/);
    expect(launch).toMatch(/Jobs and notifications keep uid 0[^\n]*\n\s*return \['--cap-drop', 'ALL'\];/);
  });
});
