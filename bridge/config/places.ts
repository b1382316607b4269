/**
 * Where a drive may be mounted (or, for a directory drive, written). A mount
 * hides what was at its mount point, and clearing a stale mount unmounts it:
 * a drive placed over the source, the state directory, another drive or a
 * system directory would hide or take away the NAS's own files.
 */
import { posix } from 'node:path';
import { type KeyPath, keyPath } from './errors.js';

/** Nothing of a drive's may be one of these, or contain one. */
const SYSTEM_DIRS = [
  '/',
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/home',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/media',
  '/mnt',
  '/opt',
  '/proc',
  '/root',
  '/run',
  '/sbin',
  '/srv',
  '/sys',
  '/tmp',
  '/usr',
  '/var',
  '/var/cache',
  '/var/lib',
  '/var/log',
  '/var/mail',
  '/var/spool',
  '/var/tmp',
];

/** ... nor lie anywhere inside these (or /lib*): the system's own files. */
const SYSTEM_TREES = ['/bin', '/boot', '/dev', '/etc', '/proc', '/sbin', '/sys', '/usr'];

function clean(p: string): string {
  const n = posix.normalize(p);
  return n.length > 1 ? n.replace(/\/$/, '') : n;
}

/** `a` is `b`, or one holds the other. */
export function overlaps(a: string, b: string): boolean {
  const [x, y] = [clean(a), clean(b)];
  const within = (inner: string, outer: string) =>
    inner === outer || inner.startsWith(outer === '/' ? '/' : `${outer}/`);
  return within(x, y) || within(y, x);
}

/** Why `path` cannot hold a drive, or null when it can. */
export function systemPlace(path: string): string | null {
  const p = clean(path);
  const held = SYSTEM_DIRS.find((d) => d === p || d.startsWith(`${p}/`));
  if (held) return held === p ? `${p} is a system directory` : `${p} holds the system directory ${held}`;
  const tree = SYSTEM_TREES.find((t) => p.startsWith(`${t}/`)) ?? /^\/lib[^/]*(?=\/)/.exec(p)?.[0];
  return tree ? `${p} is inside the system directory ${tree}` : null;
}

export interface Place {
  /** the key it is set by, e.g. ["drives", 1, "mount_point"] */
  key: KeyPath;
  path: string;
}

/**
 * Every reason the drives' places are wrong, each against the key it is about:
 * a drive's mount point or directory may not be, hold, or lie inside the
 * source, the state directory, a system directory or another drive's place.
 */
export function placeProblems(
  drives: readonly Place[],
  fixed: readonly Place[],
): Array<{ key: KeyPath; message: string }> {
  const out: Array<{ key: KeyPath; message: string }> = [];
  drives.forEach((d, i) => {
    const system = systemPlace(d.path);
    if (system)
      out.push({ key: d.key, message: `${system}: choose a directory such as /mnt/offsite/<drive>` });
    for (const other of [...fixed, ...drives.slice(0, i)])
      if (overlaps(d.path, other.path))
        out.push({
          key: d.key,
          message: `${d.path} overlaps ${keyPath(other.key)} (${other.path}): a drive must be mounted apart from it, neither on it, inside it nor around it`,
        });
  });
  return out;
}
