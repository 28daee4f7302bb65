// A real browser for the dashboard's tests: Debian's Chromium driven by playwright-core (no
// bundled browser to download). The flags keep it from dialling out: this network refuses it.
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ROOT, cli } from './helpers.js';

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
