/**
 * A run that could not record its end in the ledger (a full disk) notes it on
 * a tmpfs instead: its status and its mail went out all the same. Without the
 * note, `offsite report-failure` (the unit's OnFailure=) takes the failure for
 * one the run could not report, publishes a vaguer status over the run's and
 * mails it again. Kept per state_dir, so that two configurations (and the
 * tests) never see each other's notes; gone at reboot, with the failures they
 * are about.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** root's own: only root may create directories in /run */
const RUNTIME_ROOT = '/run/offsite';
/** a run id or a systemd invocation id; anything else is not a file name here */
const ID = /^[A-Za-z0-9_-]{1,128}$/;

function notes(stateDir: string): string {
  const key = createHash('sha256').update(stateDir).digest('hex').slice(0, 16);
  return join(RUNTIME_ROOT, key, 'reported');
}

/** Note the ids (the run's, its systemd invocation's) as reported. Throws when even that is impossible. */
export function noteReported(stateDir: string, ids: ReadonlyArray<string | null | undefined>): void {
  const dir = notes(stateDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const id of ids) if (id && ID.test(id)) writeFileSync(join(dir, id), '', { mode: 0o600 });
}

export function notedAsReported(stateDir: string, id: string | null | undefined): boolean {
  return Boolean(id && ID.test(id) && existsSync(join(notes(stateDir), id)));
}
