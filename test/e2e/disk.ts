/**
 * Drive images made on the host for hot-plugging into the guest. The host has no
 * device-mapper, so a LUKS container is formatted here (cryptsetup works on a plain file)
 * but opened, filled with a filesystem and used only in the guest.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sh } from './host.js';

export interface LuksDisk {
  /** The raw image file to plug. */
  path: string;
  /** The key file on the host; copy it into the guest where the product expects it. */
  keyFile: string;
  key: Buffer;
  /** The LUKS container's UUID: the guest sees /dev/disk/by-uuid/<uuid>. */
  uuid: string;
}

export interface LuksDiskOptions {
  dir: string;
  name: string;
  sizeMb?: number;
  /** A given key (e.g. to make a "wrong key" scenario); random otherwise. */
  key?: Buffer;
  /** A given LUKS UUID; cryptsetup picks one otherwise. */
  uuid?: string;
}

/** A sparse file of the given size, no content: also what an unformatted new drive looks like. */
export async function makeBlankDisk(path: string, sizeMb: number): Promise<void> {
  await rm(path, { force: true });
  await sh('truncate', ['-s', `${sizeMb}M`, path]);
}

/**
 * A LUKS2 container over the whole image (no partition table, as `prepare-drive` makes it),
 * with a cheap key derivation (PBKDF2, 1000 iterations) so unlocking is fast under emulation.
 * The default LUKS2 header takes 16 MiB, so the payload is sizeMb - 16.
 */
export async function makeLuksDisk(options: LuksDiskOptions): Promise<LuksDisk> {
  await mkdir(options.dir, { recursive: true });
  const path = join(options.dir, `${options.name}.img`);
  const keyFile = join(options.dir, `${options.name}.key`);
  const key = options.key ?? randomBytes(64);
  await writeFile(keyFile, key, { mode: 0o400 });
  await makeBlankDisk(path, options.sizeMb ?? 64);
  await sh('cryptsetup', [
    'luksFormat',
    '--batch-mode',
    '--type',
    'luks2',
    '--pbkdf',
    'pbkdf2',
    '--pbkdf-force-iterations',
    '1000',
    '--key-file',
    keyFile,
    ...(options.uuid ? ['--uuid', options.uuid] : []),
    path,
  ]);
  return { path, keyFile, key, uuid: await luksUuid(path) };
}

export async function luksUuid(path: string): Promise<string> {
  return (await sh('cryptsetup', ['luksUUID', path])).stdout.trim();
}

/** systemd's name for the guest's by-uuid device unit of a UUID (UUIDs need only the `-` escape). */
export function byUuidDeviceUnit(uuid: string): string {
  return `dev-disk-by\\x2duuid-${uuid.replace(/-/g, '\\x2d')}.device`;
}
