/**
 * Powering a drive's disk off once it is unmounted and closed, the way
 * udisks' power-off does it, from sysfs alone (no udisks on a headless NAS):
 *
 *   1. the disk and every partition of it unused: nothing mounted, no
 *      device-mapper or RAID holder (else it is left powered, and why is said);
 *   2. `sync` of the drive's device (what is cached written out, the disk's cache flushed);
 *   3. a SCSI disk (USB mass storage, SATA, UAS) gets `manage_start_stop` set,
 *      so that the kernel stops its motor as it goes, and is deleted
 *      (`/sys/block/<disk>/device/delete`: the cache is flushed, the disk
 *      stopped, its device nodes removed);
 *   4. on USB, the USB device is then disconnected (its `remove` attribute:
 *      the hub port is disabled and the enclosure suspends), unless another
 *      disk still lives on it (a card reader, a two-bay enclosure).
 *
 * Plugging the drive in again brings it back. A disk that is none of these
 * (a loop device, virtio, NVMe, MMC) is left as it is, said in one line.
 * docs/restore.md, "Powering the drive off".
 */
import { existsSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from './exec.js';
import { deviceNumber, mounts } from './mounts.js';

export interface Disk {
  /** the kernel's name of the whole disk, e.g. sdb */
  name: string;
  /** its directory under /sys/devices */
  dir: string;
}

/** The whole disk a block device (the disk itself, or one of its partitions) belongs to; null when none. */
export function diskOf(device: string, sys = '/sys'): Disk | null {
  const number = deviceNumber(device);
  if (!number) return null;
  let dir: string;
  try {
    dir = realpathSync(join(sys, 'dev', 'block', number));
  } catch {
    return null;
  }
  const whole = existsSync(join(dir, 'partition')) ? dirname(dir) : dir;
  return { name: basename(whole), dir: whole };
}

function read(file: string): string | null {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Why the disk must stay powered: a partition mounted, or held by device-mapper or RAID. Empty: unused. */
export function diskInUse(disk: Disk): string[] {
  const blocks = [
    disk.dir,
    ...entries(disk.dir)
      .map((n) => join(disk.dir, n))
      .filter((d) => existsSync(join(d, 'partition'))),
  ];
  const all = mounts();
  const why: string[] = [];
  for (const dir of blocks) {
    const name = basename(dir);
    const number = read(join(dir, 'dev'));
    for (const m of all.filter((m) => m.majMin === number)) why.push(`${name} is mounted on ${m.target}`);
    for (const holder of entries(join(dir, 'holders'))) why.push(`${name} is held by ${holder}`);
  }
  return why;
}

/** The USB device (a directory with idVendor and remove) a sysfs device sits on, or null. */
function usbDeviceOf(dir: string, sys: string): string | null {
  const top = join(sys, 'devices');
  for (let d = dir; d.startsWith(`${top}/`); d = dirname(d))
    if (existsSync(join(d, 'idVendor')) && existsSync(join(d, 'remove'))) return d;
  return null;
}

/** Block devices (under /sys/block) that live below `dir`. */
function disksBelow(dir: string, sys: string): string[] {
  return entries(join(sys, 'block')).filter((n) => {
    try {
      return realpathSync(join(sys, 'block', n)).startsWith(`${dir}/`);
    } catch {
      return false;
    }
  });
}

/** Ask the kernel to stop the disk's motor when the disk is deleted (sd's manage_start_stop); true if it took it. */
function stopOnDelete(scsi: string): boolean {
  let taken = false;
  for (const id of entries(join(scsi, 'scsi_disk')))
    for (const attribute of ['manage_system_start_stop', 'manage_start_stop']) {
      const file = join(scsi, 'scsi_disk', id, attribute);
      if (!existsSync(file)) continue;
      try {
        writeFileSync(file, '1');
        taken = true;
      } catch {
        // a kernel that refuses it still flushes the cache and removes the disk
      }
    }
  return taken;
}

export interface PowerOffOptions {
  sys?: string;
  /** how long to wait for the disk to go after the delete (default 10 s) */
  goneWithinMs?: number;
}

/**
 * Power off the disk of `device` where the hardware allows it; resolves to
 * what was done, or why nothing was (both said to the user as they are).
 * Throws when a write to sysfs fails.
 */
export async function powerOffDisk(device: string, opts: PowerOffOptions = {}): Promise<string> {
  const sys = opts.sys ?? '/sys';
  if (!existsSync(device)) return `${device} is gone already`;
  const disk = diskOf(device, sys);
  if (!disk) return `${device} is not a disk the kernel lists: left as it is`;
  if (disk.name.startsWith('loop')) return `${disk.name} is a loop device: there is no disk to power off`;
  const scsi = join(disk.dir, 'device');
  if (!existsSync(join(scsi, 'delete')))
    return `${disk.name} is not a SCSI or USB disk: left powered (nothing here can power it off)`;
  const busy = diskInUse(disk);
  if (busy.length) return `${busy.join('; ')}: the disk is left powered`;

  // fsync of the drive's node: what is cached of it written out, and the disk's own cache flushed
  await run('sync', ['--', device], { timeoutMs: 10 * 60_000 });
  const usb = usbDeviceOf(realpathSync(scsi), sys);
  const stopped = stopOnDelete(scsi);
  writeFileSync(join(scsi, 'delete'), '1');
  const until = Date.now() + (opts.goneWithinMs ?? 10_000);
  while (existsSync(disk.dir) && Date.now() < until) await sleep(100);
  if (existsSync(disk.dir)) throw new Error(`${disk.name} is still there after ${join(scsi, 'delete')}`);
  const done = `${disk.name} was flushed, ${stopped ? 'stopped ' : ''}and removed`;
  if (!usb) return done;
  const others = disksBelow(usb, sys);
  if (others.length)
    return `${done}; its USB device ${basename(usb)} stays connected for ${others.join(', ')}`;
  writeFileSync(join(usb, 'remove'), '1');
  return `${done}; its USB device ${basename(usb)} is disconnected`;
}
