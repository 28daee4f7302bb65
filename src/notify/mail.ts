// E-mails the digest. Never throws and never hangs: every way of failing comes back as one
// sentence that names the server and says what the operator can do about it.
import { formatDuration } from '../config/duration.js';
import type { Leash } from '../run/launch.js';
import { describeResult, runBounded } from './pager.js';
import type { Policy } from '../config/schema.js';
import { defaultSender } from '../config/home.js';
import { errorCode, errorMessage } from '../errors.js';

export type DigestMailConfig = Policy['digest'];

export interface MailContent {
  subject: string;
  text: string;
  html: string;
}

export type MailResult =
  | { ok: true; via: string; messageId: string; accepted: string[] }
  /** notConfigured: nothing was tried, because the policy does not say where or to whom. */
  | { ok: false; via: string; error: string; notConfigured: boolean };

export interface MailOptions {
  /** Connection, greeting and socket timeout; the whole send gets twice this (default 10 s). */
  timeoutMs?: number;
  /** What a sendmail command is kept from (the launcher's sandbox). */
  leash: Leash;
}

export const MAIL_TIMEOUT_MS = 10_000;

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i;

/** Where the digest goes, in words for logs and errors, e.g. "SMTP 127.0.0.1:25". */
export function mailVia(cfg: DigestMailConfig): string {
  if (cfg.smtp) return `SMTP ${cfg.smtp.host}:${cfg.smtp.port}`;
  if (cfg.sendmail) return `sendmail ${cfg.sendmail}`;
  return 'no mail transport';
}

export function senderOf(cfg: DigestMailConfig): string {
  return cfg.from ?? defaultSender();
}

export async function sendDigestMail(cfg: DigestMailConfig, content: MailContent, opts: MailOptions): Promise<MailResult> {
  const via = mailVia(cfg);
  if (cfg.to.length === 0) {
    return {
      ok: false,
      via,
      notConfigured: true,
      error: 'no recipients: policy digest.to is empty, so the digest is only written to the digests folder',
    };
  }
  if (!cfg.smtp && !cfg.sendmail) {
    return {
      ok: false,
      via,
      notConfigured: true,
      error:
        'digest.to is set but there is no way to send: add digest.smtp (e.g. { host: 127.0.0.1, port: 25 }) or digest.sendmail (e.g. /usr/sbin/sendmail) to protected/policy.yaml',
    };
  }
  const timeoutMs = opts.timeoutMs ?? MAIL_TIMEOUT_MS;
  const message = { from: senderOf(cfg), to: cfg.to, subject: content.subject, text: content.text, html: content.html };
  try {
    return cfg.smtp
      ? await viaSmtp(cfg.smtp, message, via, timeoutMs)
      : await viaSendmail(cfg.sendmail!, message, via, timeoutMs, opts.leash);
  } catch (err) {
    return { ok: false, via, notConfigured: false, error: `could not e-mail the digest via ${via}: ${describeMailError(err)}` };
  }
}

type Message = { from: string; to: string[]; subject: string; text: string; html: string };

// Loaded on the first send (once a day): the idle daemon does not carry nodemailer in its heap.
async function createTransport(...args: Parameters<typeof import('nodemailer').createTransport>) {
  const { createTransport: create } = await import('nodemailer');
  return create(...args);
}

async function viaSmtp(smtp: NonNullable<DigestMailConfig['smtp']>, message: Message, via: string, timeoutMs: number): Promise<MailResult> {
  const user = smtp.user;
  // A password never crosses a network in the clear: off loopback, authenticated mail needs TLS.
  const requireTLS = !smtp.secure && user !== undefined && !LOOPBACK.test(smtp.host);
  const transport = await createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    ignoreTLS: !smtp.secure && !requireTLS,
    requireTLS,
    auth: user !== undefined ? { user, pass: smtp.pass ?? '' } : undefined,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    dnsTimeout: timeoutMs,
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    // The per-phase timeouts above do not bound a server that answers slowly but forever.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(Object.assign(new Error(`no answer within ${formatDuration(2 * timeoutMs)}`), { code: 'ETIMEDOUT' })),
        2 * timeoutMs,
      );
    });
    // nodemailer types the SMTP transport's answer as any; these are the fields it documents.
    const info = (await Promise.race([transport.sendMail(message), deadline])) as {
      accepted: unknown[];
      rejected: unknown[];
      messageId: string;
    };
    const accepted = info.accepted.map(String);
    const rejected = info.rejected.map(String);
    if (accepted.length === 0) {
      return {
        ok: false,
        via,
        notConfigured: false,
        error: `could not e-mail the digest via ${via}: every recipient was refused (${rejected.join(', ')}); check digest.to`,
      };
    }
    return { ok: true, via, messageId: info.messageId, accepted };
  } finally {
    clearTimeout(timer);
    transport.close();
  }
}

/**
 * nodemailer composes the message (the same MIME its sendmail transport writes); we pipe it to
 * sendmail ourselves because that transport has no time limit: a wedged sendmail would hold
 * the digest forever. Same arguments as nodemailer's: -i -f FROM RECIPIENTS.
 */
async function viaSendmail(path: string, message: Message, via: string, timeoutMs: number, leash: Leash): Promise<MailResult> {
  const addresses = [message.from, ...message.to];
  const bad = addresses.find((a) => /^"?-/.test(a));
  if (bad)
    return {
      ok: false,
      via,
      notConfigured: false,
      error: `refusing to pass "${bad}" to sendmail: an address that starts with "-" would be read as an option; fix the policy`,
    };
  const composer = await createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  const info = (await composer.sendMail(message)) as { message: unknown; messageId: string };
  const raw = info.message;
  if (!Buffer.isBuffer(raw)) throw new Error('the message could not be composed');
  const r = await runBounded([path, '-i', '-f', message.from, ...message.to], {
    input: raw,
    timeoutMs,
    confine: { profile: 'notify', leash },
  });
  if (!r.ok) {
    const hint = r.startError ? '; check digest.sendmail in protected/policy.yaml' : '';
    return {
      ok: false,
      via,
      notConfigured: false,
      error: `could not e-mail the digest via ${via}: it ${describeResult(r, timeoutMs)}${hint}`,
    };
  }
  return { ok: true, via, messageId: info.messageId, accepted: [...message.to] };
}

const HINTS: Record<string, string> = {
  ECONNREFUSED: 'the connection was refused: is the mail server running, and are digest.smtp host and port right?',
  EHOSTUNREACH: 'the mail server cannot be reached: check digest.smtp.host and the network',
  ENETUNREACH: 'the mail server cannot be reached: check digest.smtp.host and the network',
  ECONNRESET: 'the mail server closed the connection: check digest.smtp port and secure (465 is TLS, 25 and 587 are not)',
  ETIMEDOUT: 'the mail server did not answer in time: check digest.smtp host, port and the firewall',
  ENOTFOUND: 'the mail server name does not resolve: check digest.smtp.host',
  EDNS: 'the mail server name does not resolve: check digest.smtp.host',
  EAUTH: 'the mail server refused the login: check digest.smtp user and pass',
  EENVELOPE: 'the mail server refused the sender or the recipients: check digest.from and digest.to',
  ETLS: 'the TLS handshake failed: check digest.smtp.secure and the port (465 is TLS, 25 and 587 are not)',
  ESOCKET: 'the connection failed: check digest.smtp host, port and secure',
  ECONNECTION: 'the connection failed: check digest.smtp host, port and secure',
  EMESSAGE: 'the mail server refused the message',
};

export function describeMailError(err: unknown): string {
  // An SMTP refusal carries the server's own words in `response`.
  const response = (err as { response?: unknown } | null)?.response;
  const what = (typeof response === 'string' ? response : errorMessage(err)).replace(/\s+/g, ' ').trim();
  // nodemailer wraps socket errors as ESOCKET; the system's own code in the message says more.
  const inner = /\b(E[A-Z]{4,})\b/.exec(what)?.[1];
  const code = errorCode(err);
  const hint = (inner ? HINTS[inner] : undefined) ?? (code ? HINTS[code] : undefined);
  return hint ? `${hint} (${code}: ${what})` : code ? `${what} (${code})` : what;
}
