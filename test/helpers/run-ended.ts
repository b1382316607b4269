/** A finished run as the runner reports it, for tests that fill a ledger or hear a run end. */
import type { RunEnded } from '../../bridge/events.js';

/** A successful run of `drive` that ended at `endedAt` (a minute long), changed by `over`. */
export function runEnded(drive: string, endedAt: Date, over: Partial<RunEnded> = {}): RunEnded {
  return {
    runId: `${drive}-${endedAt.getTime()}`,
    drive,
    result: 'success',
    step: null,
    message: 'copy complete; safe to remove',
    startedAt: new Date(endedAt.getTime() - 60_000),
    endedAt,
    exitCode: 0,
    warnings: [],
    bytes: 0,
    freeBytes: null,
    sizeBytes: null,
    undoErrors: [],
    ...over,
  };
}
