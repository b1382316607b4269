import { mkdirSync } from 'node:fs';
import type { Drive } from '../config.js';
import { errorMessage } from '../error-message.js';
import { run } from '../exec.js';
import { mountAt } from '../mounts.js';
import { checkEnrolled } from './marker.js';
import { type RunContext, type Step, StepError } from './step.js';
import { foreignMountMessage, unmountDrive } from './teardown.js';

/**
 * The drive's contents are untrusted (docs/security.md): a device node planted
 * on it never opens (nodev) and a setuid file on it never runs as its owner
 * (nosuid), whatever the configured options say; they come last, so they win.
 */
export function mountOptions(drive: { mountOptions: string }): string {
  return `${drive.mountOptions},nodev,nosuid`;
}

/**
 * Read-only when the kernel allows it (`ro` last, so it wins over an `rw` in
 * mount_options); true if so (`only`: read-only or fail). The kernel refuses `ro` while the filesystem is
 * still alive read-write elsewhere (lazily detached from a run that was
 * killed, its rsync still busy on it): then the superblock is shared as it is
 * and mounting it writes nothing new either.
 */
async function mountReadOnlyFirst(
  ctx: RunContext,
  device: string,
  opts: { only: boolean },
): Promise<boolean> {
  const drive = ctx.drive as Extract<Drive, { mountPoint: string }>;
  const mountWith = (options: string) =>
    run('mount', ['-o', options, '--', device, drive.mountPoint], { timeoutMs: 120_000 });
  try {
    await mountWith(`${mountOptions(drive)},ro`);
    return true;
  } catch (readOnly) {
    // read-only or not at all: `offsite open` never shares a superblock that something still writes to
    if (opts.only)
      throw new StepError(
        `could not mount ${device} read-only on ${drive.mountPoint}: ${errorMessage(readOnly)}`,
        { cause: readOnly },
      );
    try {
      await mountWith(mountOptions(drive));
    } catch {
      throw new StepError(`could not mount ${device} on ${drive.mountPoint}: ${errorMessage(readOnly)}`, {
        cause: readOnly,
      });
    }
    ctx.log.info(`${device} is still mounted read-write elsewhere; mounted it as it is`);
    return false;
  }
}

/**
 * Mount the drive's filesystem and make sure it is the enrolled drive:
 * read-only until its marker and token prove it, so a refused drive gets not
 * even a journal write (its image stays byte for byte the same,
 * test/bridge/enrol.test.ts). A run then makes it writable; `offsite open`
 * (`mountReadOnly`) leaves it read-only, for browsing and restores.
 */
function mountStep(mode: 'read-write' | 'read-only'): Step {
  const readOnlyWanted = mode === 'read-only';
  return {
    name: 'mount',
    title: readOnlyWanted
      ? "mounting the drive's filesystem read-only and checking that its marker proves it is the enrolled drive"
      : "mounting the drive's filesystem and checking that its marker proves it is the enrolled drive",
    async run(ctx) {
      const { drive } = ctx;
      if (drive.kind === 'directory') return;
      const device = drive.kind === 'luks' ? ctx.facts.mapperDevice : ctx.facts.device;
      if (!device) throw new StepError('no device to mount (identify/unlock did not run)');
      mkdirSync(drive.mountPoint, { recursive: true, mode: 0o755 });
      const there = mountAt(drive.mountPoint);
      if (there) throw new StepError(foreignMountMessage(there, drive.mountPoint, drive.name));
      const readOnly = await mountReadOnlyFirst(ctx, device, { only: readOnlyWanted });
      if (!mountAt(drive.mountPoint))
        throw new StepError(
          `${drive.mountPoint} is not a mount point after mounting: refusing to write to the bare directory`,
        );
      checkEnrolled(drive.mountPoint, ctx.config.state_dir, drive.name);
      ctx.facts.target = drive.mountPoint;
      if (readOnlyWanted)
        return `${device} is mounted read-only on ${drive.mountPoint}, and its marker and token prove it is ${drive.name}`;
      // every option again, and the device: given the mount point alone, mount(8) takes the options
      // of its fstab line (offsite install writes one) and the remount would drop nodev,nosuid
      if (readOnly)
        await run('mount', ['-o', `remount,${mountOptions(drive)},rw`, '--', device, drive.mountPoint], {
          timeoutMs: 120_000,
        }).catch((e) => {
          throw new StepError(`could not make ${drive.mountPoint} writable: ${errorMessage(e)}`, {
            cause: e,
          });
        });
      return `${device} is mounted on ${drive.mountPoint}, and its marker and token prove it is ${drive.name}`;
    },
    async undo(ctx) {
      const { drive, facts } = ctx;
      if (drive.kind === 'directory') return;
      const device = drive.kind === 'luks' ? facts.mapperDevice : facts.device;
      if (device) await unmountDrive(drive.mountPoint, [device], { lazy: true });
    },
  };
}

export const mount = mountStep('read-write');
export const mountReadOnly = mountStep('read-only');
