/**
 * Check the staging copy against the source (SPEC 5: size/time manifest; the
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
import { excludeMatcher } from '../rsync/exclude.js';
import { compareTrees } from '../rsync/manifest.js';
import { readBack } from '../rsync/read-back.js';
import { endSession, sessionOf } from '../rsync/session.js';
import {
  clearCompareContents,
  dropFromStaging,
  hasStaging,
  layout,
  markCompareContents,
  removePrevious,
  switchCurrent,
} from '../rsync/snapshots.js';
import { type RunFacts, type Step, StepError } from './step.js';

function plural(n: number, word: string, words = `${word}s`): string {
  return `${n} ${n === 1 ? word : words}`;
}

export const verify: Step = {
  name: 'verify',
  title: 'comparing the copy with the source and reading back what was written',
  async run(ctx) {
    const { config, drive, log } = ctx;
    const target = ctx.facts.target;
    if (!target) throw new StepError('no target directory (identify/mount did not run)');
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
    const cmp = await compareTrees(source, copy, {
      exclude: excludeMatcher(config.source.exclude),
      skip: session.skipped,
      owners: process.getuid?.() === 0,
      sampleSize: config.verify.checksum_sample,
      notSampled: new Set(session.written),
      seed: ctx.runId,
      signal: ctx.signal,
      changedSince: session.startedAt,
    }).catch(cancelled);
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

    // what this run wrote, then the sample of the rest: read back from the drive, not the page cache
    const skipped = session.skipped;
    const written = session.written.filter((f) => !skipped.has(f));
    const read = await readBack(
      source,
      copy,
      [...written, ...cmp.sample].map((file) => ({ file, start: 0 })),
      { signal: ctx.signal, changedSince: session.startedAt },
    ).catch(cancelled);
    if (!read.direct)
      log.info(
        `${drive.name}: ${target} does not take O_DIRECT: the copy was read back through the page cache`,
      );
    if (read.problems.length) {
      const bad = read.problems.map((p) => p.file);
      // rsync's quick check (size and time) would keep these on the next run, so drop them from the
      // staging copy (`current` itself is never touched), and make the next copy compare contents: the
      // quick check would otherwise hard-link the same bad files from the previous copy again
      if (!unchanged) dropFromStaging(l, bad);
      markCompareContents(l, bad);
      throw new StepError(
        `read back from the drive, ${plural(bad.length, 'file')} of the copy did not match the source: ${read.problems
          .slice(0, 5)
          .map((p) => `${p.file} (${p.why})`)
          .join(', ')}${bad.length > 5 ? `; and ${bad.length - 5} more` : ''}`,
      );
    }
    if (read.sourceChanged.length)
      throw new StepError(
        `the source changed while it was being copied (${read.sourceChanged.slice(0, 5).join(', ')}); the next run copies it again`,
      );
    const readText = `read back ${plural(written.length, 'written file')} and ${plural(cmp.sample.length, 'sampled file')} (${read.bytes} bytes) from the drive`;

    const matched = `${plural(cmp.entries, 'entry', 'entries')} match (${plural(cmp.files, 'file')}, ${cmp.bytes} bytes), ${readText}`;
    if (unchanged) {
      endSession(ctx.facts);
      recordSpace(ctx.facts, target);
      return `${matched}; current is unchanged (${unchanged})`;
    }

    const snapshot = await switchCurrent(l, ctx.runId, session.previous);
    clearCompareContents(l);
    try {
      for (const p of await removePrevious(l, session.previous, snapshot))
        log.info(`${drive.name}: removed the previous copy ${p}`);
    } catch (e) {
      // the new copy is in place; the next run removes what is left
      log.warn(`${drive.name}: could not remove the previous copy: ${(e as Error).message}`);
    }
    endSession(ctx.facts);
    recordSpace(ctx.facts, target);
    return `${matched}; current is now ${join('snapshots', ctx.runId)}`;
  },
};

function recordSpace(facts: RunFacts, target: string): void {
  const fs = statfsSync(target);
  facts.freeBytes = fs.bavail * fs.bsize;
  facts.sizeBytes = fs.blocks * fs.bsize;
}
