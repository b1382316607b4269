/**
 * A step of a run (docs/design.md §3): data, not control flow. `run` does the work,
 * `undo` puts back what `run` did when a later step fails (and is also called
 * for the failing step itself, so it must check before it acts). A step never
 * publishes, logs its own failure or catches for the sake of reporting: the
 * runner does that once for all of them.
 */
import type { Config, Drive } from '../config.js';
import type { SyncProgress } from '../events.js';
import type { Logger } from '../log.js';

export interface RunFacts {
  /** the block device that appeared (LUKS container or plain filesystem) */
  device?: string;
  /** /dev/mapper/<mapper> once unlocked */
  mapperDevice?: string;
  /** where the copies live: the mount point or the directory */
  target?: string;
  /** bytes transferred by rsync */
  bytes?: number;
  freeBytes?: number;
  sizeBytes?: number;
  warnings: string[];
}

export interface RunContext {
  config: Config;
  drive: Drive;
  runId: string;
  /** the drive's log: every line says "<drive>: " first (childLogger) */
  log: Logger;
  signal: AbortSignal;
  facts: RunFacts;
  /** report sync progress (the runner's reporters throttle what they publish) */
  progress(p: SyncProgress): void;
  /** a problem that does not fail the run, e.g. files rsync could not read */
  warn(message: string, files?: string[]): void;
}

export interface Step {
  name: string;
  /**
   * what the step does, as the heading printed when it starts: "mounting the
   * drive's filesystem ...", never its result (the step has not run yet)
   */
  title: string;
  /** does the work; resolves to what came of it, in a few words, for the line after the heading */
  // biome-ignore lint/suspicious/noConfusingVoidType: a step with nothing to add just returns ("done" is printed)
  run(ctx: RunContext): Promise<string | void>;
  undo?(ctx: RunContext): Promise<void>;
}

/**
 * A failure with a user-facing reason; the run exits with `exitCode` (1
 * unless said otherwise). A drive that is not plugged in never gets this far:
 * runDrive refuses it before anything starts (DriveAbsentError, exit 75).
 */
export class StepError extends Error {
  override name = 'StepError';
  readonly exitCode: number;
  constructor(message: string, opts: { exitCode?: number; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.exitCode = opts.exitCode ?? 1;
  }
}

/** Where identify (a directory drive) or mount put the drive's filesystem; a step that needs it fails without it. */
export function targetOf(ctx: RunContext): string {
  const { target } = ctx.facts;
  if (!target) throw new StepError('no target directory (identify/mount did not run)');
  return target;
}
