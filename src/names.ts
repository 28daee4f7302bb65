export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export function nameProblem(name: string): string | null {
  if (NAME_PATTERN.test(name)) return null;
  return `"${name}" is not a valid name: use 1-63 lower-case letters, digits, "-" or "_", starting with a letter or digit`;
}

/**
 * Orders names by their characters. Not localeCompare: names are ASCII, and collation would map
 * ICU's data into the daemon (megabytes) for a sort.
 */
export function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The known name a mistyped one most likely meant (at most two edits away, case aside), for "did you mean". */
export function closestName(word: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of known) {
    const d = editDistance(word.toLowerCase(), k.toLowerCase());
    if (d < bestDist) {
      bestDist = d;
      best = k;
    }
  }
  return bestDist <= 2 ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}
