/**
 * Powering a drive's disk off (bridge/power.ts). On a real loop device, which
 * has no disk to power off; and on a directory laid out like /sys for a USB
 * disk (its SCSI device, the USB device above it), whose files are written as
 * the kernel would read them. The real usb-storage disk is powered off in the
 * VM suite (test/e2e/restore.test.ts).
 */
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deviceNumber } from '../../bridge/mounts.js';
import { diskOf, powerOffDisk } from '../../bridge/power.js';
import { type LoopImage, makeExt4 } from '../helpers/loop.js';

const USB = 'devices/pci0000:00/0000:00:14.0/usb2/2-1';
const SCSI = `${USB}/2-1:1.0/host6/target6:0:0/6:0:0:0`;

/**
 * /sys as the kernel shows a USB disk `name` (one partition) whose block
 * device number is `number`: /sys/dev/block/<number> and /sys/block/<name>
 * lead to it, its `device` to the SCSI device, and above that the USB device
 * with its `remove` file. `lun` puts a second disk on the same USB device.
 */
function usbDisk(sys: string, name: string, number: string, lun = 0): { disk: string; scsi: string } {
  const scsi = join(sys, SCSI.replace(/0$/, String(lun)));
  const disk = join(scsi, 'block', name);
  mkdirSync(join(disk, `${name}1`, 'holders'), { recursive: true });
  mkdirSync(join(disk, 'holders'), { recursive: true });
  mkdirSync(join(scsi, 'scsi_disk', `6:0:0:${lun}`), { recursive: true });
  writeFileSync(join(disk, 'dev'), `${number}\n`);
  writeFileSync(join(disk, `${name}1`, 'dev'), '259:77\n');
  writeFileSync(join(disk, `${name}1`, 'partition'), '1\n');
  writeFileSync(join(scsi, 'delete'), '');
  writeFileSync(join(scsi, 'scsi_disk', `6:0:0:${lun}`, 'manage_start_stop'), '0\n');
  symlinkSync(relative(disk, scsi), join(disk, 'device'));
  mkdirSync(join(sys, 'dev', 'block'), { recursive: true });
  mkdirSync(join(sys, 'block'), { recursive: true });
  symlinkSync(relative(join(sys, 'dev', 'block'), disk), join(sys, 'dev', 'block', number));
  symlinkSync(relative(join(sys, 'block'), disk), join(sys, 'block', name));
  // the USB device (with remove) and its root hub (without)
  writeFileSync(join(sys, USB, 'idVendor'), '0781\n');
  writeFileSync(join(sys, USB, 'remove'), '');
  writeFileSync(join(dirname(join(sys, USB)), 'idVendor'), '1d6b\n');
  return { disk, scsi };
}

/** What the kernel does when `delete` is written: the disk goes from sysfs. */
function kernelDeletes(sys: string, name: string, disk: string, scsi: string): () => void {
  const timer = setInterval(() => {
    if (readFileSync(join(scsi, 'delete'), 'utf8') !== '1') return;
    rmSync(disk, { recursive: true, force: true });
    rmSync(join(sys, 'block', name), { force: true });
  }, 20);
  return () => clearInterval(timer);
}

describe('powering a drive off', () => {
  let img: LoopImage;
  let sys: string;
  before(() => {
    img = makeExt4(8);
  });
  after(() => {
    img.detach();
  });

  it('a loop device has no disk to power off: said in one line, the device left as it is', async () => {
    assert.equal(diskOf(img.device)?.name, img.device.replace('/dev/', ''));
    assert.match(await powerOffDisk(img.device), /^loop\d+ is a loop device: there is no disk to power off$/);
    assert.ok(statSync(img.device).isBlockDevice());
  });

  it('a device that is gone already is said so', async () => {
    assert.equal(
      await powerOffDisk('/dev/offsite-no-such-disk'),
      '/dev/offsite-no-such-disk is gone already',
    );
  });

  it('a USB disk: told to stop on delete, deleted, then its USB device disconnected', async () => {
    sys = mkdtempSync(join(tmpdir(), 'offsite-sys-'));
    const { disk, scsi } = usbDisk(sys, 'sdz', deviceNumber(img.device)!);
    const stop = kernelDeletes(sys, 'sdz', disk, scsi);
    try {
      const said = await powerOffDisk(img.device, { sys });
      assert.equal(said, 'sdz was flushed, stopped and removed; its USB device 2-1 is disconnected');
    } finally {
      stop();
    }
    assert.equal(readFileSync(join(scsi, 'scsi_disk', '6:0:0:0', 'manage_start_stop'), 'utf8'), '1');
    assert.equal(readFileSync(join(scsi, 'delete'), 'utf8'), '1');
    assert.equal(readFileSync(join(sys, USB, 'remove'), 'utf8'), '1');
    rmSync(sys, { recursive: true });
  });

  it('a disk with a partition still held (a mapping open on it) stays powered, and nothing is written', async () => {
    sys = mkdtempSync(join(tmpdir(), 'offsite-sys-'));
    const { disk, scsi } = usbDisk(sys, 'sdz', deviceNumber(img.device)!);
    writeFileSync(join(disk, 'sdz1', 'holders', 'dm-3'), '');
    assert.equal(await powerOffDisk(img.device, { sys }), 'sdz1 is held by dm-3: the disk is left powered');
    assert.equal(readFileSync(join(scsi, 'delete'), 'utf8'), '');
    assert.equal(readFileSync(join(sys, USB, 'remove'), 'utf8'), '');
    rmSync(sys, { recursive: true });
  });

  it('a second disk on the same USB device (a card reader) keeps the USB device connected', async () => {
    sys = mkdtempSync(join(tmpdir(), 'offsite-sys-'));
    const { disk, scsi } = usbDisk(sys, 'sdz', deviceNumber(img.device)!);
    usbDisk(sys, 'sdy', '8:240', 1);
    const stop = kernelDeletes(sys, 'sdz', disk, scsi);
    try {
      assert.equal(
        await powerOffDisk(img.device, { sys }),
        'sdz was flushed, stopped and removed; its USB device 2-1 stays connected for sdy',
      );
    } finally {
      stop();
    }
    assert.equal(readFileSync(join(sys, USB, 'remove'), 'utf8'), '');
    rmSync(sys, { recursive: true });
  });

  it('a disk that stays after its delete is an error (the step logs it and the run goes on)', async () => {
    sys = mkdtempSync(join(tmpdir(), 'offsite-sys-'));
    usbDisk(sys, 'sdz', deviceNumber(img.device)!);
    await assert.rejects(powerOffDisk(img.device, { sys, goneWithinMs: 200 }), /sdz is still there after/);
    assert.ok(existsSync(join(sys, 'block', 'sdz')));
    rmSync(sys, { recursive: true });
  });

  it('a disk that is not SCSI or USB (virtio, NVMe) is left powered, said in one line', async () => {
    sys = mkdtempSync(join(tmpdir(), 'offsite-sys-'));
    const disk = join(sys, 'devices', 'pci0000:00', '0000:00:05.0', 'virtio2', 'block', 'vdz');
    mkdirSync(join(disk, 'device'), { recursive: true });
    mkdirSync(join(sys, 'dev', 'block'), { recursive: true });
    symlinkSync(
      relative(join(sys, 'dev', 'block'), disk),
      join(sys, 'dev', 'block', deviceNumber(img.device)!),
    );
    assert.equal(
      await powerOffDisk(img.device, { sys }),
      'vdz is not a SCSI or USB disk: left powered (nothing here can power it off)',
    );
    rmSync(sys, { recursive: true });
  });
});
