/**
 * Before anything destructive: is this device safe to wipe? Read from the
 * kernel (sysfs, /proc/self/mountinfo, /proc/swaps) and finally asked of the
 * kernel itself with an exclusive open, which fails while anything (a mount,
 * device-mapper, RAID, swap) holds the device.
 */
import {
  closeSync,
  constants,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface BlockDevice {
  /** as given, e.g. /dev/disk/by-id/usb-... */
  given: string;
  /** /dev/sdb */
  path: string;
  /** sdb */
  name: string;
  /** "8:16" */
  majMin: string;
  /** the whole disk it is on (itself for a disk) */
  disk: string;
  /** its partitions' kernel names (none for a partition) */
  partitions: string[];
  sizeBytes: number;
}

const SYS_BLOCK = '/sys/class/block';

function read(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

function partitionsOf(name: string): string[] {
  return readdirSync(join(SYS_BLOCK, name), { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(SYS_BLOCK, name, e.name, 'partition')))
    .map((e) => e.name)
    .sort();
}

/** The kernel's name for a sysfs block entry's whole disk. */
function diskOf(name: string): string {
  if (!existsSync(join(SYS_BLOCK, name, 'partition'))) return name;
  return basename(dirname(realpathSync(join(SYS_BLOCK, name))));
}

/** Reasons not to go on, found before anything was written. */
export class Refused extends Error {
  override name = 'Refused';
  readonly reasons: string[];
  constructor(reasons: string[]) {
    super(reasons.join('; '));
    this.reasons = reasons;
  }
}

export class NotABlockDevice extends Error {
  override name = 'NotABlockDevice';
}

export function blockDevice(given: string): BlockDevice {
  let path: string;
  try {
    path = realpathSync(given);
  } catch {
    throw new NotABlockDevice(`${given} does not exist`);
  }
  if (!statSync(path).isBlockDevice()) throw new NotABlockDevice(`${given} is not a block device`);
  const name = basename(path);
  if (!existsSync(join(SYS_BLOCK, name)))
    throw new NotABlockDevice(`${given}: the kernel lists no block device ${name}`);
  return {
    given,
    path,
    name,
    majMin: read(join(SYS_BLOCK, name, 'dev')),
    disk: diskOf(name),
    partitions: existsSync(join(SYS_BLOCK, name, 'partition')) ? [] : partitionsOf(name),
    sizeBytes: Number(read(join(SYS_BLOCK, name, 'size'))) * 512,
  };
}

interface MountLine {
  majMin: string;
  target: string;
}

function mountLines(): MountLine[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const f = line.split(' ');
      return {
        majMin: f[2] ?? '',
        target: (f[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) =>
          String.fromCharCode(Number.parseInt(o, 8)),
        ),
      };
    });
}

/** Physical disks under a block device: through device-mapper/RAID slaves, up to whole disks. */
function disksUnder(name: string, seen = new Set<string>()): Set<string> {
  if (seen.has(name)) return seen;
  const slaves = existsSync(join(SYS_BLOCK, name, 'slaves'))
    ? readdirSync(join(SYS_BLOCK, name, 'slaves'))
    : [];
  if (slaves.length === 0) seen.add(diskOf(name));
  for (const s of slaves) disksUnder(s, seen);
  return seen;
}

/** The disks that hold the given paths (by default, those the system runs from). */
export function systemDisks(paths: readonly string[] = SYSTEM_PATHS): Map<string, string> {
  const mounts = mountLines();
  const disks = new Map<string, string>();
  for (const path of paths) {
    // the mount that holds `path`: the longest mount point that prefixes it, the last one mounted
    const holder = mounts
      .filter((m) => path === m.target || path.startsWith(m.target === '/' ? '/' : `${m.target}/`))
      .sort((a, b) => a.target.length - b.target.length)
      .pop();
    if (!holder) continue;
    const sys = `/sys/dev/block/${holder.majMin}`;
    if (!existsSync(sys)) continue; // not on a block device (tmpfs, overlay)
    for (const disk of disksUnder(basename(realpathSync(sys)))) if (!disks.has(disk)) disks.set(disk, path);
  }
  return disks;
}

export const SYSTEM_PATHS = ['/', '/boot', '/boot/efi', '/usr', '/var', '/home', '/srv'];

/** Every reason not to wipe this device; empty when it is safe. */
export function refusals(dev: BlockDevice, systemPaths: readonly string[] = SYSTEM_PATHS): string[] {
  const reasons: string[] = [];
  const system = systemDisks(systemPaths);
  if (system.has(dev.disk))
    reasons.push(
      `${dev.given} is on /dev/${dev.disk}, the disk that holds ${system.get(dev.disk)}: refusing to touch the system disk`,
    );
  const all = [dev.name, ...dev.partitions];
  const majMins = new Map(all.map((n) => [read(join(SYS_BLOCK, n, 'dev')), n]));
  for (const m of mountLines()) {
    const n = majMins.get(m.majMin);
    if (n)
      reasons.push(
        n === dev.name
          ? `${dev.given} is mounted at ${m.target}`
          : `its partition /dev/${n} is in use: mounted at ${m.target}`,
      );
  }
  for (const n of all) {
    const holders = existsSync(join(SYS_BLOCK, n, 'holders'))
      ? readdirSync(join(SYS_BLOCK, n, 'holders'))
      : [];
    for (const h of holders) reasons.push(`/dev/${n} is in use by /dev/${h} (device-mapper or RAID)`);
  }
  const swaps = existsSync('/proc/swaps') ? readFileSync('/proc/swaps', 'utf8').split('\n').slice(1) : [];
  for (const line of swaps) {
    const src = line.split(/\s+/)[0];
    if (!src) continue;
    try {
      const n = basename(realpathSync(src));
      if (all.includes(n)) reasons.push(`/dev/${n} is in use as swap`);
    } catch {}
  }
  if (reasons.length === 0) {
    // the kernel's own answer: an exclusive open fails while anything holds the device
    try {
      closeSync(openSync(dev.path, constants.O_RDONLY | constants.O_EXCL));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      reasons.push(
        code === 'EBUSY'
          ? `${dev.given} is in use (the kernel refuses an exclusive open)`
          : `${dev.given}: cannot open (${code})`,
      );
    }
  }
  return reasons;
}
