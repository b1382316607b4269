/**
 * The LUKS header backup that `offsite prepare-drive` makes, and what `offsite
 * open` says about it when a drive cannot be found or unlocked: a damaged
 * header loses the whole drive, unless its backup is restored
 * (docs/restore.md, "A damaged LUKS header").
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export function headerBackupFile(stateDir: string, drive: string): string {
  return join(stateDir, 'headers', `${drive}.luksheader`);
}

/** The sentence added to a failure to find or unlock a LUKS drive. */
export function damagedHeaderHint(stateDir: string, drive: string): string {
  const file = headerBackupFile(stateDir, drive);
  if (existsSync(file))
    return `If the drive is plugged in but its LUKS header is damaged (its UUID no longer reads, or no key opens it), put the header back from its backup: cryptsetup luksHeaderRestore <device> --header-backup-file ${file} (docs/restore.md, "A damaged LUKS header")`;
  return `If the drive is plugged in but its LUKS header is damaged (its UUID no longer reads, or no key opens it): the header backup that prepare-drive makes, ${file}, would have helped, and it is not there; without a header no key opens the drive (docs/restore.md, "A damaged LUKS header")`;
}
