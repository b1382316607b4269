/**
 * Verify's manifest: walk the source and the copy side by side, one directory
 * at a time (memory stays small on a million files), and compare what rsync
 * promised to keep: type, size, modification time (to the nanosecond),
 * permissions, owners (as root), symlink targets, device numbers and hard-link
 * structure. Along the way it hands each regular file to `onFile` (the
 * rolling scrub picks its slice there), in a fixed order (scrub-plan.ts).
 * Paths are byte strings (byte-path.ts): any name the filesystem allows is
 * compared; messages show them readable.
 */
import { type BigIntStats, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { type BytePath, shown, under } from './byte-path.js';
import type { ExcludeMatcher } from './exclude.js';

export interface CompareOptions {
  exclude: ExcludeMatcher;
  /** relative paths rsync warned about (23/24): not compared, nor anything under them */
  skip: ReadonlySet<BytePath>;
  /** compare uid/gid (only root can set them, so only then) */
  owners: boolean;
  /** each regular file that matches, in walk order (`walkOrder` in scrub-plan.ts) */
  onFile?(path: BytePath, size: number): void;
  /** differences to describe (the count is always complete) */
  maxListed?: number;
  signal?: AbortSignal;
  /** source entries changed at or after this time are flagged as "changed during the copy" */
  changedSince?: number;
}

export interface Comparison {
  differences: string[];
  differenceCount: number;
  entries: number;
  files: number;
  bytes: number;
  /** a source entry named in a difference was changed after `changedSince` */
  sourceChanged: boolean;
}

type Kind = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'char' | 'block' | 'other';

function kindOf(s: BigIntStats): Kind {
  if (s.isFile()) return 'file';
  if (s.isDirectory()) return 'dir';
  if (s.isSymbolicLink()) return 'symlink';
  if (s.isFIFO()) return 'fifo';
  if (s.isSocket()) return 'socket';
  if (s.isCharacterDevice()) return 'char';
  if (s.isBlockDevice()) return 'block';
  return 'other';
}

const YIELD_EVERY = 2_000;

export async function compareTrees(source: string, copy: string, opts: CompareOptions): Promise<Comparison> {
  const maxListed = opts.maxListed ?? 10;
  const result: Comparison = {
    differences: [],
    differenceCount: 0,
    entries: 0,
    files: 0,
    bytes: 0,
    sourceChanged: false,
  };
  // source inode -> copy inode, for files with several links
  const links = new Map<bigint, bigint>();
  let sinceYield = 0;

  const differ = (rel: string, what: string, src?: BigIntStats) => {
    result.differenceCount++;
    if (src && opts.changedSince !== undefined && Number(src.ctimeMs) >= opts.changedSince)
      result.sourceChanged = true;
    if (result.differences.length < maxListed) result.differences.push(`${rel ? shown(rel) : '.'}: ${what}`);
  };

  const compareEntry = (rel: string, s: BigIntStats, c: BigIntStats): boolean => {
    const sk = kindOf(s);
    const ck = kindOf(c);
    if (sk !== ck) {
      differ(rel, `is a ${sk} in the source but a ${ck} in the copy`, s);
      return false;
    }
    if ((s.mode & 0o7777n) !== (c.mode & 0o7777n))
      differ(
        rel,
        `permissions ${(s.mode & 0o7777n).toString(8)} in the source, ${(c.mode & 0o7777n).toString(8)} in the copy`,
        s,
      );
    if (opts.owners && (s.uid !== c.uid || s.gid !== c.gid))
      differ(rel, `owner ${s.uid}:${s.gid} in the source, ${c.uid}:${c.gid} in the copy`, s);
    if (sk === 'file') {
      if (s.size !== c.size) differ(rel, `size ${s.size} in the source, ${c.size} in the copy`, s);
      else if (s.mtimeNs !== c.mtimeNs)
        differ(rel, `modified ${iso(s)} in the source, ${iso(c)} in the copy`, s);
      if (s.nlink > 1n) {
        const seen = links.get(s.ino);
        if (seen === undefined) links.set(s.ino, c.ino);
        else if (seen !== c.ino) differ(rel, 'a hard link in the source, a separate file in the copy', s);
      }
    } else if ((sk === 'char' || sk === 'block') && s.rdev !== c.rdev) {
      differ(rel, 'device numbers differ', s);
    }
    return true;
  };

  const names = (dir: string | Buffer) => readdirSync(dir, { encoding: 'latin1' }) as BytePath[];
  const walk = async (rel: BytePath): Promise<void> => {
    const srcNames = new Set(names(under(source, rel)));
    const copyNames = new Set(names(under(copy, rel)));
    const subdirs: string[] = [];
    for (const name of [...srcNames].sort()) {
      const path = rel ? `${rel}/${name}` : name;
      if (opts.skip.has(path)) continue;
      let s: BigIntStats;
      try {
        s = lstatSync(under(source, path), { bigint: true });
      } catch {
        continue; // gone from the source since it was listed: nothing to compare
      }
      const isDir = s.isDirectory();
      if (opts.exclude(path, isDir)) {
        copyNames.delete(name);
        continue;
      }
      result.entries++;
      if (!copyNames.has(name)) {
        differ(path, 'missing from the copy', s);
        continue;
      }
      copyNames.delete(name);
      const c = lstatSync(under(copy, path), { bigint: true });
      if (!compareEntry(path, s, c)) continue;
      if (isDir) subdirs.push(path);
      else if (s.isFile()) {
        result.files++;
        result.bytes += Number(s.size);
        opts.onFile?.(path, Number(s.size));
      } else if (s.isSymbolicLink()) {
        const st = readlinkSync(under(source, path), { encoding: 'latin1' });
        const ct = readlinkSync(under(copy, path), { encoding: 'latin1' });
        if (st !== ct)
          differ(path, `a symlink to "${shown(st)}" in the source, to "${shown(ct)}" in the copy`, s);
      }
      if (++sinceYield >= YIELD_EVERY) {
        sinceYield = 0;
        // let the event loop breathe (MQTT keepalives, signals) on big trees
        await new Promise((r) => setImmediate(r));
        if (opts.signal?.aborted) throw opts.signal.reason;
      }
    }
    for (const name of [...copyNames].sort()) {
      const path = rel ? `${rel}/${name}` : name;
      if (opts.skip.has(path)) continue;
      // rsync --delete leaves excluded names alone in the copy
      const isDir = lstatSync(under(copy, path)).isDirectory();
      if (!opts.exclude(path, isDir)) differ(path, 'in the copy but not in the source');
    }
    for (const d of subdirs) await walk(d);
  };

  const rootS = lstatSync(source, { bigint: true });
  const rootC = lstatSync(copy, { bigint: true });
  compareEntry('', rootS, rootC);
  await walk('');
  return result;
}

function iso(s: BigIntStats): string {
  const ns = s.mtimeNs % 1_000_000_000n;
  return `${new Date(Number(s.mtimeNs / 1_000_000n)).toISOString().slice(0, 19)}.${ns.toString().padStart(9, '0')}Z`;
}
