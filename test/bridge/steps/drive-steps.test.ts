/**
 * identify, mount and unmount against real ext4 images on loop devices
 * (root, as in CI). The LUKS steps (unlock, close) need device-mapper, which
 * this kernel lacks; they run for real in the VM suite (test/e2e).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../../bridge/config.js';
import { silentLogger } from '../../../bridge/log.js';
import { deviceByUuid, mountAt } from '../../../bridge/mounts.js';
import { reportersFor } from '../../../bridge/reporters/index.js';
import { DriveAbsentError, runDrive } from '../../../bridge/run/run-drive.js';
import { identify } from '../../../bridge/steps/identify.js';
import { MARKER_FILE, readToken } from '../../../bridge/steps/marker.js';
import { mount } from '../../../bridge/steps/mount.js';
import type { Step } from '../../../bridge/steps/step.js';
import { unmount } from '../../../bridge/steps/unmount.js';
import { enrolDrive } from '../../../units/prepare/enrol.js';
import { type LoopImage, makeExt4 } from '../../helpers/loop.js';
import { offsiteHere } from '../../units/cli.js';

const out = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;

describe('identify, mount and unmount on a real ext4 drive', () => {
  let img: LoopImage;
  let base: string;
  before(() => {
    img = makeExt4(16);
    base = mkdtempSync(join(tmpdir(), 'offsite-steps-'));
  });
  after(() => img.detach());

  function raw(extra: Record<string, unknown> = {}) {
    return {
      state_dir: join(base, 'state'),
      source: { path: join(base, 'src') },
      drives: [{ name: 'alpha', uuid: img.uuid, mount_point: join(base, 'mnt'), ...extra }],
    };
  }
  const config = (extra: Record<string, unknown> = {}) => parseConfig(raw(extra));
  /** the same configuration as a file, for the CLI (YAML reads JSON) */
  function configFile(): string {
    const file = join(base, 'config.yaml');
    writeFileSync(file, JSON.stringify(raw()));
    return file;
  }

  it('refuses a drive nobody enrolled without writing a byte; once enrolled, mounts it writable and leaves it unmounted', async () => {
    const c = config();
    const image = () => createHash('sha256').update(readFileSync(img.image)).digest('hex');
    const before = image();
    const steps = { ...(await reportersFor(c, silentLogger(), out)), steps: [identify, mount, unmount] };
    const refused = await runDrive(c, c.drives[0]!, steps);
    assert.equal(refused.result, 'failed');
    assert.equal(refused.step, 'mount');
    assert.match(refused.message, /^not enrolled: there is no marker .* offsite enrol alpha$/);
    assert.equal(mountAt(join(base, 'mnt')), null);
    assert.equal(image(), before, 'mounted read-only: not even the superblock changed');

    assert.equal(await enrolDrive(c, c.drives[0]!, { force: false }), 'enrolled');
    const seen: string[] = [];
    const look: Step = {
      name: 'look',
      title: 'look',
      async run(ctx) {
        const m = mountAt(ctx.facts.target!);
        assert.equal(m?.source, img.device);
        seen.push(m!.options.split(',')[0]!);
      },
    };
    const r = await runDrive(c, c.drives[0]!, { ...steps, steps: [identify, mount, look, unmount] });
    assert.equal(r.result, 'success', r.message);
    assert.deepEqual(seen, ['rw']);
    assert.equal(mountAt(join(base, 'mnt')), null);
    execFileSync('mount', [img.device, join(base, 'mnt')]);
    try {
      const marker = JSON.parse(readFileSync(join(base, 'mnt', MARKER_FILE), 'utf8'));
      assert.equal(marker.drive, 'alpha');
      assert.equal(marker.token, readToken(c.state_dir, 'alpha'));
    } finally {
      execFileSync('umount', [join(base, 'mnt')]);
    }
  });

  it('mounts the drive nodev,nosuid: a device node planted on it does not open', async () => {
    const c = config({ mount_options: 'noatime,dev,suid' });
    const disk = makeExt4(8, 'nasdisk');
    try {
      const rdev = statSync(disk.device).rdev;
      const major = (rdev >> 8) & 0xfff;
      const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
      let options = '';
      let opened: string | null = null;
      const look: Step = {
        name: 'look',
        title: 'look',
        async run(ctx) {
          options = mountAt(ctx.facts.target!)?.options ?? '';
          const node = join(ctx.facts.target!, 'planted-disk');
          execFileSync('mknod', [node, 'b', String(major), String(minor)]);
          try {
            closeSync(openSync(node, 'r'));
            opened = 'opened';
          } catch (e) {
            opened = (e as NodeJS.ErrnoException).code ?? 'error';
          } finally {
            unlinkSync(node);
          }
        },
      };
      const r = await runDrive(c, c.drives[0]!, {
        ...(await reportersFor(c, silentLogger(), out)),
        steps: [identify, mount, look, unmount],
      });
      assert.equal(r.result, 'success', r.message);
      assert.ok(options.split(',').includes('nodev') && options.split(',').includes('nosuid'), options);
      assert.equal(opened, 'EACCES');
    } finally {
      disk.detach();
    }
  });

  it('clears a mount left behind by an earlier run before anything else', async () => {
    const c = config();
    mkdirSync(join(base, 'mnt'), { recursive: true });
    execFileSync('mount', [img.device, join(base, 'mnt')]);
    const r = await runDrive(c, c.drives[0]!, {
      ...(await reportersFor(c, silentLogger(), out)),
      steps: [identify, mount, unmount],
    });
    assert.equal(r.result, 'success', r.message);
    assert.equal(mountAt(join(base, 'mnt')), null);
  });

  it('leaves a foreign filesystem mounted at the mount point (the source volume) alone and fails clearly', async () => {
    const c = config();
    const other = makeExt4(16, 'source-volume');
    const mnt = join(base, 'mnt');
    try {
      execFileSync('mount', [other.device, mnt]);
      writeFileSync(join(mnt, 'nas-data.txt'), 'the NAS');
      const r = await runDrive(c, c.drives[0]!, {
        ...(await reportersFor(c, silentLogger(), out)),
        steps: [identify, mount, unmount],
      });
      assert.equal(r.result, 'failed');
      assert.equal(r.step, 'identify');
      assert.match(
        r.message,
        new RegExp(`${other.device} \\(ext4\\) mounted on it, which is not drive "alpha": left mounted`),
      );
      assert.equal(mountAt(mnt)?.source, other.device, 'still mounted');
      assert.equal(readFileSync(join(mnt, 'nas-data.txt'), 'utf8'), 'the NAS');
      // the safety net after the failed run leaves it too
      const cleanup = await offsiteHere(['cleanup', 'alpha', '--config', configFile()]);
      assert.equal(cleanup.exitCode, 0, cleanup.stderr);
      assert.match(cleanup.stderr, /not drive "alpha": left mounted/);
      assert.equal(mountAt(mnt)?.source, other.device, 'still mounted after cleanup');
    } finally {
      execFileSync('umount', [mnt]);
      other.detach();
    }
  });

  it('refuses a drive whose marker names another drive, writes nothing and unmounts it', async () => {
    const c = config();
    execFileSync('mount', [img.device, join(base, 'mnt')]);
    writeFileSync(join(base, 'mnt', MARKER_FILE), JSON.stringify({ drive: 'bravo' }));
    execFileSync('umount', [join(base, 'mnt')]);
    const wrote: string[] = [];
    const write: Step = {
      name: 'sync',
      title: 'sync',
      async run() {
        wrote.push('sync ran');
      },
    };
    const r = await runDrive(c, c.drives[0]!, {
      ...(await reportersFor(c, silentLogger(), out)),
      steps: [identify, mount, write, unmount],
    });
    assert.equal(r.result, 'failed');
    assert.equal(r.step, 'mount');
    assert.match(r.message, /wrong drive: its marker names drive "bravo"/);
    assert.deepEqual(wrote, []);
    assert.equal(mountAt(join(base, 'mnt')), null);
    assert.equal(await enrolDrive(c, c.drives[0]!, { force: true }), 'enrolled');
  });

  it("finds a drive's block device, never a disk image blkid once looked at", async () => {
    const other = makeExt4(8);
    try {
      assert.equal(await deviceByUuid(other.uuid), other.device);
      execFileSync('losetup', ['-d', other.device]);
      execFileSync('blkid', [other.image]); // blkid's cache now knows the image file by that UUID
      assert.equal(await deviceByUuid(other.uuid), null, 'mount would have loop-mounted the file');
    } finally {
      other.detach();
    }
  });

  it('exits 75 when the drive is not plugged in', async () => {
    const c = parseConfig({
      state_dir: join(base, 'state'),
      source: { path: join(base, 'src') },
      drives: [
        { name: 'gone', uuid: '00000000-1111-2222-3333-444444444444', mount_point: join(base, 'gone') },
      ],
    });
    await assert.rejects(
      runDrive(c, c.drives[0]!, {
        ...(await reportersFor(c, silentLogger(), out)),
        steps: [identify, mount, unmount],
      }),
      (e: Error) =>
        e instanceof DriveAbsentError &&
        e.exitCode === 75 &&
        e.message ===
          'drive "gone" is not plugged in (no device with UUID 00000000-1111-2222-3333-444444444444): nothing was started',
    );
    assert.equal(existsSync(join(base, 'gone')), false);
  });

  it('refuses a registered UUID that is not a LUKS container for an encrypted drive', async () => {
    const c = parseConfig({
      state_dir: join(base, 'state'),
      source: { path: join(base, 'src') },
      drives: [
        { name: 'alpha', luks_uuid: img.uuid, key_file: join(base, 'key'), mount_point: join(base, 'mnt') },
      ],
    });
    const r = await runDrive(c, c.drives[0]!, {
      ...(await reportersFor(c, silentLogger(), out)),
      steps: [identify, mount, unmount],
    });
    assert.equal(r.result, 'failed');
    assert.equal(r.step, 'identify');
    assert.match(r.message, /is not a LUKS container \(blkid says ext4\)/);
  });
});
