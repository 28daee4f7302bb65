// A run that failed because it may not write somewhere: the most common first-night failure of a
// job moved from cron (the unit's ProtectSystem=strict makes the whole file system read-only but
// the state folder and ReadWritePaths=). The error text of the job is read for the path, and the
// run's reason says in plain words what to change, so status, the digest and the alert say it.
import { dirname, resolve } from 'node:path';
import type { Leash } from './launch.js';

export interface Denial {
  kind: 'read-only' | 'permission';
  path: string;
}

// "Read-only file system" is EROFS in every C library's and Python's wording; "Permission denied"
// is EACCES (Python: "[Errno 13] Permission denied: '/x'").
const MESSAGES: Array<{ kind: Denial['kind']; re: RegExp }> = [
  { kind: 'read-only', re: /Read-only file system|EROFS/ },
  { kind: 'permission', re: /Permission denied|EACCES/ },
];

/**
 * The last denial the output tells of, with the path it names (a relative one read from `cwd`, where
 * the job ran); null when it names none.
 */
export function findDenial(output: string, cwd: string): Denial | null {
  const lines = output.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    const m = MESSAGES.find((x) => x.re.test(line));
    if (!m) continue;
    const at = line.search(m.re);
    const named = namedBefore(line.slice(0, at)) ?? namedAfter(line.slice(at));
    if (named) return { kind: m.kind, path: resolve(cwd, named) };
  }
  return null;
}

const QUOTES = /^['"`‘“]+|['"`’”]+$/g;

/**
 * The path in the "PROGRAM: …: PATH: message" part of a line: the last part that ends in a path
 * (not the program that speaks first: "/bin/sh: 1: cannot create ./out.txt", "tar: /b/x.tar:
 * Cannot open"). A word counts when it holds a "/", is quoted, or follows "cannot create" and the like.
 */
function namedBefore(text: string): string | null {
  const parts = text.replace(/:\s*$/, '').split(/:\s+/);
  for (let i = parts.length - 1; i >= 1; i--) {
    const part = parts[i]!.trim();
    const word = /(\S+)$/.exec(part)?.[1] ?? '';
    const bare = word.replace(QUOTES, '');
    if (bare === '' || bare.startsWith('[')) continue;
    if (bare.includes('/') || word !== bare || /\bcannot (create|touch|open|remove|access|stat)\s+\S/i.test(part)) return bare;
  }
  return null;
}

/** Python's form: "…: Permission denied: '/v/log'" — a quoted name, or an absolute path, after the message. */
function namedAfter(text: string): string | null {
  const m = /['"‘“]([^'"’”]+)['"’”]|(?:^|\s)(\/\S+)/.exec(text);
  const p = (m?.[1] ?? m?.[2])?.replace(/[.,;]+$/, '');
  return p && p.length > 0 ? p : null;
}

function under(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/**
 * The sentence for a run's reason, or null. `systemd`: nightshift runs as a systemd service (its
 * sandbox is the likely cause of a read-only file system); `account`: who the job runs as.
 */
export function denialSentence(d: Denial, o: { leash: Leash; systemd: boolean; account: string }): string {
  const own = [...o.leash.readOnly, ...o.leash.hiddenDirs].find((p) => under(d.path, p));
  if (own) {
    return `It may not write ${d.path}: nightshift keeps ${own} out of every job's reach (its home and state are its own); write somewhere else.`;
  }
  if (d.kind === 'read-only') {
    const folder = dirname(d.path) === '/' ? d.path : dirname(d.path);
    return o.systemd
      ? `The service may not write ${d.path} (read-only file system): add ${folder} to ReadWritePaths= with \`systemctl edit nightshift\`, then restart nightshift; see deploy/README.md.`
      : `${d.path} is on a read-only file system.`;
  }
  const hidden = o.systemd && ['/home', '/root', '/run/user'].find((p) => under(d.path, p));
  if (hidden) {
    return `It was denied ${d.path} (permission denied): the service hides ${hidden} from jobs (ProtectHome=); see deploy/README.md to open it.`;
  }
  return `It was denied ${d.path} (permission denied): it runs as ${o.account}; give that account access, or run the job as another (user:).`;
}
