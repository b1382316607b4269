/**
 * Enrolling a drive: its marker with a new random token on the drive, the
 * token's copy in state_dir (bridge/steps/marker.ts). `prepare-drive` does it
 * on the filesystem it has just made; `offsite enrol` on a drive that already
 * has one (a plain filesystem, a directory, or a LUKS drive enrolled before
 * tokens), mounted by offsite itself, never formatted.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import type { Config, Drive } from '../../bridge/config.js';
import { errorMessage } from '../../bridge/error-message.js';
import { run } from '../../bridge/exec.js';
import { describeBusy, tryLock } from '../../bridge/lockfile.js';
import { deviceByUuid, deviceNumber, mapperPath, mountAt, mounts, probeType } from '../../bridge/mounts.js';
import { driveLockFile } from '../../bridge/run/run-drive.js';
import {
  type Marker,
  newToken,
  refusal,
  type Standing,
  stageToken,
  standing,
  writeMarker,
} from '../../bridge/steps/marker.js';
import { mountOptions } from '../../bridge/steps/mount.js';
import { unmountDrive } from '../../bridge/steps/teardown.js';
import { closeLuks, deviceMapperAvailable, openLuks } from './luks.js';
import { Refused } from './safety.js';

export type Enrolment = 'enrolled' | 'already enrolled';

/** A marker that names this drive without a token is an old enrolment of it: no --force needed. */
const WITHOUT_FORCE: ReadonlySet<Standing['is']> = new Set(['unmarked', 'no-token']);

/**
 * Enrol the filesystem or directory at `root` as drive `name`. Refuses a
 * root whose marker belongs to another drive or another enrolment unless
 * `force`. The token is staged in state_dir first (a full or read-only
 * state_dir refuses before the drive is touched) and put in place once the
 * marker holds it.
 */
export function enrolAt(
  root: string,
  opts: { config: Config; name: string; force: boolean; marker?: Omit<Marker, 'drive' | 'token'> },
): Enrolment {
  const { config, name } = opts;
  let now: Standing | null = null;
  try {
    now = standing(root, config.state_dir, name);
  } catch (e) {
    // this NAS's token could not be read: only --force replaces it
    if (!opts.force) throw new Refused([`${errorMessage(e)}; --force enrols the drive again`]);
  }
  if (now?.is === 'enrolled') return 'already enrolled';
  if (now && !opts.force && !WITHOUT_FORCE.has(now.is))
    throw new Refused([refusal(now, root, config.state_dir, name)!]);
  const token = newToken();
  const staged = stageToken(config.state_dir, name, token);
  try {
    writeMarker(root, { ...opts.marker, drive: name, token });
  } catch (e) {
    staged.abort();
    throw e;
  }
  staged.commit();
  return 'enrolled';
}

/** Mount `device` on the drive's own mount point for `fn`, then unmount it. */
async function mounted<T>(
  device: string,
  drive: Extract<Drive, { mountPoint: string }>,
  fn: (root: string) => T,
): Promise<T> {
  const number = deviceNumber(device);
  const elsewhere = mounts()
    .filter((m) => m.majMin === number)
    .map((m) => m.target);
  if (elsewhere.length)
    throw new Refused([
      `${device} is mounted at ${elsewhere.join(', ')}: unmount it first (enrol mounts it itself)`,
    ]);
  if (mountAt(drive.mountPoint)) throw new Refused([`${drive.mountPoint} is already mounted`]);
  mkdirSync(drive.mountPoint, { recursive: true, mode: 0o755 });
  await run('mount', ['-o', mountOptions(drive), '--', device, drive.mountPoint], { timeoutMs: 120_000 });
  try {
    if (!mountAt(drive.mountPoint))
      throw new Error(`${drive.mountPoint} is not a mount point after mounting`);
    return fn(drive.mountPoint);
  } finally {
    await unmountDrive(drive.mountPoint, [device], { lazy: true });
  }
}

async function plugged(drive: Extract<Drive, { kind: 'luks' | 'filesystem' }>): Promise<string> {
  const uuid = drive.kind === 'luks' ? drive.luksUuid : drive.uuid;
  const device = await deviceByUuid(uuid);
  if (!device) throw new Refused([`drive "${drive.name}" (UUID ${uuid}) is not plugged in`]);
  const type = await probeType(device);
  if (drive.kind === 'luks' && type !== 'crypto_LUKS')
    throw new Refused([`${device} (UUID ${uuid}) is not a LUKS container (blkid says ${type ?? 'nothing'})`]);
  if (drive.kind === 'filesystem' && (!type || type === 'crypto_LUKS'))
    throw new Refused([
      type
        ? `${device} is a LUKS container: configure drive "${drive.name}" with luks_uuid and key_file`
        : `${device} holds no filesystem blkid knows (offsite prepare-drive --plain makes one)`,
    ]);
  return device;
}

/** Give `fn` the root of the drive as it is plugged in: a directory, or its filesystem mounted by us. */
async function atRoot<T>(drive: Drive, fn: (root: string) => T): Promise<T> {
  if (drive.kind === 'directory') {
    if (!existsSync(drive.directory) || !statSync(drive.directory).isDirectory())
      throw new Refused([`the directory ${drive.directory} of drive "${drive.name}" does not exist`]);
    return fn(drive.directory);
  }
  const device = await plugged(drive);
  if (drive.kind === 'filesystem') return mounted(device, drive, fn);
  if (!deviceMapperAvailable())
    throw new Refused([
      'device-mapper is not available in this kernel, so the container cannot be opened (try: modprobe dm_crypt)',
    ]);
  if (existsSync(mapperPath(drive.mapper)))
    throw new Refused([`${mapperPath(drive.mapper)} is open: offsite cleanup ${drive.name} closes it`]);
  const opened = await openLuks(device, drive.keyFile, drive.mapper);
  try {
    return await mounted(opened, drive, fn);
  } finally {
    await closeLuks(drive.mapper);
  }
}

/** `offsite enrol`: the drive as configured, under its run lock (a run never sees it half enrolled). */
export async function enrolDrive(config: Config, drive: Drive, opts: { force: boolean }): Promise<Enrolment> {
  const { lock, busy } = tryLock(driveLockFile(config.state_dir, drive.name), `offsite enrol ${drive.name}`);
  if (!lock)
    throw new Refused([`drive "${drive.name}" is busy (${describeBusy(busy)}): enrol it after the run`]);
  const marker =
    drive.kind === 'luks'
      ? { luks_uuid: drive.luksUuid }
      : drive.kind === 'filesystem'
        ? { uuid: drive.uuid }
        : {};
  try {
    return await atRoot(drive, (root) =>
      enrolAt(root, { config, name: drive.name, force: opts.force, marker }),
    );
  } finally {
    lock.release();
  }
}
