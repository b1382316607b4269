/** The filesystem inside the container, and the marker that names the drive (bridge/steps/marker.ts reads it). */
import { mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../bridge/exec.js';
import { type Marker, writeMarker } from '../../bridge/steps/marker.js';

/** ext4 labels hold 16 bytes */
export function ext4Label(drive: string): string {
  return `offsite-${drive}`.slice(0, 16);
}

export async function makeFilesystem(device: string, label: string): Promise<void> {
  // -m 0: a backup drive needs no blocks reserved for root
  await run('mkfs.ext4', ['-q', '-F', '-L', label, '-m', '0', device], { timeoutMs: 30 * 60_000 });
}

/** Mount the new filesystem on a temporary directory, write the marker, unmount. */
export async function writeMarkerOn(device: string, marker: Marker): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'offsite-enrol-'));
  try {
    await run('mount', [device, dir], { timeoutMs: 60_000 });
    try {
      writeMarker(dir, marker);
    } finally {
      await run('umount', [dir], { timeoutMs: 120_000 });
    }
  } finally {
    rmdirSync(dir);
  }
}
