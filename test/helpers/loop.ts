/**
 * Real ext4 filesystem images on loop devices (tests run as root in CI).
 * `canLoopMount()` tells whether this machine allows it; tests that need it
 * fail loudly rather than skip when it does not, since CI runs as root.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LoopImage {
  image: string;
  device: string;
  uuid: string;
  dir: string;
  detach(): void;
}

const sh = (file: string, args: string[]) => execFileSync(file, args, { encoding: 'utf8' }).trim();

/** An ext4 image of `sizeMiB`, attached to a loop device (not mounted). */
export function makeExt4(sizeMiB = 32, label = 'offsite'): LoopImage {
  const dir = mkdtempSync(join(tmpdir(), 'offsite-img-'));
  const image = join(dir, 'disk.img');
  sh('truncate', ['-s', `${sizeMiB}M`, image]);
  sh('mkfs.ext4', ['-q', '-F', '-L', label, '-m', '0', image]);
  const uuid = sh('blkid', ['-s', 'UUID', '-o', 'value', image]);
  const device = sh('losetup', ['--find', '--show', image]);
  return {
    image,
    device,
    uuid,
    dir,
    detach() {
      try {
        execFileSync('umount', ['-l', device], { stdio: 'ignore' });
      } catch {}
      try {
        sh('losetup', ['-d', device]);
      } catch {}
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}
