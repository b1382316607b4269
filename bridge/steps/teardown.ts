/**
 * Unmounting and closing, shared by the unmount/close steps, the undo walk,
 * the clearing of stale state at the start of a run and `offsite cleanup`
 * (the ExecStopPost= safety net). All of it is idempotent.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Drive } from '../config.js';
import { errorMessage } from '../error-message.js';
import { run } from '../exec.js';
import type { Logger } from '../log.js';
import { deviceByUuid, isMountOf, type MountEntry, mapperPath, mountAt } from '../mounts.js';
import { cryptsetupUnit } from '../systemd.js';
import { StepError } from './step.js';

export async function waitUntil(pred: () => boolean, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > until) return false;
    await sleep(stepMs);
  }
  return true;
}

/**
 * The device nodes a drive is mounted from: its mapper (LUKS) or its
 * partition. Only a mount of one of these is ever unmounted by offsite.
 */
export async function driveDevices(drive: Drive): Promise<string[]> {
  if (drive.kind === 'luks') return [mapperPath(drive.mapper)];
  if (drive.kind === 'filesystem') {
    const device = await deviceByUuid(drive.uuid);
    return device ? [device] : [];
  }
  return [];
}

/** The mount at `mountPoint` when it is not one of `devices`: someone else's, never touched. */
export function foreignMount(mountPoint: string, devices: readonly string[]): MountEntry | null {
  const m = mountAt(mountPoint);
  return m && !isMountOf(m, devices) ? m : null;
}

export function foreignMountMessage(m: MountEntry, mountPoint: string, drive: string): string {
  return `${mountPoint} has ${m.source} (${m.fstype}) mounted on it, which is not drive "${drive}": left mounted; unmount it yourself or give the drive another mount_point`;
}

/**
 * Unmount the drive (one of `devices`) from `mountPoint`; a mount of anything
 * else there is left alone. `lazy`: when a plain unmount keeps failing (a
 * pulled drive, a busy shell), detach it lazily rather than leave a stale
 * mount that breaks the next plug. False when nothing of the drive's was there.
 */
export async function unmountDrive(
  mountPoint: string,
  devices: readonly string[],
  opts: { lazy: boolean; tries?: number },
): Promise<boolean> {
  const ours = () => {
    const m = mountAt(mountPoint);
    return m !== null && isMountOf(m, devices);
  };
  if (!ours()) return false;
  const tries = opts.tries ?? 3;
  let lastError = '';
  for (let i = 0; i < tries && ours(); i++) {
    try {
      await run('umount', ['--', mountPoint], { timeoutMs: 60_000 });
    } catch (e) {
      lastError = errorMessage(e);
      await sleep(500 * (i + 1));
    }
  }
  if (ours() && opts.lazy) await run('umount', ['-l', '--', mountPoint], { okCodes: [0, 32] });
  if (ours())
    throw new StepError(`${mountPoint} is still mounted: ${lastError || 'umount did not detach it'}`);
  return true;
}

/**
 * Close the LUKS mapping: stop the cryptsetup unit (systemd's own teardown),
 * then check that /dev/mapper/<name> is really gone; `cryptsetup close` as a
 * fallback (e.g. a mapping opened outside systemd). Checked, not assumed.
 */
export async function closeMapping(mapper: string): Promise<boolean> {
  const dev = mapperPath(mapper);
  if (!existsSync(dev)) return false;
  const problems: string[] = [];
  try {
    // --no-block: this may run inside the backup unit's own stop (undo, ExecStopPost), and a
    // stop job that waited for that would wait for itself; the mapping is checked below instead
    await run('systemctl', ['stop', '--no-block', '--', cryptsetupUnit(mapper)], { timeoutMs: 30_000 });
  } catch (e) {
    problems.push(errorMessage(e));
  }
  if (!(await waitUntil(() => !existsSync(dev), 30_000))) {
    try {
      await run('cryptsetup', ['close', '--', mapper], { timeoutMs: 60_000 });
    } catch (e) {
      problems.push(errorMessage(e));
    }
  }
  if (existsSync(dev))
    throw new StepError(
      `the LUKS mapping ${dev} is still open: ${problems.join('; ') || 'it did not go away'}`,
    );
  return true;
}

/**
 * Unmount and close what is open of the drive (at its mount point, and at
 * `alsoAt`: where `offsite open --at` mounted it); false when something could
 * not be. Also how `offsite close` clears what a stale opening left.
 */
export async function clearDrive(
  drive: Exclude<Drive, { kind: 'directory' }>,
  /** says who is clearing: "cleanup alpha: ", "close alpha: " (childLogger) */
  log: Logger,
  alsoAt: readonly string[] = [],
): Promise<boolean> {
  const name = drive.name;
  let ok = true;
  for (const mountPoint of new Set([drive.mountPoint, ...alsoAt]))
    try {
      const devices = await driveDevices(drive);
      const foreign = foreignMount(mountPoint, devices);
      if (foreign) log.warn(foreignMountMessage(foreign, mountPoint, name));
      else if (await unmountDrive(mountPoint, devices, { lazy: true })) log.info(`unmounted ${mountPoint}`);
    } catch (e) {
      log.error(errorMessage(e));
      ok = false;
    }
  if (drive.kind === 'luks') {
    try {
      if (await closeMapping(drive.mapper)) log.info(`closed /dev/mapper/${drive.mapper}`);
    } catch (e) {
      log.error(errorMessage(e));
      ok = false;
    }
  }
  return ok;
}
