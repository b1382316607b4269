/**
 * The whole-drive scrub's walk (`offsite scrub`): every regular file of a
 * copy, one directory at a time in verify's walk order, each paired with what
 * the source holds at that path now. A file the source still has as it was
 * copied (a regular file of the same size and time, to the nanosecond) is
 * compared byte for byte; any other (changed or gone since that run) is read
 * from the drive alone, which proves the drive can read it. Symlinks in the
 * copy are never followed, and no directory on another filesystem is entered.
 * Paths are byte strings (byte-path.ts).
 */
import { type BigIntStats, lstatSync, readdirSync } from 'node:fs';
import { type BytePath, under } from './byte-path.js';
import type { ReadRange } from './read-back.js';

export interface ScrubFile extends ReadRange {
  size: number;
}

function lstatOrNull(path: string | Buffer): BigIntStats | null {
  try {
    return lstatSync(path, { bigint: true });
  } catch {
    return null;
  }
}

/** Batches of files, one directory's at a time; `signal` stops the walk between directories. */
export async function* copyFiles(
  copy: string,
  source: string,
  signal?: AbortSignal,
): AsyncGenerator<ScrubFile[]> {
  const dev = lstatSync(copy, { bigint: true }).dev;
  const pending: BytePath[] = [''];
  while (pending.length) {
    if (signal?.aborted) throw signal.reason;
    const rel = pending.pop()!;
    const files: ScrubFile[] = [];
    const subdirs: BytePath[] = [];
    for (const name of (readdirSync(under(copy, rel), { encoding: 'latin1' }) as BytePath[]).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const c = lstatOrNull(under(copy, path));
      if (!c) continue;
      if (c.isDirectory()) {
        if (c.dev === dev) subdirs.push(path);
      } else if (c.isFile()) {
        const s = lstatOrNull(under(source, path));
        const same = s?.isFile() && s.size === c.size && s.mtimeNs === c.mtimeNs;
        files.push({ file: path, start: 0, size: Number(c.size), ...(same ? {} : { copyOnly: true }) });
      }
    }
    // depth first, in name order: the last pushed is walked first
    pending.push(...subdirs.reverse());
    if (files.length) yield files;
  }
}
