// Pings over HTTP (/ping/KEY on the dashboard's port) against a real daemon, with Node's fetch to
// 127.0.0.1 and the real SQLite file: the key from `nightshift ping-url`, what a ping records, what
// a wrong key gets (exactly what an unknown one gets, and nothing changes), rotation, the limits,
// and X-Forwarded-For only from the reverse proxy the policy names. Waits are for what the
// database shows, never a fixed time.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { cli, query, trackDaemons, waitFor } from '../support/helpers.js';
import { dashboard, rawRequest, type Dash } from '../support/browser.js';

const WAIT_MS = 30_000;
vi.setConfig({ testTimeout: 180_000, hookTimeout: 120_000 });

const track = trackDaemons();

const EXT = 'schedule: "0 3 * * *"\ndescription: an external job\n';

const ns = (d: { home: string; state: string }, ...args: string[]) => cli(['--home', d.home, '--state', d.state, ...args]);

async function pingUrl(d: Dash, job: string, ...more: string[]): Promise<string> {
  const r = await ns(d, 'ping-url', job, ...more);
  expect(r.exitCode, r.stderr).toBe(0);
  return r.stdout.trim();
}

const heartbeats = (d: { state: string }) =>
  query<{ id: number; job: string; kind: string; source: string; duration_ms: number | null; output: string | null }>(
    d.state,
    'SELECT id, job, kind, source, duration_ms, output FROM heartbeats ORDER BY id',
  );

/** Status, body and every header but Date: what must not tell a wrong key from an unknown one. */
async function answer(url: string, init?: RequestInit): Promise<{ status: number; body: string; headers: Record<string, string> }> {
  const r = await fetch(url, init);
  const headers = Object.fromEntries([...r.headers.entries()].filter(([k]) => k !== 'date'));
  return { status: r.status, body: await r.text(), headers };
}

/** A key of the right shape that no job has. */
const randomKey = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
/** The same key with its last character changed: right shape, right length, wrong. */
const wrongOf = (key: string) => key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
const keyOf = (url: string) => url.split('/').pop()!;

describe('pings over HTTP', () => {
  it('ping-url prints one address per job; GET and POST record the job alive with the body as output (capped); start then success has a duration; fail raises an alert', async () => {
    const d = await dashboard(track, { ext: EXT, own: 'command: ["true"]\n' });
    const url = await pingUrl(d, 'ext');
    expect(url).toMatch(new RegExp(`^${d.url}/ping/[A-Za-z0-9_-]{43}$`));
    // The same address every time, and in --json.
    expect(await pingUrl(d, 'ext')).toBe(url);
    const j = JSON.parse((await ns(d, 'ping-url', 'ext', '--json')).stdout) as Record<string, unknown>;
    expect(j).toMatchObject({ job: 'ext', url, created: false, rotated: false });
    expect(query(d.state, "SELECT kind FROM events WHERE kind LIKE 'ping-key-%'")).toEqual([{ kind: 'ping-key-created' }]);

    // Clear refusals: a job nightshift runs, a job that does not exist, a name that is none.
    const own = await ns(d, 'ping-url', 'own');
    expect(own.exitCode).toBe(2);
    expect(own.stderr).toContain('job "own" is run by nightshift itself');
    const none = await ns(d, 'ping-url', 'nope');
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain('no job named "nope"');
    expect((await ns(d, 'ping-url', 'Bad Name')).exitCode).toBe(2);
    expect(query(d.state, 'SELECT job FROM ping_keys')).toEqual([{ job: 'ext' }]);
    const help = await ns(d, 'ping-url', '--help');
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain('--rotate');

    // GET: alive, no output; curl's -fsS sees 200 and "OK".
    const got = await fetch(url);
    expect([got.status, await got.text(), got.headers.get('content-type')]).toEqual([200, 'OK\n', 'text/plain; charset=utf-8']);
    expect(heartbeats(d)).toEqual([expect.objectContaining({ job: 'ext', kind: 'success', source: 'http', output: null })]);
    const status = JSON.parse((await ns(d, 'status', '--json')).stdout) as { jobs: Array<{ name: string; lastSuccessAt: number | null }> };
    expect(status.jobs.find((x) => x.name === 'ext')!.lastSuccessAt).toBe(
      query<{ at: number }>(d.state, 'SELECT at FROM heartbeats')[0]!.at,
    );

    // POST /start with a body (any content type), then a success with a body over the cap.
    const start = await fetch(`${url}/start`, {
      method: 'POST',
      body: 'backup <b>started</b>\n\x1b[31mred',
      headers: { 'content-type': 'text/plain' },
    });
    expect(start.status).toBe(200);
    const big = `${'x'.repeat(10 * 1024 - 1)}é${'y'.repeat(200_000)}`; // é straddles the cut
    const done = await fetch(url, { method: 'POST', body: big, headers: { 'content-type': 'application/octet-stream' } });
    expect([done.status, await done.text()]).toEqual([200, 'OK\n']);
    const rows = heartbeats(d);
    expect(rows.map((r) => [r.kind, r.source])).toEqual([
      ['success', 'http'],
      ['start', 'http'],
      ['success', 'http'],
    ]);
    expect(rows[1]!.output).toBe('backup <b>started</b>\n\x1b[31mred');
    expect(rows[2]!.duration_ms).toEqual(expect.any(Number));
    expect(rows[2]!.output!.endsWith('\ufffd\n(cut)')).toBe(true);
    expect(Buffer.byteLength(rows[2]!.output!.replace(/\ufffd\n\(cut\)$/, ''))).toBe(10 * 1024 - 1);

    // /fail: a failure, with its body in the alert's words.
    const fail = await fetch(`${url}/fail`, { method: 'POST', body: 'disk full on /srv' });
    expect(fail.status).toBe(200);
    await waitFor(
      () => query(d.state, "SELECT 1 FROM alerts WHERE fingerprint = 'ext:failed' AND resolved_at IS NULL").length,
      WAIT_MS,
      'the alert',
    );
    const alert = query<{ message: string }>(d.state, "SELECT message FROM alerts WHERE fingerprint = 'ext:failed'")[0]!;
    expect(alert.message).toContain('disk full on /srv');
    // An exit status in the path, as `curl URL/$?` sends it: 0 is a success (it resolves the alert), 3 a failure.
    expect((await fetch(`${url}/0`)).status).toBe(200);
    await waitFor(
      () => query(d.state, "SELECT 1 FROM alerts WHERE fingerprint = 'ext:failed' AND resolved_at IS NOT NULL").length,
      WAIT_MS,
      'resolved',
    );
    expect((await fetch(`${url}/3`)).status).toBe(200);
    expect(heartbeats(d).map((r) => r.kind)).toEqual(['success', 'start', 'success', 'fail', 'success', 'fail']);

    // history shows the output as data (the escape made visible); --json has it whole.
    const hist = await ns(d, 'history', 'ext');
    expect(hist.stdout).toContain('ping over http');
    expect(hist.stdout).toContain('output: backup <b>started</b> ⏎ ␛[31mred');
    expect(hist.stdout).not.toContain('\x1b');
    const hj = JSON.parse((await ns(d, 'history', 'ext', '--json')).stdout) as Array<{ output: string | null }>;
    expect(hj.some((p) => p.output === 'disk full on /srv')).toBe(true);

    // The job's page lists the pings with their output, as text (a session from a real login link).
    const link = JSON.parse((await ns(d, 'login', '--json')).stdout) as { url: string };
    const login = await fetch(link.url, {
      method: 'POST',
      body: 'label=test',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const page = await (await fetch(`${d.url}/jobs/ext`, { headers: { cookie } })).text();
    expect(page).toContain('<h2>Pings</h2>');
    expect(page).toContain('backup &lt;b&gt;started&lt;/b&gt;\n␛[31mred');
    expect(page).not.toContain('<b>started');
    expect(page).toContain('disk full on /srv');
  });

  it('a wrong key, an unknown key, a malformed one and the key of a job that is no longer external get byte-identical answers and change nothing', async () => {
    const d = await dashboard(track, { ext: EXT, other: EXT });
    const url = await pingUrl(d, 'ext');
    const otherUrl = await pingUrl(d, 'other');
    const key = keyOf(url);
    // `other` becomes a job nightshift runs: its key proves nothing any more.
    writeFileSync(join(d.home, 'jobs', 'other.yaml'), 'command: ["true"]\n');
    await waitFor(
      () => query(d.state, "SELECT 1 FROM events WHERE kind = 'job-changed' AND job = 'other'").length,
      WAIT_MS,
      'other changed',
    );
    const before = heartbeats(d);
    const eventsBefore = query(d.state, 'SELECT id FROM events').length;
    const bad = [
      `${d.url}/ping/${wrongOf(key)}`,
      `${d.url}/ping/${randomKey()}`,
      `${d.url}/ping/${key.slice(0, 20)}`,
      `${d.url}/ping/not-a-key/start`,
      `${d.url}/ping/${key}/nonsense`,
      `${d.url}/ping/${key}/256`,
      otherUrl,
      `${d.url}/ping/`,
    ];
    const answers = [];
    for (const u of bad) {
      answers.push(await answer(u));
      answers.push(await answer(`${u}/fail`.replace('//fail', '/fail'), { method: 'POST', body: 'x'.repeat(50_000) }));
    }
    const first = answers[0]!;
    expect(first).toEqual({
      status: 404,
      body: 'not found\n',
      headers: expect.objectContaining({ 'content-type': 'text/plain; charset=utf-8', 'content-length': '10' }) as unknown,
    });
    for (const a of answers) expect(a).toEqual(first);
    // Nothing was recorded, journaled or logged as a fault; the good key still works.
    expect(heartbeats(d)).toEqual(before);
    expect(query(d.state, 'SELECT id FROM events').length).toBe(eventsBefore);
    expect(d.lines().filter((l) => l.msg === 'dashboard request failed')).toEqual([]);
    expect((await fetch(url)).status).toBe(200);
    // HEAD is not a ping (curl -I): refused, and records nothing.
    expect((await fetch(url, { method: 'HEAD' })).status).toBe(405);
    expect(heartbeats(d)).toHaveLength(before.length + 1);
    // The Host check still applies: a rebinding page's request names another host.
    expect((await rawRequest(d.port, 'GET', `/ping/${key}`, { host: 'evil.example' })).status).toBe(421);
    expect(heartbeats(d)).toHaveLength(before.length + 1);
  });

  it('--rotate makes a new key and the old one stops at once; a removed job loses its key', async () => {
    const d = await dashboard(track, { ext: EXT });
    const old = await pingUrl(d, 'ext');
    expect((await fetch(old)).status).toBe(200);
    const r = await ns(d, 'ping-url', 'ext', '--rotate');
    expect(r.exitCode).toBe(0);
    const fresh = r.stdout.trim();
    expect(r.stderr).toContain('the old address answers "not found" from now on');
    expect(fresh).not.toBe(old);
    const refused = await answer(old);
    expect(refused).toEqual(await answer(`${d.url}/ping/${randomKey()}`));
    expect(refused.status).toBe(404);
    expect((await fetch(fresh)).status).toBe(200);
    expect(await pingUrl(d, 'ext')).toBe(fresh);
    const rotated = query<{ message: string }>(d.state, "SELECT message FROM events WHERE kind = 'ping-key-rotated'");
    expect(rotated).toEqual([{ message: 'ping key of ext replaced: the old ping address stopped working' }]);
    expect(heartbeats(d)).toHaveLength(2);

    rmSync(join(d.home, 'jobs', 'ext.yaml'));
    await waitFor(() => query(d.state, 'SELECT job FROM ping_keys').length === 0, WAIT_MS, 'the key deleted with its job');
    expect((await answer(fresh)).status).toBe(404);
    expect(heartbeats(d)).toHaveLength(2);
  });

  it('wrong keys are limited per client (429 after 30) and in all (after 600); the right key still works; X-Forwarded-For counts only from the proxy the policy names', async () => {
    // No publicUrl: X-Forwarded-For is anyone's words and ignored; every request here is one client.
    const d = await dashboard(track, { ext: EXT });
    const url = await pingUrl(d, 'ext');
    const statuses: number[] = [];
    for (let i = 0; i < 32; i++) {
      const r = await fetch(`${d.url}/ping/${randomKey()}`, { headers: { 'x-forwarded-for': `198.51.100.${i}` } });
      statuses.push(r.status);
      await r.arrayBuffer();
    }
    expect(statuses.slice(0, 30).every((s) => s === 404)).toBe(true);
    expect(statuses.slice(30)).toEqual([429, 429]);
    const limited = await fetch(`${d.url}/ping/${randomKey()}`);
    expect([limited.status, limited.headers.get('retry-after')]).toEqual([429, '60']);
    await limited.arrayBuffer();
    // Only failures count: the job's own pings from the same address go through.
    for (let i = 0; i < 3; i++) expect((await fetch(url, { method: 'POST', body: `ok ${i}` })).status).toBe(200);
    expect(heartbeats(d).map((r) => r.output)).toEqual(['ok 0', 'ok 1', 'ok 2']);

    // Behind the proxy the policy names (publicUrl; here a loopback one), each forwarded client has its
    // own count, and all together are limited too.
    const p = await dashboard(track, { ext: EXT }, { proxied: true });
    const purl = await pingUrl(p, 'ext');
    expect(purl.startsWith(`${p.url}/ping/`)).toBe(true);
    const wrong = async (client: string) => {
      // The proxy appends the peer it saw; what the client wrote before it is not trusted.
      const r = await fetch(`${p.url}/ping/${randomKey()}`, { headers: { 'x-forwarded-for': `10.9.9.9, ${client}` } });
      await r.arrayBuffer();
      return r.status;
    };
    const a: number[] = [];
    for (let i = 0; i < 31; i++) a.push(await wrong('203.0.113.1'));
    expect(a.slice(0, 30).every((s) => s === 404)).toBe(true);
    expect(a[30]).toBe(429);
    expect(await wrong('203.0.113.2')).toBe(404); // another client has its own count
    // 600 in all a minute: 19 more clients of 30 fill it (30 + 1 + 19 × 30 = 601 > 600).
    const all: number[] = [];
    for (let c = 3; c < 22; c++) for (let i = 0; i < 30; i++) all.push(await wrong(`203.0.113.${c}`));
    expect(all.filter((s) => s === 404)).toHaveLength(600 - 31);
    expect(all.slice(600 - 31).every((s) => s === 429)).toBe(true);
    expect(await wrong('203.0.113.200')).toBe(429); // a new client too, once the whole minute is spent
    expect((await fetch(purl)).status).toBe(200);
    expect(heartbeats(p)).toHaveLength(1);
  });

  it('with the dashboard off, ping-url prints the path and says how to turn it on (exit 2); without a daemon, exit 3', async () => {
    const d = await dashboard(track, { ext: EXT }, { off: true });
    const r = await ns(d, 'ping-url', 'ext');
    expect(r.exitCode).toBe(2);
    expect(r.stdout.trim()).toMatch(/^\/ping\/[A-Za-z0-9_-]{43}$/);
    expect(r.stderr).toContain('the dashboard is off (dashboard.listen: off in protected/policy.yaml)');
    expect(r.stderr).toContain('Set dashboard.listen');
    await d.stop();
    const down = await ns(d, 'ping-url', 'ext');
    expect(down.exitCode).toBe(3);
    expect(down.stderr).toContain('the nightshift daemon is not running');
  });
});
