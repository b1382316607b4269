/**
 * The messages of the MQTT contract (docs/design.md §6) as { topic, payload, retain },
 * each payload checked against its schema here, where it is made.
 */
import type { z } from 'zod';
import type { Config } from '../config.js';
import type { RunEnded } from '../events.js';
import { type DriveNow, type DriveRecord, driveState, lastSuccessAt } from '../ledger.js';
import {
  type DriveState,
  driveSchema,
  type EventType,
  eventSchema,
  isoNow,
  type OffsiteEvent,
  statusSchema,
} from '../protocol.js';
import { topicsFor } from '../topics.js';
import type { Outgoing } from './link.js';

export { topicsFor };

/** `status` may leave out what the contract defaults (rate, warnings, run_id, last_success) */
export function statusMessage(
  config: Pick<Config, 'node_id' | 'mqtt'>,
  status: z.input<typeof statusSchema>,
): Outgoing {
  return {
    topic: topicsFor(config).status,
    payload: JSON.stringify(statusSchema.parse(status)),
    retain: true,
  };
}

export function driveMessage(config: Pick<Config, 'node_id' | 'mqtt'>, state: DriveState): Outgoing {
  return {
    topic: topicsFor(config).drive(state.name),
    payload: JSON.stringify(driveSchema.parse(state)),
    retain: true,
  };
}

/** The retained drive payload from its ledger record; whether it is plugged in and open is asked of the system by the caller. */
export function driveRecordMessage(
  config: Config,
  record: DriveRecord,
  now: Date,
  facts: DriveNow,
): Outgoing {
  return driveMessage(config, driveState(record, config, now, facts));
}

/** Events are never retained: a phone must not be told again about an old failure when it reconnects. */
export function eventMessage(
  config: Pick<Config, 'node_id' | 'mqtt'>,
  event: {
    event_type: EventType;
    drive: string | null;
    step?: string | null;
    message?: string | null;
    time?: string;
  },
): Outgoing {
  const payload: OffsiteEvent = eventSchema.parse({
    event_type: event.event_type,
    drive: event.drive,
    step: event.step ?? null,
    message: event.message === undefined || event.message === null ? null : event.message.slice(0, 4000),
    time: event.time ?? isoNow(),
  });
  return { topic: topicsFor(config).event, payload: JSON.stringify(payload), retain: false };
}

/**
 * A drive's record as it is once this run is in the ledger. The run records
 * it in the ledger last, after the reporters have spoken (a full state_dir
 * must not silence them), so they apply the outcome to the record themselves;
 * applied to a record that already holds it, it changes nothing.
 */
export function recordAfterRun(record: DriveRecord, outcome: RunEnded): DriveRecord {
  const ended = isoNow(outcome.endedAt);
  const ok = outcome.result !== 'failed';
  return {
    ...record,
    last_run: ended,
    last_result: outcome.result,
    last_success: ok ? ended : record.last_success,
    free_bytes: outcome.freeBytes ?? record.free_bytes,
    size_bytes: outcome.sizeBytes ?? record.size_bytes,
  };
}

/** The latest success of any of these records that can be trusted (bridge/ledger.ts), or null. */
export function latestSuccess(
  records: readonly Pick<DriveRecord, 'last_success'>[],
  now: Date = new Date(),
): string | null {
  let best: { iso: string; at: number } | null = null;
  for (const r of records) {
    const at = lastSuccessAt(r, now)?.getTime();
    if (at !== undefined && r.last_success && (!best || at > best.at)) best = { iso: r.last_success, at };
  }
  return best?.iso ?? null;
}
