// The one glob engine: job names in rules (`match.job: orders-*`) and paths in policy.protect
// (`/etc/nginx/**`). Within a name or a path segment: `*` is any run of characters, `?` one
// character, `{a,b}` either alternative; anything else is literal (a dot is a dot), and an unclosed
// brace is literal text. In a path, `**` as a whole segment spans zero or more segments.
// Written here rather than taken from picomatch: this is the whole grammar, and the zone needs
// "could a folder hold a match" (globOverlaps), which a matcher alone does not answer.

const cache = new Map<string, RegExp>();

/** A regular expression for one name or one path segment (it never matches a slash). */
export function globRegExp(glob: string): RegExp {
  let re = cache.get(glob);
  if (re) return re;
  let src = '';
  let inAlt = false;
  for (const ch of glob) {
    if (ch === '*') src += '[^/]*';
    else if (ch === '?') src += '[^/]';
    else if (ch === '{') {
      src += '(?:';
      inAlt = true;
    } else if (ch === '}' && inAlt) {
      src += ')';
      inAlt = false;
    } else if (ch === ',' && inAlt) src += '|';
    else src += ch.replace(/[.+^$()|[\]\\{}]/g, '\\$&');
  }
  if (inAlt) src = glob.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  re = new RegExp(`^${src.replace(/(\[\^\/\]\*)+/g, '[^/]*')}$`);
  cache.set(glob, re);
  return re;
}

/** A name (no slashes) matches the glob. */
export function globMatch(glob: string, name: string): boolean {
  return globRegExp(glob).test(name);
}

export interface PathGlob {
  /** The absolute pattern. */
  text: string;
  /** Segment matchers; null is `**`. */
  segs: Array<RegExp | null>;
  /** The literal folder (or file) the pattern starts from. */
  base: string;
}

/** The text has a wildcard of ours (`*`, `?`, `{a,b}`). */
export const hasWildcard = (text: string): boolean => /[*?{]/.test(text);
const hasWild = hasWildcard;

function segsOf(p: string): string[] {
  return p.split('/').filter(Boolean);
}

export function compilePathGlob(text: string): PathGlob {
  const parts = segsOf(text);
  const lit: string[] = [];
  for (const p of parts) {
    if (hasWild(p)) break;
    lit.push(p);
  }
  return { text, segs: parts.map((p) => (p === '**' ? null : globRegExp(p))), base: `/${lit.join('/')}` };
}

/** Full match, `**` spanning zero or more segments. */
function matchFrom(g: Array<RegExp | null>, i: number, p: string[], j: number): boolean {
  for (;;) {
    if (i === g.length) return j === p.length;
    const s = g[i];
    if (s === null || s === undefined) {
      for (let k = j; k <= p.length; k++) if (matchFrom(g, i + 1, p, k)) return true;
      return false;
    }
    if (j === p.length || !s.test(p[j]!)) return false;
    i++;
    j++;
  }
}

/** The path matches the glob, or lies inside something that does (protecting a folder protects its content). */
export function globCovers(g: PathGlob, p: string): boolean {
  return matchFrom([...g.segs, null], 0, segsOf(p), 0);
}

/**
 * The path and the glob overlap: the path matches, lies inside a match, or is a folder that could
 * hold a match (an ancestor).
 */
export function globOverlaps(g: PathGlob, p: string): boolean {
  const ps = segsOf(p);
  for (let i = 0; i < g.segs.length && i < ps.length; i++) {
    const s = g.segs[i];
    if (s === null || s === undefined) return true;
    if (!s.test(ps[i]!)) return false;
  }
  return true;
}
