/**
 * `offsite prepare-drive` (docs/design.md §9) as an ordered list of steps, each saying
 * what it did: LUKS2, key file and header backup, or (--plain) none of them;
 * then ext4, the marker with its enrolment token, and the config entry.
 * Everything that can refuse is checked before the first byte is written;
 * after that, a failure says what was done and what is left to do.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type Config, findDrive } from '../../bridge/config.js';
import { errorMessage } from '../../bridge/error-message.js';
import type { Logger } from '../../bridge/log.js';
import { DRIVE_NAME } from '../../bridge/protocol.js';
import { tokenFile } from '../../bridge/steps/marker.js';
import { crypttabLine, fstabLine } from '../generate.js';
import { addDriveToFile } from './config-edit.js';
import { enrolAt } from './enrol.js';
import { ext4Label, filesystemUuid, makeFilesystem, onTempMount } from './filesystem.js';
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
import { type BlockDevice, Refused, refusals, SYSTEM_PATHS } from './safety.js';

export interface PrepareOptions {
  config: Config;
  device: BlockDevice;
  name: string;
  keysDir: string;
  mountPoint: string;
  passphrase: string | null;
  iterTimeMs?: number;
  /** an unencrypted filesystem on the device itself: no key, no container, no header */
  plain: boolean;
  log: Logger;
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
  reasons.push(...refusals(opts.device, [...SYSTEM_PATHS, config.source.path, config.state_dir]));
  if (opts.plain) return reasons;
  const key = keyFileFor(opts);
  if (existsSync(key))
    reasons.push(`the key file ${key} already exists (another drive's key? move it away first)`);
  const header = headerFileFor(config, name);
  if (existsSync(header)) reasons.push(`the header backup ${header} already exists (move it away first)`);
  if (existsSync(`/dev/mapper/offsite_${name}`)) reasons.push(`/dev/mapper/offsite_${name} is open`);
  return reasons;
}

export interface Prepared {
  /** the LUKS container's UUID, or the plain filesystem's */
  uuid: string;
  keyFile: string | null;
  headerFile: string | null;
  tokenFile: string;
  crypttab: string | null;
  fstab: string;
}

type Say = (step: string, what: string) => void;

/**
 * ext4 on `device` (the opened container, or the device itself), then the
 * marker and its token. The marker of a LUKS drive records the container's
 * UUID, a plain one its filesystem's; returns the filesystem's.
 */
async function filesystemAndMarker(
  device: string,
  opts: PrepareOptions,
  luksUuid: string | null,
  say: Say,
): Promise<string> {
  const label = ext4Label(opts.name);
  await makeFilesystem(device, label);
  const uuid = await filesystemUuid(device);
  say('filesystem', `ext4 labelled ${label}, UUID ${uuid}`);
  const marker = luksUuid ? { luks_uuid: luksUuid } : { uuid };
  await onTempMount(device, (root) =>
    enrolAt(root, { config: opts.config, name: opts.name, force: false, marker }),
  );
  say(
    'marker',
    `.offsite-drive.json names drive ${opts.name} with a new enrolment token (kept in ${tokenFile(opts.config.state_dir, opts.name)})`,
  );
  return uuid;
}

/** The LUKS part: key, container, passphrase, header backup; then the filesystem inside it. */
async function luks(opts: PrepareOptions, say: Say, done: string[]): Promise<Prepared> {
  const { config, device, name } = opts;
  const keyFile = keyFileFor(opts);
  const headerFile = headerFileFor(config, name);
  const mapper = `offsite_${name}`;
  createKeyFile(keyFile);
  say('key', `${keyFile} (4096 random bytes, mode 0400)`);
  try {
    await formatLuks(device.path, keyFile, { label: ext4Label(name), iterTimeMs: opts.iterTimeMs });
  } catch (e) {
    rmSync(keyFile, { force: true }); // nothing uses it yet
    throw e;
  }
  done.push(`${device.given} is now a LUKS2 container opened by ${keyFile}`);
  say('format', `${device.given} is a LUKS2 container labelled ${ext4Label(name)}`);
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
    await filesystemAndMarker(opened, opts, uuid, say);
  } finally {
    await closeLuks(mapper);
  }
  say('close', `${opened} closed`);
  mkdirSync(opts.mountPoint, { recursive: true, mode: 0o755 });
  addDriveToFile(config.file, { name, luks_uuid: uuid, key_file: keyFile, mount_point: opts.mountPoint });
  const drive = {
    kind: 'luks',
    name,
    luksUuid: uuid,
    keyFile,
    mapper,
    mountPoint: opts.mountPoint,
    mountOptions: 'noatime',
    powerOff: true,
  } as const;
  return {
    uuid,
    keyFile,
    headerFile,
    tokenFile: tokenFile(config.state_dir, name),
    crypttab: crypttabLine(drive),
    fstab: fstabLine(drive),
  };
}

/** --plain: the filesystem on the device itself, unencrypted. */
async function plain(opts: PrepareOptions, say: Say, done: string[]): Promise<Prepared> {
  const { config, device, name } = opts;
  done.push(`${device.given} is now an ext4 filesystem (what it held is gone)`);
  const uuid = await filesystemAndMarker(device.path, opts, null, say);
  mkdirSync(opts.mountPoint, { recursive: true, mode: 0o755 });
  addDriveToFile(config.file, { name, uuid, mount_point: opts.mountPoint });
  const drive = {
    kind: 'filesystem',
    name,
    uuid,
    mountPoint: opts.mountPoint,
    mountOptions: 'noatime',
    powerOff: true,
  } as const;
  return {
    uuid,
    keyFile: null,
    headerFile: null,
    tokenFile: tokenFile(config.state_dir, name),
    crypttab: null,
    fstab: fstabLine(drive),
  };
}

export async function prepareDrive(opts: PrepareOptions): Promise<Prepared> {
  const reasons = preflight(opts);
  // checked last, but before anything is written: formatting a container that cannot be opened helps nobody
  if (!opts.plain && !deviceMapperAvailable())
    reasons.push(
      'device-mapper is not available in this kernel (no /dev/mapper/control), so the new container could not be opened to create its filesystem (try: modprobe dm_crypt)',
    );
  if (reasons.length) throw new Refused(reasons);
  const { config, name, log } = opts;
  const say: Say = (step, what) => log.info(`prepare-drive ${name}: ${step}: ${what}`);
  const done: string[] = [];
  try {
    const prepared = await (opts.plain ? plain : luks)(opts, say, done);
    say('config', `drive ${name} added to ${config.file}`);
    return prepared;
  } catch (e) {
    const so_far = done.length ? ` Done so far: ${done.join('; ')}.` : ' Nothing was changed.';
    throw new Error(`prepare-drive ${name} failed: ${errorMessage(e)}.${so_far}`, { cause: e });
  }
}
