/** Reading a secret (the MQTT and SMTP passwords): apart from bridge/config.ts, so that the LED agent reads one without loading the configuration's schema. */
import { existsSync, readFileSync } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';

/**
 * Secrets come from files, or from systemd credentials (LoadCredential=).
 * Under systemd the credential (named after the file) is preferred: the unit
 * may run unprivileged and unable to read the root-only original. A bare name
 * is only ever a credential. Trailing newlines are dropped.
 */
export function readSecret(ref: string, env: NodeJS.ProcessEnv = process.env): string {
  const credential = env.CREDENTIALS_DIRECTORY ? join(env.CREDENTIALS_DIRECTORY, basename(ref)) : null;
  const candidates = [credential, isAbsolute(ref) ? ref : null].filter((f): f is string => Boolean(f));
  for (const file of candidates) {
    if (existsSync(file)) return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  }
  throw new Error(
    `secret ${ref} not found (looked in ${candidates.join(', ') || 'nowhere: a bare name needs $CREDENTIALS_DIRECTORY'})`,
  );
}
