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
