/**
 * `offsite prepare-drive` (SPEC 6) as an ordered list of steps, each saying
 * what it did. Everything that can refuse is checked before the first byte is
 * written; after the container is formatted, a failure says what was done and
 * what is left to do.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type Config, findDrive } from '../../bridge/config.js';
import type { Logger } from '../../bridge/log.js';
import { DRIVE_NAME, isoNow } from '../../bridge/protocol.js';
import { crypttabLine, fstabLine } from '../generate.js';
import { addDriveToFile } from './config-edit.js';
import { ext4Label, makeFilesystem, writeMarkerOn } from './filesystem.js';
import {
  addPassphrase,
  backupHeader,
  closeLuks,
  createKeyFile,
  deviceMapperAvailable,
  formatLuks,
  luksUuid,
  openLuks,
} from './luks.js';
import { type BlockDevice, refusals, SYSTEM_PATHS } from './safety.js';

export interface PrepareOptions {
  config: Config;
  device: BlockDevice;
  name: string;
  keysDir: string;
  mountPoint: string;
  passphrase: string | null;
  iterTimeMs?: number;
  log: Logger;
}

export class Refused extends Error {
  override name = 'Refused';
  readonly reasons: string[];
  constructor(reasons: string[]) {
    super(reasons.join('; '));
    this.reasons = reasons;
  }
}

export function keyFileFor(opts: Pick<PrepareOptions, 'keysDir' | 'name'>): string {
  return join(opts.keysDir, `${opts.name}.key`);
}

export function headerFileFor(config: Config, name: string): string {
  return join(config.state_dir, 'headers', `${name}.luksheader`);
}

/** Every reason to refuse, checked before anything is written. */
export function preflight(opts: Omit<PrepareOptions, 'log' | 'passphrase'>): string[] {
  const { config, name } = opts;
  const reasons: string[] = [];
  if (!DRIVE_NAME.test(name))
    reasons.push(`"${name}" is not a drive name (lower-case letters, digits and _)`);
  if (findDrive(config, name)) reasons.push(`${config.file} already has a drive named "${name}"`);
  const key = keyFileFor(opts);
  if (existsSync(key))
    reasons.push(`the key file ${key} already exists (another drive's key? move it away first)`);
  const header = headerFileFor(config, name);
  if (existsSync(header)) reasons.push(`the header backup ${header} already exists (move it away first)`);
  if (existsSync(`/dev/mapper/offsite_${name}`)) reasons.push(`/dev/mapper/offsite_${name} is open`);
  reasons.push(...refusals(opts.device, [...SYSTEM_PATHS, config.source.path, config.state_dir]));
  return reasons;
}

export interface Prepared {
  luksUuid: string;
  keyFile: string;
  headerFile: string;
  crypttab: string;
  fstab: string;
}

export async function prepareDrive(opts: PrepareOptions): Promise<Prepared> {
  const reasons = preflight(opts);
  // checked last, but before anything is written: formatting a container that cannot be opened helps nobody
  if (!deviceMapperAvailable())
    reasons.push(
      'device-mapper is not available in this kernel (no /dev/mapper/control), so the new container could not be opened to create its filesystem (try: modprobe dm_crypt)',
    );
  if (reasons.length) throw new Refused(reasons);
  const { config, device, name, log } = opts;
  const keyFile = keyFileFor(opts);
  const headerFile = headerFileFor(config, name);
  const mapper = `offsite_${name}`;
  const label = ext4Label(name);
  const say = (step: string, what: string) => log.info(`prepare-drive ${name}: ${step}: ${what}`);
  const done: string[] = [];

  try {
    createKeyFile(keyFile);
    say('key', `${keyFile} (4096 random bytes, mode 0400)`);
    try {
      await formatLuks(device.path, keyFile, { label, iterTimeMs: opts.iterTimeMs });
    } catch (e) {
      rmSync(keyFile, { force: true }); // nothing uses it yet
      throw e;
    }
    done.push(`${device.given} is now a LUKS2 container opened by ${keyFile}`);
    say('format', `${device.given} is a LUKS2 container labelled ${label}`);
    if (opts.passphrase !== null) {
      await addPassphrase(device.path, keyFile, opts.passphrase, opts.iterTimeMs);
      say('passphrase', 'a passphrase opens it too');
    }
    await backupHeader(device.path, headerFile);
    done.push(`its header is backed up in ${headerFile}`);
    say('header', `backed up to ${headerFile}`);
    const uuid = await luksUuid(device.path);
    say('uuid', uuid);
    const opened = await openLuks(device.path, keyFile, mapper);
    try {
      await makeFilesystem(opened, label);
      say('filesystem', `ext4 labelled ${label}`);
      await writeMarkerOn(opened, { drive: name, luks_uuid: uuid, created: isoNow() });
      say('marker', `.offsite-drive.json names drive ${name}`);
    } finally {
      await closeLuks(mapper);
    }
    say('close', `${opened} closed`);
    mkdirSync(opts.mountPoint, { recursive: true, mode: 0o755 });
    addDriveToFile(config.file, { name, luks_uuid: uuid, key_file: keyFile, mount_point: opts.mountPoint });
    say('config', `drive ${name} added to ${config.file}`);
    const drive = {
      kind: 'luks',
      name,
      luksUuid: uuid,
      keyFile,
      mapper,
      mountPoint: opts.mountPoint,
      mountOptions: 'noatime',
    } as const;
    return { luksUuid: uuid, keyFile, headerFile, crypttab: crypttabLine(drive), fstab: fstabLine(drive) };
  } catch (e) {
    const so_far = done.length ? ` Done so far: ${done.join('; ')}.` : ' Nothing was changed.';
    throw new Error(`prepare-drive ${name} failed: ${(e as Error).message}.${so_far}`, { cause: e });
  }
}
