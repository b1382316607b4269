/**
 * The whole-drive scrub (`offsite scrub <drive>`, docs/sync.md): every file of
 * the drive's current copy read back from the drive, and compared with the
 * source wherever the source still has it as it was copied; then, for a Borg
 * repository, `borg check --repository-only` on a throwaway view of the copy.
 * Nothing in the copy is written. A pass completed is recorded in the ledger,
 * like the rolling scrub's; a file that does not match, or that the drive
 * cannot read, fails the step, is named, and the next copy compares its
 * contents.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../error-message.js';
import { Ledger } from '../ledger.js';
import { isoNow } from '../protocol.js';
import { BORG_VIEW, BorgCheckError, borgCheck } from '../rsync/borg.js';
import { shown } from '../rsync/byte-path.js';
import { type ReadProblem, readBack } from '../rsync/read-back.js';
import { readRate } from '../rsync/scrub-plan.js';
import { copyFiles } from '../rsync/scrub-walk.js';
import { findPrevious, layout, markCompareContents, reservedNames } from '../rsync/snapshots.js';
import { MARKER_FILE } from './marker.js';
import { progressOf, usedBytes } from './read-progress.js';
import { type Step, StepError, targetOf } from './step.js';

const LISTED = 5;

function plural(n: number, word: string, words = `${word}s`): string {
  return `${n} ${n === 1 ? word : words}`;
}

export const scrub: Step = {
  name: 'scrub',
  title: 'reading the whole copy back from the drive and comparing it with the source',
  async run(ctx) {
    const { config, drive, log } = ctx;
    const target = targetOf(ctx);
    const source = config.source.path;
    const l = layout(target);
    let names: string[];
    try {
      names = readdirSync(source);
    } catch (e) {
      throw new StepError(`the source ${source} cannot be read: ${errorMessage(e)}`, { cause: e });
    }
    const copy = findPrevious(l, source, names, reservedNames(MARKER_FILE));
    if (!copy || copy.kind === 'root')
      throw new StepError(`there is no copy made by offsite on ${target} to scrub (no current)`);

    const ledger = new Ledger(config.state_dir);
    const startedAt = Date.now();
    const progress = progressOf(ctx, ledger.scrub(drive.name)?.copy_bytes || usedBytes(target));
    const problems: ReadProblem[] = [];
    let files = 0;
    let compared = 0;
    let readOnly = 0;
    let read = 0;
    let direct = true;
    try {
      for await (const batch of copyFiles(copy.path, source, ctx.signal)) {
        const r = await readBack(source, copy.path, batch, {
          signal: ctx.signal,
          changedSince: startedAt,
          onBytes: (n) => progress.onBytes(read + n),
        });
        read += r.bytes;
        files += batch.length;
        for (const f of batch) f.copyOnly ? readOnly++ : compared++;
        direct &&= r.direct;
        problems.push(...r.problems);
      }
    } catch (e) {
      if (ctx.signal.aborted)
        throw new StepError('cancelled during the scrub; nothing was changed', { cause: e });
      throw e;
    }
    progress.done();
    if (!direct) log.info(`${target} does not take O_DIRECT: the copy was read through the page cache`);
    const now = isoNow();
    try {
      await ledger.recordScrub(drive.name, {
        next: null,
        position_bytes: 0,
        copy_bytes: read,
        pass_started: now,
        last_full_pass: now,
        read_rate: readRate(read, (Date.now() - startedAt) / 1000, ledger.scrub(drive.name)),
      });
    } catch (e) {
      log.warn(`could not record the scrub in ${ledger.file}: ${errorMessage(e)}`);
    }
    if (problems.length) {
      markCompareContents(
        l,
        problems.map((p) => p.file),
      );
      const listed = problems
        .slice(0, LISTED)
        .map((p) => `${shown(p.file)} (${p.why})`)
        .join(', ');
      const more = problems.length > LISTED ? `; and ${problems.length - LISTED} more` : '';
      throw new StepError(
        `the scrub found ${plural(problems.length, 'file')} on the drive that did not match the source or could not be read: ${listed}${more}; the next copy compares their contents`,
      );
    }

    let borg: string;
    try {
      const checked = await borgCheck(
        { target, copy: copy.path, view: join(l.snapshots, BORG_VIEW) },
        config.verify.borg_check,
        { signal: ctx.signal },
      );
      borg = checked.ran ? 'borg check --repository-only passed' : `borg check skipped (${checked.reason})`;
    } catch (e) {
      if (e instanceof BorgCheckError) throw new StepError(e.message, { cause: e });
      if (ctx.signal.aborted)
        throw new StepError('cancelled during borg check; nothing was changed', { cause: e });
      throw e;
    }
    return `read ${plural(files, 'file')} (${read} bytes) back from the drive: ${compared} compared with the source, ${readOnly} changed there since and only read; ${borg}`;
  },
};
