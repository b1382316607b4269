/**
 * The LED agent's fuzz corpus: random bytes, random JSON, valid payloads with
 * one field removed or made wrong, cut short, oversized, and a few hand-picked
 * ones. fuzz.test.ts sends them through a real broker; test/bridge/payloads.test.ts
 * holds the hand-written payload checks to the zod schemas on them.
 */
import fc from 'fast-check';
import { MAX_PAYLOAD_BYTES, RUN_STATES } from '../../bridge/protocol.js';
import { drive, status } from '../../harness/led-agent.js';

const DRIVE_NAME = /^[a-z0-9_]+$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const notA = (re: RegExp) => fc.string({ maxLength: 40 }).filter((s) => !re.test(s));
const notJsonObject = fc.oneof(
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
);

/** For each required field, values the contract refuses. */
const wrongStatus: Record<string, fc.Arbitrary<unknown>> = {
  state: fc.oneof(
    fc.string({ maxLength: 12 }).filter((s) => !(RUN_STATES as readonly string[]).includes(s)),
    notJsonObject,
  ),
  drive: fc.oneof(
    notA(DRIVE_NAME).filter((s) => s !== ''),
    fc.integer(),
    fc.boolean(),
  ),
  step: fc.oneof(fc.string({ minLength: 65, maxLength: 80 }), fc.integer(), fc.boolean()),
  progress: fc.oneof(
    fc.double({ min: 100.001, max: 1e12, noNaN: true }),
    fc.double({ min: -1e12, max: -0.001, noNaN: true }),
    fc.string({ maxLength: 4 }),
  ),
  bytes: fc.oneof(fc.integer({ min: -1e9, max: -1 }), fc.constant(1.5), fc.string({ maxLength: 4 })),
  eta: fc.oneof(notA(ISO), fc.integer()),
  message: fc.oneof(fc.integer(), fc.boolean(), fc.constant('x'.repeat(4001))),
  updated: fc.oneof(notA(ISO), fc.constant(null), fc.integer()),
};
const wrongDrive: Record<string, fc.Arbitrary<unknown>> = {
  present: fc.oneof(fc.string({ maxLength: 5 }), fc.integer(), fc.constant(null)),
  overdue: fc.oneof(fc.string({ maxLength: 5 }), fc.integer(), fc.constant(null)),
  last_result: fc.oneof(fc.constantFrom('ok', 'SUCCESS', 'done', ''), fc.integer()),
  last_run: fc.oneof(notA(ISO), fc.integer()),
  last_success: fc.oneof(notA(ISO), fc.integer()),
  free_bytes: fc.oneof(fc.integer({ max: -1 }), fc.constant(0.5), fc.string({ maxLength: 3 })),
  size_bytes: fc.oneof(fc.integer({ max: -1 }), fc.constant(0.5), fc.string({ maxLength: 3 })),
};

/** A valid payload with one required field removed or made wrong. */
function mutated(valid: string, wrong: Record<string, fc.Arbitrary<unknown>>) {
  const keys = Object.keys(wrong);
  return fc.tuple(fc.constantFrom(...keys), fc.boolean()).chain(([key, remove]) =>
    wrong[key]!.map((value) => {
      const object = JSON.parse(valid);
      if (remove) delete object[key];
      else object[key] = value;
      return JSON.stringify(object);
    }),
  );
}

export type Kind = 'status' | 'drive';
export interface Case {
  kind: Kind;
  /** the drive topic's last level */
  name: string;
  payload: Buffer;
}

const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
const validStatus = status('failed');
const validDrive = drive('alpha', false);

export const payloadFor = (kind: Kind): fc.Arbitrary<Buffer> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => Buffer.from(b)) },
    {
      weight: 3,
      arbitrary: fc.string({ minLength: 1, maxLength: 200, unit: 'grapheme' }).map((s) => Buffer.from(s)),
    },
    { weight: 3, arbitrary: fc.json({ maxDepth: 4 }).map((s) => Buffer.from(s)) },
    {
      weight: 6,
      arbitrary: (kind === 'status'
        ? mutated(validStatus, wrongStatus)
        : mutated(validDrive, wrongDrive)
      ).map((s) => Buffer.from(s)),
    },
    // a valid payload of the other kind
    { weight: 1, arbitrary: fc.constant(Buffer.from(kind === 'status' ? validDrive : validStatus)) },
    // valid JSON cut short: never valid, since it ends with its closing brace
    {
      weight: 2,
      arbitrary: fc
        .constant(kind === 'status' ? validStatus : validDrive)
        .chain((valid) =>
          fc.integer({ min: 1, max: valid.length - 1 }).map((n) => Buffer.from(valid.slice(0, n))),
        ),
    },
    // valid in every way but size
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 1, max: 4096 })
        .map((extra) =>
          Buffer.from(
            (kind === 'status' ? validStatus : validDrive).replace(
              '{',
              `{${' '.repeat(MAX_PAYLOAD_BYTES + extra)}`,
            ),
          ),
        ),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        Buffer.from(deep(30_000)),
        Buffer.from(`{"__proto__":${validStatus}}`),
        Buffer.from(`{"constructor":{"prototype":${validStatus}}}`),
        Buffer.from(validStatus.replace('"failed"', '"FAILED"')),
        Buffer.from(`\ufeff${validStatus}`.replace('{', '{"state":"failed","state":')),
        Buffer.from([0xff, 0xfe, 0x00, 0x7b]),
        Buffer.from('null'),
        Buffer.from('{"state":"running","drive":"alpha; rm -rf /","step":"$(reboot)"}'),
      ),
    },
  );

export const caseArb: fc.Arbitrary<Case> = fc.oneof(
  payloadFor('status').map((payload): Case => ({ kind: 'status', name: '', payload })),
  fc
    .tuple(
      fc.constantFrom('alpha', 'beta', 'Alpha', 'a-b', 'x y', 'drive.1', '', 'mallory'),
      payloadFor('drive'),
    )
    .map(([name, payload]): Case => ({ kind: 'drive', name, payload })),
  // a valid drive payload on another drive's topic
  fc.constant<Case>({ kind: 'drive', name: 'beta', payload: Buffer.from(drive('alpha', true)) }),
  // valid, for a drive the configuration does not name
  fc.constant<Case>({ kind: 'drive', name: 'mallory', payload: Buffer.from(drive('mallory', false)) }),
  fc.constant<Case>({
    kind: 'status',
    name: '',
    payload: Buffer.from(status('success', { drive: 'mallory' })),
  }),
);
