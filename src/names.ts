export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export function nameProblem(name: string): string | null {
  if (NAME_PATTERN.test(name)) return null;
  return `"${name}" is not a valid name: use 1-63 lower-case letters, digits, "-" or "_", starting with a letter or digit`;
}
