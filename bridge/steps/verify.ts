/**
 * Check the staging copy against the source (docs/design.md §5: size/time manifest; the
 * files this run wrote and a sample of the rest read back from the drive),
 * then switch it in as `current` and drop the previous copy.
 * A copy that fails verification is never switched in: the previous `current`
 * stays. Nothing here writes to the copy it checks (`borg check` would: it
 * rewrites a repository's `config`, so it is not part of a run).
 *
 * When sync found nothing to change, there is no staging copy: the same
 * checks run on the copy `current` names, and nothing is switched or removed.
 */
import { statfsSync } from 'node:fs';
import { join } from 'node:path';
import { budgetBytes } from '../config/budget.js';
import { errorMessage } from '../error-message.js';
import { Ledger } from '../ledger.js';
import { isoNow } from '../protocol.js';
import { shown } from '../rsync/byte-path.js';
import { excludeMatcher } from '../rsync/exclude.js';
import { compareTrees } from '../rsync/manifest.js';
import type { PathSet } from '../rsync/path-set.js';
import { type RangeList, type ReadRange, readBack } from '../rsync/read-back.js';
import {
  readRate,
  ScrubPlanner,
  type ScrubRecord,
  scrubPercent,
  scrubRecordAfter,
} from '../rsync/scrub-plan.js';
import {
  clearCompareContents,
  dropFromStaging,
  hasStaging,
  layout,
  markCompareContents,
  removePrevious,
  switchCurrent,
  syncFilesystem,
} from '../rsync/snapshots.js';
import { endSession, sessionOf } from './copy-session.js';
import { progressOf, usedBytes } from './read-progress.js';
import { type RunFacts, type Step, StepError, targetOf } from './step.js';

function plural(n: number, word: string, words = `${word}s`): string {
  return `${n} ${n === 1 ? word : words}`;
}

export const verify: Step = {
  name: 'verify',
  title: 'comparing the copy with the source and reading back what was written',
  async run(ctx) {
    const { config, drive, log } = ctx;
    const target = targetOf(ctx);
    const l = layout(target);
    const session = sessionOf(ctx.facts);
    const unchanged = session?.unchanged && session.previous ? session.previous.path : null;
    if (!session || (!unchanged && !hasStaging(l)))
      throw new StepError(`there is no new copy to verify in ${l.staging} (sync did not run)`);
    const source = config.source.path;
    const copy = unchanged ?? l.staging;

    const cancelled = (e: unknown): never => {
      if (ctx.signal.aborted)
        throw new StepError('cancelled during verify; the previous copy is intact', { cause: e });
      throw e;
    };
    // the rolling scrub: a slice of what this run did not write, from where the last run on this drive stopped
    const ledger = new Ledger(config.state_dir);
    const before = ledger.scrub(drive.name);
    const budget = budgetBytes(
      config.verify.scrub,
      before?.copy_bytes ?? usedBytes(target),
      before?.read_rate ?? null,
    );
    const planner = new ScrubPlanner(before?.next ?? null, budget);
    const written = session.written;
    const mine = ourFiles(written, session.skipped);
    // one flush before reading back (a direct read of a file with dirty pages would write them back
    // file by file), made while the walk runs; awaited (and its failure reported) only after the walk
    const flushed: Promise<unknown> = mine.count ? syncFilesystem(target) : Promise.resolve();
    flushed.catch(() => {});
    const took = timings();
    const cmp = await compareTrees(source, copy, {
      exclude: excludeMatcher(config.source.exclude),
      skip: session.skipped,
      owners: process.getuid?.() === 0,
      signal: ctx.signal,
      changedSince: session.startedAt,
      onFile: (path, size) => {
        const i = written.index(path);
        const ours = i >= 0 && !session.skipped.has(path);
        if (ours) written.setSize(i, size);
        planner.offer(path, size, ours);
      },
    }).catch(cancelled);
    took('walk');
    if (cmp.differenceCount) {
      const more =
        cmp.differenceCount > cmp.differences.length
          ? `; and ${cmp.differenceCount - cmp.differences.length} more`
          : '';
      const hint = cmp.sourceChanged
        ? unchanged
          ? ' (the source changed since it was compared with the copy; the next run copies it again)'
          : ' (the source changed while it was being copied; the next run copies it again)'
        : '';
      throw new StepError(
        `the copy differs from the source in ${plural(cmp.differenceCount, 'place')}${hint}: ${cmp.differences.join('; ')}${more}`,
      );
    }

    // what this run wrote, then the scrub's slice: read back from the drive, not the page cache
    const plan = planner.plan();
    await flushed.catch(cancelled);
    took('flush');
    const progress = progressOf(ctx, plan.readAnyway + plan.bytes);
    const readStart = performance.now();
    const read = await readBack(source, copy, readList(written, mine, plan.ranges), {
      signal: ctx.signal,
      changedSince: session.startedAt,
      onBytes: progress.onBytes,
    }).catch(cancelled);
    progress.done();
    took('read back');
    const rate = readRate(read.bytes, (performance.now() - readStart) / 1000, before);
    const scrub = scrubRecordAfter(before, plan, isoNow(), rate);
    try {
      await ledger.recordScrub(drive.name, scrub);
    } catch (e) {
      log.warn(`could not record the scrub's position in ${ledger.file}: ${errorMessage(e)}`);
    }
    if (!read.direct)
      log.info(`${target} does not take O_DIRECT: the copy was read back through the page cache`);
    if (read.problems.length) {
      const bad = read.problems.map((p) => p.file);
      // rsync's quick check (size and time) would keep these on the next run, so drop them from the
      // staging copy (`current` itself is never touched), and make the next copy compare contents: the
      // quick check would otherwise hard-link the same bad files from the previous copy again
      if (!unchanged) dropFromStaging(l, bad);
      markCompareContents(l, bad);
      const list = (problems: typeof read.problems) =>
        `${problems
          .slice(0, 5)
          .map((p) => `${shown(p.file)} (${p.why})`)
          .join(', ')}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}`;
      const ours = read.problems.filter((p) => written.has(p.file));
      const rest = read.problems.filter((p) => !written.has(p.file));
      throw new StepError(
        [
          ours.length &&
            `read back from the drive, ${plural(ours.length, 'file')} this run wrote did not match the source: ${list(ours)}`,
          rest.length &&
            `the rolling scrub found ${plural(rest.length, 'file')} on the drive that did not match the source: ${list(rest)}`,
        ]
          .filter(Boolean)
          .join('; ') + '; the next copy compares their contents',
      );
    }
    if (read.sourceChanged.length)
      throw new StepError(
        `the source changed while it was being copied (${read.sourceChanged.slice(0, 5).map(shown).join(', ')}); the next run copies it again`,
      );
    const readText = `read back ${plural(mine.count, 'written file')} (${plan.readAnyway} bytes) and a scrub slice of ${plan.bytes} bytes from the drive (${scrubSummary(scrub, plan.passCompleted)})`;

    const matched = `${plural(cmp.entries, 'entry', 'entries')} match (${plural(cmp.files, 'file')}, ${cmp.bytes} bytes), ${readText}`;
    if (unchanged) {
      log.debug(`verify took ${took()}`);
      endSession(ctx.facts);
      recordSpace(ctx.facts, target);
      return `${matched}; current is unchanged (${unchanged})`;
    }

    const snapshot = await switchCurrent(l, ctx.runId, session.previous);
    clearCompareContents(l);
    took('switch');
    try {
      for (const p of await removePrevious(l, session.previous, snapshot))
        log.info(`removed the previous copy ${p}`);
    } catch (e) {
      // the new copy is in place; the next run removes what is left
      log.warn(`could not remove the previous copy: ${errorMessage(e)}`);
    }
    took('removal');
    log.debug(`verify took ${took()}`);
    endSession(ctx.facts);
    recordSpace(ctx.facts, target);
    return `${matched}; current is now ${join('snapshots', ctx.runId)}`;
  },
};

/** `took('part')` notes the time since the last note; `took()` lists them ("walk 0.31 s, flush 0.02 s") */
function timings(): (part?: string) => string {
  const parts: string[] = [];
  let last = performance.now();
  return (part) => {
    if (part === undefined) return parts.join(', ');
    const now = performance.now();
    parts.push(`${part} ${((now - last) / 1000).toFixed(2)} s`);
    last = now;
    return '';
  };
}

function scrubSummary(scrub: ScrubRecord, completed: boolean): string {
  const pass = completed ? 'a pass of the whole copy completed' : `the pass is at ${scrubPercent(scrub)}%`;
  return pass;
}

function recordSpace(facts: RunFacts, target: string): void {
  const fs = statfsSync(target);
  facts.freeBytes = fs.bavail * fs.bsize;
  facts.sizeBytes = fs.blocks * fs.bsize;
}

/** the indexes in `written` of the files to read back: all but those rsync could not copy */
interface OurFiles {
  count: number;
  index(k: number): number;
}

function ourFiles(written: PathSet, skipped: ReadonlySet<string>): OurFiles {
  const dropped = new Set<number>();
  for (const file of skipped) {
    const i = written.index(file);
    if (i >= 0) dropped.add(i);
  }
  if (!dropped.size) return { count: written.count, index: (k) => k };
  const kept = new Uint32Array(written.count - dropped.size);
  for (let i = 0, k = 0; i < written.count; i++) if (!dropped.has(i)) kept[k++] = i;
  return { count: kept.length, index: (k) => kept[k]! };
}

/** what this run wrote, then the scrub's ranges; a written file's range is made when the reader asks for it */
function readList(written: PathSet, mine: OurFiles, rest: readonly ReadRange[]): RangeList {
  return {
    length: mine.count + rest.length,
    at(k) {
      if (k >= mine.count) return rest[k - mine.count];
      const i = mine.index(k);
      return { file: written.path(i), start: 0, size: written.size(i) };
    },
  };
}
