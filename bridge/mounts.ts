/**
 * What is mounted where, read from /proc/self/mountinfo (no external tool),
 * and the block devices behind drives.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { run } from './exec.js';

export interface MountEntry {
  source: string;
  target: string;
  fstype: string;
  options: string;
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040 ...) */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

export function mounts(mountinfo = '/proc/self/mountinfo'): MountEntry[] {
  return readFileSync(mountinfo, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [left = '', right = ''] = line.split(' - ');
      const f = left.split(' ');
      const r = right.split(' ');
      return {
        target: unescapeMountField(f[4] ?? ''),
        options: f[5] ?? '',
        fstype: r[0] ?? '',
        source: unescapeMountField(r[1] ?? ''),
      };
    });
}

/** The filesystem mounted exactly at `path` (the last, topmost one), or null. */
export function mountAt(path: string): MountEntry | null {
  let real = path;
  try {
    real = realpathSync(path);
  } catch {}
  const hits = mounts().filter((m) => m.target === real);
  return hits[hits.length - 1] ?? null;
}

/** Mounts whose source is `device` (by path or its real path). */
export function mountsOf(device: string): MountEntry[] {
  let real = device;
  try {
    real = realpathSync(device);
  } catch {}
  return mounts().filter((m) => m.source === device || m.source === real);
}

/**
 * The block device with this filesystem/container UUID. udev's by-uuid link
 * first; blkid otherwise (a system without udev, e.g. a container).
 */
export async function deviceByUuid(uuid: string): Promise<string | null> {
  const link = `/dev/disk/by-uuid/${uuid}`;
  if (existsSync(link)) return realpathSync(link);
  const r = await run('blkid', ['-U', uuid], { okCodes: [0, 2] }).catch(() => null);
  const dev = r?.exitCode === 0 ? r.stdout.trim() : '';
  return dev && existsSync(dev) ? dev : null;
}

/** `crypto_LUKS`, `ext4`, ... as blkid probes the device itself (not a cache). */
export async function probeType(device: string): Promise<string | null> {
  const r = await run('blkid', ['-p', '-s', 'TYPE', '-o', 'value', device], { okCodes: [0, 2] });
  return r.stdout.trim() || null;
}

export function mapperPath(mapper: string): string {
  return `/dev/mapper/${mapper}`;
}
