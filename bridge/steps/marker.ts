/**
 * The marker file that names a drive (written at enrolment by prepare-drive,
 * or by the first run of a plain filesystem or directory drive). A drive whose
 * marker names another drive is refused: nothing is written to it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isoNow } from '../protocol.js';
import { writeJsonAtomic } from '../state-file.js';
import { StepError } from './step.js';

export const MARKER_FILE = '.offsite-drive.json';

export interface Marker {
  drive: string;
  created?: string;
  luks_uuid?: string;
}

export function markerPath(root: string): string {
  return join(root, MARKER_FILE);
}

export function readMarker(root: string): Marker | null {
  const file = markerPath(root);
  if (!existsSync(file)) return null;
  try {
    const m = JSON.parse(readFileSync(file, 'utf8')) as Marker;
    if (typeof m.drive !== 'string') throw new Error('no "drive" field');
    return m;
  } catch (e) {
    throw new StepError(
      `the marker ${file} is unreadable (${(e as Error).message}): refusing to write to an unknown drive`,
    );
  }
}

export function writeMarker(root: string, marker: Marker): void {
  writeJsonAtomic(markerPath(root), { created: isoNow(), ...marker });
}

/**
 * Check that `root` belongs to `drive`. `enrolIfMissing`: a drive without a
 * marker gets one (plain directory or filesystem drives, which have no
 * prepare-drive step); otherwise a missing marker is refused.
 */
export function checkMarker(root: string, drive: string, enrolIfMissing: boolean): void {
  const marker = readMarker(root);
  if (!marker) {
    if (enrolIfMissing) {
      writeMarker(root, { drive });
      return;
    }
    throw new StepError(
      `wrong drive: ${markerPath(root)} is missing, so this is not the enrolled drive "${drive}" (enrol it with offsite prepare-drive)`,
    );
  }
  if (marker.drive !== drive) {
    throw new StepError(
      `wrong drive: its marker names drive "${marker.drive}", not "${drive}"; nothing was written`,
    );
  }
}
