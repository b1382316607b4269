/**
 * A drive pulled mid-run makes whatever step was running fail with some
 * low-level error ("EIO: i/o error, read", "mount: can't read superblock").
 * The user should read what happened: the drive went away. This tells it from
 * the drive's own facts (its device node or directory is gone, its filesystem
 * unmounted or turned read-only under us) and from the error codes a vanished
 * device gives.
 */
import { existsSync } from 'node:fs';
import { errorMessage } from '../error-message.js';
import { mountAt } from '../mounts.js';
import { type RunContext, StepError } from './step.js';

/** "the drive went away during verify (/dev/sdb1 disappeared): was it pulled? ..." */
export class DriveGoneError extends StepError {
  override name = 'DriveGoneError';
  constructor(step: string, why: string, opts: { copyComplete: boolean; cause?: unknown }) {
    super(
      `the drive went away during ${step} (${why}): was it pulled? ${
        opts.copyComplete
          ? 'The new copy was complete and verified before it went'
          : 'The previous copy is intact'
      }`,
      { cause: opts.cause },
    );
  }
}

/** errno codes of a device that is no longer there (EIO only counts with more evidence: a failing disk gives it too) */
const GONE_CODES = ['ENODEV', 'ENXIO', 'ESTALE'] as const;
const CODE = /\b(EIO|ENODEV|ENXIO|ESTALE)\b/;

/** EIO, ENODEV, ENXIO or ESTALE, from the error, its causes, or their messages; else null. */
export function errnoOf(error: unknown): string | null {
  for (let e = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && CODE.test(code)) return code;
    const m = CODE.exec(errorMessage(e));
    if (m) return m[1] as string;
  }
  return null;
}

/**
 * Why the drive under the run is no longer usable, or null when it still is.
 * `mounted`: the filesystem should be mounted now (after mount, before unmount).
 */
export function driveGone(ctx: RunContext, mounted: boolean): string | null {
  const { drive, facts } = ctx;
  // identify found the directory (or the device) first: what is gone now went away during the run
  if (drive.kind === 'directory')
    return facts.target && !existsSync(facts.target) ? `${facts.target} disappeared` : null;
  if (facts.device && !existsSync(facts.device)) return `${facts.device} disappeared`;
  if (!mounted) return null;
  const m = mountAt(drive.mountPoint);
  if (!m) return `${drive.mountPoint} is no longer mounted`;
  if (m.options.split(',').includes('ro')) return 'its filesystem turned read-only';
  return null;
}

/**
 * The drive went away while `step` ran, and why we think so; null when the
 * failure is something else. An EIO alone is not enough: the device node goes
 * within moments of a pull, so it is given `settleMs` to go before the error
 * is taken for a failing disk instead.
 */
export async function wentAway(
  ctx: RunContext,
  error: unknown,
  opts: { mounted: boolean; settleMs?: number },
): Promise<string | null> {
  const seen = driveGone(ctx, opts.mounted);
  if (seen) return seen;
  const code = errnoOf(error);
  if (!code) return null;
  if ((GONE_CODES as readonly string[]).includes(code)) return `${code} from the drive`;
  const until = Date.now() + (opts.settleMs ?? 1500);
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    const gone = driveGone(ctx, opts.mounted);
    if (gone) return `${code}, then ${gone}`;
  }
  return null;
}

/**
 * The failure of `step` (after the steps `done`) as a DriveGoneError when the
 * drive went away; the error itself otherwise.
 */
export async function asDriveGone(
  ctx: RunContext,
  step: string,
  error: unknown,
  done: readonly string[],
  settleMs?: number,
): Promise<unknown> {
  if (error instanceof DriveGoneError) return error;
  // only between mount and unmount is a missing mount news (during either, it may be the step's own doing)
  const mounted =
    done.includes('mount') && !done.includes('unmount') && step !== 'mount' && step !== 'unmount';
  const why = await wentAway(ctx, error, { mounted, ...(settleMs === undefined ? {} : { settleMs }) });
  return why ? new DriveGoneError(step, why, { copyComplete: done.includes('verify'), cause: error }) : error;
}
