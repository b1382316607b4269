import { mkdirSync } from 'node:fs';
import { run } from '../exec.js';
import { mountAt } from '../mounts.js';
import { checkMarker } from './marker.js';
import { type Step, StepError } from './step.js';
import { foreignMountMessage, unmountDrive } from './teardown.js';

/**
 * The drive's contents are untrusted (docs/security.md): a device node planted
 * on it never opens (nodev) and a setuid file on it never runs as its owner
 * (nosuid), whatever the configured options say; they come last, so they win.
 */
function mountOptions(drive: { mountOptions: string }): string {
  return `${drive.mountOptions},nodev,nosuid`;
}

/** Mount the drive's filesystem and make sure it is the drive it claims to be. */
export const mount: Step = {
  name: 'mount',
  title: "mounting the drive's filesystem and checking that its marker names this drive",
  async run(ctx) {
    const { drive } = ctx;
    if (drive.kind === 'directory') return;
    const device = drive.kind === 'luks' ? ctx.facts.mapperDevice : ctx.facts.device;
    if (!device) throw new StepError('no device to mount (identify/unlock did not run)');
    mkdirSync(drive.mountPoint, { recursive: true, mode: 0o755 });
    const there = mountAt(drive.mountPoint);
    if (there) throw new StepError(foreignMountMessage(there, drive.mountPoint, drive.name));
    await run('mount', ['-o', mountOptions(drive), '--', device, drive.mountPoint], {
      timeoutMs: 120_000,
    }).catch((e) => {
      throw new StepError(`could not mount ${device} on ${drive.mountPoint}: ${(e as Error).message}`, {
        cause: e,
      });
    });
    if (!mountAt(drive.mountPoint))
      throw new StepError(
        `${drive.mountPoint} is not a mount point after mounting: refusing to write to the bare directory`,
      );
    // prepare-drive writes the marker of an encrypted drive; a plain filesystem is enrolled by its first run
    checkMarker(drive.mountPoint, drive.name, drive.kind === 'filesystem');
    ctx.facts.target = drive.mountPoint;
    return `${device} is mounted on ${drive.mountPoint}, and its marker names ${drive.name}`;
  },
  async undo(ctx) {
    const { drive, facts } = ctx;
    if (drive.kind === 'directory') return;
    const device = drive.kind === 'luks' ? facts.mapperDevice : facts.device;
    if (device) await unmountDrive(drive.mountPoint, [device], { lazy: true });
  },
};
