/**
 * What is mounted where, read from /proc/self/mountinfo (no external tool),
 * and the block devices behind drives.
 */
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { run } from './exec.js';

export interface MountEntry {
  /** "major:minor" of the mounted filesystem's device (0:N for one without a block device) */
  majMin: string;
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
        majMin: f[2] ?? '',
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

/** "major:minor" of a block device node, as mountinfo writes it; null when `path` is none. */
export function deviceNumber(path: string): string | null {
  try {
    const st = statSync(path, { bigint: true });
    if (!st.isBlockDevice()) return null;
    // glibc's gnu_dev_major/gnu_dev_minor
    const major = ((st.rdev >> 8n) & 0xfffn) | ((st.rdev >> 32n) & ~0xfffn);
    const minor = (st.rdev & 0xffn) | ((st.rdev >> 12n) & ~0xffn);
    return `${major}:${minor}`;
  } catch {
    return null;
  }
}

/** The path with every symbolic link resolved, or as it is when it does not resolve. */
export function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * Is this mount one of `devices` (device nodes, e.g. /dev/mapper/offsite_alpha)?
 * By device number, or by the source's path for a filesystem whose mountinfo
 * number is an anonymous 0:N (btrfs). A block device that no longer exists
 * also counts: what is left of a pulled drive can hold nothing of the NAS's.
 */
export function isMountOf(m: MountEntry, devices: readonly string[]): boolean {
  for (const dev of devices) {
    if (deviceNumber(dev) === m.majMin) return true;
    if (existsSync(dev) && realOrSelf(dev) === realOrSelf(m.source)) return true;
  }
  return isDeadDevice(m);
}

/** A mount of a block device that the kernel no longer has (the drive was pulled). */
export function isDeadDevice(m: MountEntry): boolean {
  return (
    m.source.startsWith('/dev/') &&
    /^[1-9]\d*:\d+$/.test(m.majMin) &&
    !existsSync(`/sys/dev/block/${m.majMin}`)
  );
}

/**
 * The block device with this filesystem/container UUID. udev's by-uuid link
 * first; otherwise blkid probing the devices themselves (a system without
 * udev, e.g. a container). Never its cache: that can name a device long gone,
 * or the image file a loop device was made from.
 */
export async function deviceByUuid(uuid: string): Promise<string | null> {
  const link = `/dev/disk/by-uuid/${uuid}`;
  if (isBlockDevice(link)) return realpathSync(link);
  const r = await run('blkid', ['-c', '/dev/null', '-o', 'device', '-t', `UUID=${uuid}`], {
    okCodes: [0, 2],
  }).catch(() => null);
  const devices = r?.exitCode === 0 ? r.stdout.split('\n').filter(Boolean) : [];
  return devices.find(isBlockDevice) ?? null;
}

function isBlockDevice(path: string): boolean {
  try {
    return statSync(path).isBlockDevice();
  } catch {
    return false;
  }
}

/** `crypto_LUKS`, `ext4`, ... as blkid probes the device itself (not a cache). */
export async function probeType(device: string): Promise<string | null> {
  const r = await run('blkid', ['-p', '-s', 'TYPE', '-o', 'value', '--', device], { okCodes: [0, 2] });
  return r.stdout.trim() || null;
}

export function mapperPath(mapper: string): string {
  return `/dev/mapper/${mapper}`;
}
