/**
 * Is a drive plugged in right now? For the `present` field of the retained
 * drive state when no run is going on (`offsite status`, `offsite check`,
 * the discovery keeper). The one place that asks.
 */
import { existsSync, statSync } from 'node:fs';
import type { Drive } from './config.js';
import { deviceByUuid } from './mounts.js';

export async function isPresent(drive: Drive): Promise<boolean> {
  try {
    if (drive.kind === 'directory')
      return existsSync(drive.directory) && statSync(drive.directory).isDirectory();
    return (await deviceByUuid(drive.kind === 'luks' ? drive.luksUuid : drive.uuid)) !== null;
  } catch {
    // blkid missing or failing: not knowing is reported as "not here", the safe reading
    return false;
  }
}

/**
 * As isPresent, but null where this process cannot see block devices at all
 * (a sandbox without `byUuidDir`, such as the LED agent's unit): then the
 * caller keeps what it knew rather than calling every drive unplugged.
 */
export async function presence(drive: Drive, byUuidDir = '/dev/disk/by-uuid'): Promise<boolean | null> {
  if (drive.kind !== 'directory' && !existsSync(byUuidDir)) return null;
  return isPresent(drive);
}
