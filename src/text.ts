// Text that came from outside (a job's output, an alert's message, a rule's detail) is data (law
// 8): shown as it is, never interpreted by the terminal or the reader's mail client. One rule for
// every surface — status, alerts, heals, history, run, the digest, pages' logs: control
// characters (C0 and C1: ESC of colour and cursor sequences, OSC's title and clipboard writes,
// BEL, NUL, DEL) become their visible Unicode pictures (␛ ␇ ␀ ␡), and the invisible characters
// that reorder or hide text (bidirectional overrides such as U+202E, zero-width marks) become �.

// eslint-disable-next-line no-control-regex -- finding control characters is what this module is for
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
// eslint-disable-next-line no-control-regex -- as above
const CONTROL_NO_TAB = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g;
// Bidi embeddings, overrides and isolates; marks; zero-width joiners and spaces; the soft hyphen;
// the line and paragraph separators (a terminal may break lines on them); interlinear annotations; the BOM.
const INVISIBLE = /[\u00ad\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb]/g;

function picture(c: string): string {
  const code = c.charCodeAt(0);
  if (code < 0x20) return String.fromCharCode(0x2400 + code);
  if (code === 0x7f) return '\u2421';
  return '\ufffd'; // C1: no pictures of their own
}

/** Several lines of outside text (a job's last output): newlines and tabs kept, nothing else. */
export function textAsData(text: string): string {
  return text
    .replace(/\r\n/g, '\n')
    .replace(CONTROL, (c) => (c === '\n' ? c : picture(c)))
    .replace(INVISIBLE, '\ufffd');
}

/** Outside text on one line (a table cell, a digest line): newlines shown as ⏎, capped at `max`. */
export function oneLine(text: string, max = 300): string {
  const flat = text
    .replace(/\r\n|\r|\n/g, ' ⏎ ')
    .replace(/\t/g, ' ')
    .replace(CONTROL_NO_TAB, picture)
    .replace(INVISIBLE, '\ufffd')
    .trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

/** Text inside HTML (an element's content or a quoted attribute): the five characters that mean markup. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
