#!/usr/bin/env node
// A page command (policy.page.command) that pushes the event to a phone with ntfy: the ntfy app
// shows the message, and its "Open" button (and a tap on the notification) opens the event's card
// on the dashboard, where the Approve / Deny buttons are.
//
//   page:
//     allow: [approval-requested, heal-blocked, protected-zone]
//     command: ["node", "/opt/nightshift/deploy/page-ntfy.mjs", "https://ntfy.sh", "shop-ops-7f3k9q"]
//
// The topic is the only secret of a public ntfy server: make it long and random, or run your own
// server with access control (then put its token in NTFY_TOKEN in the service's environment).
// The event arrives as JSON on stdin and leaves as JSON in the request body: alert text never
// becomes a header, an argument or shell input. Exits non-zero when ntfy did not take it, so the
// page is recorded as failed (`nightshift status` and the digest say so).
const [server, topic] = process.argv.slice(2);
if (!server || !topic || !/^https?:\/\//.test(server)) {
  process.stderr.write('usage: page-ntfy.mjs https://NTFY-SERVER TOPIC  (the event as JSON on stdin)\n');
  process.exit(2);
}

let input = '';
for await (const chunk of process.stdin) input += chunk;
let ev;
try {
  ev = JSON.parse(input);
} catch {
  process.stderr.write('page-ntfy: stdin is not the JSON of a nightshift page event\n');
  process.exit(2);
}

const urgent = ['protected-zone', 'daemon-restart-loop', 'disk-full'].includes(ev.event);
const body = {
  topic,
  title: `nightshift: ${ev.event}${ev.job ? ` (${ev.job})` : ''}`,
  message: String(ev.message ?? ''),
  priority: urgent ? 5 : 4,
  tags: [urgent ? 'rotating_light' : 'warning'],
  // Without a dashboard (listen: off) there is no card to open: the message alone goes.
  ...(typeof ev.url === 'string' ? { click: ev.url, actions: [{ action: 'view', label: 'Open', url: ev.url, clear: true }] } : {}),
};
const headers = { 'Content-Type': 'application/json' };
if (process.env.NTFY_TOKEN) headers.Authorization = `Bearer ${process.env.NTFY_TOKEN}`;

try {
  // nightshift kills a page command after 10 s; give up a little earlier and say why.
  const res = await fetch(server.replace(/\/+$/, ''), { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(8000) });
  if (!res.ok) {
    process.stderr.write(`page-ntfy: ${server} answered ${res.status} ${(await res.text()).slice(0, 200)}\n`);
    process.exit(1);
  }
} catch (err) {
  process.stderr.write(`page-ntfy: could not reach ${server}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
