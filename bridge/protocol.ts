/**
 * The MQTT contract (docs/design.md §6, docs/mqtt.md): the one place where topics are built and
 * payloads are defined. The bridge, the LED agent, Home Assistant discovery and
 * the tests all import from here; no topic string is spelled anywhere else.
 */
import { z } from 'zod';
import {
  AVAILABILITY,
  DRIVE_NAME,
  EVENT_TYPES,
  ISO_WITH_OFFSET,
  MAX_PAYLOAD_BYTES,
  RESULTS,
  RUN_STATES,
} from './topics.js';

// what needs no schema (topics, names, limits) is in topics.ts, which the LED agent loads without zod
export * from './topics.js';

export const isoTime = z.string().regex(ISO_WITH_OFFSET, 'an ISO-8601 time with an offset');

const text = z.string().max(4000);

export const statusSchema = z.object({
  state: z.enum(RUN_STATES),
  drive: z.string().regex(DRIVE_NAME).nullable(),
  step: z.string().max(64).nullable(),
  progress: z.number().min(0).max(100).nullable(),
  bytes: z.number().int().nonnegative().nullable(),
  /** bytes per second during sync; null otherwise */
  rate: z.number().nonnegative().nullable().default(null),
  eta: isoTime.nullable(),
  message: text.nullable(),
  /** files rsync could not copy (exit 23/24); empty when none */
  warnings: z.array(text).max(200).default([]),
  run_id: z.string().max(64).nullable().default(null),
  /** the most recent success of any drive (Home Assistant's "last success" sensor); null: never */
  last_success: isoTime.nullable().default(null),
  updated: isoTime,
});
export type Status = z.infer<typeof statusSchema>;

export const driveSchema = z.object({
  name: z.string().regex(DRIVE_NAME),
  present: z.boolean(),
  last_run: isoTime.nullable(),
  last_result: z.enum(RESULTS).nullable(),
  last_success: isoTime.nullable(),
  overdue: z.boolean(),
  age_days: z.number().nonnegative().nullable().default(null),
  free_bytes: z.number().int().nonnegative().nullable(),
  size_bytes: z.number().int().nonnegative().nullable(),
  /** the rolling scrub: when its last pass over the whole copy ended (null: none yet) */
  scrub_last_full_pass: isoTime.nullable().default(null),
  /** how far the pass under way is, 0..100 (null: the drive has not been scrubbed yet) */
  scrub_progress: z.number().min(0).max(100).nullable().default(null),
  /** unlocked and mounted read-only by `offsite open` until `offsite close`: not safe to remove */
  open: z.boolean().default(false),
});
export type DriveState = z.infer<typeof driveSchema>;

export const eventSchema = z.object({
  event_type: z.enum(EVENT_TYPES),
  drive: z.string().regex(DRIVE_NAME).nullable(),
  step: z.string().max(64).nullable(),
  message: text.nullable(),
  time: isoTime,
});
export type OffsiteEvent = z.infer<typeof eventSchema>;

export const availabilitySchema = z.enum([AVAILABILITY.online, AVAILABILITY.offline]);

/** A time in ISO-8601 with the local offset, e.g. `2026-11-28T15:04:05+01:00`. */
export function isoNow(date: Date = new Date()): string {
  const pad = (n: number) => String(Math.trunc(Math.abs(n))).padStart(2, '0');
  const offsetMin = -date.getTimezoneOffset();
  const sign = offsetMin >= 0 ? '+' : '-';
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `${sign}${pad(offsetMin / 60)}:${pad(offsetMin % 60)}`
  );
}

export function idleStatus(): Status {
  return statusSchema.parse({
    state: 'idle',
    drive: null,
    step: null,
    progress: null,
    bytes: null,
    eta: null,
    message: null,
    updated: isoNow(),
  });
}

/** Parse an MQTT payload (a Buffer) as JSON and validate it; never throws. */
export function decode<T>(
  schema: z.ZodType<T>,
  payload: Buffer | string,
  maxBytes = MAX_PAYLOAD_BYTES,
): { ok: true; value: T } | { ok: false; error: string } {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (size > maxBytes) return { ok: false, error: `payload of ${size} bytes exceeds ${maxBytes}` };
  let json: unknown;
  try {
    json = JSON.parse(payload.toString());
  } catch {
    return { ok: false, error: 'payload is not JSON' };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, error: `${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}` };
  }
  return { ok: true, value: parsed.data };
}
