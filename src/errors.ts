// What was thrown, as the operator reads it. JavaScript may throw anything (a string, an object,
// undefined); every catch that reports turns it into words here, once, the same way.

/** The thrown value as an Error: itself, or an Error whose message is its text. */
export function coerceError(err: unknown): Error {
  if (err instanceof Error) return err;
  let text: string;
  try {
    text = typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err));
  } catch {
    text = String(err);
  }
  return new Error(text);
}

/** Its message, for a sentence or a log line. */
export function errorMessage(err: unknown): string {
  return coerceError(err).message;
}

/** The system or library code of a thrown error (ENOENT, SQLITE_BUSY, …), if it has one. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
