// The Devices page in a real browser (Chromium) against a real daemon on a temp home: "Add a
// device" gives a one-time link whose QR code, read back from the rendered pixels, is that link and
// logs a second browser in with its own label; the session list; Revoke logs the other device out
// at once, Log out this one. The attacks come first: forged, foreign and anonymous POSTs change
// nothing. Every wait is for what the page or the database shows, never a fixed time.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import jsqr from 'jsqr';
import { PNG } from 'pngjs';
import { describe, expect, it, vi } from 'vitest';
import { query, trackDaemons } from '../support/helpers.js';
import { dashboard, freePort, logIn, loginLink, screenshotDir, useBrowser, type Page } from '../support/browser.js';

vi.setConfig({ testTimeout: 180_000, hookTimeout: 120_000 });

const track = trackDaemons();
const { newPage } = useBrowser();
const TICK = { tick: 'command: ["true"]\n' };

interface SessionRow {
  id: number;
  label: string;
  revoked_at: number | null;
}
const sessions = (d: { state: string }) => query<SessionRow>(d.state, 'SELECT id, label, revoked_at FROM web_sessions ORDER BY id');
const sessionId = (d: { state: string }, label: string) => sessions(d).find((s) => s.label === label)!.id;
const events = (d: { state: string }, kind: string) =>
  query<{ message: string; data: string | null }>(d.state, 'SELECT message, data FROM events WHERE kind = ? ORDER BY id', kind);
const linkCount = (d: { state: string }) => query<{ n: number }>(d.state, 'SELECT count(*) AS n FROM web_links')[0]!.n;

async function cookieOf(page: Page): Promise<string> {
  const c = (await page.context().cookies()).find((x) => x.name === 'nightshift_session')!;
  return `${c.name}=${c.value}`;
}

/** The QR code as the browser drew it: a screenshot of the <svg>, decoded from its pixels. */
async function readQr(page: Page): Promise<string | null> {
  const png = PNG.sync.read(await page.locator('svg.qr').screenshot());
  return jsqr.default(new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.length), png.width, png.height)?.data ?? null;
}

describe('adding a device and ending sessions: the attacks first', () => {
  it('revoke without the token, from another origin or site, by an id that is no session, and add-a-device without a session change nothing', async () => {
    const d = await dashboard(track, TICK);
    const desk = await newPage();
    await logIn(desk, await loginLink(d), 'desk');
    const tablet = await newPage();
    await logIn(tablet, await loginLink(d), 'tablet');
    const tabletId = sessionId(d, 'tablet');
    await desk.goto(`${d.url}/devices`);
    const csrf = (await desk.locator('input[name=csrf]').first().getAttribute('value'))!;
    const cookie = await cookieOf(desk);
    const post = (path: string, body: string, headers: Record<string, string> = {}) =>
      fetch(`${d.url}${path}`, {
        method: 'POST',
        body,
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, ...headers },
      });
    const links = linkCount(d);

    // A page of another site in the same browser posts the revoke form with the right token: refused.
    const evilPort = await freePort();
    const evil = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        `<form id=f method=post action="${d.url}/devices/${tabletId}/revoke"><input name=csrf value="${csrf}"></form><script>document.getElementById('f').submit()</script>`,
      );
    });
    await new Promise<void>((r) => evil.listen(evilPort, '127.0.0.1', r));
    try {
      await desk.goto(`http://127.0.0.1:${evilPort}/`);
      await desk.waitForURL(`${d.url}/devices/${tabletId}/revoke`);
      expect(await desk.locator('h1').textContent()).toBe('Refused');
    } finally {
      evil.close();
    }

    const statuses = {
      noToken: (await post(`/devices/${tabletId}/revoke`, '')).status,
      wrongToken: (await post(`/devices/${tabletId}/revoke`, 'csrf=forged')).status,
      foreignOrigin: (await post(`/devices/${tabletId}/revoke`, `csrf=${csrf}`, { origin: 'http://evil.example' })).status,
      crossSite: (await post(`/devices/${tabletId}/revoke`, `csrf=${csrf}`, { 'sec-fetch-site': 'cross-site' })).status,
      notASession: (await post('/devices/9999/revoke', `csrf=${csrf}`, { origin: d.url })).status,
      notAnId: (await post('/devices/desk/revoke', `csrf=${csrf}`, { origin: d.url })).status,
      zero: (await post('/devices/0/revoke', `csrf=${csrf}`, { origin: d.url })).status,
      anonymousRevoke: (
        await fetch(`${d.url}/devices/${tabletId}/revoke`, {
          method: 'POST',
          body: `csrf=${csrf}`,
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded', origin: d.url },
        })
      ).status,
      anonymousAdd: (
        await fetch(`${d.url}/devices/add`, {
          method: 'POST',
          body: `csrf=${csrf}`,
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded', origin: d.url },
        })
      ).status,
      addNoToken: (await post('/devices/add', '', { origin: d.url })).status,
      addForeignOrigin: (await post('/devices/add', `csrf=${csrf}`, { origin: 'http://evil.example' })).status,
      anonymousPage: (await fetch(`${d.url}/devices`)).status,
    };
    expect(statuses).toEqual({
      noToken: 403,
      wrongToken: 403,
      foreignOrigin: 403,
      crossSite: 403,
      notASession: 404,
      notAnId: 404,
      zero: 404,
      anonymousRevoke: 403,
      anonymousAdd: 403,
      addNoToken: 403,
      addForeignOrigin: 403,
      anonymousPage: 401,
    });
    // Nothing ended, no link made, nothing journaled; the tablet is still logged in.
    expect(sessions(d).map((s) => s.revoked_at)).toEqual([null, null]);
    expect(linkCount(d)).toBe(links);
    expect(events(d, 'web-revoke')).toEqual([]);
    expect(events(d, 'web-device-link')).toEqual([]);
    await tablet.goto(`${d.url}/`);
    await tablet.locator('#verdict').waitFor();
    expect(d.lines().filter((l) => l.msg === 'dashboard request failed')).toEqual([]);

    // And the right requests do act (the refusals above were not broken buttons): the answer to
    // "Add a device" is the page itself, not cached, with the link in it and not in any address.
    const add = await post('/devices/add', `csrf=${csrf}`, { origin: d.url });
    expect(add.status).toBe(200);
    expect(add.headers.get('cache-control')).toBe('no-store');
    expect(add.headers.get('location')).toBeNull();
    const body = await add.text();
    const link = new RegExp(`${d.url}/login/[A-Za-z0-9_-]{43}`).exec(body)?.[0];
    expect(link).toBeDefined();
    expect(linkCount(d)).toBe(links + 1);
    const revoke = await post(`/devices/${tabletId}/revoke`, `csrf=${csrf}`, { origin: d.url });
    expect(revoke.status).toBe(303);
    expect(revoke.headers.get('location')).toBe('/devices');
    expect(sessions(d).find((s) => s.id === tabletId)!.revoked_at).not.toBeNull();
    // A second press on an old page: said, nothing more happens.
    await post(`/devices/${tabletId}/revoke`, `csrf=${csrf}`, { origin: d.url });
    await desk.goto(`${d.url}/devices`);
    expect(await desk.locator('.flash.error').textContent()).toContain('The session of “tablet” had ended already.');
    expect(events(d, 'web-revoke')).toHaveLength(1);
  });
});

describe('adding a device', () => {
  it("gives a one-time link and its QR code that log a second browser in with its own label; Revoke ends it at once, Log out this one's", async () => {
    const d = await dashboard(track, TICK);
    const desk = await newPage({ width: 1024 });
    await logIn(desk, await loginLink(d), 'desk');
    await desk.getByRole('link', { name: 'Devices' }).click();
    await desk.locator('h1', { hasText: 'Devices' }).waitFor();
    const deskId = sessionId(d, 'desk');
    expect(await desk.locator('li.session').count()).toBe(1);
    expect(await desk.locator(`#session-${deskId}`).textContent()).toContain('this device');

    await desk.getByRole('button', { name: 'Add a device' }).click();
    const link = (await desk.locator('#device-link').textContent())!;
    expect(link).toMatch(new RegExp(`^${d.url}/login/[A-Za-z0-9_-]{43}$`));
    const token = link.split('/').pop()!;
    // The answer to the POST shows it: the link is in no address the browser keeps.
    expect(desk.url()).toBe(`${d.url}/devices/add`);
    // The code, as drawn under the page's Content-Security-Policy, is the link; black on white in dark mode too.
    expect(await readQr(desk)).toBe(link);
    await desk.emulateMedia({ colorScheme: 'dark' });
    expect(await desk.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(18, 18, 18)');
    expect(await readQr(desk)).toBe(link);
    await desk.screenshot({ path: join(screenshotDir(), 'add-device-dark.png'), fullPage: true });
    await desk.emulateMedia({ colorScheme: 'light' });
    // Journaled with who made it, never the token.
    const made = events(d, 'web-device-link');
    expect(made.map((e) => e.message)).toEqual(['one-time login link for a new device made by web (desk)']);
    expect(JSON.stringify(made)).not.toContain(token);
    expect(d.lines().some((l) => JSON.stringify(l).includes(token))).toBe(false);
    expect(readFileSync(join(d.state, 'nightshift.db')).toString('latin1')).not.toContain(token);

    // A second browser (the phone) opens it and names itself.
    const phone = await newPage();
    await logIn(phone, link, "Kevin's phone");
    expect(await phone.locator('.flash').textContent()).toContain("Logged in as “Kevin's phone”");
    const phoneId = sessionId(d, "Kevin's phone");
    expect(events(d, 'web-login').map((e) => e.message)).toEqual([
      'dashboard session opened for "desk"',
      'dashboard session opened for "Kevin\'s phone"',
    ]);
    // The link worked once.
    const third = await newPage();
    await third.goto(link);
    await expect(third.locator('.flash.error').textContent()).resolves.toContain('used already');

    // Both devices are listed, each with its label and times, "this device" on each one's own.
    await desk.goto(`${d.url}/devices`);
    expect(await desk.locator('li.session').count()).toBe(2);
    const deskItem = (await desk.locator(`#session-${deskId}`).textContent())!;
    const phoneItem = (await desk.locator(`#session-${phoneId}`).textContent())!;
    expect(deskItem).toContain('desk');
    expect(deskItem).toContain('this device');
    expect(phoneItem).toContain("Kevin's phone");
    expect(phoneItem).not.toContain('this device');
    for (const item of [deskItem, phoneItem])
      expect(item).toMatch(
        /logged in\s+(just now|\S+ ago)\s+\(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)\s+·\s+last used\s+(just now|\S+ ago)\s+\(\d{4}-/,
      );
    await phone.goto(`${d.url}/devices`);
    expect(await phone.locator(`#session-${phoneId}`).textContent()).toContain('this device');
    expect(await phone.locator(`#session-${deskId}`).textContent()).not.toContain('this device');

    // Revoke the phone from the desk: its very next request is logged out; the desk stays.
    await desk.locator(`#session-${phoneId}`).getByRole('button', { name: 'Revoke' }).click();
    expect(await desk.locator('.flash').textContent()).toContain("The session of “Kevin's phone” has ended");
    expect(await desk.locator('li.session').count()).toBe(1);
    expect(sessions(d).find((s) => s.id === phoneId)!.revoked_at).not.toBeNull();
    expect(events(d, 'web-revoke').map((e) => e.message)).toEqual(['session "Kevin\'s phone" revoked by web (desk)']);
    await phone.reload();
    await expect(phone.locator('h1').textContent()).resolves.toBe('Not logged in');
    await phone.goto(`${d.url}/`);
    await expect(phone.locator('h1').textContent()).resolves.toBe('Not logged in');
    await desk.goto(`${d.url}/`);
    await desk.locator('#verdict').waitFor();

    // Log out: this device's own session ends, its cookie goes, and it shows the logged-out page.
    await desk.goto(`${d.url}/devices`);
    await desk.locator(`#session-${deskId}`).getByRole('button', { name: 'Log out' }).click();
    // (the page before the click has an h1 too: wait for the new one, not any)
    await desk.locator('h1', { hasText: 'Not logged in' }).waitFor();
    expect(await desk.locator('.flash').textContent()).toContain('This device is logged out');
    expect((await desk.context().cookies()).find((c) => c.name === 'nightshift_session')).toBeUndefined();
    await desk.goto(`${d.url}/devices`);
    await expect(desk.locator('h1').textContent()).resolves.toBe('Not logged in');
    expect(sessions(d).every((s) => s.revoked_at !== null)).toBe(true);
    expect(events(d, 'web-revoke').map((e) => e.message)[1]).toBe('session "desk" revoked by web (desk)');
  });

  it('on a phone: nothing overflows at 390 px, buttons are 44 px tall, axe finds nothing serious', async () => {
    const d = await dashboard(track, TICK);
    // CSP bypassed only to inject axe; the other tests read the page under its real policy.
    const page = await newPage({ bypassCSP: true });
    await logIn(page, await loginLink(d), "Kevin's phone");
    await logIn(await newPage(), await loginLink(d), 'desk');
    await page.goto(`${d.url}/devices`);
    await page.getByRole('button', { name: 'Add a device' }).click();
    await page.locator('svg.qr').waitFor();
    await page.screenshot({ path: join(screenshotDir(), 'add-device-phone.png'), fullPage: true });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    const qr = (await page.locator('svg.qr').boundingBox())!;
    expect(qr.width).toBeGreaterThanOrEqual(200);
    expect(qr.x + qr.width).toBeLessThanOrEqual(390);
    for (const b of await page.locator('main button').all()) {
      const box = (await b.boundingBox())!;
      expect(box.height).toBeGreaterThanOrEqual(44);
      expect(box.x + box.width).toBeLessThanOrEqual(390);
    }
    const axeSource = readFileSync(join(import.meta.dirname, '..', '..', 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
    await page.addScriptTag({ content: axeSource });
    const violations = await page.evaluate(async () => {
      const r = await (
        window as unknown as {
          axe: { run: (o: unknown) => Promise<{ violations: Array<{ id: string; impact: string; nodes: unknown[] }> }> };
        }
      ).axe.run({ runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
    });
    expect(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')).toEqual([]);
  });
});
