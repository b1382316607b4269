/**
 * The rotation ledger (docs/design.md §7): per drive, when it last ran, how
 * that went, when it last succeeded; plus a short run history. Lives in
 * state_dir/ledger.json.
 *
 * The file is checked against a schema on every read. One that does not parse
 * or does not fit reads as an empty ledger (with a warning) rather than
 * stopping every run and every reminder; the next writer, or `repair()`, moves
 * it aside (ledger.json.bad-<time>) and starts a new one. Writers
 * read-modify-write under state_dir/locks/ledger.lock, so two processes never
 * lose each other's update; each write is atomic (bridge/state-file.ts).
 *
 * The overdue arithmetic is pure (see driveState). A last success that cannot
 * be trusted (not a time, or in the future) is "unknown": it counts as never.
 */
import { readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import type { Config } from './config.js';
import { errorMessage } from './error-message.js';
import type { LedgerReset, RunEnded } from './events.js';
import { acquireLock } from './lockfile.js';
import type { Logger } from './log.js';
import { type DriveState, driveSchema, isoNow, isoTime, RESULTS } from './protocol.js';
import { type ScrubRecord, scrubPercent } from './rsync/scrub-plan.js';
import { stateError, writeJsonAtomic } from './state-file.js';

const time = z.string().nullable().default(null);

const scrubSchema: z.ZodType<ScrubRecord> = z.object({
  next: z.object({ path: z.string(), offset: z.number().int().nonnegative() }).nullable(),
  position_bytes: z.number().nonnegative(),
  copy_bytes: z.number().nonnegative(),
  pass_started: z.string().nullable(),
  last_full_pass: z.string().nullable(),
  // a ledger written before the rate was kept has none
  read_rate: z.number().positive().nullable().default(null),
});
const count = z.number().int().nonnegative().nullable().default(null);

const recordSchema = z.object({
  name: z.string().optional(),
  last_run: time,
  last_result: z.enum(RESULTS).nullable().default(null),
  last_success: time,
  /** the step and reason of the last failure */
  last_failure: z
    .object({ run_id: z.string(), step: z.string().nullable(), message: z.string(), time: z.string() })
    .nullable()
    .default(null),
  free_bytes: count,
  size_bytes: count,
  /** when we last said this drive is overdue (so it is said once) */
  overdue_notified_at: time,
  /** run ids whose failure has been reported (email sent), for report-failure's idempotency */
  reported_failures: z.array(z.string()).default([]),
  /** the rolling scrub of this drive's copy (docs/sync.md); null until a run has read some of it */
  scrub: scrubSchema.nullable().default(null).catch(null),
});

const historySchema = z.object({
  run_id: z.string(),
  drive: z.string(),
  result: z.enum(RESULTS),
  step: z.string().nullable(),
  message: z.string(),
  started: z.string(),
  ended: z.string(),
  bytes: z.number().nullable(),
  warnings: z.number().int().nonnegative(),
});

const fileSchema = z.object({
  version: z.literal(1).default(1),
  drives: z.record(z.string(), recordSchema),
  history: z.array(historySchema).default([]),
});

export type DriveRecord = Omit<z.infer<typeof recordSchema>, 'name'> & { name: string };
export type HistoryEntry = z.infer<typeof historySchema>;

interface LedgerFile {
  version: 1;
  drives: Record<string, z.infer<typeof recordSchema>>;
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
    scrub: null,
  };
}

const empty = (): LedgerFile => ({ version: 1, drives: {}, history: [] });

/** What the file holds, or why it cannot be used. A missing file is an empty ledger. */
function readLedger(file: string): { data: LedgerFile; problem: string | null } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { data: empty(), problem: null };
    // unreadable is not corrupt (e.g. EACCES for an unprivileged reader): never moved aside
    throw new Error(`cannot read ${file}: ${errorMessage(e)}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { data: empty(), problem: `not JSON (${errorMessage(e)})` };
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : 'the file';
    return { data: empty(), problem: `${where}: ${issue?.message ?? 'not a ledger'}` };
  }
  return { data: parsed.data, problem: null };
}

/** The words of a reset, for the log and the mail. */
export function resetText(r: LedgerReset): string {
  const where = r.movedTo ? `moved it to ${r.movedTo}` : 'could not move it aside';
  return `the ledger ${r.file} could not be used (${r.reason}): ${where} and started a new one; every drive counts as never backed up until its next success`;
}

export interface LedgerOptions {
  /** where a ledger that cannot be used is reported (once per instance) */
  log?: Pick<Logger, 'warn'>;
}

export class Ledger {
  readonly file: string;
  private readonly lockFile: string;
  private readonly log: Pick<Logger, 'warn'> | undefined;
  private warned = false;

  constructor(stateDir: string, opts: LedgerOptions = {}) {
    this.file = join(stateDir, 'ledger.json');
    this.lockFile = join(stateDir, 'locks', 'ledger.lock');
    this.log = opts.log;
  }

  private load(): LedgerFile {
    const { data, problem } = readLedger(this.file);
    if (problem && !this.warned) {
      this.warned = true;
      this.log?.warn(
        `the ledger ${this.file} cannot be used (${problem}): read as empty until it is replaced`,
      );
    }
    return data;
  }

  drive(name: string): DriveRecord {
    return { ...emptyRecord(name), ...this.load().drives[name], name };
  }

  history(limit = 20): HistoryEntry[] {
    return this.load().history.slice(-limit);
  }

  /**
   * Under the ledger's lock: read (a file that cannot be used is moved aside
   * first), let `change` modify the data, and write it back (with `change`).
   */
  private async modify<T>(
    change?: (data: LedgerFile) => T,
  ): Promise<{ result: T | undefined; reset: LedgerReset | null }> {
    const lock = await acquireLock(this.lockFile, { label: 'ledger', pollMs: 2, maxPollMs: 50 });
    try {
      const { data, problem } = readLedger(this.file);
      const reset = problem ? this.moveAside(problem) : null;
      if (!change) return { result: undefined, reset };
      const result = change(data);
      writeJsonAtomic(this.file, data);
      return { result, reset };
    } finally {
      lock.release();
    }
  }

  private moveAside(reason: string): LedgerReset {
    const stamp = new Date().toISOString().replace(/[-:]/g, '');
    let movedTo: string | null = `${this.file}.bad-${stamp}`;
    try {
      renameSync(this.file, movedTo);
    } catch (e) {
      this.log?.warn(stateError(e, dirname(this.file), `could not move ${this.file} aside`).message);
      movedTo = null;
    }
    const reset = { file: this.file, reason, movedTo };
    this.warned = true;
    this.log?.warn(resetText(reset));
    return reset;
  }

  /** Move a ledger that cannot be used aside now; what was wrong, or null when it is fine. */
  async repair(): Promise<LedgerReset | null> {
    if (!readLedger(this.file).problem) return null;
    return (await this.modify()).reset;
  }

  /** As repair(), but a repair that fails (a full or read-only state_dir) is said in `log`, not thrown: the caller goes on. */
  async repairOrSay(log: Pick<Logger, 'error'>): Promise<LedgerReset | null> {
    return this.repair().catch((e) => {
      log.error(`the ledger: ${errorMessage(e)}`);
      return null;
    });
  }

  /** read-modify-write of one drive's record */
  async update(name: string, patch: (r: DriveRecord) => Partial<DriveRecord>): Promise<DriveRecord> {
    const { result } = await this.modify((data) => {
      const current = { ...emptyRecord(name), ...data.drives[name], name };
      const next = { ...current, ...patch(current) };
      data.drives[name] = next;
      return next;
    });
    return result!;
  }

  /** where the rolling scrub of a drive stands (null: nothing read yet) */
  scrub(name: string): ScrubRecord | null {
    return this.drive(name).scrub;
  }

  async recordScrub(name: string, scrub: ScrubRecord): Promise<void> {
    await this.update(name, () => ({ scrub }));
  }

  async recordRun(outcome: RunEnded): Promise<DriveRecord> {
    const { result } = await this.modify((data) => {
      const ended = isoNow(outcome.endedAt);
      const r = { ...emptyRecord(outcome.drive), ...data.drives[outcome.drive], name: outcome.drive };
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
      return r;
    });
    return result!;
  }
}

/** enough ids to cover any plausible streak of failures without growing forever */
const REPORTED_KEEP = 50;

/** true when a run id or systemd invocation id is recorded as reported (its failure was mailed) */
export function isReported(record: DriveRecord, id: string | undefined | null): boolean {
  return Boolean(id) && record.reported_failures.includes(id as string);
}

export async function markReported(
  ledger: Ledger,
  drive: string,
  ids: ReadonlyArray<string | undefined | null>,
): Promise<void> {
  const fresh = ids.filter((id): id is string => Boolean(id));
  await ledger.update(drive, (r) => ({
    reported_failures: [...r.reported_failures.filter((id) => !fresh.includes(id)), ...fresh].slice(
      -REPORTED_KEEP,
    ),
  }));
}

const DAY_MS = 86_400_000;
/** a success this far ahead of the clock is taken as now (the clock was corrected since); beyond, unknown */
const CLOCK_SLACK_MS = 10 * 60_000;

/** A recorded time as it can be counted from: null when absent, not a time, or too far in the future. */
function trusted(iso: string | null, now: Date): Date | null {
  if (!iso || !isoTime.safeParse(iso).success) return null;
  const t = Date.parse(iso);
  if (Number.isNaN(t) || t > now.getTime() + CLOCK_SLACK_MS) return null;
  return new Date(t);
}

/** The last success when it can be trusted; null when there is none or it is unknown. */
export function lastSuccessAt(record: Pick<DriveRecord, 'last_success'>, now: Date): Date | null {
  return trusted(record.last_success, now);
}

/** A last success is recorded but cannot be trusted (not a time, or in the future). */
export function successUnknown(record: Pick<DriveRecord, 'last_success'>, now: Date): boolean {
  return record.last_success !== null && lastSuccessAt(record, now) === null;
}

/** Age in days since the last success (null: never succeeded, or unknown). */
export function ageDays(record: Pick<DriveRecord, 'last_success'>, now: Date): number | null {
  const at = lastSuccessAt(record, now);
  return at === null ? null : Math.max(0, (now.getTime() - at.getTime()) / DAY_MS);
}

/**
 * A drive is overdue when its last success is older than overdue_after_days,
 * or it has never succeeded (or when, we cannot tell). A drive that has never
 * run is overdue from the start: a new drive is the one most in need of a backup.
 */
export function isOverdue(record: DriveRecord, overdueAfterDays: number, now: Date): boolean {
  const age = ageDays(record, now);
  return age === null || age > overdueAfterDays;
}

/** What is asked of the system about a drive, not kept in the ledger. */
export interface DriveNow {
  /** plugged in (bridge/presence.ts) */
  present: boolean;
  /** opened by `offsite open` (bridge/open-record.ts) */
  open: boolean;
}

/** The retained `<root>/drive/<name>` payload. A time that cannot be trusted is published as null. */
export function driveState(
  record: DriveRecord,
  config: Pick<Config, 'overdue_after_days'>,
  now: Date,
  { present, open }: DriveNow,
): DriveState {
  const age = ageDays(record, now);
  const lastRun = isoTime.safeParse(record.last_run).success ? record.last_run : null;
  return driveSchema.parse({
    name: record.name,
    present,
    last_run: lastRun,
    last_result: record.last_result,
    last_success: age === null ? null : record.last_success,
    overdue: isOverdue(record, config.overdue_after_days, now),
    age_days: age === null ? null : Math.round(age * 10) / 10,
    free_bytes: record.free_bytes,
    size_bytes: record.size_bytes,
    scrub_last_full_pass: isoTime.safeParse(record.scrub?.last_full_pass).success
      ? record.scrub!.last_full_pass
      : null,
    scrub_progress: scrubPercent(record.scrub),
    open,
  });
}
