/** The filesystem of a new drive (inside its container, or the whole device with --plain), and a look inside it. */
import { mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../bridge/exec.js';

/** ext4 labels hold 16 bytes */
export function ext4Label(drive: string): string {
  return `offsite-${drive}`.slice(0, 16);
}

export async function makeFilesystem(device: string, label: string): Promise<void> {
  // -m 0: a backup drive needs no blocks reserved for root
  await run('mkfs.ext4', ['-q', '-F', '-L', label, '-m', '0', '--', device], { timeoutMs: 30 * 60_000 });
}

/** The filesystem UUID of `device`, as blkid probes it (what a `uuid:` drive is found by). */
export async function filesystemUuid(device: string): Promise<string> {
  const uuid = (await run('blkid', ['-p', '-s', 'UUID', '-o', 'value', '--', device])).stdout
    .trim()
    .toLowerCase();
  if (!uuid) throw new Error(`blkid found no filesystem UUID on ${device}`);
  return uuid;
}

/** Mount the new filesystem on a temporary directory for `fn` (which enrols it), then unmount. */
export async function onTempMount<T>(device: string, fn: (root: string) => T): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'offsite-enrol-'));
  try {
    await run('mount', ['--', device, dir], { timeoutMs: 60_000 });
    try {
      return fn(dir);
    } finally {
      await run('umount', ['--', dir], { timeoutMs: 120_000 });
    }
  } finally {
    rmdirSync(dir);
  }
}
