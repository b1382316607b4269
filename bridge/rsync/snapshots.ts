/**
 * The layout of copies on a drive (docs/design.md §5, docs/sync.md):
 *
 *   <target>/current              symlink -> snapshots/<run id>: the complete copy
 *   <target>/snapshots/<run id>/  complete copies (only current's is kept)
 *   <target>/snapshots/.partial/  the copy being built (kept for resume)
 *
 * The switch is two renames: the staging directory to its snapshot name, then
 * a `current.new` symlink over `current`. rename(2) is atomic, so after a
 * power cut `current` names either the old or the new complete copy.
 *
 * Whatever is on the drive may have been planted there: every name is looked
 * at with lstat and changed only through bridge/rsync/drive-path.ts, which
 * follows no symlink and stays on the drive's filesystem.
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, readdirSync, readlinkSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../exec.js';
import { type BytePath, shown, under } from './byte-path.js';
import {
  DrivePathError,
  fsyncDriveDir,
  isDriveDir,
  kindOf,
  lstatIn,
  makeDriveDir,
  removeDriveFileBelow,
  removeDriveNode,
  removeDriveTree,
  unexpected,
  writeDriveFile,
} from './drive-path.js';

export const CURRENT = 'current';
export const SNAPSHOTS = 'snapshots';
export const STAGING = '.partial';
/** a `current` that was a real directory (an older layout), moved aside during the switch */
export const OLD_CURRENT = '.old-current';
/**
 * Left by a verify that read back files differing from the source: the next copy compares
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

/** names at the top of the drive that belong to offsite or the filesystem, never to a copy */
export function reservedNames(markerFile: string): Set<string> {
  return new Set([CURRENT, `${CURRENT}.new`, SNAPSHOTS, 'lost+found', markerFile]);
}

/**
 * Before anything is changed, each name of the layout must hold what offsite
 * keeps there, or nothing: `snapshots` and its staging copy real directories on
 * the drive, `current` a symlink or (an older layout) a directory, `current.new`
 * a symlink. Anything else fails the run, naming the path. (Other names inside
 * `snapshots/` are offsite's to tidy away, each removed as what it is.)
 */
export function checkLayout(l: Layout): void {
  isDriveDir(l.target, l.snapshots);
  isDriveDir(l.target, l.staging);
  const cur = lstatIn(l.target, l.current);
  if (cur?.isDirectory()) isDriveDir(l.target, l.current);
  else if (cur && !cur.isSymbolicLink())
    throw unexpected(l.current, cur, 'a symlink to the current copy or a directory');
  const next = lstatIn(l.target, l.currentNew);
  if (next && !next.isSymbolicLink()) throw unexpected(l.currentNew, next, 'the symlink offsite makes there');
}

/** `snapshots/<name>`, the only form of `current` offsite writes, or null */
function snapshotNamed(link: string): string | null {
  const m = /^snapshots\/([^/]+)$/.exec(link);
  const name = m?.[1];
  if (!name || name === '.' || name === '..' || name === STAGING || name === OLD_CURRENT) return null;
  return name;
}

function isCopyDir(l: Layout, path: string): boolean {
  return Boolean(lstatIn(l.target, path)?.isDirectory()) && isDriveDir(l.target, path);
}

export function findPrevious(
  l: Layout,
  source: string,
  sourceNames: readonly string[],
  reserved: ReadonlySet<string>,
): PreviousCopy | null {
  const cur = lstatIn(l.target, l.current);
  if (cur?.isSymbolicLink()) {
    // only a copy of ours is ever linked from or removed: not whatever a planted link names
    const name = snapshotNamed(readlinkSync(l.current));
    if (name && isCopyDir(l, join(l.snapshots, name)))
      return { kind: 'snapshot', path: join(l.snapshots, name) };
  } else if (cur?.isDirectory() && isDriveDir(l.target, l.current)) {
    return { kind: 'current-dir', path: l.current };
  }
  if (isCopyDir(l, l.oldCurrent)) return { kind: 'old-current', path: l.oldCurrent };
  // a name counts only as what the source has there: a link planted where the source has a
  // directory would lead --link-dest (and its hard links) off the drive
  const names = sourceNames.filter((n) => !reserved.has(n) && sameKind(l, source, n));
  if (names.length) return { kind: 'root', path: l.target, names };
  return null;
}

function sameKind(l: Layout, source: string, name: string): boolean {
  const onDrive = lstatIn(l.target, join(l.target, name));
  if (!onDrive) return false;
  let inSource: ReturnType<typeof lstatSync>;
  try {
    inSource = lstatSync(join(source, name));
  } catch {
    return false;
  }
  if (kindOf(onDrive) !== kindOf(inSource)) return false;
  return !onDrive.isDirectory() || onDrive.dev === lstatSync(l.target).dev;
}

/**
 * Before a copy: drop what an interrupted run left that is of no use
 * (a `current.new`, snapshots that `current` no longer names). The staging
 * directory is kept: the copy resumes into it.
 */
export async function tidy(l: Layout, previous: PreviousCopy | null): Promise<string[]> {
  const removed: string[] = [];
  if (removeDriveNode(l.target, l.currentNew)) removed.push(l.currentNew);
  if (!isDriveDir(l.target, l.snapshots)) return removed;
  // names as bytes (byte-path.ts): the drive may hold any name here
  for (const raw of readdirSync(l.snapshots, { encoding: 'buffer' })) {
    const name = raw.toString('utf8');
    const path = join(l.snapshots, name);
    if (!Buffer.from(name, 'utf8').equals(raw)) {
      // not UTF-8: no argument can name it to rm(1), so it gets a name first (rename takes a link as a link)
      const aside = join(l.snapshots, `.removing-${randomBytes(6).toString('hex')}`);
      renameSync(under(l.snapshots, raw.toString('latin1')), aside);
      await removeDriveTree(l.target, aside);
      removed.push(join(l.snapshots, shown(raw.toString('latin1'))));
      continue;
    }
    if (
      name === STAGING ||
      // the mark is only ever a plain file: anything else there is removed as what it is
      (name === COMPARE_CONTENTS && lstatIn(l.target, path)?.isFile()) ||
      (previous && previous.kind !== 'root' && path === previous.path)
    )
      continue;
    await removeDriveTree(l.target, path);
    removed.push(path);
  }
  return removed;
}

/**
 * A staging directory left by an interrupted run may hold hard links to the
 * previous copy's files (or, planted, to any file on the same filesystem).
 * rsync would change their permissions or owners in place, which would change
 * those files too; removing every multiply linked file first keeps them
 * untouched (rsync re-links them from the previous copy at no cost).
 */
export async function prepareResume(l: Layout): Promise<number> {
  if (!isDriveDir(l.target, l.staging)) return 0;
  let removed = 0;
  // names as bytes (byte-path.ts): a name that is not UTF-8 is still found
  const walk = (rel: BytePath) => {
    for (const e of readdirSync(under(l.staging, rel), { withFileTypes: true, encoding: 'latin1' })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p);
      else if (lstatSync(under(l.staging, p)).nlink > 1) {
        unlinkSync(under(l.staging, p));
        removed++;
      }
    }
  };
  walk('');
  return removed;
}

export function ensureSnapshotsDir(l: Layout): void {
  makeDriveDir(l.target, l.snapshots);
}

/** a staging copy is there to resume or verify (a real directory; anything else is refused) */
export function hasStaging(l: Layout): boolean {
  return isDriveDir(l.target, l.staging);
}

/**
 * Just before rsync starts: its destination (the staging copy, or the
 * snapshot a dry run compares with) and its --link-dest are real directories
 * on the drive, so rsync cannot write or link through a planted symlink.
 */
export function checkCopyPaths(l: Layout, previous: PreviousCopy | null): void {
  if (!isDriveDir(l.target, l.snapshots))
    throw new DrivePathError(l.snapshots, `${l.snapshots} is gone from the drive`);
  isDriveDir(l.target, l.staging);
  if (previous && previous.kind !== 'root' && !isDriveDir(l.target, previous.path))
    throw new DrivePathError(previous.path, `the previous copy ${previous.path} is gone from the drive`);
}

/** flush the filesystem, so the new copy is on disk before `current` names it */
export async function syncFilesystem(path: string): Promise<void> {
  await run('sync', ['-f', '--', path], { timeoutMs: 30 * 60_000 });
}

/**
 * Make the staging copy `current`: staging -> snapshots/<id>, then the
 * `current.new` symlink renamed over `current`. Returns the new copy's path.
 */
export async function switchCurrent(l: Layout, id: string, previous: PreviousCopy | null): Promise<string> {
  await syncFilesystem(l.target);
  const snapshot = join(l.snapshots, id);
  if (!hasStaging(l)) throw new DrivePathError(l.staging, `there is no staging copy in ${l.staging}`);
  const taken = lstatIn(l.target, snapshot);
  if (taken) throw unexpected(snapshot, taken, 'a free name for the new copy');
  renameSync(l.staging, snapshot);
  // a plain directory cannot be replaced by rename; move it aside first
  // (an interruption here leaves it in snapshots/.old-current, which the next run uses)
  if (previous?.kind === 'current-dir') {
    const aside = lstatIn(l.target, l.oldCurrent);
    if (aside) throw unexpected(l.oldCurrent, aside, 'a free name to move the old copy to');
    if (isDriveDir(l.target, l.current)) renameSync(l.current, l.oldCurrent);
  }
  removeDriveNode(l.target, l.currentNew);
  symlinkSync(join(SNAPSHOTS, id), l.currentNew);
  const cur = lstatIn(l.target, l.current);
  if (cur && !cur.isSymbolicLink()) throw unexpected(l.current, cur, 'a symlink to the current copy');
  renameSync(l.currentNew, l.current);
  fsyncDriveDir(l.target, l.snapshots);
  fsyncDriveDir(l.target, l.target);
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
      await removeDriveTree(l.target, path);
      removed.push(path);
    }
    return removed;
  }
  const path = previous.kind === 'current-dir' ? l.oldCurrent : previous.path;
  if (path === keep) return [];
  await removeDriveTree(l.target, path);
  return [path];
}

/**
 * What `current` holds, for someone about to restore from it, looked at
 * without following anything: a snapshot of ours (its run id), a plain
 * directory (an older layout), nothing yet, or something offsite never puts
 * there (described, not followed).
 */
export type CurrentCopy =
  | { kind: 'snapshot'; runId: string; path: string }
  | { kind: 'directory'; path: string }
  | { kind: 'none'; interrupted: boolean }
  | { kind: 'unexpected'; what: string };

export function currentCopy(l: Layout): CurrentCopy {
  try {
    const cur = lstatIn(l.target, l.current);
    if (!cur) return { kind: 'none', interrupted: isDriveDir(l.target, l.staging) };
    if (cur.isSymbolicLink()) {
      const link = readlinkSync(l.current);
      const name = snapshotNamed(link);
      if (name && isCopyDir(l, join(l.snapshots, name)))
        return { kind: 'snapshot', runId: name, path: join(l.snapshots, name) };
      return { kind: 'unexpected', what: `a symlink to ${link}, which is not a copy on this drive` };
    }
    if (cur.isDirectory()) return { kind: 'directory', path: l.current };
    return { kind: 'unexpected', what: `a ${kindOf(cur)}` };
  } catch (e) {
    if (e instanceof DrivePathError) return { kind: 'unexpected', what: e.message };
    throw e;
  }
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
  await removeDriveTree(l.target, l.staging);
}

/** verify found files whose contents differed: the next copy compares contents (see COMPARE_CONTENTS) */
export function compareContentsPending(l: Layout): boolean {
  return Boolean(lstatIn(l.target, l.compareContents)?.isFile());
}

/** `files` as bytes (byte-path.ts); the mark lists them readable, one a line, for whoever looks */
export function markCompareContents(l: Layout, files: readonly BytePath[]): void {
  writeDriveFile(l.target, l.compareContents, `${files.map(shown).join('\n')}\n`);
}

export function clearCompareContents(l: Layout): void {
  removeDriveNode(l.target, l.compareContents);
}

/** remove files (relative paths) from the staging copy, each as what it is */
export function dropFromStaging(l: Layout, files: readonly BytePath[]): void {
  for (const f of files) removeDriveFileBelow(l.target, l.staging, f);
}
