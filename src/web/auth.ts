// Login without passwords: `nightshift login` makes a one-time link; submitting its form (with a
// label for the device) spends it and opens a 30-day session held in a cookie. Tokens are 256
// random bits; the database keeps only their sha256, so reading it does not log anyone in.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { dashboardOrigin, type Policy } from '../config/schema.js';
import { oneLine } from '../text.js';
import { isDiskFull, type Store, type WebSessionRow } from '../store/store.js';

export const LINK_TTL_MS = 10 * 60_000;
export const SESSION_TTL_MS = 30 * 24 * 3600_000;
/** A session's expiry is pushed back at most this often (not one write per request). */
export const RENEW_EVERY_MS = 3600_000;
export const LABEL_MAX = 60;
export const COOKIE = 'nightshift_session';

export const newToken = (): string => randomBytes(32).toString('base64url');
export const tokenHash = (token: string): string => createHash('sha256').update(token).digest('hex');

export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A new one-time login link, valid LINK_TTL_MS. */
export function createLoginLink(store: Store, policy: Policy, now: number): { url: string; expiresAt: number } {
  const origin = dashboardOrigin(policy);
  if (origin === null) throw new Error('the dashboard is off (policy.yaml: dashboard.listen: off)');
  return createLinkAt(store, origin, now);
}

/** A new one-time login link to the dashboard at `origin`, valid LINK_TTL_MS ("add a device" on the dashboard itself). */
export function createLinkAt(store: Store, origin: string, now: number): { url: string; expiresAt: number } {
  const token = newToken();
  const expiresAt = now + LINK_TTL_MS;
  store.web.addLink(tokenHash(token), now, expiresAt);
  return { url: `${origin}/login/${token}`, expiresAt };
}

/** A device label as typed: one line, trimmed, capped; null when nothing usable is left. */
export function cleanLabel(raw: string): string | null {
  // The one sanitizer of outside text: control and bidi characters become visible, not removed.
  const label = oneLine(raw.replace(/\s+/g, ' '), LABEL_MAX);
  return label === '' ? null : label;
}

/** Spends a link and opens a session; the token goes in the cookie, never in the database. */
export function redeemLink(store: Store, linkToken: string, label: string, now: number): { token: string; session: WebSessionRow } | null {
  const token = newToken();
  const session = store.web.redeem(tokenHash(linkToken), {
    hash: tokenHash(token),
    csrf: newToken(),
    label,
    now,
    expiresAt: now + SESSION_TTL_MS,
  });
  return session ? { token, session } : null;
}

/** Why a link cannot be used, in the words the login page shows; null when it can. */
export function linkProblem(store: Store, linkToken: string, now: number): string | null {
  const row = /^[A-Za-z0-9_-]{20,100}$/.test(linkToken) ? store.web.link(tokenHash(linkToken)) : undefined;
  if (!row) return 'This login link is not known. Run nightshift login on the server for a new one.';
  if (row.used_at !== null) return 'This login link was used already (each link opens one session). Run nightshift login for a new one.';
  if (row.expires_at <= now)
    return `This login link has expired (links last ${LINK_TTL_MS / 60_000} minutes). Run nightshift login for a new one.`;
  return null;
}

/** The live session of a request's cookie, renewed when it is used (a session ends 30 days after its last use). */
export function sessionOf(store: Store, token: string | undefined, now: number, o: { renew?: boolean } = {}): WebSessionRow | null {
  if (!token || !/^[A-Za-z0-9_-]{20,100}$/.test(token)) return null;
  const s = store.web.session(tokenHash(token), now);
  if (!s) return null;
  if ((o.renew ?? true) && now - s.last_used_at >= RENEW_EVERY_MS) {
    try {
      store.web.touch(s.id, now, now + SESSION_TTL_MS);
      return { ...s, last_used_at: now, expires_at: now + SESSION_TTL_MS };
    } catch (err) {
      // A full disk: the session keeps the expiry it had, and the page (its kill switch too) still
      // answers. Anything else is a fault to be seen.
      if (!isDiskFull(err)) throw err;
    }
  }
  return s;
}

export const actorOf = (s: WebSessionRow): string => `web (${s.label})`;
