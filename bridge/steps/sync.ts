/**
 * Copy the source into a staging copy beside the previous one (docs/design.md §5):
 * unchanged files hard-linked from it, under the source lock, with progress.
 * `verify` checks the staging copy and switches it in; until then the
 * previous `current` is untouched. docs/sync.md has the whole story.
 */
import { readdirSync, realpathSync, statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Drive } from '../config.js';
import { errorMessage } from '../error-message.js';
import type { SyncProgress } from '../events.js';
import { acquireLock, describeBusy, describeStopping, type HeldLock } from '../lockfile.js';
import { rsyncArgs, rsyncCheckArgs } from '../rsync/args.js';
import { shown } from '../rsync/byte-path.js';
import { classifyExit, exitMeaning, NO_SPACE } from '../rsync/exit-codes.js';
import { problemFiles, warningFileList } from '../rsync/file-list.js';
import { isMountPoint } from '../rsync/mount-check.js';
import { PathSet } from '../rsync/path-set.js';
import { runRsync } from '../rsync/run-rsync.js';
import {
  checkCopyPaths,
  checkLayout,
  compareContentsPending,
  ensureSnapshotsDir,
  findPrevious,
  hasStaging,
  layout,
  prepareResume,
  removeStaging,
  reservedNames,
  tidy,
} from '../rsync/snapshots.js';
import { wouldChange } from '../rsync/would-change.js';
import { Throttle } from '../throttle.js';
import { endSession, startSession } from './copy-session.js';
import { DriveGoneError, driveGone } from './gone.js';
import { MARKER_FILE } from './marker.js';
import { type RunContext, type Step, StepError, targetOf } from './step.js';

/** below this the copy cannot even start (directories, the file list) */
const MIN_FREE_BYTES = 1024 * 1024;

export function sourceLockFile(stateDir: string): string {
  return join(stateDir, 'locks', 'source.lock');
}

function within(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith('/') ? outer : `${outer}/`);
}

/** a drive with a filesystem must be mounted: the bare mount point is the system disk */
function refuseBareMountPoint(drive: Drive, target: string): void {
  if (drive.kind === 'directory') return;
  if (!isMountPoint(drive.mountPoint))
    throw new StepError(`${drive.mountPoint} is not mounted: refusing to write to the bare mount point`);
  if (!within(target, drive.mountPoint))
    throw new StepError(
      `the copy would go to ${target}, outside the drive's mount point ${drive.mountPoint}`,
    );
}

function checkSource(source: string, target: string): string[] {
  let names: string[];
  try {
    if (!statSync(source).isDirectory()) throw new Error('not a directory');
    names = readdirSync(source);
  } catch (e) {
    throw new StepError(`the source ${source} cannot be read: ${errorMessage(e)}`, { cause: e });
  }
  // an empty source would replace a good copy with nothing: most likely the NAS volume is not mounted
  if (names.length === 0)
    throw new StepError(
      `the source ${source} is empty (is it mounted?): refusing to replace the copy with nothing`,
    );
  const src = realpathSync(source);
  const dst = realpathSync(target);
  if (within(dst, src))
    throw new StepError(
      `the target ${target} is inside the source ${source}: the source is read-only to offsite`,
    );
  if (within(src, dst)) throw new StepError(`the source ${source} is inside the target ${target}`);
  return names;
}

function checkFreeSpace(target: string): void {
  const s = statfsSync(target);
  const free = s.bavail * s.bsize;
  if (free < MIN_FREE_BYTES || s.ffree === 0)
    throw new StepError(
      `target full: ${target} has ${free} bytes and ${s.ffree} inodes free; remove old data from the drive or use a bigger one`,
    );
}

async function takeSourceLock(ctx: RunContext): Promise<HeldLock> {
  const file = sourceLockFile(ctx.config.state_dir);
  try {
    return await acquireLock(file, {
      signal: ctx.signal,
      label: `drive ${ctx.drive.name}, run ${ctx.runId}`,
      stopLeftBehind: (busy) => ctx.log.warn(`the source lock: ${describeStopping(busy)}`),
      onWait: (h, busy) =>
        ctx.log.info(
          `waiting for the source: ${h && !busy.left.length ? `${h.label || `pid ${h.pid}`} holds it since ${h.time}` : describeBusy(busy)}`,
        ),
    });
  } catch (e) {
    if (ctx.signal.aborted) throw new StepError('cancelled while waiting for the source lock', { cause: e });
    // says which file and why (e.g. "no space left on <state_dir>/locks: ...")
    throw new StepError(errorMessage(e), { cause: e });
  }
}

export const sync: Step = {
  name: 'sync',
  title: 'copying the source beside the previous copy (unchanged files hard-linked)',
  async run(ctx) {
    const { config, drive, log } = ctx;
    const target = targetOf(ctx);
    refuseBareMountPoint(drive, target);
    const source = config.source.path;
    const sourceNames = checkSource(source, target);

    const l = layout(target);
    // the drive's contents are untrusted: a planted symlink or device fails the run here, before any change
    checkLayout(l);
    const previous = findPrevious(l, source, sourceNames, reservedNames(MARKER_FILE));
    for (const p of await tidy(l, previous)) log.info(`removed ${p} (left by an earlier run)`);
    ensureSnapshotsDir(l);
    if (hasStaging(l)) {
      // even without a previous copy: a planted hard link to a NAS file would be chmodded in place
      const unlinked = await prepareResume(l);
      log.info(
        `resuming the copy left in ${l.staging}${unlinked ? ` (${unlinked} linked files re-linked)` : ''}`,
      );
    }
    if (previous) log.info(`unchanged files are hard-linked from ${previous.path} (${previous.kind})`);
    checkFreeSpace(target);

    const lock = await takeSourceLock(ctx);
    const session = {
      lock,
      previous,
      skipped: new Set<string>(),
      written: new PathSet(),
      startedAt: Date.now(),
      unchanged: false,
    };
    startSession(ctx.facts, session);
    const throttle = new Throttle<SyncProgress>(500, (p) => ctx.progress(p));

    // An unchanged source would still cost a whole new tree of hard links (and
    // the removal of the old one): ask rsync first. Only against a snapshot of
    // ours (other layouts are migrated by a real copy) and with nothing to resume.
    const compareContents = compareContentsPending(l);
    if (compareContents)
      log.info(`the last verify found files whose contents differed: this copy compares contents`);
    if (previous?.kind === 'snapshot' && !hasStaging(l) && !compareContents) {
      checkCopyPaths(l, previous);
      const checkArgv = [
        ...(config.source.lock ?? []),
        'rsync',
        ...rsyncCheckArgs({
          source,
          copy: previous.path,
          exclude: config.source.exclude,
          extra: config.source.rsync_args,
        }),
      ];
      log.debug(`${checkArgv.join(' ')}`);
      const asked = performance.now();
      const answer = await wouldChange(checkArgv, ctx.signal);
      log.debug(`rsync's dry run took ${((performance.now() - asked) / 1000).toFixed(2)} s`);
      if (answer.changed === 'cancelled' || ctx.signal.aborted)
        throw new StepError('cancelled while comparing the source with the previous copy; it is intact');
      if (answer.changed === false) {
        session.unchanged = true;
        ctx.facts.bytes = 0;
        throttle.flush({ percent: 100, bytes: 0, rate: 0, etaSeconds: 0 });
        return `nothing changed since ${previous.path}: no new copy (verify checks that one)`;
      }
      log.debug(`the source changed: ${answer.changed === 'error' ? answer.error.message : answer.why}`);
    }

    checkCopyPaths(l, previous);
    const argv = [
      ...(config.source.lock ?? []),
      'rsync',
      ...rsyncArgs({
        source,
        staging: l.staging,
        linkDest: previous?.path ?? null,
        exclude: config.source.exclude,
        extra: [...(compareContents ? ['--checksum'] : []), ...(config.source.rsync_args ?? [])],
      }),
    ];
    log.debug(`${argv.join(' ')}`);
    const r = await runRsync(argv, { signal: ctx.signal, onProgress: (p) => throttle.push(p) });
    ctx.facts.bytes = r.last?.bytes ?? 0;
    session.written = r.written;

    const command = config.source.lock ? `${config.source.lock.join(' ')} rsync` : 'rsync';
    if (ctx.signal.aborted)
      throw new StepError(`cancelled during the copy; the previous copy is intact and the next run resumes`);
    if (r.spawnError)
      throw new StepError(`could not start ${argv[0]}: ${r.spawnError.message}`, { cause: r.spawnError });
    if (r.code === null)
      throw new StepError(`${command} was killed by ${r.signal}; the previous copy is intact`);
    const outcome = classifyExit(r.code, r.stderr);
    const why = `${command} exited with code ${r.code} (${exitMeaning(r.code)})${r.lastStderrLine ? `: ${shown(r.lastStderrLine)}` : ''}`;
    // a pulled drive makes rsync report a file or two it "could not copy" (exit 23) or an I/O
    // error: say what really happened rather than a warning or a verify failure later
    const gone = outcome.kind === 'ok' ? null : driveGone(ctx, true);
    if (gone) throw new DriveGoneError('sync', gone, { copyComplete: false });
    switch (outcome.kind) {
      case 'ok':
        throttle.flush({ percent: 100, bytes: ctx.facts.bytes, rate: r.last?.rate ?? 0, etaSeconds: 0 });
        return copied(session.written.count, previous !== null);
      case 'partial': {
        throttle.flush();
        const problems = problemFiles(r.stderr, [source, l.staging]);
        for (const p of problems) session.skipped.add(p.file);
        const count = problems.length || 'some';
        ctx.warn(
          `rsync could not copy ${count} file(s) (exit ${r.code}: ${exitMeaning(r.code)}); the rest of the copy is complete`,
          warningFileList(problems),
        );
        return `${copied(session.written.count, previous !== null)}, but for ${count} file(s) rsync could not copy`;
      }
      case 'full': {
        // a partial copy that does not fit would only block the next run: free the space now
        await removeStaging(l);
        const line = shown(r.stderr.split('\n').find((s) => NO_SPACE.test(s)) ?? r.lastStderrLine);
        throw new StepError(
          `target full: ${command} exited with code ${r.code} (${exitMeaning(r.code)}): ${line}; the previous copy is intact`,
        );
      }
      default:
        throw new StepError(why);
    }
  },
  async undo(ctx) {
    endSession(ctx.facts);
  },
};

/** What the copy took, for the line after the step's heading. */
function copied(written: number, linked: boolean): string {
  const files = `${written} file${written === 1 ? '' : 's'} written`;
  return `copied: ${files}${linked ? ', the rest hard-linked from the previous copy' : ''}`;
}
