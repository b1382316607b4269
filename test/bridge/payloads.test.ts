/**
 * The hand-written payload checks (bridge/payloads.ts, what the long-running LED
 * agent and keeper use) against the contract (the zod schemas in
 * bridge/protocol.ts): for every payload, the same verdict and the same value.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeDrive, decodeStatus } from '../../bridge/payloads.js';
import { decode, driveSchema, RESULTS, RUN_STATES, statusSchema } from '../../bridge/protocol.js';
import { drive, status } from '../../harness/led-agent.js';
import { caseArb, payloadFor } from '../led-agent/payload-corpus.js';

function agree(kind: 'status' | 'drive', payload: Buffer | string): void {
  const contract = kind === 'status' ? decode(statusSchema, payload) : decode(driveSchema, payload);
  const ours = kind === 'status' ? decodeStatus(payload) : decodeDrive(payload);
  const shown = payload.toString().slice(0, 300);
  assert.equal(ours.ok, contract.ok, `${kind} ${shown}: zod ${contract.ok ? 'takes' : 'refuses'} it`);
  if (ours.ok && contract.ok) assert.deepStrictEqual(ours.value, contract.value, shown);
}

const iso = fc.oneof(
  fc.constantFrom('2026-11-28T15:04:05+01:00', '2026-11-28T15:04:05.123Z', '2026-11-28T15:04:05Z'),
  fc.string({ maxLength: 30 }),
);
const maybe = <T>(a: fc.Arbitrary<T>) => fc.oneof(a, fc.constant(null));
const number = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 100, 100.0001, -0.0001, 1.5, 2 ** 53 - 1, 2 ** 53, 1e300),
  fc.integer({ min: -5, max: 200 }),
);
const text = (max: number) =>
  fc.oneof(
    fc.string({ maxLength: 8 }),
    fc.constantFrom(
      'x'.repeat(max),
      'x'.repeat(max + 1),
      `${'x'.repeat(max - 1)}😀`,
      `${'x'.repeat(max - 1)}😀😀`,
      `${'x'.repeat(max - 1)}\ud83d\ud83d`,
      `${'x'.repeat(max)}\ude00`,
    ),
  );

/** Objects near the contract: every field valid, wrong, missing or null, and keys it does not know. */
const nearStatus = fc
  .record(
    {
      state: fc.oneof(fc.constantFrom(...RUN_STATES), fc.string({ maxLength: 8 })),
      drive: maybe(fc.constantFrom('alpha', 'beta_2', 'Alpha', 'a/b', '')),
      step: maybe(text(64)),
      progress: maybe(number),
      bytes: maybe(number),
      rate: maybe(number),
      eta: maybe(iso),
      message: maybe(text(4000)),
      warnings: fc.oneof(
        fc.array(text(4000), { maxLength: 3 }),
        fc.constant(Array.from({ length: 201 }, () => 'w')),
        fc.constant(Array.from({ length: 200 }, () => 'w')),
        fc.constant([1]),
        fc.constant('w'),
      ),
      run_id: maybe(text(64)),
      last_success: maybe(iso),
      updated: iso,
      extra: fc.jsonValue({ maxDepth: 1 }),
    },
    { requiredKeys: [] },
  )
  .map((o) => JSON.stringify(o));

const nearDrive = fc
  .record(
    {
      name: fc.constantFrom('alpha', 'beta_2', 'Alpha', 'a b', ''),
      present: fc.oneof(fc.boolean(), fc.constantFrom('true', 0, null)),
      last_run: maybe(iso),
      last_result: maybe(fc.oneof(fc.constantFrom(...RESULTS), fc.constant('ok'))),
      last_success: maybe(iso),
      overdue: fc.oneof(fc.boolean(), fc.constant(1)),
      age_days: maybe(number),
      free_bytes: maybe(number),
      size_bytes: maybe(number),
      scrub_last_full_pass: maybe(iso),
      scrub_progress: maybe(number),
      open: fc.oneof(fc.boolean(), fc.constant('no')),
      __proto__: fc.jsonValue({ maxDepth: 1 }),
    },
    { requiredKeys: [] },
  )
  .map((o) => JSON.stringify(o));

describe('the hand-written payload checks agree with the contract', () => {
  it("on the LED agent's fuzz corpus", () => {
    fc.assert(
      fc.property(caseArb, (c) => agree(c.kind, c.payload)),
      { numRuns: 10_000 },
    );
    fc.assert(
      fc.property(payloadFor('status'), payloadFor('drive'), (s, d) => {
        agree('status', s);
        agree('drive', d);
      }),
      { numRuns: 2_000 },
    );
  });

  it('on payloads near the contract: each field valid, wrong, null or missing, and unknown keys', () => {
    fc.assert(
      fc.property(nearStatus, (p) => agree('status', p)),
      { numRuns: 10_000 },
    );
    fc.assert(
      fc.property(nearDrive, (p) => agree('drive', p)),
      { numRuns: 10_000 },
    );
  });

  it("on the bridge's own payloads, which both take", () => {
    for (const state of RUN_STATES) {
      const p = status(state);
      agree('status', p);
      assert.equal(decodeStatus(p).ok, true, p);
    }
    for (const overdue of [true, false]) {
      const p = drive('alpha', overdue, { open: true, scrub_progress: 12.5 });
      agree('drive', p);
      assert.equal(decodeDrive(p).ok, true, p);
    }
  });
});
