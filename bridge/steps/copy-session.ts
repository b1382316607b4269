/**
 * What sync hands to verify within one run: the source lock (held from the
 * start of the copy until the copy is switched in), the previous copy, and
 * the files rsync warned about. Keyed by the run's facts, so it lives and dies
 * with the run.
 */
import type { HeldLock } from '../lockfile.js';
import type { BytePath } from '../rsync/byte-path.js';
import type { PathSet } from '../rsync/path-set.js';
import type { PreviousCopy } from '../rsync/snapshots.js';
import type { RunFacts } from './step.js';

export interface CopySession {
  lock: HeldLock | null;
  previous: PreviousCopy | null;
  /** relative paths rsync could not copy (exit 23/24), as bytes (byte-path.ts): verify leaves them out */
  skipped: Set<BytePath>;
  /** the regular files this copy wrote data for, as bytes: verify reads each back from the drive */
  written: PathSet;
  /** when the copy started (ms since the epoch), to tell a source that changed meanwhile */
  startedAt: number;
  /**
   * rsync found nothing to change against the previous copy (a snapshot), so
   * no new copy was built: verify checks `previous` itself and switches nothing
   */
  unchanged: boolean;
}

const sessions = new WeakMap<RunFacts, CopySession>();

export function startSession(facts: RunFacts, session: CopySession): void {
  sessions.set(facts, session);
}

export function sessionOf(facts: RunFacts): CopySession | undefined {
  return sessions.get(facts);
}

export function endSession(facts: RunFacts): void {
  sessions.get(facts)?.lock?.release();
  sessions.delete(facts);
}
