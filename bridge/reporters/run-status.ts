/**
 * The retained `<root>/status` payload through a run, as a pure function of the
 * run's events: running (with the step and, during sync, progress), then
 * success or failed. Validated with the contract's schema before anything is
 * published, so a payload that breaks the contract fails here, at the source.
 */
import type { ProgressEvent, RunEnded, RunStarted, StepEvent, WarningEvent } from '../events.js';
import { isoNow, type Status, statusSchema } from '../protocol.js';

/** the contract's limits (protocol.ts): a longer list or text would not validate */
const MAX_WARNINGS = 200;
const MAX_TEXT = 4000;

function clip(text: string): string {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text;
}

/** a status before validation, with the ETA kept as a time so that it costs nothing until sent */
type Fields = Omit<Status, 'updated' | 'last_success' | 'eta'> & { etaAt: number | null };

export class RunStatus {
  private fields: Fields | null = null;
  private warnings: string[] = [];
  private lastSuccess: string | null;

  /** `lastSuccess`: the latest success of any drive before this run (from the ledger) */
  constructor(lastSuccess: string | null = null) {
    this.lastSuccess = lastSuccess;
  }

  started(e: RunStarted, now: Date): Status {
    this.warnings = [];
    this.fields = {
      state: 'running',
      drive: e.drive,
      step: null,
      progress: null,
      bytes: null,
      rate: null,
      etaAt: null,
      message: null,
      warnings: [],
      run_id: e.runId,
    };
    return this.snapshot(now);
  }

  /** a new step: the previous step's progress no longer means anything; bytes copied so far still do */
  step(e: StepEvent, now: Date): Status {
    this.fields = { ...this.base(e), step: e.step, progress: null, rate: null, etaAt: null };
    return this.snapshot(now);
  }

  /**
   * Called for every progress report (thousands a second), so it only takes
   * note; snapshot() builds and checks the payload for the few that are sent.
   */
  progress(e: ProgressEvent, now: Date): void {
    const f = this.fields ?? this.base(e);
    f.state = 'running';
    f.drive = e.drive;
    f.run_id = e.runId;
    f.step = e.step || f.step;
    f.progress = Math.min(100, Math.max(0, Math.round(e.percent * 10) / 10));
    f.bytes = Math.max(0, Math.round(e.bytes));
    f.rate = Math.max(0, Math.round(e.rate));
    f.etaAt = e.etaSeconds === null ? null : now.getTime() + e.etaSeconds * 1000;
    this.fields = f;
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
    this.fields = {
      state: ok ? 'success' : 'failed',
      drive: e.drive,
      step: ok ? null : e.step,
      progress: ok ? 100 : (this.fields?.progress ?? null),
      bytes: e.bytes ?? this.fields?.bytes ?? null,
      rate: null,
      etaAt: null,
      message: clip(e.message),
      warnings,
      run_id: e.runId,
    };
    return this.snapshot(now);
  }

  /** The status as it stands, checked against the contract. */
  snapshot(now: Date): Status {
    const { etaAt, ...f } = this.fields ?? this.base({ drive: '', runId: '' });
    return statusSchema.parse({
      ...f,
      eta: etaAt === null ? null : isoNow(new Date(etaAt)),
      last_success: this.lastSuccess,
      updated: isoNow(now),
    });
  }

  private base(e: { drive: string; runId: string }): Fields {
    const c = this.fields;
    return {
      state: 'running',
      drive: e.drive,
      step: c?.step ?? null,
      progress: c?.progress ?? null,
      bytes: c?.bytes ?? null,
      rate: c?.rate ?? null,
      etaAt: c?.etaAt ?? null,
      message: null,
      warnings: [],
      run_id: e.runId,
    };
  }
}
