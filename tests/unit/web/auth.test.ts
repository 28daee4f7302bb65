// Login links and sessions against a real SQLite file: a link is spent once (also when two
// submissions race), expires, sessions end after 30 days without use and are renewed while used.
// Instants are passed in: this is arithmetic on stored times, not waiting.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY } from '../../../src/config/home.js';
import { dashboardLink } from '../../../src/config/schema.js';
import { Store } from '../../../src/store/store.js';
import {
  cleanLabel,
  createLinkAt,
  createLoginLink,
  linkProblem,
  LINK_TTL_MS,
  redeemLink,
  RENEW_EVERY_MS,
  sessionOf,
  SESSION_TTL_MS,
  tokenHash,
} from '../../../src/web/auth.js';
import { tempDir } from '../../support/helpers.js';

const T0 = Date.UTC(2026, 11, 5, 12);
const tokenOf = (url: string): string => url.split('/').pop()!;

function store(): Store {
  return Store.open(join(tempDir('ns-web-'), 'state', 'nightshift.db'));
}

describe('login links', () => {
  it('work once, within 10 minutes; the database holds only hashes', () => {
    const s = store();
    const { url, expiresAt } = createLoginLink(s, DEFAULT_POLICY, T0);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:8787\/login\/[A-Za-z0-9_-]{43}$/);
    expect(expiresAt).toBe(T0 + LINK_TTL_MS);
    const token = tokenOf(url);
    expect(s.db.prepare('SELECT hash FROM web_links').all()).toEqual([{ hash: tokenHash(token) }]);
    expect(linkProblem(s, token, T0 + LINK_TTL_MS - 1)).toBeNull();
    expect(linkProblem(s, token, T0 + LINK_TTL_MS)).toMatch(/expired/);
    expect(redeemLink(s, token, 'late', T0 + LINK_TTL_MS)).toBeNull();
    const opened = redeemLink(s, token, 'phone', T0 + 1000)!;
    expect(opened.session).toMatchObject({ label: 'phone', expires_at: T0 + 1000 + SESSION_TTL_MS });
    expect(opened.session.hash).toBe(tokenHash(opened.token));
    expect(redeemLink(s, token, 'again', T0 + 2000)).toBeNull();
    expect(linkProblem(s, token, T0 + 2000)).toMatch(/used already/);
    expect(linkProblem(s, 'x'.repeat(43), T0)).toMatch(/not known/);
    s.close();
  });

  it('two submissions racing with one link open one session', () => {
    const dir = tempDir('ns-web-race-');
    const a = Store.open(join(dir, 'nightshift.db'));
    const b = Store.open(join(dir, 'nightshift.db'));
    const token = tokenOf(createLoginLink(a, DEFAULT_POLICY, T0).url);
    const results = [redeemLink(a, token, 'one', T0 + 1), redeemLink(b, token, 'two', T0 + 1)];
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(a.db.prepare('SELECT count(*) AS n FROM web_sessions').get()).toEqual({ n: 1 });
    a.close();
    b.close();
  });

  it('use publicUrl when it is set, and none when the dashboard is off', () => {
    const s = store();
    const behind = { ...DEFAULT_POLICY, dashboard: { listen: '127.0.0.1:8787', publicUrl: 'https://ops.shop.example' } };
    expect(createLoginLink(s, behind, T0).url).toMatch(/^https:\/\/ops\.shop\.example\/login\//);
    expect(() => createLoginLink(s, { ...DEFAULT_POLICY, dashboard: { listen: 'off' } }, T0)).toThrow(/dashboard is off/);
    s.close();
  });
});

describe('sessions', () => {
  it('are not renewed by what an open page does by itself (its stream, its own refresh): a forgotten tab ends', () => {
    const s = store();
    const token = redeemLink(s, tokenOf(createLoginLink(s, DEFAULT_POLICY, T0).url), 'desk', T0)!.token;
    const late = T0 + SESSION_TTL_MS - 60_000;
    expect(sessionOf(s, token, late, { renew: false })).toMatchObject({ last_used_at: T0, expires_at: T0 + SESSION_TTL_MS });
    expect(s.web.session(tokenHash(token), late)!.expires_at).toBe(T0 + SESSION_TTL_MS);
    expect(sessionOf(s, token, T0 + SESSION_TTL_MS, { renew: false })).toBeNull();
  });

  it('end 30 days after their last use, are renewed while used, and all end with revokeAll', () => {
    const s = store();
    const open = () => redeemLink(s, tokenOf(createLoginLink(s, DEFAULT_POLICY, T0).url), 'phone', T0)!.token;
    // not used since it was opened: over after 30 days (a use before then renews it, below)
    expect(sessionOf(s, open(), T0 + SESSION_TTL_MS)).toBeNull();
    expect(sessionOf(s, open(), T0 + SESSION_TTL_MS - 1)).not.toBeNull();
    const token = open();
    // used on day 20: it now lasts until day 50
    const day = 24 * 3600_000;
    expect(sessionOf(s, token, T0 + 20 * day)!.expires_at).toBe(T0 + 50 * day);
    expect(sessionOf(s, token, T0 + 49 * day)).not.toBeNull();
    // within the hour of the last renewal it is not written again
    const row = sessionOf(s, token, T0 + 49 * day + RENEW_EVERY_MS - 1)!;
    expect(row.last_used_at).toBe(T0 + 49 * day);
    expect(sessionOf(s, 'forged-token-that-is-long-enough', T0)).toBeNull();
    expect(sessionOf(s, undefined, T0)).toBeNull();
    const unused = tokenOf(createLoginLink(s, DEFAULT_POLICY, T0 + 49 * day).url);
    expect(s.web.revokeAll(T0 + 49 * day + 1)).toEqual({ sessions: 2, links: 1 });
    expect(sessionOf(s, token, T0 + 49 * day + 2)).toBeNull();
    expect(redeemLink(s, unused, 'after', T0 + 49 * day + 2)).toBeNull();
    s.close();
  });
});

describe('the Devices page', () => {
  it('lists live sessions, the most recently used first; revoke ends one at once and only once', () => {
    const s = store();
    const open = (label: string, at: number) => redeemLink(s, tokenOf(createLoginLink(s, DEFAULT_POLICY, at).url), label, at)!;
    const desk = open('desk', T0);
    const phone = open('phone', T0 + 1000);
    const old = open('old', T0 - SESSION_TTL_MS);
    const now = T0 + 2000;
    expect(sessionOf(s, desk.token, T0 + RENEW_EVERY_MS)).not.toBeNull(); // desk used later than phone
    expect(s.web.live(T0 + RENEW_EVERY_MS).map((r) => r.label)).toEqual(['desk', 'phone']); // old has expired
    expect(s.web.byId(old.session.id)).toMatchObject({ label: 'old', revoked_at: null });
    expect(s.web.revoke(phone.session.id, now)).toBe(true);
    expect(s.web.byId(phone.session.id)).toMatchObject({ label: 'phone', revoked_at: now });
    expect(sessionOf(s, phone.token, now + 1)).toBeNull();
    expect(sessionOf(s, desk.token, now + 1)).not.toBeNull(); // the others go on
    expect(s.web.live(now + 1).map((r) => r.label)).toEqual(['desk']);
    // a second revoke, an expired session, an unknown id: nothing to end
    expect(s.web.revoke(phone.session.id, now + 5)).toBe(false);
    expect(s.web.byId(phone.session.id)!.revoked_at).toBe(now);
    expect(s.web.revoke(old.session.id, now)).toBe(false);
    expect(s.web.byId(old.session.id)!.revoked_at).toBeNull();
    expect(s.web.revoke(9999, now)).toBe(false);
    expect(s.web.byId(9999)).toBeUndefined();
    s.close();
  });

  it("a link made on the dashboard is the CLI's link at the address served, spent the same way", () => {
    const s = store();
    const { url, expiresAt } = createLinkAt(s, 'https://ops.shop.example', T0);
    expect(url).toMatch(/^https:\/\/ops\.shop\.example\/login\/[A-Za-z0-9_-]{43}$/);
    expect(expiresAt).toBe(T0 + LINK_TTL_MS);
    expect(redeemLink(s, tokenOf(url), 'tablet', T0 + 1)!.session.label).toBe('tablet');
    expect(linkProblem(s, tokenOf(url), T0 + 2)).toMatch(/used already/);
    s.close();
  });
});

describe('a full disk', () => {
  it('does not end a session: a renewal that cannot be written leaves the expiry it had', () => {
    const s = store();
    const { token, session } = redeemLink(s, tokenOf(createLoginLink(s, DEFAULT_POLICY, T0).url), 'phone', T0)!;
    // The renewal's write fails as SQLite fails on a full disk (SQLITE_FULL); reads go on.
    const full = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    s.web.touch = () => {
      throw full;
    };
    const later = T0 + 2 * RENEW_EVERY_MS;
    expect(sessionOf(s, token, later)).toMatchObject({ id: session.id, expires_at: session.expires_at });
    // Any other failure is a fault, and is not hidden.
    s.web.touch = () => {
      throw Object.assign(new Error('attempt to write a readonly database'), { code: 'SQLITE_READONLY' });
    };
    expect(() => sessionOf(s, token, later)).toThrow(/readonly/);
    s.close();
  });
});

describe('device labels', () => {
  it('are one line of visible text, capped', () => {
    expect(cleanLabel("  Kevin's   phone \n")).toBe("Kevin's phone");
    expect(cleanLabel('\u202eenohp')).toBe('\ufffdenohp');
    expect(cleanLabel('a\u001b[31mb')).toBe('a␛[31mb');
    expect(cleanLabel('   ')).toBeNull();
    expect(cleanLabel('x'.repeat(200))!.length).toBeLessThanOrEqual(61);
  });
});

describe('dashboard addresses', () => {
  it("a link starts at publicUrl's origin however it is written, or at the listen address; none while the dashboard is off", () => {
    const s = store();
    const withUrl = (publicUrl: string) => ({ ...DEFAULT_POLICY, dashboard: { ...DEFAULT_POLICY.dashboard, publicUrl } });
    for (const written of ['https://ops.shop.example', 'https://ops.shop.example/']) {
      expect(createLoginLink(s, withUrl(written), T0).url).toMatch(/^https:\/\/ops\.shop\.example\/login\/[A-Za-z0-9_-]{43}$/);
      expect(dashboardLink(withUrl(written), '/heals#H-4')).toBe('https://ops.shop.example/heals#H-4');
    }
    expect(dashboardLink(DEFAULT_POLICY, '/')).toBe('http://127.0.0.1:8787/');
    const off = { ...DEFAULT_POLICY, dashboard: { listen: 'off' } };
    expect(dashboardLink(off, '/')).toBeNull();
    expect(() => createLoginLink(s, off, T0)).toThrow(/the dashboard is off/);
  });
});
