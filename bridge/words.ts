/**
 * The words the user reads, in one place: `offsite status`, the emails and the
 * dashboard say "12 days", "safe to remove" and "failed at mount" the same way,
 * from the same numbers. Pure functions, no I/O.
 */
import type { DriveRecord } from './ledger.js';
import type { Result } from './protocol.js';

export const SAFE_TO_REMOVE = 'safe to remove';

export const RESULT_WORDS: Record<Result, string> = {
  success: 'success',
  warning: 'success with warnings',
  failed: 'failed',
};

export const NEVER = 'never';

/** a last success is recorded but cannot be trusted (not a time, or in the future): it counts as never */
export const UNKNOWN = 'unknown';

/** "failed at mount" (or plain "failed" when the step is not known) */
export function failedAt(step: string | null): string {
  return step ? `failed at ${step}` : 'failed';
}

/** The last result as one phrase: "success", "failed at mount: not a mount point", "never run". */
export function lastResultText(record: Pick<DriveRecord, 'last_result' | 'last_failure'>): string {
  if (!record.last_result) return 'never run';
  if (record.last_result !== 'failed') return RESULT_WORDS[record.last_result];
  const f = record.last_failure;
  return f ? `${failedAt(f.step)}: ${f.message}` : RESULT_WORDS.failed;
}

/** 3.0 GiB, 512 B: binary units, one decimal; `byteWord` is what a count under 1 KiB is given in ("512 bytes" in a mail). */
export function formatBytes(n: number, byteWord = 'B'): string {
  const units = [byteWord, 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/**
 * Whole days, rounded down, so that the number never runs ahead of the
 * calendar: 0.6 days is "under a day", 12.9 days is "12 days".
 */
export function formatAge(days: number | null): string {
  if (days === null) return NEVER;
  if (days < 1) return 'under a day';
  const whole = Math.floor(days);
  return whole === 1 ? '1 day' : `${whole} days`;
}

/** "2026-11-28 15:04" in the machine's local time zone (what the user's clock says). */
export function localTime(iso: string | null): string {
  if (!iso) return NEVER;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * Where the rolling scrub of a drive stands: "37% (last full 2026-11-16)",
 * "37% (no full pass yet)", or "-" before a run has read any of it.
 */
export function scrubText(progress: number | null, lastFullPass: string | null): string {
  if (progress === null) return '-';
  const pass = `${Math.floor(progress)}%`;
  return lastFullPass
    ? `${pass} (last full ${localTime(lastFullPass).slice(0, 10)})`
    : `${pass} (no full pass yet)`;
}

export function yesNo(value: boolean): string {
  return value ? 'yes' : 'no';
}

/** Why a drive is overdue, as one sentence without the trailing full stop. */
export function overdueText(
  drive: string,
  ageDays: number | null,
  overdueAfterDays: number,
  successUnknown = false,
): string {
  if (successUnknown)
    return `when drive "${drive}" was last backed up is ${UNKNOWN} (the ledger's time cannot be trusted)`;
  if (ageDays === null) return `drive "${drive}" has never been backed up`;
  return `drive "${drive}" was last backed up ${formatAge(ageDays)} ago (overdue after ${overdueAfterDays} days)`;
}

/** The last success as the user reads it: a local time, "never", or unknown with what the ledger says. */
export function lastSuccessText(lastSuccess: string | null, successUnknown: boolean): string {
  return successUnknown ? `${UNKNOWN} (the ledger says "${lastSuccess}")` : localTime(lastSuccess);
}

/** What the previous copy on the drive is, for a failure report. */
export function previousCopyText(
  lastSuccess: string | null,
  ageDays: number | null,
  successUnknown = false,
): string {
  if (successUnknown)
    return `When the drive's previous complete copy was made is ${UNKNOWN} (the ledger says "${lastSuccess}"); it is kept as it was.`;
  if (!lastSuccess) return 'The drive holds no complete copy yet (it has never been backed up successfully).';
  return `The drive's previous complete copy, from ${localTime(lastSuccess)} (${formatAge(ageDays)} old), is kept as it was.`;
}
