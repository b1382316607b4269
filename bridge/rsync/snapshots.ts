/**
 * The layout of copies on a drive (SPEC 5, docs/sync.md):
 *
 *   <target>/current              symlink -> snapshots/<run id>: the complete copy
 *   <target>/snapshots/<run id>/  complete copies (only current's is kept)
 *   <target>/snapshots/.partial/  the copy being built (kept for resume)
 *
 * The switch is two renames: the staging directory to its snapshot name, then
 * a `current.new` symlink over `current`. rename(2) is atomic, so after a
 * power cut `current` names either the old or the new complete copy.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  symlinkSync,
  unlinkSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { run } from '../exec.js';

export const CURRENT = 'current';
export const SNAPSHOTS = 'snapshots';
export const STAGING = '.partial';
/** a `current` that was a real directory (an older layout), moved aside during the switch */
export const OLD_CURRENT = '.old-current';
/**
 * Left by a verify whose checksum sample failed: the next copy compares
 * contents (rsync --checksum), since the quick check (size and time) would
 * hard-link the same bad files from the previous copy again.
 */
export const COMPARE_CONTENTS = '.compare-contents';

export interface Layout {
  target: string;
  current: string;
  currentNew: string;
  snapshots: string;
  staging: string;
  oldCurrent: string;
  compareContents: string;
}

export function layout(target: string): Layout {
  const snapshots = join(target, SNAPSHOTS);
  return {
    target,
    current: join(target, CURRENT),
    currentNew: join(target, `${CURRENT}.new`),
    snapshots,
    staging: join(snapshots, STAGING),
    oldCurrent: join(snapshots, OLD_CURRENT),
    compareContents: join(snapshots, COMPARE_CONTENTS),
  };
}

/**
 * The previous complete copy, which the new one hard-links unchanged files from.
 *   snapshot     current -> snapshots/<id> (this layout)
 *   current-dir  current is a plain directory (an older layout)
 *   old-current  such a directory already moved aside by an interrupted switch
 *   root         a plain copy at the top of the drive (the original setup's rsync);
 *                `names` are its top-level entries that the source also has
 */
export type PreviousCopy =
  | { kind: 'snapshot'; path: string }
  | { kind: 'current-dir'; path: string }
  | { kind: 'old-current'; path: string }
  | { kind: 'root'; path: string; names: string[] };

function lstatOrNull(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/** names at the top of the drive that belong to offsite or the filesystem, never to a copy */
export function reservedNames(markerFile: string): Set<string> {
  return new Set([CURRENT, `${CURRENT}.new`, SNAPSHOTS, 'lost+found', markerFile]);
}

export function findPrevious(
  l: Layout,
  sourceNames: readonly string[],
  reserved: ReadonlySet<string>,
): PreviousCopy | null {
  const cur = lstatOrNull(l.current);
  if (cur?.isSymbolicLink()) {
    try {
      const path = realpathSync(l.current);
      // only a copy of ours is ever linked from or removed: not whatever a hand-made link names
      // kept in the layout's own spelling: the target may be reached through a symlink
      if (dirname(path) === realpathSync(l.snapshots) && lstatSync(path).isDirectory())
        return { kind: 'snapshot', path: join(l.snapshots, basename(path)) };
    } catch {}
  } else if (cur?.isDirectory()) {
    return { kind: 'current-dir', path: l.current };
  }
  if (lstatOrNull(l.oldCurrent)?.isDirectory()) return { kind: 'old-current', path: l.oldCurrent };
  const names = sourceNames.filter((n) => !reserved.has(n) && lstatOrNull(join(l.target, n)) !== null);
  if (names.length) return { kind: 'root', path: l.target, names };
  return null;
}

/**
 * Before a copy: drop what an interrupted run left that is of no use
 * (a `current.new`, snapshots that `current` no longer names). The staging
 * directory is kept: the copy resumes into it.
 */
export async function tidy(l: Layout, previous: PreviousCopy | null): Promise<string[]> {
  const removed: string[] = [];
  if (lstatOrNull(l.currentNew)) {
    unlinkSync(l.currentNew);
    removed.push(l.currentNew);
  }
  if (!existsSync(l.snapshots)) return removed;
  for (const name of readdirSync(l.snapshots)) {
    const path = join(l.snapshots, name);
    if (
      name === STAGING ||
      name === COMPARE_CONTENTS ||
      (previous && previous.kind !== 'root' && path === previous.path)
    )
      continue;
    await removeTree(path);
    removed.push(path);
  }
  return removed;
}

/**
 * A staging directory left by an interrupted run may hold hard links to the
 * previous copy's files. rsync would change their permissions or owners in
 * place, which would change the previous copy too; removing every multiply
 * linked file first keeps it untouched (rsync re-links them at no cost).
 */
export async function prepareResume(staging: string): Promise<number> {
  let removed = 0;
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (lstatSync(p).nlink > 1) {
        unlinkSync(p);
        removed++;
      }
    }
  };
  walk(staging);
  return removed;
}

export function ensureSnapshotsDir(l: Layout): void {
  mkdirSync(l.snapshots, { recursive: true, mode: 0o755 });
}

/**
 * Remove a copy. rm(1) rather than fs.rm: on a tree of hard links it is
 * several times faster (measured, bench/run-overhead.ts), and it never
 * crosses into another filesystem.
 */
export async function removeTree(path: string): Promise<void> {
  await run('rm', ['-rf', '--one-file-system', '--', path], { timeoutMs: 6 * 3600_000 });
}

/** flush the filesystem, so the new copy is on disk before `current` names it */
export async function syncFilesystem(path: string): Promise<void> {
  await run('sync', ['-f', path], { timeoutMs: 30 * 60_000 });
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Make the staging copy `current`: staging -> snapshots/<id>, then the
 * `current.new` symlink renamed over `current`. Returns the new copy's path.
 */
export async function switchCurrent(l: Layout, id: string, previous: PreviousCopy | null): Promise<string> {
  await syncFilesystem(l.target);
  const snapshot = join(l.snapshots, id);
  renameSync(l.staging, snapshot);
  // a plain directory cannot be replaced by rename; move it aside first
  // (an interruption here leaves it in snapshots/.old-current, which the next run uses)
  if (previous?.kind === 'current-dir') renameSync(l.current, l.oldCurrent);
  if (lstatOrNull(l.currentNew)) unlinkSync(l.currentNew);
  symlinkSync(join(SNAPSHOTS, id), l.currentNew);
  renameSync(l.currentNew, l.current);
  fsyncDir(l.snapshots);
  fsyncDir(l.target);
  return snapshot;
}

/** After the switch: remove the previous copy (only `current` is kept). */
export async function removePrevious(
  l: Layout,
  previous: PreviousCopy | null,
  keep: string,
): Promise<string[]> {
  if (!previous) return [];
  if (previous.kind === 'root') {
    const removed: string[] = [];
    for (const name of previous.names) {
      const path = join(l.target, name);
      await removeTree(path);
      removed.push(path);
    }
    return removed;
  }
  const path = previous.kind === 'current-dir' ? l.oldCurrent : previous.path;
  if (path === keep) return [];
  await removeTree(path);
  return [path];
}

/** The snapshot `current` names, relative to the target (for logs), or null. */
export function currentTarget(l: Layout): string | null {
  try {
    return readlinkSync(l.current);
  } catch {
    return null;
  }
}

export async function removeStaging(l: Layout): Promise<void> {
  await removeTree(l.staging);
}
