// A real browser for the dashboard's tests: Debian's Chromium driven by playwright-core (no
// bundled browser to download). The flags keep it from dialling out: this network refuses it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { ROOT, cli, makeHome, startDaemon, type DaemonProc } from './helpers.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Playwright gives each launch a fresh, temporary profile (the --user-data-dir it removes afterwards). */
export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A TCP port nothing listens on now (the kernel's pick), for one daemon's dashboard. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** How long a daemon may take to say its dashboard listens. */
const LISTEN_WAIT_MS = 30_000;

/** A daemon with its dashboard: `url` is http://127.0.0.1:`port`. */
export interface Dash extends DaemonProc {
  url: string;
  port: number;
}

/**
 * A daemon on a fresh home (UTC) with its dashboard on a free loopback port; it and its home go
 * into `track` (from `trackDaemons()`), which stops and removes them. Waits until the dashboard
 * listens. `rules`: files for rules/ by name; `policy`: more lines for policy.yaml; `prefix`: argv
 * put before the daemon's (prlimit …); `proxied`: policy.dashboard.publicUrl is set (a loopback
 * one, as http allows); `off`: the dashboard is off (nothing listens on `port`, nothing is awaited).
 */
export async function dashboard(
  track: { daemons: DaemonProc[]; dirs: string[] },
  jobs: Record<string, string>,
  o: { rules?: Record<string, string>; policy?: string; prefix?: string[]; proxied?: boolean; off?: boolean } = {},
): Promise<Dash> {
  const port = await freePort();
  const listen = o.off ? 'off' : `127.0.0.1:${port}`;
  const pub = o.proxied ? `, publicUrl: "http://127.0.0.1:${port}"` : '';
  const h = makeHome(jobs, `timezone: UTC\ndashboard: { listen: "${listen}"${pub} }\n${o.policy ?? ''}`);
  track.dirs.push(h);
  for (const [name, text] of Object.entries(o.rules ?? {})) writeFileSync(join(h, 'rules', `${name}.yaml`), text);
  const d = await startDaemon(h, { prefix: o.prefix });
  track.daemons.push(d);
  if (!o.off) await d.waitLog((l) => l.msg === 'dashboard listening', LISTEN_WAIT_MS, 'dashboard listening');
  return Object.assign(d, { url: `http://127.0.0.1:${port}`, port });
}

/**
 * One browser for a test file: launched before its tests, closed after them with every context
 * `newPage` opened. Each page has a phone's viewport unless told, and records the message of any
 * dialog in `dialogs` (and dismisses it): no page of ours may open one, a script that ran would.
 */
export function useBrowser(): {
  newPage: (o?: { width?: number; height?: number; bypassCSP?: boolean; javaScriptEnabled?: boolean }) => Promise<Page>;
  dialogs: string[];
} {
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  const dialogs: string[] = [];
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
  });
  async function newPage(o: { width?: number; height?: number; bypassCSP?: boolean; javaScriptEnabled?: boolean } = {}): Promise<Page> {
    if (!browser) throw new Error('newPage before the browser was launched (call it inside a test)');
    const ctx = await browser.newContext({
      viewport: { width: o.width ?? 390, height: o.height ?? 844 },
      bypassCSP: o.bypassCSP ?? false,
      javaScriptEnabled: o.javaScriptEnabled ?? true,
    });
    contexts.push(ctx);
    const page = await ctx.newPage();
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    return page;
  }
  return { newPage, dialogs };
}

/** A request with the headers given and no others (a Host of our choosing: fetch() will not send one). */
export function rawRequest(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, setHost: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A one-time login link from the real `nightshift login`. */
export async function loginLink(d: { home: string; state: string }, env?: Record<string, string>): Promise<string> {
  const r = await cli(['--home', d.home, '--state', d.state, 'login', '--json'], { env });
  if (r.exitCode !== 0) throw new Error(`nightshift login failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { url: string }).url;
}

/** Opens the link, names the device, submits: the page is then the overview of a logged-in session. */
export async function logIn(page: Page, link: string, label: string): Promise<void> {
  await page.goto(link);
  await page.getByLabel('This device').fill(label);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#verdict').waitFor();
}

/** Where the test run writes its screenshots (the committed ones are copied to docs/screenshots/). */
export function screenshotDir(): string {
  const dir = process.env.SCREENSHOTS_DIR ?? join(ROOT, '.artifacts', 'screenshots');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Reloads until `pred` holds: the page shows what the server knows at load time (no fixed waits). */
export async function reloadUntil(page: Page, pred: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await pred()) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for the page to show ${what}`);
    await new Promise((r) => setTimeout(r, 200));
    await page.reload();
  }
}

export type { Browser, BrowserContext, Page };
