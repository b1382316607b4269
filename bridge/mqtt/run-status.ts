/**
 * The retained `<root>/status` payload through a run, as a pure function of the
 * run's events: running (with the step and, during sync, progress), then
 * success or failed. Validated with the contract's schema before anything is
 * published, so a payload that breaks the contract fails here, at the source.
 */
import { isoNow, type Status, statusSchema } from '../protocol.js';
import type { ProgressEvent, RunEnded, RunStarted, StepEvent, WarningEvent } from '../run/events.js';

/** the contract's limits (protocol.ts): a longer list or text would not validate */
const MAX_WARNINGS = 200;
const MAX_TEXT = 4000;

function clip(text: string): string {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text;
}

export class RunStatus {
  private current: Status | null = null;
  private warnings: string[] = [];
  private lastSuccess: string | null;

  /** `lastSuccess`: the latest success of any drive before this run (from the ledger) */
  constructor(lastSuccess: string | null = null) {
    this.lastSuccess = lastSuccess;
  }

  get status(): Status | null {
    return this.current;
  }

  started(e: RunStarted, now: Date): Status {
    this.warnings = [];
    return this.set(
      {
        state: 'running',
        drive: e.drive,
        step: null,
        progress: null,
        bytes: null,
        rate: null,
        eta: null,
        message: null,
        warnings: [],
        run_id: e.runId,
      },
      now,
    );
  }

  /** a new step: the previous step's progress no longer means anything; bytes copied so far still do */
  step(e: StepEvent, now: Date): Status {
    return this.set({ ...this.base(e), step: e.step, progress: null, rate: null, eta: null }, now);
  }

  progress(e: ProgressEvent, now: Date): Status {
    return this.set(
      {
        ...this.base(e),
        step: e.step || this.current?.step || null,
        progress: Math.min(100, Math.max(0, Math.round(e.percent * 10) / 10)),
        bytes: Math.max(0, Math.round(e.bytes)),
        rate: Math.max(0, Math.round(e.rate)),
        eta: e.etaSeconds === null ? null : isoNow(new Date(now.getTime() + e.etaSeconds * 1000)),
      },
      now,
    );
  }

  /** remembered for the end of the run; not published on its own */
  warning(e: WarningEvent): void {
    const items = e.files.length ? e.files : [e.message];
    for (const item of items) if (this.warnings.length < MAX_WARNINGS) this.warnings.push(clip(item));
  }

  ended(e: RunEnded, now: Date): Status {
    const ok = e.result !== 'failed';
    if (ok) this.lastSuccess = isoNow(e.endedAt);
    const warnings = this.warnings.length ? this.warnings : e.warnings.slice(0, MAX_WARNINGS).map(clip);
    return this.set(
      {
        state: ok ? 'success' : 'failed',
        drive: e.drive,
        step: ok ? null : e.step,
        progress: ok ? 100 : (this.current?.progress ?? null),
        bytes: e.bytes ?? this.current?.bytes ?? null,
        rate: null,
        eta: null,
        message: clip(e.message),
        warnings,
        run_id: e.runId,
      },
      now,
    );
  }

  private base(e: { drive: string; runId: string }): Omit<Status, 'updated' | 'last_success'> {
    const c = this.current;
    return {
      state: 'running',
      drive: e.drive,
      step: c?.step ?? null,
      progress: c?.progress ?? null,
      bytes: c?.bytes ?? null,
      rate: c?.rate ?? null,
      eta: c?.eta ?? null,
      message: null,
      warnings: [],
      run_id: e.runId,
    };
  }

  private set(fields: Omit<Status, 'updated' | 'last_success'>, now: Date): Status {
    this.current = statusSchema.parse({ ...fields, last_success: this.lastSuccess, updated: isoNow(now) });
    return this.current;
  }
}
