/**
 * A drive's contents are untrusted input: whoever holds the drive may have put
 * a symlink, a device node or a fifo at any name offsite uses on it, or (as root
 * on the NAS) mounted something there. offsite runs as root, so following any of
 * them would read, write or delete on the NAS. Every operation on the drive's
 * layout (bridge/rsync/snapshots.ts) goes through here, and here nothing is
 * followed:
 *
 * - every component between the target and a path is lstat()ed: a real
 *   directory on the target's filesystem (same st_dev), so the path resolves
 *   inside the target and on the drive;
 * - an entry is judged by lstat(), never by stat() or existsSync();
 * - a file is created with O_CREAT|O_EXCL|O_NOFOLLOW after whatever stood there
 *   was unlinked (never opened);
 * - a tree is removed by rm(1), which removes a symlink operand as a link.
 *
 * A surprise is a DrivePathError naming the path: the run fails with it. The
 * target itself comes from the configuration (trusted, may be reached through
 * a symlink of its own); below it, nothing is trusted.
 */
import {
  closeSync,
  constants,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
  type Stats,
  statSync,
  unlinkSync,
} from 'node:fs';
import { relative, sep } from 'node:path';
import { run } from '../exec.js';
import { createNewFile } from '../state-file.js';
import { type BytePath, shown, under } from './byte-path.js';

export class DrivePathError extends Error {
  override name = 'DrivePathError';
  readonly path: string;
  constructor(path: string, message: string) {
    super(message);
    this.path = path;
  }
}

export type EntryKind = 'directory' | 'file' | 'symlink' | 'fifo' | 'socket' | 'device';

export function kindOf(s: Stats): EntryKind {
  if (s.isDirectory()) return 'directory';
  if (s.isFile()) return 'file';
  if (s.isSymbolicLink()) return 'symlink';
  if (s.isFIFO()) return 'fifo';
  if (s.isSocket()) return 'socket';
  return 'device';
}

function describe(path: string, s: Stats): string {
  const kind = kindOf(s);
  if (kind !== 'symlink') return `a ${kind}`;
  let to = '?';
  try {
    to = readlinkSync(path);
  } catch {}
  return `a symlink (to ${to})`;
}

/** the refusal of an entry that is not what offsite keeps at `path` */
export function unexpected(path: string, s: Stats, expected: string): DrivePathError {
  return new DrivePathError(
    path,
    `${path} on the drive is ${describe(path, s)}, not ${expected}: refusing to follow or replace what offsite did not make (look at the drive; remove it by hand to go on)`,
  );
}

function lstatOrNull(path: string | Buffer): Stats | null {
  try {
    return lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** the filesystem the target is on (for a mounted drive: the mounted drive) */
function targetDev(target: string): number {
  const s = statSync(target);
  if (!s.isDirectory()) throw new DrivePathError(target, `the target ${target} is not a directory`);
  return s.dev;
}

function checkDir(path: string, s: Stats, dev: number): void {
  if (!s.isDirectory()) throw unexpected(path, s, 'a directory');
  if (s.dev !== dev)
    throw new DrivePathError(
      path,
      `${path} is on another filesystem than the drive (something is mounted there): refusing to use it`,
    );
}

/**
 * lstat() of `path`, a path below `target`, or null when it does not exist.
 * Every directory between the target and it must be a real directory on the
 * target's filesystem; a missing one makes the answer null.
 */
export function lstatIn(target: string, path: string): Stats | null {
  const rel = relative(target, path);
  if (!rel || rel === '..' || rel.startsWith(`..${sep}`) || rel.startsWith(sep))
    throw new DrivePathError(path, `${path} is not inside the drive's target ${target}`);
  const dev = targetDev(target);
  const parts = rel.split(sep);
  let at = target;
  for (const [i, part] of parts.entries()) {
    at = `${at}${sep}${part}`;
    const s = lstatOrNull(at);
    if (!s) return null;
    if (i === parts.length - 1) return s;
    checkDir(at, s, dev);
  }
  return null;
}

/** true: `path` is a real directory on the drive; false: nothing is there; anything else is refused */
export function isDriveDir(target: string, path: string): boolean {
  const s = lstatIn(target, path);
  if (!s) return false;
  checkDir(path, s, targetDev(target));
  return true;
}

/** make the directory `path` (its parent must exist) unless it is there; a real directory either way */
export function makeDriveDir(target: string, path: string, mode = 0o755): void {
  if (isDriveDir(target, path)) return;
  try {
    mkdirSync(path, { mode });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  if (!isDriveDir(target, path)) throw new DrivePathError(path, `could not make the directory ${path}`);
}

/**
 * Remove `path` if it is anything but a directory: a symlink is removed as a
 * link, a device node or fifo is unlinked, never opened. A directory is refused.
 */
export function removeDriveNode(target: string, path: string): boolean {
  const s = lstatIn(target, path);
  if (!s) return false;
  if (s.isDirectory()) throw unexpected(path, s, 'a file or a symlink');
  unlinkSync(path);
  return true;
}

/**
 * removeDriveNode for a file named by its bytes (`rel`, a byte string:
 * byte-path.ts) below `dir`, a real directory on the drive: every component
 * is checked the same way, whatever bytes its name is made of.
 */
export function removeDriveFileBelow(target: string, dir: string, rel: BytePath): boolean {
  if (!isDriveDir(target, dir)) return false;
  const parts = rel.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..'))
    throw new DrivePathError(`${dir}/${shown(rel)}`, `${shown(rel)} is not a path below ${dir}`);
  const dev = targetDev(target);
  let at = '';
  for (const [i, part] of parts.entries()) {
    at = at ? `${at}/${part}` : part;
    const name = under(dir, at);
    const s = lstatOrNull(name);
    if (!s) return false;
    const path = `${dir}/${shown(at)}`;
    if (i < parts.length - 1) checkDir(path, s, dev);
    else if (s.isDirectory()) throw unexpected(path, s, 'a file or a symlink');
  }
  unlinkSync(under(dir, rel));
  return true;
}

/**
 * Write a small file at `path`, in a directory that must be a real one on the
 * drive: whatever non-directory stood there is unlinked first, and the new file
 * is created with O_EXCL|O_NOFOLLOW, so it can only be a new plain file.
 */
export function writeDriveFile(target: string, path: string, data: string): void {
  removeDriveNode(target, path);
  createNewFile(path, data, 0o644, { fsync: false });
}

/** a real directory on the drive, fsynced; opened with O_NOFOLLOW unless it is the target itself */
export function fsyncDriveDir(target: string, path: string): void {
  if (path !== target && !isDriveDir(target, path))
    throw new DrivePathError(path, `${path} is gone: cannot flush it`);
  const flags = constants.O_RDONLY | constants.O_DIRECTORY | (path === target ? 0 : constants.O_NOFOLLOW);
  const fd = openSync(path, flags);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Remove `path` and everything under it. Its parents are checked first; rm(1)
 * removes a symlink operand as a link and follows none below it, and
 * --one-file-system keeps it off anything mounted inside. rm rather than
 * fs.rm: on a tree of hard links it is several times faster (measured,
 * bench/run-overhead.ts).
 */
export async function removeDriveTree(target: string, path: string): Promise<void> {
  const s = lstatIn(target, path);
  if (!s) return;
  if (s.isDirectory()) checkDir(path, s, targetDev(target));
  await run('rm', ['-rf', '--one-file-system', '--', path], { timeoutMs: 6 * 3600_000 });
}
