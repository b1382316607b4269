import { existsSync, statSync } from 'node:fs';
import { EXIT } from '../exit.js';
import { deviceByUuid, mapperPath, mountAt, probeType } from '../mounts.js';
import { openRefusal, openState, removeOpenRecord } from '../open-record.js';
import { checkEnrolled } from './marker.js';
import { type RunContext, type Step, StepError } from './step.js';
import { closeMapping, foreignMount, foreignMountMessage, unmountDrive } from './teardown.js';

/**
 * Gone by the time it is identified. A drive that was never plugged in does
 * not get here (runDrive refuses it before anything starts, exit 75): this
 * one was there a moment ago, and its run fails like any other.
 */
function absent(message: string): StepError {
  return new StepError(`${message}: it went away before it could be identified`);
}

/**
 * A drive pulled mid-sync leaves its mount and mapping behind, and every later
 * plug then fails (docs/design.md §2, measured). Clear both before anything else, but
 * only the drive's own: anything else mounted at the mount point (the source
 * volume, another disk) is left as it is and the run stops.
 */
async function clearStale(ctx: RunContext, mountPoint: string, devices: string[], mapper: string | null) {
  const foreign = foreignMount(mountPoint, devices);
  if (foreign) throw new StepError(foreignMountMessage(foreign, mountPoint, ctx.drive.name));
  if (mountAt(mountPoint)) {
    ctx.log.warn(`${mountPoint} is still mounted from an earlier run; unmounting it first`);
    await unmountDrive(mountPoint, devices, { lazy: true });
  }
  if (mapper && existsSync(mapperPath(mapper))) {
    ctx.log.warn(`${mapperPath(mapper)} is still open from an earlier run; closing it first`);
    await closeMapping(mapper);
  }
}

/**
 * A drive opened by `offsite open` is someone's, until `offsite close`: a
 * second open refuses it, touching nothing (a run refuses it before it starts,
 * bridge/run/run-drive.ts). The record of an opening whose mount has gone
 * (pulled, unmounted by hand) is removed, and what it left is cleared below
 * like any stale mount.
 */
function refuseIfOpen(ctx: RunContext): void {
  const { config, drive } = ctx;
  const open = openState(config.state_dir, drive);
  if (open.is === 'open') throw new StepError(openRefusal(open.record), { exitCode: EXIT.tempfail });
  if (open.is === 'stale') {
    ctx.log.warn(`it was left open by offsite open, but ${open.why}: taken as closed`);
    removeOpenRecord(config.state_dir, drive.name);
  }
}

export const identify: Step = {
  name: 'identify',
  title: 'checking that the drive is plugged in and is the one it claims to be',
  async run(ctx) {
    const { drive } = ctx;
    refuseIfOpen(ctx);
    if (drive.kind === 'directory') {
      if (!existsSync(drive.directory) || !statSync(drive.directory).isDirectory())
        throw absent(`the directory ${drive.directory} of drive "${drive.name}" is gone`);
      checkEnrolled(drive.directory, ctx.config.state_dir, drive.name);
      ctx.facts.target = drive.directory;
      return `${drive.directory} is there and is drive ${drive.name}`;
    }
    const uuid = drive.kind === 'luks' ? drive.luksUuid : drive.uuid;
    const device = await deviceByUuid(uuid);
    if (!device) throw absent(`drive "${drive.name}" (UUID ${uuid}) is not plugged in`);
    const type = await probeType(device);
    if (drive.kind === 'luks' && type !== 'crypto_LUKS')
      throw new StepError(
        `${device} (UUID ${uuid}) is not a LUKS container (blkid says ${type ?? 'nothing'})`,
      );
    ctx.facts.device = device;
    const mapper = drive.kind === 'luks' ? drive.mapper : null;
    await clearStale(ctx, drive.mountPoint, mapper ? [mapperPath(mapper)] : [device], mapper);
    return `${device} is drive ${drive.name}'s ${mapper ? 'LUKS container' : 'filesystem'}`;
  },
};
