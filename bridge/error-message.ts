/** What went wrong, in words: an Error's message, or whatever else was thrown, as text. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** An unexpected error for the journal: its stack where it has one, else what errorMessage says. */
export function errorStack(e: unknown): string {
  return (e instanceof Error ? e.stack : undefined) ?? errorMessage(e);
}
