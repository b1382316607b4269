/**
 * The rotation ledger (SPEC 5): per drive, when it last ran, how that went,
 * when it last succeeded; plus a short run history. Lives in state_dir and is
 * written atomically. The overdue arithmetic is pure (see driveState).
 */
import { join } from 'node:path';
import type { Config } from './config.js';
import { type DriveState, driveSchema, isoNow, type Result } from './protocol.js';
import type { RunEnded } from './run/events.js';
import { readJson, writeJsonAtomic } from './state-file.js';

export interface DriveRecord {
  name: string;
  last_run: string | null;
  last_result: Result | null;
  last_success: string | null;
  /** the step and reason of the last failure */
  last_failure: { run_id: string; step: string | null; message: string; time: string } | null;
  free_bytes: number | null;
  size_bytes: number | null;
  /** when we last said this drive is overdue (so it is said once) */
  overdue_notified_at: string | null;
  /** run ids whose failure has been reported (email sent), for report-failure's idempotency */
  reported_failures: string[];
}

export interface HistoryEntry {
  run_id: string;
  drive: string;
  result: Result;
  step: string | null;
  message: string;
  started: string;
  ended: string;
  bytes: number | null;
  warnings: number;
}

interface LedgerFile {
  version: 1;
  drives: Record<string, DriveRecord>;
  history: HistoryEntry[];
}

const HISTORY_KEEP = 200;

export function emptyRecord(name: string): DriveRecord {
  return {
    name,
    last_run: null,
    last_result: null,
    last_success: null,
    last_failure: null,
    free_bytes: null,
    size_bytes: null,
    overdue_notified_at: null,
    reported_failures: [],
  };
}

export class Ledger {
  readonly file: string;
  constructor(stateDir: string) {
    this.file = join(stateDir, 'ledger.json');
  }

  private load(): LedgerFile {
    return readJson<LedgerFile>(this.file, { version: 1, drives: {}, history: [] });
  }

  drive(name: string): DriveRecord {
    return { ...emptyRecord(name), ...this.load().drives[name] };
  }

  history(limit = 20): HistoryEntry[] {
    return this.load().history.slice(-limit);
  }

  /** read-modify-write of one drive's record */
  update(name: string, patch: (r: DriveRecord) => Partial<DriveRecord>): DriveRecord {
    const data = this.load();
    const current = { ...emptyRecord(name), ...data.drives[name] };
    const next = { ...current, ...patch(current) };
    data.drives[name] = next;
    writeJsonAtomic(this.file, data);
    return next;
  }

  recordRun(outcome: RunEnded): DriveRecord {
    const data = this.load();
    const ended = isoNow(outcome.endedAt);
    const r = { ...emptyRecord(outcome.drive), ...data.drives[outcome.drive] };
    r.last_run = ended;
    r.last_result = outcome.result;
    if (outcome.result !== 'failed') {
      r.last_success = ended;
      r.overdue_notified_at = null;
    } else {
      r.last_failure = { run_id: outcome.runId, step: outcome.step, message: outcome.message, time: ended };
    }
    if (outcome.freeBytes !== null) r.free_bytes = outcome.freeBytes;
    if (outcome.sizeBytes !== null) r.size_bytes = outcome.sizeBytes;
    data.drives[outcome.drive] = r;
    data.history.push({
      run_id: outcome.runId,
      drive: outcome.drive,
      result: outcome.result,
      step: outcome.step,
      message: outcome.message,
      started: isoNow(outcome.startedAt),
      ended,
      bytes: outcome.bytes,
      warnings: outcome.warnings.length,
    });
    data.history = data.history.slice(-HISTORY_KEEP);
    writeJsonAtomic(this.file, data);
    return r;
  }
}

const DAY_MS = 86_400_000;

/** Age in days since the last success (null: never succeeded). */
export function ageDays(record: DriveRecord, now: Date): number | null {
  if (!record.last_success) return null;
  return Math.max(0, (now.getTime() - Date.parse(record.last_success)) / DAY_MS);
}

/**
 * A drive is overdue when its last success is older than overdue_after_days,
 * or it has never succeeded. (A drive that has never run is overdue from the
 * start: a new drive is the one most in need of a backup.)
 */
export function isOverdue(record: DriveRecord, overdueAfterDays: number, now: Date): boolean {
  const age = ageDays(record, now);
  return age === null || age > overdueAfterDays;
}

/** The retained `<root>/drive/<name>` payload. */
export function driveState(
  record: DriveRecord,
  config: Pick<Config, 'overdue_after_days'>,
  now: Date,
  present: boolean,
): DriveState {
  const age = ageDays(record, now);
  return driveSchema.parse({
    name: record.name,
    present,
    last_run: record.last_run,
    last_result: record.last_result,
    last_success: record.last_success,
    overdue: isOverdue(record, config.overdue_after_days, now),
    age_days: age === null ? null : Math.round(age * 10) / 10,
    free_bytes: record.free_bytes,
    size_bytes: record.size_bytes,
  });
}
