// Digest, paging and deadman as the running daemon does them: real SMTP on loopback, capture scripts.
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, cli, makeHome, pageCapture, query, startDaemon, tempDir, waitFor, type DaemonProc } from '../support/helpers.js';
import { freePort } from '../support/browser.js';

interface Mail {
  from: string;
  to: string[];
  data: string;
}

async function smtp(): Promise<{ port: number; mails: Mail[]; close: () => Promise<void> }> {
  const mails: Mail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, cb) {
      let data = '';
      stream.on('data', (c: Buffer) => (data += c.toString()));
      stream.on('end', () => {
        mails.push({
          from: String(session.envelope.mailFrom && session.envelope.mailFrom.address),
          to: session.envelope.rcptTo.map((r) => r.address),
          data,
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  return { port, mails, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const daemons: DaemonProc[] = [];
const dirs: string[] = [];
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
  for (const c of closers.splice(0)) await c();
  for (const h of dirs.splice(0)) cleanup(h);
});

describe('digest from the daemon', () => {
  it('a daemon that was down at digest time sends the digest when it comes back, to a real SMTP server', async () => {
    const mail = await smtp();
    closers.push(mail.close);
    const home = makeHome(
      { broken: 'command: ["sh", "-c", "echo boom; exit 3"]\n', fine: 'command: ["true"]\n' },
      `timezone: UTC\ndigest:\n  at: "00:00"\n  to: ["ops@example.com"]\n  from: "nightshift@example.com"\n  smtp: { host: 127.0.0.1, port: ${mail.port} }\n`,
    );
    dirs.push(home);
    // a first daemon records a failure, then stops (its own start already sent today's digest)
    const d1 = await startDaemon(home);
    daemons.push(d1);
    await waitFor(() => mail.mails.length === 1, 10_000, 'first digest');
    await cli(['--home', home, 'run', 'broken']);
    await d1.stop();
    // today's digest row is removed, as if the daemon had been down at digest time
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(join(home, 'state', 'nightshift.db'));
    db.prepare('DELETE FROM digests').run();
    db.close();
    const d2 = await startDaemon(home);
    daemons.push(d2);
    await waitFor(() => mail.mails.length === 2, 10_000, 'digest after restart');
    const m = mail.mails[1]!;
    expect(m.to).toEqual(['ops@example.com']);
    expect(m.from).toBe('nightshift@example.com');
    expect(m.data).toMatch(/Subject: nightshift \d{4}-\d{2}-\d{2}: 1 job needs you/);
    expect(m.data).toContain('text/plain');
    expect(m.data).toContain('text/html');
    expect(m.data).toContain('broken');
    // The day the daemon wrote it for (not the test's "today": the two differ around midnight).
    const today = /Subject: nightshift (\d{4}-\d{2}-\d{2})/.exec(m.data)![1]!;
    expect(existsSync(join(home, 'state', 'digests', `${today}.md`))).toBe(true);
    const row = query<{ sent_at: number | null; verdict: string }>(
      join(home, 'state'),
      'SELECT sent_at, verdict FROM digests WHERE date = ?',
      today,
    )[0]!;
    expect(row.sent_at).not.toBeNull();
    expect(row.verdict).toBe('1 job needs you');
  });

  it('days the daemon was down for entirely get their digest when it comes back', async () => {
    const mail = await smtp();
    closers.push(mail.close);
    const home = makeHome(
      { fine: 'command: ["true"]\n' },
      `timezone: UTC\ndigest:\n  at: "00:00"\n  to: ["ops@example.com"]\n  smtp: { host: 127.0.0.1, port: ${mail.port} }\n`,
    );
    dirs.push(home);
    const d1 = await startDaemon(home);
    daemons.push(d1);
    await waitFor(() => mail.mails.length === 1, 10_000, 'first digest');
    await d1.stop();
    // pretend the newest digest on record is three days older than the one just sent: the two days
    // between and that day itself are missing. Days are counted from the day the daemon wrote, and
    // from the day it is when the second daemon starts (a midnight in between adds one).
    const first = query<{ date: string }>(join(home, 'state'), 'SELECT date FROM digests')[0]!.date;
    const day = (n: number, from = first) => new Date(Date.parse(`${from}T00:00:00Z`) - n * 86_400_000).toISOString().slice(0, 10);
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(join(home, 'state', 'nightshift.db'));
    db.prepare('UPDATE digests SET date = ?').run(day(3));
    db.close();
    const d2 = await startDaemon(home);
    daemons.push(d2);
    const now = new Date().toISOString().slice(0, 10);
    const expected = [day(2), day(1), day(0), ...(now > first ? [now] : [])];
    await waitFor(() => mail.mails.length === 1 + expected.length, 10_000, 'the catch-up digests');
    const subjects = mail.mails
      .slice(1)
      .map((m) => /Subject: nightshift (\d{4}-\d{2}-\d{2})/.exec(m.data)![1])
      .sort();
    expect(subjects).toEqual(expected);
  });

  it('nightshift digest prints the day; --send mails it; an unreachable server keeps the file and says so', async () => {
    const mail = await smtp();
    closers.push(mail.close);
    const home = makeHome(
      { ok: 'command: ["true"]\n' },
      `timezone: UTC\ndigest:\n  to: ["a@example.com"]\n  smtp: { host: 127.0.0.1, port: ${mail.port} }\n`,
    );
    dirs.push(home);
    const d = await startDaemon(home);
    daemons.push(d);
    await cli(['--home', home, 'run', 'ok']);
    const printed = await cli(['--home', home, 'digest']);
    expect(printed.exitCode).toBe(0);
    expect(printed.stdout.split('\n')[0]).toContain('Nothing needs you: the 1 job is healthy');
    const before = mail.mails.length;
    const sent = await cli(['--home', home, 'digest', '--send']);
    expect(sent.exitCode).toBe(0);
    expect(sent.stdout).toContain('(sent; saved as');
    expect(mail.mails.length).toBe(before + 1);
    // now the server goes away
    await mail.close();
    closers.pop();
    const failed = await cli(['--home', home, 'digest', '--send', '--date', '2026-01-15']);
    expect(failed.exitCode).toBe(1);
    expect(failed.stdout).toContain('NOT sent');
    expect(existsSync(join(home, 'state', 'digests', '2026-01-15.md'))).toBe(true);
    expect((await cli(['--home', home, 'digest', '--date', '15-01-2026'])).exitCode).toBe(2);
  });
});

describe('paging from the daemon', () => {
  it('pages a new allowed alert once per fingerprint per hour, with the event as JSON on stdin', async () => {
    const dir = tempDir('ns-page-');
    dirs.push(dir);
    const capture = pageCapture(dir);
    const home = makeHome(
      {
        paged: 'command: ["sh", "-c", "echo \'$(touch /tmp/ns-page-pwned) ; rm -rf x\'; exit 1"]\n',
        quiet: 'command: ["echo", "x"]\nexpect: { outputMatches: "y" }\n',
      },
      `page:\n  allow: [failed]\n  command: ["${capture.command}"]\n`,
    );
    dirs.push(home);
    const d = await startDaemon(home);
    daemons.push(d);
    await cli(['--home', home, 'run', 'paged']);
    await waitFor(() => capture.pages().length > 0, 5000, 'page');
    await cli(['--home', home, 'run', 'quiet']); // wrong is not on the allowlist
    await cli(['--home', home, 'run', 'paged']); // same fingerprint again: counted, not paged
    await sleep(1000);
    const pages = capture.pages();
    expect(pages).toHaveLength(1);
    expect(pages[0]).toMatchObject({ event: 'alert', kind: 'failed', fingerprint: 'paged:failed', job: 'paged' });
    expect(pages[0]!.message).toContain('exited with code 1');
    expect(existsSync('/tmp/ns-page-pwned')).toBe(false);
    expect(query(d.state, 'SELECT * FROM pages')).toHaveLength(1);
  });

  it('deploy/page-ntfy.mjs pushes the event to ntfy with a view action that opens its card; a refusal fails the page', async () => {
    const got: Array<{ path: string; type: string; body: Record<string, unknown> }> = [];
    let status = 200;
    const ntfy = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        got.push({ path: req.url ?? '', type: String(req.headers['content-type']), body: JSON.parse(text) as Record<string, unknown> });
        res.writeHead(status).end('{}');
      });
    });
    await new Promise<void>((ok) => ntfy.listen(0, '127.0.0.1', ok));
    try {
      const at = `http://127.0.0.1:${(ntfy.address() as AddressInfo).port}`;
      const script = join(import.meta.dirname, '..', '..', 'deploy', 'page-ntfy.mjs');
      const port = await freePort();
      const home = makeHome(
        { bad: 'command: ["sh", "-c", "echo disk full; exit 1"]\n', worse: 'command: ["false"]\n' },
        `dashboard: { listen: "127.0.0.1:${port}" }\npage:\n  allow: [failed]\n  command: ["${process.execPath}", "${script}", "${at}", "shop-ops-topic"]\n`,
      );
      dirs.push(home);
      const d = await startDaemon(home);
      daemons.push(d);
      // The card's address is one the daemon serves.
      await d.waitLog((l) => l.msg === 'dashboard listening', 30_000, 'dashboard listening');
      await cli(['--home', home, 'run', 'bad']);
      await waitFor(() => query<{ outcome: string | null }>(d.state, 'SELECT outcome FROM pages')[0]?.outcome, 15_000, 'the page to end');
      const [alert] = query<{ id: number }>(d.state, 'SELECT id FROM alerts');
      expect(got).toHaveLength(1);
      expect(got[0]!.type).toBe('application/json');
      expect(got[0]!.body).toMatchObject({
        topic: 'shop-ops-topic',
        title: 'nightshift: alert (bad)',
        click: `http://127.0.0.1:${port}/alerts#A-${alert!.id}`,
        actions: [{ action: 'view', label: 'Open', url: `http://127.0.0.1:${port}/alerts#A-${alert!.id}` }],
      });
      // The alert text travels in the JSON body only, never in a header.
      expect(got[0]!.body.message).toContain('exited with code 1');
      expect(query(d.state, 'SELECT outcome FROM pages')).toEqual([{ outcome: 'sent' }]);

      // ntfy refuses (a wrong token, a full quota): the page is recorded as failed, not as sent.
      status = 403;
      await cli(['--home', home, 'run', 'worse']);
      await waitFor(
        () => query<{ outcome: string | null }>(d.state, 'SELECT outcome FROM pages ORDER BY id')[1]?.outcome,
        15_000,
        'the second page to end',
      );
      expect(got).toHaveLength(2);
      expect(query<{ outcome: string }>(d.state, 'SELECT outcome FROM pages ORDER BY id')[1]!.outcome).toBe('failed');
    } finally {
      ntfy.close();
    }
  });

  it('a restart loop (5 starts within 10 minutes) pages daemon-restart-loop once', async () => {
    const dir = tempDir('ns-loop-');
    dirs.push(dir);
    const capture = pageCapture(dir);
    const home = makeHome({}, `page:\n  allow: [daemon-restart-loop]\n  command: ["${capture.command}"]\n`);
    dirs.push(home);
    for (let i = 0; i < 7; i++) {
      const d = await startDaemon(home);
      await sleep(150); // a page command started at this start gets to run
      await d.stop();
    }
    const pages = capture.pages();
    expect(pages).toHaveLength(1);
    expect(pages[0]).toMatchObject({ event: 'daemon-restart-loop', fingerprint: 'nightshift:daemon-restart-loop', starts: 5 });
    expect(query(join(home, 'state'), "SELECT * FROM events WHERE kind = 'page-suppressed'").length).toBe(2);
  });

  it('runs the deadman command at start and after the digest, and records each ping', async () => {
    const dir = tempDir('ns-deadman-');
    dirs.push(dir);
    // A digest time of 00:00 has always passed today, so a first start composes today's digest
    // at once and the deadman pings twice: once for the start, once for the digest.
    const home = makeHome(
      {},
      `timezone: UTC\ndigest:\n  at: "00:00"\ndeadman: ["sh", "-c", "echo alive >> ${join(dir, 'deadman.log')}"]\n`,
    );
    dirs.push(home);
    const d = await startDaemon(home);
    daemons.push(d);
    const reasons = (): string[] =>
      query<{ reason: string }>(
        d.state,
        "SELECT json_extract(data, '$.reason') AS reason FROM events WHERE kind = 'deadman' ORDER BY id",
      ).map((r) => r.reason);
    await waitFor(() => reasons().length >= 2, 5000, 'two deadman pings recorded');
    await sleep(300);
    expect(reasons().sort()).toEqual(['digest', 'start']);
    expect(readFileSync(join(dir, 'deadman.log'), 'utf8')).toBe('alive\nalive\n');
  });
});
