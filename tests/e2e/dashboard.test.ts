// The dashboard in a real browser (Chromium) against a real daemon on a temp home: logging in with
// the link of `nightshift login`, the approval cards and the buttons, the kill switch, hostile
// output, requests from the wrong place, the phone layout and accessibility. Every wait is for
// what the page or the database shows, never a fixed time.
import { readFileSync, existsSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import Database from 'better-sqlite3';
import { cli, makeHome, pageCapture, query, startDaemon, tempDir, trackDaemons, waitFor } from '../support/helpers.js';
import {
  dashboard,
  freePort,
  logIn,
  loginLink,
  rawRequest,
  reloadUntil,
  screenshotDir,
  useBrowser,
  type Page,
} from '../support/browser.js';

const WAIT_MS = 30_000;
vi.setConfig({ testTimeout: 180_000, hookTimeout: 120_000 });

const track = trackDaemons();
const { daemons, dirs } = track;
const { newPage, dialogs } = useBrowser();

const ns = (d: { home: string; state: string }, ...args: string[]) => cli(['--home', d.home, '--state', d.state, ...args]);
const events = (d: { state: string }, kind: string) =>
  query<{ message: string; job: string | null }>(d.state, 'SELECT message, job FROM events WHERE kind = ? ORDER BY id', kind);
const attempts = (d: { state: string }) =>
  query<{ id: number; job: string; outcome: string | null; answer: string | null; answered_by: string | null }>(
    d.state,
    'SELECT id, job, outcome, answer, answered_by FROM heal_attempts ORDER BY id',
  );

async function sessionCookie(page: Page) {
  return (await page.context().cookies()).find((c) => c.name === 'nightshift_session');
}

describe('logging in', () => {
  it('a link opens a session once, after the device is named; a preview does not spend it; expired and reused links are refused', async () => {
    const d = await dashboard(track, { tick: 'command: ["true"]\n' });
    const link = await loginLink(d);
    expect(link).toMatch(new RegExp(`^${d.url}/login/[A-Za-z0-9_-]{43}$`));

    // A chat app's preview: GETs the link (twice), never posts the form.
    for (let i = 0; i < 2; i++) {
      const preview = await fetch(link);
      expect(preview.status).toBe(200);
      expect(await preview.text()).toContain('This device');
      expect(preview.headers.get('set-cookie')).toBeNull();
    }
    expect(query(d.state, 'SELECT used_at FROM web_links')).toEqual([{ used_at: null }]);

    const page = await newPage();
    // Not logged in: the overview says how to log in and shows nothing of the home.
    await page.goto(`${d.url}/`);
    await expect(page.locator('h1').textContent()).resolves.toBe('Not logged in');
    expect(await page.content()).not.toContain('tick');

    await logIn(page, link, "Kevin's phone");
    expect(await page.locator('.flash').textContent()).toContain("Logged in as “Kevin's phone”");
    const cookie = await sessionCookie(page);
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', secure: false });
    // 30 days, renewed while used
    expect(cookie!.expires * 1000 - Date.now()).toBeGreaterThan(29 * 24 * 3600_000);
    expect(events(d, 'web-login').map((e) => e.message)).toEqual(['dashboard session opened for "Kevin\'s phone"']);
    // The database keeps hashes only: the cookie's token is nowhere in it.
    const db = readFileSync(join(d.state, 'nightshift.db')).toString('latin1');
    expect(db).not.toContain(cookie!.value);
    expect(db).not.toContain(link.split('/').pop()!);

    // The same link again, in another browser: refused, no session.
    const other = await newPage();
    await other.goto(link);
    await expect(other.locator('.flash.error').textContent()).resolves.toContain('used already');
    expect(await other.getByLabel('This device').count()).toBe(0);
    const reuse = await fetch(link, {
      method: 'POST',
      body: 'label=thief',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(reuse.status).toBe(410);
    expect(reuse.headers.get('set-cookie')).toBeNull();

    // A link made 11 minutes ago (the CLI under faketime) has expired.
    const lib = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1'].find((f) =>
      existsSync(f),
    );
    if (!lib) throw new Error('libfaketime is missing: apt-get install faketime (.ci/run installs it)');
    const old = await loginLink(d, { FAKETIME: '-11m', LD_PRELOAD: lib });
    await other.goto(old);
    await expect(other.locator('.flash.error').textContent()).resolves.toContain('expired');
    const late = await fetch(old, { method: 'POST', body: 'label=late', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(late.status).toBe(410);
    expect(query(d.state, 'SELECT count(*) AS n FROM web_sessions')).toEqual([{ n: 1 }]);

    // --revoke-all ends the session: the next page load is logged out.
    const revoked = await ns(d, 'login', '--revoke-all');
    expect(revoked.stdout).toContain('ended 1 dashboard session(s)');
    await page.goto(`${d.url}/`);
    await expect(page.locator('h1').textContent()).resolves.toBe('Not logged in');
  });

  it('off: nothing listens and login says so; a port already taken stops only the dashboard, not the jobs', async () => {
    const off = makeHome({}, 'dashboard: { listen: "off" }\n');
    dirs.push(off);
    const d = await startDaemon(off);
    daemons.push(d);
    expect(d.lines().some((l) => l.msg === 'dashboard listening')).toBe(false);
    const r = await ns(d, 'login');
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('the dashboard is off (dashboard.listen: off in protected/policy.yaml)');
    expect(query(d.state, 'SELECT count(*) AS n FROM web_links')).toEqual([{ n: 0 }]);

    const { createServer } = await import('node:net');
    const squatter = createServer();
    const port = await freePort();
    await new Promise<void>((ok) => squatter.listen(port, '127.0.0.1', ok));
    try {
      const h = makeHome({ tick: 'command: ["sh", "-c", "echo tick"]\n' }, `dashboard: { listen: "127.0.0.1:${port}" }\n`);
      dirs.push(h);
      const taken = await startDaemon(h);
      daemons.push(taken);
      const said = events(taken, 'dashboard-failed');
      expect(said).toHaveLength(1);
      expect(said[0]!.message).toMatch(
        new RegExp(`the dashboard could not listen on 127\\.0\\.0\\.1:${port} \\(.*EADDRINUSE.*\\); jobs and heals run on without it`),
      );
      const run = await ns(taken, 'run', 'tick');
      expect(run.exitCode).toBe(0);
      // Whatever holds the port would receive a link: none is made.
      const refused = await ns(taken, 'login');
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr).toContain(`the daemon does not serve its dashboard on 127.0.0.1:${port} now`);
      expect(query(taken.state, 'SELECT count(*) AS n FROM web_links')).toEqual([{ n: 0 }]);
      // The port freed, the daemon takes it within its retry (30 s) and login works again.
      await new Promise<void>((ok) => squatter.close(() => ok()));
      await taken.waitLog((l) => l.msg === 'dashboard listening', 120_000, 'the dashboard listening after the port was freed');
      expect(events(taken, 'dashboard-listening')).toHaveLength(1);
      expect((await ns(taken, 'login')).exitCode).toBe(0);
    } finally {
      squatter.close();
    }
    // And without a daemon there is no link either (exit 3).
    await d.stop();
    const down = makeHome({}, `dashboard: { listen: "127.0.0.1:${port}" }\n`);
    dirs.push(down);
    const none = await cli(['--home', down, 'login']);
    expect(none.exitCode).toBe(3);
    expect(none.stderr).toContain('the daemon is not running');
  });

  it('a policy reload moves the dashboard without a moment of the port free; a new publicUrl keeps the socket', async () => {
    const d = await dashboard(track, {});
    const policy = join(d.home, 'protected', 'policy.yaml');
    const served = () => d.lines().filter((l) => l.msg === 'dashboard listening').length;
    expect(served()).toBe(1);
    writeFileSync(policy, `timezone: UTC\ndashboard: { listen: "127.0.0.1:${d.port}", publicUrl: "https://ops.shop.example" }\n`);
    await d.waitLog((l) => l.msg === 'dashboard address changed', WAIT_MS, 'publicUrl applied');
    expect(served()).toBe(1); // the same socket
    expect((await rawRequest(d.port, 'GET', '/', { host: 'ops.shop.example' })).status).toBe(401);
    const link = await loginLink(d);
    expect(link).toMatch(/^https:\/\/ops\.shop\.example\/login\//);
    const moved = await freePort();
    writeFileSync(policy, `timezone: UTC\ndashboard: { listen: "127.0.0.1:${moved}" }\n`);
    await waitFor(() => served() === 2, WAIT_MS, 'the dashboard on its new port');
    expect((await rawRequest(moved, 'GET', '/', { host: `127.0.0.1:${moved}` })).status).toBe(401);
    await expect(rawRequest(d.port, 'GET', '/', { host: `127.0.0.1:${d.port}` })).rejects.toThrow(/ECONNREFUSED/);
    expect((await loginLink(d)).startsWith(`http://127.0.0.1:${moved}/login/`)).toBe(true);
  });

  it('login attempts are rate-limited', async () => {
    const d = await dashboard(track, {});
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await fetch(`${d.url}/login/${'x'.repeat(43)}`)).status);
    expect(statuses.slice(0, 10).every((s) => s === 410)).toBe(true);
    expect(statuses.slice(10)).toEqual([429, 429]);
    // Failures count, not the person with a good link: it still works from the same address.
    const link = await loginLink(d);
    expect((await fetch(link)).status).toBe(200);
    const post = await fetch(link, {
      method: 'POST',
      body: 'label=operator',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(post.status).toBe(303);
    expect(post.headers.get('set-cookie')).toContain('nightshift_session=');
    // A broken %-escape is the client's mistake: 400, and the daemon goes on.
    const cookie = post.headers.get('set-cookie')!.split(';')[0]!;
    expect((await rawRequest(d.port, 'GET', '/jobs/%E0%A4%A', { host: `127.0.0.1:${d.port}` })).status).toBe(401);
    expect((await rawRequest(d.port, 'GET', '/jobs/%E0%A4%A', { host: `127.0.0.1:${d.port}`, cookie })).status).toBe(400);
    expect((await rawRequest(d.port, 'GET', '/login/%ZZ', { host: `127.0.0.1:${d.port}` })).status).toBe(400);
    expect(d.lines().filter((l) => l.msg === 'dashboard request failed')).toEqual([]);
  });

  it('a flood of idle connections leaves the daemon its file descriptors: jobs still run', async () => {
    const d = await dashboard(track, { tick: 'command: ["sh", "-c", "echo tick"]\n' }, { prefix: ['prlimit', '--nofile=256:256'] });
    const { connect } = await import('node:net');
    const sockets = Array.from({ length: 400 }, () => {
      const c = connect(d.port, '127.0.0.1');
      c.on('error', () => {});
      c.write('GET / HTTP/1.1\r\nHost: x\r\n'); // headers never finished
      return c;
    });
    try {
      await new Promise((r) => setTimeout(r, 500)); // let the connections land: this is load, not a wait for a result
      const run = await ns(d, 'run', 'tick');
      expect(run.stdout).toContain(': ok');
      expect(d.proc.exitCode).toBeNull();
    } finally {
      for (const c of sockets) c.destroy();
    }
  });
});

describe('approvals and buttons', () => {
  it('a gated heal is a card: Approve runs the fix (fixed-verified), Deny another; both journaled as by web and the label', async () => {
    const work = tempDir('ns-dash-heal-');
    dirs.push(work);
    const gate = (job: string) =>
      `match: { job: "${job}" }\nautonomy: gated\naction: { command: ["touch", "${work}/${job}-fixed"], touches: ["${work}/${job}-fixed"] }\nprobe: { command: ["test", "-e", "${work}/${job}-fixed"] }\n`;
    const d = await dashboard(
      track,
      { a: 'command: ["sh", "-c", "exit 1"]\n', b: 'command: ["sh", "-c", "exit 1"]\n' },
      { rules: { 'gate-a': gate('a'), 'gate-b': gate('b') } },
    );
    await ns(d, 'run', 'a');
    await ns(d, 'run', 'b');
    await waitFor(() => attempts(d).filter((a) => a.outcome === 'awaiting-approval').length === 2, WAIT_MS, 'two approvals');
    const [x, y] = attempts(d);

    const page = await newPage();
    await logIn(page, await loginLink(d), "Kevin's phone");
    const card = page.locator(`#H-${x!.id}`);
    await expect(card.textContent()).resolves.toContain(`rule gate-a`);
    expect(await card.textContent()).toContain(`touch ${work}/a-fixed`); // what the fix runs
    expect(await card.textContent()).toContain(`${work}/a-fixed`); // and touches
    expect(await card.textContent()).toMatch(/A-\d+ failed: run #\d+ failed/);
    await card.screenshot({ path: join(screenshotDir(), 'approval-card.png') });

    await card.getByRole('button', { name: 'Approve' }).click();
    expect(await page.locator('.flash').textContent()).toContain('approved: the fix runs now');
    await page.goto(`${d.url}/heals`);
    await reloadUntil(
      page,
      async () => (await page.locator(`#H-${x!.id}`).textContent())!.includes('fixed-verified'),
      WAIT_MS,
      'fixed-verified',
    );
    expect(existsSync(join(work, 'a-fixed'))).toBe(true);
    expect(await page.locator(`#H-${x!.id}`).textContent()).toContain("approved by web (Kevin's phone)");

    await page.goto(`${d.url}/`);
    await page.locator(`#H-${y!.id}`).getByRole('button', { name: 'Deny' }).click();
    expect(await page.locator('.flash').textContent()).toContain('denied: nothing was run');
    expect(existsSync(join(work, 'b-fixed'))).toBe(false);
    expect(await page.locator(`#H-${y!.id}`).count()).toBe(0); // no longer waiting

    const rows = attempts(d);
    expect(rows.find((r) => r.id === x!.id)).toMatchObject({
      outcome: 'fixed-verified',
      answer: 'approved',
      answered_by: "web (Kevin's phone)",
    });
    expect(rows.find((r) => r.id === y!.id)).toMatchObject({ outcome: 'denied', answer: 'denied', answered_by: "web (Kevin's phone)" });
    // heals and the digest say who pressed what
    const heals = (await ns(d, 'heals')).stdout;
    expect(heals).toContain("approved by web (Kevin's phone)");
    expect(heals).toContain("denied by web (Kevin's phone)");
    // the digest whose day holds now (the default digest.at is 07:00 in the policy's zone, UTC here)
    const now = new Date();
    const day = new Date(now.getTime() + (now.getUTCHours() >= 7 ? 86_400_000 : 0)).toISOString().slice(0, 10);
    const digest = (await ns(d, 'digest', '--date', day)).stdout;
    expect(digest).toContain("approved by web (Kevin's phone)");
    expect(digest).toContain("denied by web (Kevin's phone)");

    // The same checks as the CLI: a second answer (an old page's button) is refused in the CLI's words.
    await page.goto(`${d.url}/`);
    const csrf = await page.locator('input[name=csrf]').first().getAttribute('value');
    const res = await page.request.post(`${d.url}/heals/${y!.id}/approve`, {
      form: { csrf: csrf!, back: '/heals' },
      headers: { origin: d.url },
      maxRedirects: 0,
    });
    expect(res.status()).toBe(303);
    await page.goto(`${d.url}/heals`);
    expect(await page.locator('.flash.error').textContent()).toMatch(
      new RegExp(`heal H-${y!.id} was already denied at .*; nothing more to do`),
    );
    expect(existsSync(join(work, 'b-fixed'))).toBe(false);
  });

  it('run now, pause and resume go through the daemon and are journaled with the label', async () => {
    const d = await dashboard(track, {
      job1: 'schedule: "0 3 * * *"\ncommand: ["sh", "-c", "echo ran"]\n',
      slow: 'command: ["sleep", "60"]\nconcurrency: forbid\n',
    });
    const page = await newPage();
    await logIn(page, await loginLink(d), 'desk');
    // A second press while the first run is under way: said as not started, with the supervisor's reason.
    await page.goto(`${d.url}/jobs/slow`);
    await page.getByRole('button', { name: 'Run now' }).click();
    expect(await page.locator('.flash').textContent()).toMatch(/^slow: run #\d+ started, by web/);
    await page.getByRole('button', { name: 'Run now' }).click();
    expect(await page.locator('.flash.error').textContent()).toMatch(/^slow was not started \(the previous run \(#\d+\) is still running/);
    expect(events(d, 'run-now').map((e) => e.message)).toEqual([
      expect.stringMatching(/^job slow run now by web \(desk\): run #\d+ started$/),
      expect.stringMatching(/^job slow run now by web \(desk\): not started \(the previous run/),
    ]);
    await page.goto(`${d.url}/`);
    await page.getByRole('link', { name: 'job1' }).click();
    await expect(page.locator('h1').textContent()).resolves.toBe('job1');
    expect(await page.locator('dd').first().textContent()).toContain('03:00');
    await page.getByRole('button', { name: 'Run now' }).click();
    expect(await page.locator('.flash').textContent()).toMatch(/^job1: run #\d+ started, by web \(desk\)/);
    await reloadUntil(page, async () => (await page.locator('.outcome-ok').count()) > 0, WAIT_MS, 'the run ok');
    expect(query(d.state, "SELECT trigger, outcome FROM runs WHERE job = 'job1'")).toEqual([{ trigger: 'manual', outcome: 'ok' }]);
    await page.getByRole('button', { name: 'Pause' }).click();
    expect(await page.locator('.flash').textContent()).toContain('job1 paused');
    expect(query(d.state, "SELECT paused FROM job_state WHERE job = 'job1'")).toEqual([{ paused: 1 }]);
    expect((await ns(d, 'status')).stdout).toMatch(/job1 +PAUSED/);
    await page.getByRole('button', { name: 'Resume' }).click();
    expect(query(d.state, "SELECT paused FROM job_state WHERE job = 'job1'")).toEqual([{ paused: 0 }]);
    expect(events(d, 'run-now').map((e) => e.message)[2]).toMatch(/^job job1 run now by web \(desk\): run #\d+ started$/);
    expect(events(d, 'paused').map((e) => e.message)).toEqual(['job job1 paused by web (desk)']);
    expect(events(d, 'resumed').map((e) => e.message)).toEqual(['job job1 resumed by web (desk)']);
  });
});

describe('the kill switch', () => {
  it('on with one tap (the file exists, a running fix is rolled back); off only after a confirmation', async () => {
    const work = tempDir('ns-dash-kill-');
    dirs.push(work);
    writeFileSync(join(work, 'file.txt'), 'original\n');
    const d = await dashboard(
      track,
      { victim: 'command: ["sh", "-c", "exit 1"]\n' },
      {
        rules: {
          slow: `match: { job: victim }\nautonomy: auto\naction:\n  command: ["sh", "-c", "echo changed > ${work}/file.txt; touch ${work}/created; sleep 60"]\n  touches: ["${work}"]\n  timeout: 2m\nprobe: { command: ["test", "-e", "${work}/created"] }\n`,
        },
      },
    );
    const page = await newPage();
    await logIn(page, await loginLink(d), "Kevin's phone");
    await ns(d, 'run', 'victim');
    await waitFor(() => existsSync(join(work, 'created')), WAIT_MS, 'the fix under way');
    await page.reload();
    await page.getByRole('button', { name: /Kill switch on/ }).click();
    const killFile = join(d.state, 'KILL');
    expect(existsSync(killFile)).toBe(true);
    expect(readFileSync(killFile, 'utf8')).toContain("by web (Kevin's phone)");
    await waitFor(() => attempts(d)[0]?.outcome === 'halted', WAIT_MS, 'the fix halted');
    expect(readFileSync(join(work, 'file.txt'), 'utf8')).toBe('original\n');
    expect(existsSync(join(work, 'created'))).toBe(false);
    expect(await page.locator('.kill-on').textContent()).toContain('Kill switch is ON');
    expect(events(d, 'kill-switch').map((e) => e.message)).toEqual([`kill switch turned on by web (Kevin's phone) (${killFile} exists)`]);

    // Off needs a second, deliberate press: the link leads to a question, and the file stays.
    await page.getByRole('link', { name: /Turn the kill switch off/ }).click();
    await expect(page.locator('h1').textContent()).resolves.toBe('Turn the kill switch off?');
    expect(existsSync(killFile)).toBe(true);
    // A POST without the confirmation changes nothing either.
    const csrf = await page.locator('input[name=csrf]').getAttribute('value');
    await page.request.post(`${d.url}/kill/off`, { form: { csrf: csrf!, back: '/' }, headers: { origin: d.url } });
    expect(existsSync(killFile)).toBe(true);
    await page.getByRole('button', { name: 'Yes, turn it off' }).click();
    expect(existsSync(killFile)).toBe(false);
    await page.locator('#verdict').waitFor();
    expect(await page.locator('.kill-on').count()).toBe(0);
    expect(
      events(d, 'kill-switch')
        .map((e) => e.message)
        .at(-1),
    ).toBe("kill switch turned off by web (Kevin's phone)");
  });
});

describe('hostile text and foreign requests', () => {
  it('output with <script>, <img onerror>, ANSI codes and U+202E is inert text; no dialog opens', async () => {
    const script = join(tempDir('ns-dash-evil-'), 'evil.sh');
    dirs.push(join(script, '..'));
    writeFileSync(
      script,
      `#!/bin/sh\nprintf '<script>alert("xss")</script>\\n<img src=x onerror=alert(2)>\\n\\033[31mred\\033[0m\\n\\342\\200\\256txt.exe\\n'\nexit 1\n`,
      { mode: 0o755 },
    );
    const d = await dashboard(track, { evil: `command: ["${script}"]\n` });
    await ns(d, 'run', 'evil');
    const page = await newPage();
    dialogs.length = 0;
    await logIn(page, await loginLink(d), 'tester');
    await page.goto(`${d.url}/jobs/evil`);
    await page.locator('details summary').first().click();
    const runLink = page.locator('a[href^="/jobs/evil/runs/"]').first();
    await runLink.click();
    const out = await page.locator('#output').textContent();
    expect(out).toContain('<script>alert("xss")</script>');
    expect(out).toContain('<img src=x onerror=alert(2)>');
    expect(out).toContain('␛[31mred␛[0m'); // the escape shown, not obeyed
    expect(out).toContain('\ufffdtxt.exe'); // the bidi override made visible
    expect(out).not.toContain('\u202e');
    for (const path of ['/', '/alerts', '/heals', '/jobs/evil', new URL(page.url()).pathname]) {
      await page.goto(`${d.url}${path}`);
      // Our one script (live updates, from this origin) and nothing the output brought.
      expect(await page.locator('script:not([src="/live.js"])').count()).toBe(0);
      expect(await page.locator('main img').count()).toBe(0);
    }
    expect(dialogs).toEqual([]);
  });

  it('a POST from another origin, without the token, or with a foreign Host is refused and changes nothing', async () => {
    const d = await dashboard(track, { job1: 'command: ["true"]\n' });
    const page = await newPage();
    await logIn(page, await loginLink(d), 'victim');
    const csrf = await page.locator('input[name=csrf]').first().getAttribute('value');
    const cookie = `nightshift_session=${(await sessionCookie(page))!.value}`;
    const post = (path: string, body: string, headers: Record<string, string> = {}) =>
      fetch(`${d.url}${path}`, {
        method: 'POST',
        body,
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, ...headers },
      });
    // a page of another site, in the same browser (same-site by host, another origin by port): its form carries the cookie
    const evilPort = await freePort();
    const { createServer } = await import('node:http');
    const evil = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        `<form id=f method=post action="${d.url}/kill/on"><input name=csrf value="${csrf}"><input name=back value="/"></form><script>document.getElementById('f').submit()</script>`,
      );
    });
    await new Promise<void>((r) => evil.listen(evilPort, '127.0.0.1', r));
    try {
      await page.goto(`http://127.0.0.1:${evilPort}/`);
      await page.waitForURL(`${d.url}/kill/on`);
      expect(await page.locator('h1').textContent()).toBe('Refused');
    } finally {
      evil.close();
    }
    expect(existsSync(join(d.state, 'KILL'))).toBe(false);
    // no token, a wrong token, a foreign Origin with the right token, a foreign Host, no session
    const noToken = await post('/jobs/job1/pause', 'back=/');
    const wrongToken = await post('/jobs/job1/pause', 'csrf=forged&back=/');
    const foreignOrigin = await post('/jobs/job1/pause', `csrf=${csrf}&back=/`, { origin: 'http://evil.example' });
    const crossSite = await post('/jobs/job1/pause', `csrf=${csrf}&back=/`, { 'sec-fetch-site': 'cross-site' });
    // fetch() will not send a Host of our choosing; a raw request does, as a rebinding page's browser would
    const rebound = await rawRequest(
      d.port,
      'POST',
      '/jobs/job1/pause',
      { cookie, host: `evil.example:${d.port}`, 'content-type': 'application/x-www-form-urlencoded' },
      `csrf=${csrf}&back=/`,
    );
    const anonymous = await fetch(`${d.url}/jobs/job1/pause`, {
      method: 'POST',
      body: `csrf=${csrf}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      redirect: 'manual',
    });
    expect([noToken.status, wrongToken.status, foreignOrigin.status, crossSite.status, rebound.status, anonymous.status]).toEqual([
      403, 403, 403, 403, 421, 403,
    ]);
    // A GET with a foreign Host (DNS rebinding) gets nothing of the page either.
    const readRebound = await rawRequest(d.port, 'GET', '/', { cookie, host: 'evil.example' });
    expect(readRebound.status).toBe(421);
    expect(readRebound.body).not.toContain('job1');
    // the right name with the right session reads it (the 421 above was the Host alone)
    expect((await rawRequest(d.port, 'GET', '/', { cookie, host: `127.0.0.1:${d.port}` })).body).toContain('job1');
    expect(query(d.state, "SELECT paused FROM job_state WHERE job = 'job1'")).toEqual([{ paused: 0 }]);
    expect(events(d, 'paused')).toEqual([]);
    // and the right request does act (the refusals above were not a broken button)
    // a `back` that is not a plain path of this site (another host, or text a header cannot carry) goes to /
    const ok = await post('/jobs/job1/pause', `csrf=${csrf}&back=/%C4%80`, { origin: d.url });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/');
    const away = await post('/jobs/job1/resume', `csrf=${csrf}&back=//evil.example/`, { origin: d.url });
    expect(away.headers.get('location')).toBe('/');
    await post('/jobs/job1/pause', `csrf=${csrf}&back=/`, { origin: d.url });
    expect(query(d.state, "SELECT paused FROM job_state WHERE job = 'job1'")).toEqual([{ paused: 1 }]);
  });

  it('a contained job cannot act on the dashboard: it cannot read the state folder, make a login link, or post without a session', async () => {
    const out = tempDir('ns-dash-jail-');
    dirs.push(out);
    const d0 = await dashboard(track, {});
    const cliPath = join(import.meta.dirname, '..', '..', 'dist', 'cli.js');
    // The job tries what an attacker in a job would: read the database, mint a link, and POST.
    const job = `command: ["sh", "-c", "cat ${d0.state}/nightshift.db > /dev/null 2> ${out}/read.err; echo $? > ${out}/read.rc; node ${cliPath} --home ${d0.home} --state ${d0.state} login > ${out}/login.out 2>&1; echo $? > ${out}/login.rc; node -e \\"fetch('${d0.url}/kill/on',{method:'POST',headers:{'content-type':'application/x-www-form-urlencoded'},body:'back=/'}).then(r=>console.log(r.status))\\" > ${out}/post.out 2>&1"]\n`;
    writeFileSync(join(d0.home, 'jobs', 'intruder.yaml'), job);
    await waitFor(() => query(d0.state, "SELECT 1 FROM events WHERE kind = 'job-added'").length > 0, WAIT_MS, 'job added');
    await ns(d0, 'run', 'intruder');
    expect(readFileSync(join(out, 'read.rc'), 'utf8').trim()).not.toBe('0');
    expect(readFileSync(join(out, 'login.rc'), 'utf8').trim()).not.toBe('0');
    expect(readFileSync(join(out, 'post.out'), 'utf8').trim()).toBe('403');
    expect(query(d0.state, 'SELECT count(*) AS n FROM web_links')).toEqual([{ n: 0 }]);
    expect(existsSync(join(d0.state, 'KILL'))).toBe(false);
  });
});

describe('on a phone', () => {
  it('at 390×844 nothing overflows, every button is reachable and 44 px tall, axe finds nothing serious; screenshots', async () => {
    const work = tempDir('ns-dash-phone-');
    dirs.push(work);
    const d = await dashboard(
      track,
      {
        'nightly-export': 'schedule: "30 2 * * *"\ntimezone: Europe/Zurich\ncommand: ["sh", "-c", "echo exported 1200 rows"]\n',
        'db-backup': 'schedule: "0 3 * * *"\ncommand: ["sh", "-c", "echo backup failed: disk quota exceeded >&2; exit 1"]\n',
        'ad-report': 'every: 1h\ncommand: ["sh", "-c", "echo report sent"]\n',
      },
      {
        rules: {
          'retry-backup': `description: A backup that failed for want of space is retried after old dumps are cleared.\nmatch: { job: db-backup }\nautonomy: gated\naction: { command: ["touch", "${work}/cleared"], touches: ["${work}/cleared"] }\nprobe: { command: ["test", "-e", "${work}/cleared"] }\n`,
        },
      },
    );
    for (let i = 0; i < 3; i++) await ns(d, 'run', 'nightly-export');
    await ns(d, 'run', 'ad-report');
    await ns(d, 'run', 'db-backup');
    await waitFor(() => attempts(d).some((a) => a.outcome === 'awaiting-approval'), WAIT_MS, 'an approval');
    const page = await newPage({ bypassCSP: true });
    await logIn(page, await loginLink(d), "Kevin's phone");
    await page.reload(); // without the login's flash
    const dir = screenshotDir();
    await page.screenshot({ path: join(dir, 'overview-phone.png'), fullPage: true });
    const axeSource = readFileSync(join(import.meta.dirname, '..', '..', 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
    for (const path of ['/', '/jobs/nightly-export', '/jobs/db-backup', '/alerts', '/heals', '/kill/off']) {
      await page.goto(`${d.url}${path}`);
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      expect(width, `${path} is ${width} px wide`).toBeLessThanOrEqual(390);
      for (const b of await page.locator('button, a.btnlink').all()) {
        await b.scrollIntoViewIfNeeded();
        const box = (await b.boundingBox())!;
        expect(box.height, `${path}: "${await b.textContent()}"`).toBeGreaterThanOrEqual(44);
        expect(box.x).toBeGreaterThanOrEqual(0);
        expect(box.x + box.width).toBeLessThanOrEqual(390);
      }
      await page.addScriptTag({ content: axeSource });
      const violations = await page.evaluate(async () => {
        const r = await (
          window as unknown as {
            axe: { run: (o: unknown) => Promise<{ violations: Array<{ id: string; impact: string; nodes: unknown[] }> }> };
          }
        ).axe.run({
          runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
        });
        return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
      });
      expect(
        violations.filter((v) => v.impact === 'serious' || v.impact === 'critical'),
        `${path}`,
      ).toEqual([]);
      if (path === '/jobs/nightly-export') await page.screenshot({ path: join(dir, 'job-phone.png'), fullPage: true });
    }
    // dark mode is the system's
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(`${d.url}/`);
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg).toBe('rgb(18, 18, 18)');
    await page.screenshot({ path: join(dir, 'overview-phone-dark.png'), fullPage: true });
    const desk = await newPage({ width: 1280, height: 900 });
    await logIn(desk, await loginLink(d), 'desk');
    await desk.reload();
    await desk.screenshot({ path: join(dir, 'overview-desktop.png'), fullPage: true });
    // the schedule in words and the next instants in the job's zone
    await desk.goto(`${d.url}/jobs/nightly-export`);
    const text = (await desk.locator('main').textContent())!;
    expect(text).toContain('Europe/Zurich');
    expect(text).toMatch(/02:30 \+0[12]:00/);
    expect(await desk.locator('ol li').count()).toBe(5);
    // Reading the page without JavaScript works the same (nothing here needs it).
    const p2 = await newPage({ javaScriptEnabled: false });
    await logIn(p2, await loginLink(d), 'no-js');
    await p2.goto(`${d.url}/jobs/ad-report`);
    await p2.getByRole('button', { name: 'Pause' }).click();
    expect(await p2.locator('.flash').textContent()).toContain('ad-report paused');
    const db = new Database(join(d.state, 'nightshift.db'), { readonly: true });
    expect(db.prepare("SELECT paused FROM job_state WHERE job = 'ad-report'").get()).toEqual({ paused: 1 });
    db.close();
  });
});

describe('live pages', () => {
  it('a run started elsewhere, a pause and the kill switch show on open pages without a reload; the stream needs a session', async () => {
    const d = await dashboard(track, { tick: 'command: ["sh", "-c", "echo tick-output"]\n', other: 'command: ["true"]\n' });
    // No session, no stream: an anonymous page of this machine learns nothing.
    const anon = await fetch(`${d.url}/events`);
    expect(anon.status).toBe(401);
    expect(anon.headers.get('content-type')).not.toContain('event-stream');

    const overview = await newPage();
    await logIn(overview, await loginLink(d), 'live');
    const job = await overview.context().newPage();
    await job.goto(`${d.url}/jobs/tick`);
    for (const p of [overview, job]) {
      await p.locator('body[data-live-state="open"]').waitFor({ timeout: WAIT_MS });
      // A mark that a reload would wipe: it must still be there after the update.
      await p.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));
    }
    expect(await overview.locator('.job .strip span').count()).toBe(0);
    expect(await job.locator('a[href^="/jobs/tick/runs/"]').count()).toBe(0);

    // A run from the command line, not from this page.
    expect((await ns(d, 'run', 'tick')).exitCode).toBe(0);
    await job.locator('a[href^="/jobs/tick/runs/"]').first().waitFor({ timeout: WAIT_MS });
    await overview.locator('.job .strip span.ok').first().waitFor({ timeout: WAIT_MS });

    // Paused from the command line: both pages say so.
    expect((await ns(d, 'pause', 'tick')).exitCode).toBe(0);
    await waitFor(async () => (await job.locator('#live').textContent())!.includes('paused'), WAIT_MS, 'the job page to say paused');
    // The kill switch, a file and not a row: the overview shows it on.
    expect((await ns(d, 'kill', 'on')).exitCode).toBe(0);
    await waitFor(
      async () => (await overview.locator('#verdict').textContent())!.toLowerCase().includes('kill switch'),
      WAIT_MS,
      'the verdict to name the kill switch',
    );

    // A job file added while the page is open: the overview lists it (a spec, not a row of the store).
    writeFileSync(join(d.home, 'jobs', 'fresh.yaml'), 'command: ["true"]\n');
    await overview.locator('a[href="/jobs/fresh"]').waitFor({ timeout: WAIT_MS });

    for (const p of [overview, job]) expect(await p.evaluate(() => (window as unknown as { stayed?: boolean }).stayed)).toBe(true);
    // The one script of ours, from this origin; the CSP allows nothing inline.
    expect(await overview.locator('script').evaluateAll((s) => s.map((e) => e.getAttribute('src')))).toEqual(['/live.js']);

    // Revoked: the stream's page learns it at its next fetch and stops listening.
    expect((await ns(d, 'login', '--revoke-all')).exitCode).toBe(0);
    expect((await ns(d, 'kill', 'off')).exitCode).toBe(0);
    await overview.locator('body[data-live-state="ended"]').waitFor({ timeout: WAIT_MS });
  });

  it('a stream refused on reconnect (a proxy answering 502 while nightshift restarts) shows "not live", then follows again', async () => {
    const d = await dashboard(track, { tick: 'command: ["true"]\n' });
    // A proxy in front, as nginx would be: it keeps the Host the dashboard answers to.
    let failing = false;
    const streams = new Set<import('node:http').ServerResponse>();
    const proxy = createHttpServer((req, res) => {
      if (failing) return void res.writeHead(502).end('bad gateway');
      const up = httpRequest(
        {
          host: '127.0.0.1',
          port: d.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: `127.0.0.1:${d.port}`, ...(req.headers.origin ? { origin: d.url } : {}) },
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
      streams.add(res);
      res.on('close', () => streams.delete(res));
    });
    await new Promise<void>((ok) => proxy.listen(0, '127.0.0.1', ok));
    try {
      const at = `http://127.0.0.1:${(proxy.address() as import('node:net').AddressInfo).port}`;
      const page = await newPage();
      await logIn(page, (await loginLink(d)).replace(d.url, at), 'via proxy');
      await page.locator('body[data-live-state="open"]').waitFor({ timeout: WAIT_MS });
      failing = true;
      for (const s of streams) s.destroy(); // the proxy restarts: every stream drops, reconnects get 502
      await page.locator('body[data-live-state="lost"]').waitFor({ timeout: WAIT_MS });
      expect(await page.locator('header.top').evaluate((e) => getComputedStyle(e, '::after').content)).toContain('Not live');
      failing = false;
      await page.locator('body[data-live-state="open"]').waitFor({ timeout: WAIT_MS });
      expect((await ns(d, 'run', 'tick')).exitCode).toBe(0);
      await page.locator('.job .strip span.ok').first().waitFor({ timeout: WAIT_MS });
    } finally {
      proxy.closeAllConnections();
      proxy.close();
    }
  });

  it('a ping over HTTP with the right key shows on the open job page as alive; a wrong key changes nothing', async () => {
    const d = await dashboard(track, { ext: 'schedule: "0 3 * * *"\n' });
    const urlOf = JSON.parse((await ns(d, 'ping-url', 'ext', '--json')).stdout) as { url: string };
    const page = await newPage();
    await logIn(page, await loginLink(d), 'ops');
    await page.goto(`${d.url}/jobs/ext`);
    await page.locator('body[data-live-state="open"]').waitFor({ timeout: WAIT_MS });
    expect(await page.locator('#pings li').count()).toBe(0);

    // A wrong key: 404 as for any unknown one, and the open page shows nothing new.
    const wrong = await fetch(urlOf.url.replace(/\/ping\/[^/]+/, '/ping/' + 'A'.repeat(43)), { method: 'POST', body: '<b>forged</b>' });
    expect(wrong.status).toBe(404);
    const right = await fetch(urlOf.url, { method: 'POST', body: 'exported 41 orders <script>alert(1)</script>' });
    expect(right.status).toBe(200);
    await page.locator('#pings li').first().waitFor({ timeout: WAIT_MS });
    expect(await page.locator('#pings li').count()).toBe(1);
    expect(await page.locator('#pings li pre').textContent()).toBe('exported 41 orders <script>alert(1)</script>');
    expect(await page.content()).not.toContain('forged');
    expect(dialogs).toEqual([]);
    // Alive: its last success is the ping (the one row; the wrong key left none).
    const status = JSON.parse((await ns(d, 'status', '--json')).stdout) as { jobs: Array<{ name: string; lastSuccessAt: number | null }> };
    const [ping] = query<{ at: number }>(d.state, 'SELECT at FROM heartbeats');
    expect(status.jobs.find((j) => j.name === 'ext')?.lastSuccessAt).toBe(ping!.at);
  });

  it("a page event's url opens its card: an approval waiting (approval-requested) and an alert", async () => {
    const work = tempDir('ns-dash-url-');
    dirs.push(work);
    const capture = pageCapture(work);
    const d = await dashboard(
      track,
      { a: 'command: ["sh", "-c", "echo out of space; exit 1"]\n' },
      {
        rules: {
          'gate-a': `match: { job: "a" }\nautonomy: gated\naction: { command: ["touch", "${work}/fixed"], touches: ["${work}/fixed"] }\nprobe: { command: ["test", "-e", "${work}/fixed"] }\n`,
        },
        policy: `page:\n  allow: [approval-requested, failed]\n  command: ["${capture.command}"]\n`,
      },
    );
    await ns(d, 'run', 'a');
    const pages = await waitFor(
      () => {
        const p = capture.pages();
        return p.some((e) => e.event === 'approval-requested') && p.some((e) => e.event === 'alert') ? p : null;
      },
      WAIT_MS,
      'the approval and the alert paged',
    );
    const [heal] = attempts(d);
    const [alert] = query<{ id: number }>(d.state, 'SELECT id FROM alerts');
    const approval = pages.find((e) => e.event === 'approval-requested')!;
    expect(approval).toMatchObject({ job: 'a', rule: 'gate-a', heal: `H-${heal!.id}`, url: `${d.url}/#H-${heal!.id}` });
    expect(approval.message).toContain('waits for your approval');
    expect(pages.find((e) => e.event === 'alert')).toMatchObject({ url: `${d.url}/alerts#A-${alert!.id}` });

    const page = await newPage();
    await logIn(page, await loginLink(d), 'phone');
    await page.goto(String(approval.url));
    const card = page.locator(':target');
    expect(await card.getAttribute('id')).toBe(`H-${heal!.id}`);
    await card.getByRole('button', { name: 'Approve' }).waitFor();
    await page.goto(String(pages.find((e) => e.event === 'alert')!.url));
    expect(await page.locator(':target').getAttribute('id')).toBe(`A-${alert!.id}`);
    expect(await page.locator(':target').textContent()).toContain('exited with code 1');
  });
});

describe('pictures of runs and the digest archive', () => {
  it("a job's chart has one mark per run, coloured by outcome (ok, failed, wrong) in light and dark; the strip agrees; no CSP report", async () => {
    const work = tempDir('ns-dash-chart-');
    dirs.push(work);
    // Each run reads a counter: 0 and 3 ok, 1 fails, 2 exits 0 without what `expect` wants (wrong).
    const d = await dashboard(track, {
      pic: `shell: 'f=${work}/n; n=$(cat $f 2>/dev/null || echo 0); echo $((n+1)) > $f; case $n in 1) exit 1;; 2) echo nothing;; *) echo "exported 5 orders";; esac'\nexpect: { outputMatches: "exported [1-9]" }\ntimeout: 2m\n`,
    });
    for (let i = 0; i < 4; i++) await ns(d, 'run', 'pic');
    const runs = query<{ id: number; outcome: string }>(d.state, "SELECT id, outcome FROM runs WHERE job = 'pic' ORDER BY id");
    expect(runs.map((r) => r.outcome)).toEqual(['ok', 'failed', 'wrong', 'ok']);

    const page = await newPage();
    const csp: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to apply/i.test(m.text())) csp.push(m.text());
    });
    await logIn(page, await loginLink(d), 'charts');
    await page.goto(`${d.url}/jobs/pic`);
    const chart = page.locator('svg.chart');
    await expect(chart.getAttribute('role')).resolves.toBe('img');
    expect(await chart.locator('title').first().textContent()).toMatch(/^4 runs: 2 ok, 1 failed, 1 wrong; median \d/);
    const marks = chart.locator('circle.mark');
    expect(await marks.count()).toBe(runs.length);
    const fills = async () =>
      marks.evaluateAll((els) =>
        els.map((e) => ({ run: Number(e.getAttribute('data-run')), cls: e.getAttribute('class'), fill: getComputedStyle(e).fill })),
      );
    const light = await fills();
    // oldest on the left, one mark per run, each with its outcome's class
    expect(light.map((m) => m.run)).toEqual(runs.map((r) => r.id));
    expect(light.map((m) => m.cls)).toEqual(['mark ok', 'mark bad', 'mark warn', 'mark ok']);
    // the colours of the tones (report/tones.ts, light): three different fills
    expect(light.map((m) => m.fill)).toEqual(['rgb(26, 127, 55)', 'rgb(198, 40, 40)', 'rgb(154, 103, 0)', 'rgb(26, 127, 55)']);
    // the mark's x follows its start time
    const xs = await marks.evaluateAll((els) => els.map((e) => Number(e.getAttribute('cx'))));
    expect([...xs].sort((a, b) => a - b)).toEqual(xs);
    // the median line (of the two ok runs) and the timeout stated in the legend
    expect(await page.locator('.legend').textContent()).toMatch(/median of ok runs: .*timeout:\s+2 min/s);
    // fits a phone: nothing wider than the screen
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    const box = (await chart.boundingBox())!;
    expect(box.x).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(screenshotDir(), 'job-chart-phone.png'), fullPage: true });

    await page.emulateMedia({ colorScheme: 'dark' });
    const dark = await fills();
    expect(dark.map((m) => m.fill)).toEqual(['rgb(74, 194, 107)', 'rgb(255, 107, 107)', 'rgb(227, 179, 65)', 'rgb(74, 194, 107)']);
    await page.emulateMedia({ colorScheme: 'light' });

    // The overview's strip: the same runs, the same rule, oldest first.
    await page.goto(`${d.url}/`);
    const strip = page.locator('li.job', { hasText: 'pic' }).locator('.strip');
    expect(await strip.getAttribute('aria-label')).toBe('last 4 runs: 2 ok, 1 failed, 1 wrong');
    const cells = await strip
      .locator('span')
      .evaluateAll((els) => els.map((e) => [e.getAttribute('class'), getComputedStyle(e).backgroundColor]));
    expect(cells).toEqual([
      ['ok', 'rgb(26, 127, 55)'],
      ['bad', 'rgb(198, 40, 40)'],
      ['warn', 'rgb(154, 103, 0)'],
      ['ok', 'rgb(26, 127, 55)'],
    ]);
    expect(csp).toEqual([]);
  });

  it('the archive lists stored digests newest first and opens one as text (stored markup shown, never obeyed)', async () => {
    const d = await dashboard(track, { tick: 'command: ["sh", "-c", "echo tick"]\n' });
    await ns(d, 'run', 'tick');
    // Two digests stored by the real command (no mail configured: written and stored, not sent).
    await ns(d, 'digest', '--date', '2026-11-02', '--send');
    await ns(d, 'digest', '--date', '2026-11-03', '--send');
    // (and today's, when the daemon found at its start that today's digest time had passed)
    const stored = () => query<{ date: string }>(d.state, 'SELECT date FROM digests ORDER BY date DESC').map((r) => r.date);
    expect(stored().slice(-2)).toEqual(['2026-11-03', '2026-11-02']);
    // Whatever is in the database's columns is data: markup in the text or the HTML is not run.
    const db = new Database(join(d.state, 'nightshift.db'));
    db.prepare(
      "UPDATE digests SET body_text = body_text || '<img src=x onerror=alert(1)>', body_html = '<script>alert(2)</script>' WHERE date = '2026-11-03'",
    ).run();
    db.close();

    const page = await newPage();
    dialogs.length = 0;
    await logIn(page, await loginLink(d), 'reader');
    await page.getByRole('navigation').getByRole('link', { name: 'Digests' }).click();
    await expect(page.locator('h1').textContent()).resolves.toBe('Digests');
    const items = page.locator('#digests > li');
    // newest first: every stored digest, by its date
    expect(await items.locator('a').allTextContents()).toEqual(stored());
    const nov3 = items.filter({ hasText: '2026-11-03' });
    expect(await nov3.textContent()).toMatch(/2026-11-03 · Nothing needs you: the 1 job is healthy\s*not e-mailed/);
    await nov3.getByRole('link', { name: '2026-11-03' }).click();
    await expect(page.locator('h1').textContent()).resolves.toBe('Digest of 2026-11-03');
    const text = (await page.locator('#digest-text').textContent())!;
    const body = query<{ body_text: string }>(d.state, "SELECT body_text FROM digests WHERE date = '2026-11-03'")[0]!.body_text;
    expect(text).toBe(body);
    expect(text).toContain('nightshift digest for 2026-11-03');
    expect(text).toContain('<img src=x onerror=alert(1)>');
    expect(await page.locator('main img, script:not([src="/live.js"])').count()).toBe(0);
    expect(await page.content()).not.toContain('alert(2)');
    expect(dialogs).toEqual([]);
    // a date without a digest, and a path that is not a date
    expect((await page.goto(`${d.url}/digests/2026-11-04`))!.status()).toBe(404);
    expect((await page.goto(`${d.url}/digests/latest`))!.status()).toBe(404);
  });
});
