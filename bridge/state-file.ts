/** JSON files in state_dir (and the marker on a drive), written atomically (temp file, fsync, rename). */
import {
  closeSync,
  constants,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { errorMessage } from './error-message.js';

/**
 * A failed write in state_dir, said as what it is: a full disk is "no space
 * left on <dir>", not the errno of whichever call met it first.
 */
export function stateError(e: unknown, dir: string, what: string): Error {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new Error(`no space left on ${dir}: ${what}`, { cause: e });
  if (code === 'EROFS') return new Error(`${dir} is read-only: ${what}`, { cause: e });
  return new Error(`${what}: ${errorMessage(e)}`, { cause: e });
}

export function readJson<T>(file: string, fallback: T): T {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
    throw new Error(`cannot read ${file}: ${errorMessage(e)}`);
  }
}

/**
 * Create `path` as a new plain file holding `data`: O_EXCL|O_NOFOLLOW, so
 * nothing that stood at the name (a link planted on a drive) is ever written
 * through. Flushed to the disk unless `fsync` is false. A write that fails
 * removes the file again.
 */
export function createNewFile(
  path: string,
  data: string,
  mode: number,
  opts: { fsync?: boolean } = {},
): void {
  const fd = openSync(
    path,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    mode,
  );
  try {
    const buf = Buffer.from(data);
    for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off);
    if (opts.fsync !== false) fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw e;
  }
  closeSync(fd);
}

export function writeJsonAtomic(file: string, value: unknown): void {
  const dir = dirname(file);
  const tmp = `${file}.${process.pid}.tmp`;
  let created = false;
  try {
    mkdirSync(dir, { recursive: true });
    // the marker's directory is a drive's root (untrusted): whatever stands at the temporary
    // name is removed as what it is, and the file is created anew, never written through a link
    try {
      unlinkSync(tmp);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    createNewFile(tmp, `${JSON.stringify(value, null, 2)}\n`, 0o644);
    created = true;
    renameSync(tmp, file);
  } catch (e) {
    // a half-written temp file would only take more of a disk that is likely full
    if (created)
      try {
        unlinkSync(tmp);
      } catch {}
    throw stateError(e, dir, `could not write ${file}`);
  }
}
