/** A drive's keys: encrypted (luks_uuid), plain (uuid) or a directory, and what a run sees of it. */
import { z } from 'zod';
import { about } from './meta.js';
import { absolutePath, driveName, mapperName, mountOptions, mountPoint, uuid } from './values.js';

const driveFields = z
  .object({
    name: driveName.meta(
      about({
        description:
          "The drive's name in systemd units, MQTT and Home Assistant: lower-case letters, digits and _.",
        examples: ['alpha'],
      }),
    ),
    luks_uuid: uuid.optional().meta(
      about({
        description:
          'An encrypted drive: the UUID of its LUKS partition, which udev sees as soon as it is plugged in (blkid shows it).',
        examples: ['0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0'],
      }),
    ),
    key_file: absolutePath.optional().meta(
      about({
        description: 'The file that unlocks the encrypted drive (root only, mode 0400).',
        examples: ['/etc/offsite/keys/alpha.key'],
      }),
    ),
    mapper: mapperName.optional().meta(
      about({
        description: "The unlocked drive's /dev/mapper name.",
        defaultText: 'offsite_<name>',
        examples: ['offsite_alpha'],
      }),
    ),
    uuid: uuid.optional().meta(
      about({
        description: 'An unencrypted drive: the UUID of its filesystem.',
        examples: ['2d3e4f50-6172-8394-a5b6-c7d8e9f0a1b2'],
      }),
    ),
    mount_point: mountPoint.optional().meta(
      about({
        description:
          'Where the drive is mounted while it is written: apart from source.path, state_dir, the other drives and system directories.',
        examples: ['/mnt/offsite/alpha'],
      }),
    ),
    directory: absolutePath.optional().meta(
      about({
        description: 'A directory as a drive (no unlock, no mount), e.g. for a first try.',
        examples: ['/srv/offsite-scratch'],
      }),
    ),
    mount_options: mountOptions
      .default('noatime')
      .meta(about({ description: 'Options for mount -o (nodev and nosuid are always added).' })),
    power_off: z
      .boolean()
      .optional()
      .meta(
        about({
          description:
            'Power the disk off after a good run and after offsite close, where the hardware allows it (docs/restore.md); not for a directory drive.',
          defaultText: 'true',
          examples: [false],
        }),
      ),
  })
  .strict();

function driveKind(d: z.infer<typeof driveFields>, ctx: z.RefinementCtx): void {
  const kinds = [d.luks_uuid && 'luks_uuid', d.uuid && 'uuid', d.directory && 'directory'].filter(Boolean);
  if (kinds.length !== 1) {
    ctx.addIssue({
      code: 'custom',
      message: `exactly one of luks_uuid (encrypted drive), uuid (plain filesystem) or directory; found ${kinds.length ? kinds.join(', ') : 'none'}`,
    });
    return;
  }
  if (d.luks_uuid && !d.key_file)
    ctx.addIssue({ code: 'custom', path: ['key_file'], message: 'required for a LUKS drive (luks_uuid)' });
  if ((d.luks_uuid || d.uuid) && !d.mount_point)
    ctx.addIssue({
      code: 'custom',
      path: ['mount_point'],
      message: 'required for a drive with a filesystem (luks_uuid or uuid)',
    });
  if (d.directory && d.power_off !== undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['power_off'],
      message: 'not for a directory drive: it has no disk of its own to power off',
    });
}

export type Drive =
  | {
      kind: 'luks';
      name: string;
      luksUuid: string;
      keyFile: string;
      mapper: string;
      mountPoint: string;
      mountOptions: string;
      powerOff: boolean;
    }
  | {
      kind: 'filesystem';
      name: string;
      uuid: string;
      mountPoint: string;
      mountOptions: string;
      powerOff: boolean;
    }
  | { kind: 'directory'; name: string; directory: string };

export const driveSchema = driveFields.superRefine(driveKind).transform((d): Drive => {
  if (d.luks_uuid)
    return {
      kind: 'luks',
      name: d.name,
      luksUuid: d.luks_uuid.toLowerCase(),
      keyFile: d.key_file!,
      mapper: d.mapper ?? `offsite_${d.name}`,
      mountPoint: d.mount_point!,
      mountOptions: d.mount_options,
      powerOff: d.power_off ?? true,
    };
  if (d.uuid)
    return {
      kind: 'filesystem',
      name: d.name,
      uuid: d.uuid.toLowerCase(),
      mountPoint: d.mount_point!,
      mountOptions: d.mount_options,
      powerOff: d.power_off ?? true,
    };
  return { kind: 'directory', name: d.name, directory: d.directory! };
});
