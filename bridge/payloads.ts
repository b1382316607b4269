/**
 * The status and drive payloads, checked by hand for the long-running LED
 * agent and the Home Assistant keeper beside it, which then need not load zod
 * for good (docs/benchmarks.md, LED agent). The zod schemas in
 * bridge/protocol.ts stay the contract: test/bridge/payloads.test.ts holds these
 * checks to them, payload for payload (the same verdict, the same value), on
 * the LED agent's fuzz corpus and on valid payloads.
 */
import type { DriveState, Status } from './protocol.js';
import { DRIVE_NAME, ISO_WITH_OFFSET, MAX_PAYLOAD_BYTES, RESULTS, RUN_STATES } from './topics.js';

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

/** One field's check: the value to keep, or what was expected instead. */
type Check = (v: unknown) => { ok: true; value: unknown } | { ok: false; expected: string };

const ok = (value: unknown) => ({ ok: true as const, value });
const no = (expected: string) => ({ ok: false as const, expected });

/** lengths in code points, as zod counts them: an emoji is one character */
const string =
  (max: number): Check =>
  (v) =>
    typeof v === 'string' && (v.length <= max || [...v].length <= max)
      ? ok(v)
      : no(`a string of at most ${max} characters`);
const matching =
  (pattern: RegExp, what: string): Check =>
  (v) =>
    typeof v === 'string' && pattern.test(v) ? ok(v) : no(what);
const number =
  (min: number, max = Number.POSITIVE_INFINITY, integer = false): Check =>
  (v) =>
    typeof v === 'number' &&
    Number.isFinite(v) &&
    v >= min &&
    v <= max &&
    (!integer || Number.isSafeInteger(v))
      ? ok(v)
      : no(integer ? `an integer of at least ${min}` : `a number from ${min} to ${max}`);
const boolean: Check = (v) => (typeof v === 'boolean' ? ok(v) : no('true or false'));
const oneOf =
  (values: readonly string[]): Check =>
  (v) =>
    typeof v === 'string' && values.includes(v) ? ok(v) : no(`one of ${values.join(', ')}`);
const nullable =
  (check: Check): Check =>
  (v) =>
    v === null ? ok(null) : check(v);
const isoTime = matching(ISO_WITH_OFFSET, 'an ISO-8601 time with an offset');
const driveName = matching(DRIVE_NAME, 'a drive name (a-z, 0-9, _)');
const strings =
  (maxItems: number, item: Check): Check =>
  (v) => {
    if (!Array.isArray(v) || v.length > maxItems) return no(`a list of at most ${maxItems} strings`);
    for (const x of v) if (!item(x).ok) return no(`a list of at most ${maxItems} strings`);
    return ok([...v]);
  };

/** a key the payload may leave out, and what it then is */
interface Field {
  check: Check;
  default?: unknown;
}

const STATUS: Record<keyof Status, Field> = {
  state: { check: oneOf(RUN_STATES) },
  drive: { check: nullable(driveName) },
  step: { check: nullable(string(64)) },
  progress: { check: nullable(number(0, 100)) },
  bytes: { check: nullable(number(0, Number.POSITIVE_INFINITY, true)) },
  rate: { check: nullable(number(0)), default: null },
  eta: { check: nullable(isoTime) },
  message: { check: nullable(string(4000)) },
  warnings: { check: strings(200, string(4000)), default: [] },
  run_id: { check: nullable(string(64)), default: null },
  last_success: { check: nullable(isoTime), default: null },
  updated: { check: isoTime },
};

const DRIVE: Record<keyof DriveState, Field> = {
  name: { check: driveName },
  present: { check: boolean },
  last_run: { check: nullable(isoTime) },
  last_result: { check: nullable(oneOf(RESULTS)) },
  last_success: { check: nullable(isoTime) },
  overdue: { check: boolean },
  age_days: { check: nullable(number(0)), default: null },
  free_bytes: { check: nullable(number(0, Number.POSITIVE_INFINITY, true)) },
  size_bytes: { check: nullable(number(0, Number.POSITIVE_INFINITY, true)) },
  scrub_last_full_pass: { check: nullable(isoTime), default: null },
  scrub_progress: { check: nullable(number(0, 100)), default: null },
  open: { check: boolean, default: false },
};

/** The known keys of a JSON object, checked; unknown keys are left out (as zod's z.object does). */
function object<T>(fields: Record<string, Field>, json: unknown): Decoded<T> {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    return { ok: false, error: '(root): expected an object' };
  const value: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(fields)) {
    const given = Object.hasOwn(json, key) ? (json as Record<string, unknown>)[key] : undefined;
    if (given === undefined && 'default' in field) {
      value[key] = Array.isArray(field.default) ? [...field.default] : field.default;
      continue;
    }
    if (given === undefined) return { ok: false, error: `${key}: required` };
    const checked = field.check(given);
    if (!checked.ok) return { ok: false, error: `${key}: expected ${checked.expected}` };
    value[key] = checked.value;
  }
  return { ok: true, value: value as T };
}

function parse(payload: Buffer | string, maxBytes: number): Decoded<unknown> {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (size > maxBytes) return { ok: false, error: `payload of ${size} bytes exceeds ${maxBytes}` };
  try {
    return { ok: true, value: JSON.parse(payload.toString()) };
  } catch {
    return { ok: false, error: 'payload is not JSON' };
  }
}

/** A status payload, as decode(statusSchema, payload) reads it; never throws. */
export function decodeStatus(payload: Buffer | string, maxBytes = MAX_PAYLOAD_BYTES): Decoded<Status> {
  const json = parse(payload, maxBytes);
  return json.ok ? object<Status>(STATUS, json.value) : json;
}

/** A drive state payload, as decode(driveSchema, payload) reads it; never throws. */
export function decodeDrive(payload: Buffer | string, maxBytes = MAX_PAYLOAD_BYTES): Decoded<DriveState> {
  const json = parse(payload, maxBytes);
  return json.ok ? object<DriveState>(DRIVE, json.value) : json;
}
