/**
 * The record of a drive opened for browsing or a restore (`offsite open`):
 * state_dir/open/<drive>.json, from `open` until `close`. It is what makes a
 * run refuse the drive (identify), `offsite cleanup` leave it mounted, the
 * drive's MQTT state say `open: true` (the LED is then not green), and
 * `offsite status` show it. Readable by all (0644): the unprivileged LED
 * agent republishes drive states too.
 *
 * A record outlives what it describes when the drive is pulled, the machine
 * restarts or someone unmounts it by hand: it is stale once its mount is gone,
 * holds another filesystem, or is of a device that no longer exists (a pulled
 * drive's mount stays behind, docs/design.md §2), and a stale record counts
 * as closed.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Drive } from './config.js';
import { isDeadDevice, mountAt } from './mounts.js';
import { DRIVE_NAME, isoTime } from './protocol.js';
import { readJson, writeJsonAtomic } from './state-file.js';
import { localTime } from './words.js';

const recordSchema = z.object({
  drive: z.string().regex(DRIVE_NAME),
  /** one opening: a watcher started for it never acts on a later one */
  id: z.string().regex(/^[0-9a-f]{16}$/),
  opened: isoTime,
  /** where it is mounted (or, for a directory drive, the directory) */
  at: z.string().startsWith('/'),
  /** the LUKS container or the filesystem's device; null for a directory drive */
  device: z.string().nullable(),
  /** /dev/mapper/<mapper> for a LUKS drive */
  mapper: z.string().nullable(),
  /** major:minor of the mounted filesystem, as /proc/self/mountinfo says it */
  mounted: z.string().nullable(),
  /** `--idle`: closed after this many seconds without use; null: never by itself */
  idle_seconds: z.number().positive().nullable(),
  /** the process that closes it when idle */
  watcher: z.object({ pid: z.number().int().positive(), start: z.string().nullable() }).nullable(),
});

export type OpenRecord = z.infer<typeof recordSchema>;

export function openDir(stateDir: string): string {
  return join(stateDir, 'open');
}

export function openRecordFile(stateDir: string, drive: string): string {
  return join(openDir(stateDir), `${drive}.json`);
}

export function newOpenId(): string {
  return randomBytes(8).toString('hex');
}

/** The record as written, or null when there is none (one that does not parse, which offsite never writes, counts as none). */
export function readOpenRecord(stateDir: string, drive: string): OpenRecord | null {
  let raw: unknown;
  try {
    raw = readJson<unknown>(openRecordFile(stateDir, drive), null);
  } catch {
    return null;
  }
  if (raw === null) return null;
  const parsed = recordSchema.safeParse(raw);
  return parsed.success && parsed.data.drive === drive ? parsed.data : null;
}

export function writeOpenRecord(stateDir: string, record: OpenRecord): void {
  writeJsonAtomic(openRecordFile(stateDir, record.drive), recordSchema.parse(record));
}

export function removeOpenRecord(stateDir: string, drive: string): void {
  try {
    unlinkSync(openRecordFile(stateDir, drive));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** Why the record no longer describes an open drive, or null while it does. */
export function staleBecause(record: OpenRecord): string | null {
  if (record.mounted === null)
    return existsSync(record.at) && statSync(record.at).isDirectory() ? null : `${record.at} is gone`;
  const m = mountAt(record.at);
  if (!m) return `nothing is mounted on ${record.at} any more`;
  if (m.majMin !== record.mounted) return `${record.at} holds another filesystem now (${m.source})`;
  if (isDeadDevice(m)) return `its device ${m.source} is gone (was the drive pulled?)`;
  return null;
}

export type OpenState =
  | { is: 'closed' }
  | { is: 'open'; record: OpenRecord }
  | { is: 'stale'; record: OpenRecord; why: string };

export function openState(stateDir: string, drive: Pick<Drive, 'name'>): OpenState {
  const record = readOpenRecord(stateDir, drive.name);
  if (!record) return { is: 'closed' };
  const why = staleBecause(record);
  return why ? { is: 'stale', record, why } : { is: 'open', record };
}

/** Whether the drive is open now (a stale record is not). Never throws: it feeds published states. */
export function isOpen(stateDir: string, drive: Pick<Drive, 'name'>): boolean {
  try {
    return openState(stateDir, drive).is === 'open';
  } catch {
    return false;
  }
}

/** "read-only on /mnt/offsite/alpha since 2026-11-28 15:04" */
export function describeOpen(record: OpenRecord): string {
  const where = record.mounted === null ? `at ${record.at}` : `read-only on ${record.at}`;
  return `${where} since ${localTime(record.opened)}`;
}

/** The refusal of a run (or a second open) while the drive is open. */
export function openRefusal(record: OpenRecord): string {
  return `drive "${record.drive}" is open (offsite open: ${describeOpen(record)}): nothing was done. Close it first: offsite close ${record.drive}`;
}
