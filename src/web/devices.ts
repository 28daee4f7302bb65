// The Devices page: the sessions that are open (each can be ended at once) and "Add a device",
// which makes the same one-time link as `nightshift login` and shows it as text and as a QR code
// for a phone's camera. The code is drawn as inline SVG (the Content-Security-Policy allows no
// image from elsewhere and no inline style): black modules on a white square with a quiet zone of
// four modules, black on white in dark mode too, as scanners expect.
import { encode } from 'uqr';
import { readableTime } from '../schedule/instants.js';
import { systemTimeZone } from '../schedule/timezone.js';
import type { WebSessionRow } from '../store/store.js';
import { LINK_TTL_MS } from './auth.js';
import { html, type Html } from './html.js';
import { button, layout, when, type Chrome, type PageData } from './pages.js';

/** The quiet zone the QR specification asks for around the symbol, in modules. */
const QUIET_ZONE = 4;

/**
 * A QR code of `text` as an SVG: one path of unit squares on a white background. Error correction
 * M (15 %): a phone's camera reads it through glare and a scratched screen.
 */
export function qrSvg(text: string, label: string): Html {
  const qr = encode(text, { ecc: 'M', border: QUIET_ZONE });
  let d = '';
  for (let y = 0; y < qr.size; y++) {
    const row = qr.data[y]!;
    // A horizontal run of dark modules is one rectangle: a third of the text of one per module.
    for (let x = 0; x < qr.size;) {
      if (!row[x]) {
        x++;
        continue;
      }
      let end = x;
      while (end < qr.size && row[end]) end++;
      d += `M${x} ${y}h${end - x}v1h${x - end}z`;
      x = end;
    }
  }
  return html`<svg
    class="qr"
    xmlns="http://www.w3.org/2000/svg"
    viewBox="0 0 ${qr.size} ${qr.size}"
    role="img"
    aria-label="${label}"
    shape-rendering="crispEdges"
  >
    <rect width="${qr.size}" height="${qr.size}" fill="#ffffff" />
    <path fill="#000000" d="${d}" />
  </svg>`;
}

export interface NewLink {
  url: string;
  expiresAt: number;
}

/** The sessions, this device marked; with a new link (the answer to "Add a device") at the top. */
export function devicesPage(d: PageData, c: Chrome, link: NewLink | null = null): string {
  const s = c.session;
  const tz = d.policy.timezone ?? systemTimeZone();
  // This device first, then the others by their last use.
  const mine = (row: WebSessionRow): number => (row.id === s?.id ? 1 : 0);
  const sessions = d.store.web.live(d.now).sort((a, b) => mine(b) - mine(a));
  return layout(
    c,
    html`<h1>Devices</h1>
      ${link ? linkCard(link, tz) : ''}
      <p>
        A new device logs in with a one-time link: open it there (or scan its code), name the device, and it has its own session. The link
        works once, for ${LINK_TTL_MS / 60_000} minutes.
      </p>
      <div class="actions">${button(s, '/devices/add', 'Add a device', '/devices')}</div>
      <h2 id="sessions">Sessions (${sessions.length})</h2>
      <ul class="plain">
        ${sessions.map((row) => sessionItem(d, row, s, tz))}
      </ul>
      <p class="muted">The last use is written down at most once an hour. A session ends 30 days after its last use.</p>`,
  );
}

function linkCard(link: NewLink, tz: string): Html {
  return html`<section class="card" id="new-link" aria-labelledby="new-link-title">
    <h2 id="new-link-title">Open this on the new device</h2>
    <p>Scan the code with the device's camera, or type or send it the link. It works once, until ${readableTime(link.expiresAt, tz)}.</p>
    ${qrSvg(link.url, 'QR code of the login link')}
    <p><code id="device-link">${link.url}</code></p>
    <p class="muted">Anyone who opens it first gets the session: show it only to the device it is for.</p>
  </section>`;
}

function sessionItem(d: PageData, row: WebSessionRow, s: WebSessionRow | null, tz: string): Html {
  const mine = s !== null && row.id === s.id;
  return html`<li id="session-${row.id}" class="session">
    <strong>${row.label}</strong>${mine ? html` <span class="this-device">this device</span>` : ''} <br /><span class="muted"
      >logged in ${when(row.created_at, tz, d.now)} · last used ${when(row.last_used_at, tz, d.now)}</span
    >
    <div class="actions">
      ${
        mine
          ? button(s, `/devices/${row.id}/revoke`, 'Log out', '/devices', 'secondary')
          : button(s, `/devices/${row.id}/revoke`, 'Revoke', '/devices', 'danger')
      }
    </div>
  </li>`;
}
