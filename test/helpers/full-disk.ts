/**
 * A small real filesystem (tmpfs, as root) filled to the last byte: what a
 * state_dir on a full NAS disk looks like. Files may still be created (tmpfs
 * counts inodes apart), but not one byte can be written into them.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FullDisk {
  dir: string;
  /** write into the disk what `prepare` needs, then fill it up */
  fill(): void;
  /** give the space back (delete the filler) */
  free(): void;
  unmount(): void;
}

export function fullDisk(sizeKiB = 256): FullDisk {
  const dir = mkdtempSync(join(tmpdir(), 'offsite-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0755`, 'offsite-full', dir]);
  const filler = join(dir, '.filler');
  return {
    dir,
    fill() {
      const fd = openSync(filler, 'a');
      const chunk = Buffer.alloc(4096, 1);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      } finally {
        closeSync(fd);
      }
    },
    free() {
      try {
        unlinkSync(filler);
      } catch {}
    },
    unmount() {
      try {
        execFileSync('umount', [dir]);
      } catch {}
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
