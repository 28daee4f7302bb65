// The dashboard's HTTP server: Node's own `http` (no dependency, and the few routes below need no
// framework). Every request passes the same gates in this order: a Host this server answers to
// (DNS rebinding), a session (except the login link itself and pings, whose key is their
// credential: web/ping-http.ts), and for a POST the CSRF checks — the
// browser's Origin / Sec-Fetch-Site, and the session's token in the form. Headers forbid inline
// script, framing and referrers (a login link never leaves in a Referer; same-origin, not no-referrer: with that a form's Origin is "null").
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { originOf, parseListen, publicOrigin } from '../config/schema.js';
import type { Job } from '../config/home.js';
import type { Logger } from '../log.js';
import { errorMessage } from '../errors.js';
import { closeServer } from '../http.js';
import { parseRef } from '../model.js';
import type { WebSessionRow } from '../store/store.js';
import {
  actorOf,
  cleanLabel,
  COOKIE,
  createLinkAt,
  linkProblem,
  redeemLink,
  sameSecret,
  sessionOf,
  SESSION_TTL_MS,
  tokenHash,
} from './auth.js';
import { devicesPage } from './devices.js';
import { LIVE_SCRIPT, LiveStreams, type LiveChange } from './live.js';
import {
  alertsPage,
  digestPage,
  digestsPage,
  healsPage,
  jobPage,
  killOffPage,
  loginPage,
  messagePage,
  notLoggedInPage,
  overviewPage,
  runPage,
  type Chrome,
  type PageData,
} from './pages.js';
import { STYLE } from './style.js';
import { clientAddress, PingGate, type PingKind } from './ping-http.js';

/** What the buttons do: the daemon's own actions, the ones the CLI reaches over the control socket. */
export interface WebActions {
  answer(id: number, what: 'approve' | 'deny', by: string): { status: string };
  /** Starts a run and says at once whether it started (its end shows on the job's page). */
  runNow(job: string, by: string): Promise<string>;
  setPaused(job: string, paused: boolean, by: string): { changed: string[] };
  /** Turns the switch on or off and says what is in force now. */
  killSwitch(on: boolean, by: string): string;
  /** Pings over HTTP (web/ping-http.ts): the external job a key proves life of, or null. */
  jobOfPingKey(key: string): string | null;
  /** A ping of an external job, through the same code as `nightshift ping`; false when the job is gone. */
  ping(job: string, kind: PingKind, output: string | null, message: string | null): boolean;
}

/** A button's action refused for a reason the person can act on (the CLI's words); shown, not logged as a fault. */
export class ActionRefused extends Error {}

export interface DashboardOptions {
  listen: string;
  publicUrl?: string;
  data: () => PageData;
  describe: (job: Job) => string;
  actions: WebActions;
  log: Logger;
  now: () => number;
}

const MAX_BODY = 8 * 1024;
/** Open connections at most: a flood of idle sockets must not take the file descriptors jobs need. */
const MAX_CONNECTIONS = 128;
/** Login requests per client in LOGIN_WINDOW_MS, and in all: a guessed link is 256 bits, this is for noise. */
const LOGIN_PER_CLIENT = 10;
const LOGIN_TOTAL = 60;
const LOGIN_WINDOW_MS = 60_000;

const HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'same-origin',
  'Cache-Control': 'no-store',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

class Refused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class Dashboard {
  private server: Server | null = null;
  private hosts = new Set<string>();
  private origins = new Set<string>();
  private secure = false;
  /** Behind https the cookie is `__Host-` prefixed: no other host or path can set one that shadows it. */
  private cookieName = COOKIE;
  /** One message per session, shown by the next page it loads (the answer to a button). */
  private readonly flashes = new Map<number, { text: string; error: boolean }>();
  private loginHits: number[] = [];
  private readonly live = new LiveStreams();
  private readonly loginByClient = new Map<string, number[]>();
  readonly listen: string;
  publicUrl: string | null = null;
  private readonly pings: PingGate;

  constructor(private readonly o: DashboardOptions) {
    if (!parseListen(o.listen)) throw new Error(`dashboard.listen "${o.listen}" is not HOST:PORT`);
    this.listen = o.listen;
    this.setPublicUrl(o.publicUrl);
    this.pings = new PingGate({
      jobOfKey: (key) => o.actions.jobOfPingKey(key),
      ping: (job, kind, output, message) => o.actions.ping(job, kind, output, message),
      behindProxy: () => this.publicUrl !== null,
      refused: (job, why) => o.log.warn({ job, why }, `pings of ${job} refused for a minute: ${why}`),
    });
  }

  /** The names this server answers to: its listen address, and publicUrl's host when one is set. */
  setPublicUrl(publicUrl: string | undefined): void {
    const l = parseListen(this.listen)!;
    const pub = publicUrl ? publicOrigin(publicUrl) : null;
    if (publicUrl && !pub) throw new Error(`dashboard.publicUrl "${publicUrl}" is not an address such as https://ops.shop.example`);
    // The URL parser writes a host as browsers send it (no default port, IPv6 in canonical form).
    const own = new URL(`http://${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`);
    this.hosts = new Set([own.host.toLowerCase()]);
    this.origins = new Set([own.origin.toLowerCase()]);
    this.secure = pub?.protocol === 'https:';
    this.cookieName = this.secure ? `__Host-${COOKIE}` : COOKIE;
    if (pub) {
      this.hosts.add(pub.host.toLowerCase());
      this.origins.add(pub.origin.toLowerCase());
    }
    this.publicUrl = publicUrl ?? null;
  }

  async start(): Promise<{ host: string; port: number }> {
    const l = parseListen(this.o.listen)!;
    const server = createServer((req, res) => this.handle(req, res));
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.keepAliveTimeout = 5_000;
    server.maxConnections = MAX_CONNECTIONS;
    server.on('clientError', (_err, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(l.port, l.host, () => {
        server.off('error', reject);
        // An error after the start (an accept that fails for want of descriptors) is said, not fatal.
        server.on('error', (err) => this.o.log.error({ err: errorMessage(err) }, 'the dashboard server reported an error'));
        resolve();
      });
    });
    this.server = server;
    return l;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    this.live.close();
    if (!s) return;
    await closeServer(s);
  }

  /** Tells the open pages that something they may show changed (they fetch themselves again). */
  push(c: LiveChange): void {
    this.live.push(c);
  }

  /** How many pages are open live (the bench and the tests read it). */
  get liveStreams(): number {
    return this.live.size;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.route(req, res).catch((err: unknown) => {
      const status = err instanceof Refused ? err.status : 500;
      // A client's mistake (or an attacker's noise) is not a fault of nightshift: only 500s are logged as errors.
      // A ping key or a login token in the path is a secret: the log gets the path without it.
      const url = (req.url ?? '').replace(/^\/(ping|login)\/[^/?]+/, '/$1/…');
      if (status === 500) this.o.log.error({ err: errorMessage(err), url }, 'dashboard request failed');
      const text = err instanceof Refused ? err.message : 'Something went wrong on the server; its log says what.';
      const title = status === 500 ? 'Error' : 'Refused';
      if (!res.headersSent) this.send(res, status, messagePage({ title, session: null }, title, text));
      else res.end();
    });
  }

  private send(
    res: ServerResponse,
    status: number,
    body: string,
    type = 'text/html; charset=utf-8',
    extra: Record<string, string | string[]> = {},
  ): void {
    res.writeHead(status, { ...HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...extra });
    res.end(body);
  }

  private redirect(res: ServerResponse, to: string, extra: Record<string, string | string[]> = {}): void {
    res.writeHead(303, { ...HEADERS, Location: to, 'Content-Length': 0, ...extra });
    res.end();
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // DNS rebinding: a page of another site whose name now points here still says its own name.
    const host = (req.headers.host ?? '').toLowerCase();
    if (!this.hosts.has(host)) throw new Refused(421, `This dashboard does not answer to the host "${host}".`);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    } catch {
      throw new Refused(400, 'The address is malformed.');
    }
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'POST') throw new Refused(405, `${method} is not used here.`);

    if (path === '/style.css' && method === 'GET') return this.send(res, 200, STYLE, 'text/css; charset=utf-8');
    if (path === '/live.js' && method === 'GET') return this.send(res, 200, LIVE_SCRIPT, 'text/javascript; charset=utf-8');
    if (path === '/favicon.ico') return this.send(res, 404, '', 'text/plain');
    // Pings carry their own credential (the key in the path): before the session gate, and without
    // the CSRF checks, which are for browsers.
    if (path.startsWith('/ping/')) {
      const a = await this.pings.answer(req, path, method);
      return this.send(res, a.status, a.body, 'text/plain; charset=utf-8', a.headers);
    }

    const login = /^\/login\/([^/]+)$/.exec(path);
    if (login) return this.login(req, res, method, decodePart(login[1]!));

    const now = this.o.now();
    const d = this.o.data();
    let session: WebSessionRow | null = null;
    let token: string | undefined;
    // What an open page does by itself (its event stream, fetching itself when told) is not a
    // person using the session: it does not renew it, or a forgotten tab would keep it for ever.
    const byItself = path === '/events' || req.headers['x-nightshift-live'] === '1';
    for (const t of cookiesOf(req, this.cookieName)) {
      session = sessionOf(d.store, t, now, { renew: !byItself });
      token = t;
      if (session) break;
    }
    if (!session) {
      if (method === 'POST') throw new Refused(403, 'You are not logged in, so nothing was changed. Run nightshift login on the server.');
      return this.send(res, 401, notLoggedInPage({ title: 'Not logged in', session: null }));
    }
    // The cookie's Max-Age moves only when the session was renewed (at most hourly), not on every answer.
    const renew = session.last_used_at === now ? this.cookie(token, session) : {};

    if (method === 'POST') {
      this.checkOrigin(req);
      const form = await readForm(req);
      if (!sameSecret(form.get('csrf') ?? '', session.csrf))
        throw new Refused(
          403,
          'The form was stale or forged (its token is wrong), so nothing was changed. Reload the page and press again.',
        );
      if (path === '/devices/add' || /^\/devices\/[^/]+\/revoke$/.test(path)) return this.devicePost(res, path, session, d, renew);
      const back = safeBack(form.get('back'));
      if (path === '/kill/off' && form.get('confirm') !== 'yes') return this.redirect(res, '/kill/off', renew);
      let flash: { text: string; error: boolean };
      try {
        flash = { text: await this.act(path, session), error: false };
      } catch (err) {
        if (err instanceof Refused) throw err;
        if (!(err instanceof ActionRefused))
          this.o.log.error({ err: errorMessage(err), path, by: actorOf(session) }, 'a dashboard button failed');
        flash = { text: errorMessage(err), error: true };
      }
      this.flashes.set(session.id, flash);
      return this.redirect(res, back, renew);
    }

    if (path === '/events' && method === 'GET') {
      const t = token!;
      const web = d.store.web;
      return this.live.open(res, session.id, () => web.session(tokenHash(t), this.o.now()) !== undefined, { ...HEADERS, ...renew });
    }

    // A live page fetching itself leaves the flash for the page the person loads next.
    const refetch = byItself;
    const chrome: Chrome = { title: 'Overview', session, flash: refetch ? null : (this.flashes.get(session.id) ?? null), live: 'all' };
    if (!refetch) this.flashes.delete(session.id);
    let page: string | null;
    let m: RegExpExecArray | null;
    if (path === '/') page = overviewPage(d, chrome);
    else if (path === '/alerts') page = alertsPage(d, { ...chrome, title: 'Alerts' });
    else if (path === '/heals') page = healsPage(d, { ...chrome, title: 'Heals' });
    else if (path === '/devices') page = devicesPage(d, { ...chrome, title: 'Devices', live: null });
    else if (path === '/kill/off') page = killOffPage(d, { ...chrome, title: 'Kill switch', live: null });
    else if (path === '/digests') page = digestsPage(d, { ...chrome, title: 'Digests', live: null });
    else if ((m = /^\/digests\/(\d{4}-\d{2}-\d{2})$/.exec(path)))
      page = digestPage(d, { ...chrome, title: `Digest ${m[1]!}`, live: null }, m[1]!);
    else if ((m = /^\/jobs\/([^/]+)\/runs\/(\d+)$/.exec(path))) {
      const name = decodePart(m[1]!);
      // A run that has ended never changes: its page follows nothing (and re-reads no log).
      const running = d.store.runs.get(Number(m[2]))?.ended_at === null;
      page = runPage(d, { ...chrome, title: 'Run', live: running ? `job:${name}` : null }, name, Number(m[2]));
    } else if ((m = /^\/jobs\/([^/]+)$/.exec(path))) {
      const name = decodePart(m[1]!);
      page = jobPage(d, { ...chrome, title: name, live: `job:${name}` }, name, this.o.describe);
    } else page = null;
    if (page === null)
      return this.send(
        res,
        404,
        messagePage({ ...chrome, title: 'Not found', live: null }, 'Not found', `Nothing is at ${path}.`),
        undefined,
        renew,
      );
    this.send(res, 200, page, undefined, renew);
  }

  /** A button: the same action as the CLI command of the same name; returns what to tell the person. */
  private async act(path: string, session: WebSessionRow): Promise<string> {
    const by = actorOf(session);
    const a = this.o.actions;
    let m: RegExpExecArray | null;
    if ((m = /^\/heals\/([^/]+)\/(approve|deny)$/.exec(path))) {
      const ref = parseRef('heal', decodePart(m[1]!));
      if ('error' in ref) throw new Refused(404, ref.error);
      return a.answer(ref.id, m[2] as 'approve' | 'deny', by).status;
    }
    if ((m = /^\/jobs\/([^/]+)\/(run|pause|resume)$/.exec(path))) {
      const job = decodePart(m[1]!);
      if (m[2] === 'run') return await a.runNow(job, by);
      const paused = m[2] === 'pause';
      const { changed } = a.setPaused(job, paused, by);
      return changed.length
        ? `${job} ${paused ? 'paused' : 'resumed'}.`
        : `${job} was already ${paused ? 'paused' : 'running on its schedule'}.`;
    }
    if (path === '/kill/on' || path === '/kill/off') {
      return a.killSwitch(path === '/kill/on', by);
    }
    throw new Refused(404, `Nothing is at ${path}.`);
  }

  /**
   * "Add a device" and "Revoke" / "Log out" on the Devices page. A new link is shown in the answer
   * to the POST itself (no redirect: its token must not go into an address, a history or a log);
   * ending this device's own session answers with the logged-out page and clears the cookie.
   */
  private devicePost(res: ServerResponse, path: string, session: WebSessionRow, d: PageData, renew: Record<string, string>): void {
    const now = this.o.now();
    const by = actorOf(session);
    if (path === '/devices/add') {
      const link = createLinkAt(d.store, originOf(this.listen, this.publicUrl), now);
      d.store.journal.record(now, 'web-device-link', null, `one-time login link for a new device made by ${by}`, {
        session: session.id,
        expiresAt: link.expiresAt,
      });
      this.o.log.info({ session: session.id, by }, 'dashboard login link made for a new device');
      const flash = { text: 'A new one-time login link: open it on the new device.', error: false };
      return this.send(res, 200, devicesPage(d, { title: 'Add a device', session, flash }, link), undefined, renew);
    }
    const raw = decodePart(/^\/devices\/([^/]+)\/revoke$/.exec(path)![1]!);
    const row = /^[1-9]\d{0,14}$/.test(raw) ? d.store.web.byId(Number(raw)) : undefined;
    if (!row) throw new Refused(404, `There is no session ${raw}; nothing was changed.`);
    if (!d.store.web.revoke(row.id, now)) {
      this.flashes.set(session.id, { text: `The session of “${row.label}” had ended already.`, error: true });
      return this.redirect(res, '/devices', renew);
    }
    d.store.journal.record(now, 'web-revoke', null, `session "${row.label}" revoked by ${by}`, { session: row.id, by: session.id });
    this.o.log.info({ session: row.id, by }, 'dashboard session revoked');
    // Its open pages stop hearing at once, not at the next keepalive.
    this.live.endSession(row.id);
    this.flashes.delete(row.id);
    if (row.id === session.id) {
      const flash = { text: `This device is logged out: its session “${row.label}” has ended.`, error: false };
      const clear = `${this.cookieName}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0${this.secure ? '; Secure' : ''}`;
      return this.send(res, 200, notLoggedInPage({ title: 'Logged out', session: null, flash }), undefined, { 'Set-Cookie': clear });
    }
    this.flashes.set(session.id, { text: `The session of “${row.label}” has ended: that device is logged out.`, error: false });
    this.redirect(res, '/devices', renew);
  }

  private async login(req: IncomingMessage, res: ServerResponse, method: string, token: string): Promise<void> {
    const d = this.o.data();
    const now = this.o.now();
    const chrome: Chrome = { title: 'Log in', session: null };
    // Only failures count against the limit: noise from elsewhere on this machine (a job, another
    // user of an SSH tunnel) must not lock out the person who holds a good link.
    const early = linkProblem(d.store, token, now);
    if (early) {
      this.limitLogin(req);
      return this.send(res, 410, loginPage(token, early, chrome));
    }
    // A GET only shows the form: a chat app's link preview fetches the page but never submits it.
    if (method === 'GET') return this.send(res, 200, loginPage(token, null, chrome));
    this.checkOrigin(req);
    const form = await readForm(req);
    const label = cleanLabel(form.get('label') ?? '');
    if (label === null)
      return this.send(res, 400, loginPage(token, null, { ...chrome, flash: { text: 'Give this device a name.', error: true } }));
    const problem = linkProblem(d.store, token, now);
    const opened = problem ? null : redeemLink(d.store, token, label, now);
    if (!opened)
      return this.send(
        res,
        410,
        loginPage(token, problem ?? 'This login link was used already. Run nightshift login for a new one.', chrome),
      );
    d.store.journal.record(now, 'web-login', null, `dashboard session opened for "${label}"`, { session: opened.session.id });
    this.o.log.info({ session: opened.session.id, label }, 'dashboard session opened');
    this.flashes.set(opened.session.id, { text: `Logged in as “${label}”.`, error: false });
    this.redirect(res, '/', this.cookie(opened.token, opened.session));
  }

  private cookie(token: string | undefined, s: WebSessionRow): Record<string, string> {
    if (!token) return {};
    const maxAge = Math.max(0, Math.floor((s.expires_at - this.o.now()) / 1000));
    return {
      'Set-Cookie': `${this.cookieName}=${token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${Math.min(maxAge, SESSION_TTL_MS / 1000)}${this.secure ? '; Secure' : ''}`,
    };
  }

  /** A POST made by a page of another site is refused even with a valid token (defence in depth). */
  private checkOrigin(req: IncomingMessage): void {
    const origin = req.headers.origin;
    if (origin !== undefined && !this.origins.has(origin.toLowerCase()))
      throw new Refused(403, `A form from ${origin} may not act on this dashboard; nothing was changed.`);
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none')
      throw new Refused(403, 'A request from another site may not act on this dashboard; nothing was changed.');
  }

  private limitLogin(req: IncomingMessage): void {
    const now = this.o.now();
    // Behind the proxy every client arrives from 127.0.0.1: the one address the proxy vouches for.
    const client = clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], this.publicUrl !== null);
    const recent = (list: number[]): number[] => list.filter((t) => now - t < LOGIN_WINDOW_MS);
    this.loginHits = recent(this.loginHits);
    const mine = recent(this.loginByClient.get(client) ?? []);
    if (mine.length >= LOGIN_PER_CLIENT || this.loginHits.length >= LOGIN_TOTAL)
      throw new Refused(429, 'Too many login attempts; wait a minute and try again.');
    mine.push(now);
    this.loginHits.push(now);
    this.loginByClient.set(client, mine);
    if (this.loginByClient.size > 1000) this.loginByClient.clear();
  }
}

/** A path segment as text; a malformed %-escape is the client's mistake (400), not the server's. */
function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new Refused(400, 'The address is malformed (a broken %-escape).');
  }
}

/** Every value sent for the cookie: another local server may have set one of the same name that shadows ours. */
function cookiesOf(req: IncomingMessage, name: string): string[] {
  const found: string[] = [];
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) found.push(part.slice(i + 1).trim());
  }
  return found;
}

/** Only a path of this site: never another origin, never "//evil.example". */
function safeBack(back: string | null): string {
  // Printable ASCII only: anything else cannot go into a Location header.
  return back && /^\/(?![/\\])[\x21-\x7e]*$/.test(back) ? back : '/';
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new Refused(415, 'Expected a form (application/x-www-form-urlencoded).');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Refused(413, 'The form is too large.');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
