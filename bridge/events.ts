/** What a run tells the rest of the system, in order: start, steps, progress, end. */
import type { Result } from './protocol.js';

export interface SyncProgress {
  /** 0..100 */
  percent: number;
  /** bytes transferred so far in this run */
  bytes: number;
  /** bytes per second */
  rate: number;
  /** seconds left, when rsync can tell */
  etaSeconds: number | null;
  /** bytes in all, when known (verify: what it reads back) */
  total?: number;
}

export interface RunStarted {
  runId: string;
  drive: string;
  time: Date;
}

export interface StepEvent {
  runId: string;
  drive: string;
  step: string;
  time: Date;
}

export interface StepDone extends StepEvent {
  ms: number;
}

export interface ProgressEvent extends SyncProgress {
  runId: string;
  drive: string;
  step: string;
  time: Date;
}

export interface WarningEvent {
  runId: string;
  drive: string;
  step: string;
  message: string;
  /** the files concerned (rsync exit 23/24), possibly truncated */
  files: string[];
}

export interface RunEnded {
  runId: string;
  drive: string;
  result: Result;
  /** the failing step (failed), else null */
  step: string | null;
  /** why it failed, else a summary */
  message: string;
  startedAt: Date;
  endedAt: Date;
  exitCode: number;
  warnings: string[];
  /** bytes rsync transferred */
  bytes: number | null;
  freeBytes: number | null;
  sizeBytes: number | null;
  /** undo actions that themselves failed (the drive may need attention) */
  undoErrors: string[];
}

/** A ledger file that could not be used, and where it went. */
export interface LedgerReset {
  file: string;
  /** what was wrong with it */
  reason: string;
  /** where it was moved (null: it could not be moved) */
  movedTo: string | null;
}

export interface RunEvents {
  'run:start': RunStarted;
  'step:start': StepEvent;
  'step:done': StepDone;
  progress: ProgressEvent;
  warning: WarningEvent;
  'run:end': RunEnded;
  /** the ledger could not be used and was moved aside (said once, by whoever found it) */
  'ledger:reset': LedgerReset;
  /** a line for the log (the terminal reporter prints these) */
  log: { level: 'info' | 'warn' | 'error'; message: string };
}
