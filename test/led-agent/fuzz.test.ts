/**
 * 10,000 random and malformed payloads through a real broker: the agent must
 * ignore every one (no crash, no new light, no LED write), log them at a
 * bounded rate, and still follow a valid message afterwards.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import mqtt, { type MqttClient } from 'mqtt';
import { createLogger } from '../../bridge/log.js';
import { RUN_STATES, topics } from '../../bridge/protocol.js';
import { startBroker, type TestBroker } from '../../harness/broker.js';
import { agentConfig, drive, ledClassDir, ledFile, status } from '../../harness/led-agent.js';
import { LedAgent, MAX_PAYLOAD_BYTES } from '../../led-agent/agent.js';
import { BAD_PAYLOAD_WINDOW_MS } from '../../led-agent/bad-payloads.js';
import { openSysfsLed } from '../../led-agent/drivers/sysfs.js';
import { sameLight } from '../../led-agent/light.js';
import { collectLog, freshBase, waitForLight } from './fixtures.js';

const RUNS = 10_000;

let broker: TestBroker;
let publisher: MqttClient;
before(async () => {
  broker = await startBroker();
  publisher = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
});
after(async () => {
  await publisher.endAsync(true);
  await broker.stop();
});

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

type Kind = 'status' | 'drive';
interface Case {
  kind: Kind;
  /** the drive topic's last level */
  name: string;
  payload: Buffer;
}

const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
const validStatus = status('failed');
const validDrive = drive('alpha', false);

const payloadFor = (kind: Kind): fc.Arbitrary<Buffer> =>
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

const caseArb: fc.Arbitrary<Case> = fc.oneof(
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

/** The agent subscribes to its configured drives only; other drive topics are handed to it directly. */
const SUBSCRIBED = new Set(['alpha', 'beta']);

describe('LED agent under random and malformed payloads', () => {
  it(`ignores ${RUNS.toLocaleString('en')} bad payloads: no crash, light and LED unchanged, bounded logging`, async () => {
    const base = freshBase();
    const t = topics(base, 'nas');
    const dir = ledClassDir({ multiIndex: 'red green blue' });
    const log = collectLog();
    const agent = new LedAgent({
      config: agentConfig({ url: broker.url, base, led: { driver: 'sysfs', path: dir, brightness: 10 } }),
      driver: await openSysfsLed({ path: dir, brightness: 10 }),
      log: createLogger({ write: log.write }),
    });
    await agent.start();
    try {
      await publisher.publishAsync(t.status, status('running'), { qos: 1, retain: true });
      await publisher.publishAsync(t.drive('alpha'), drive('alpha', false), { qos: 1, retain: true });
      const before = await waitForLight(agent, (l) => l.state === 'running');
      await agent.settled();
      const ledBefore = [ledFile(dir, 'multi_intensity'), ledFile(dir, 'brightness')];
      const writesBefore = agent.writes;
      let changed = 0;
      agent.onLight(() => {
        changed += 1;
      });
      const started = Date.now();
      let runs = 0;

      await fc.assert(
        fc.asyncProperty(caseArb, async (c) => {
          runs += 1;
          const topic = c.kind === 'status' ? t.status : `${t.root}/drive/${c.name}`;
          const received = agent.stats.received;
          const ignored = agent.stats.ignored;
          if (c.kind === 'status' || SUBSCRIBED.has(c.name))
            await publisher.publishAsync(topic, c.payload, { qos: 1 });
          else agent.receive(topic, c.payload);
          for (let i = 0; agent.stats.received === received; i++) {
            if (i > 100_000) throw new Error('the agent stopped receiving');
            await new Promise((r) => setImmediate(r));
          }
          assert.equal(agent.stats.ignored, ignored + 1, `accepted ${c.payload.toString().slice(0, 200)}`);
          assert.ok(sameLight(agent.light, before), `light became ${agent.light.state}`);
        }),
        {
          numRuns: RUNS,
          endOnFailure: true,
          // a failure prints its seed: FUZZ_SEED=<seed> replays it
          ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}),
        },
      );

      assert.equal(runs, RUNS);
      assert.equal(changed, 0);
      assert.equal(agent.writes, writesBefore, 'no LED write');
      await agent.settled();
      assert.deepEqual([ledFile(dir, 'multi_intensity'), ledFile(dir, 'brightness')], ledBefore);
      assert.ok(agent.connected, 'still connected');

      // logged, but at most one line per window plus one summary line per window
      const windows = Math.ceil((Date.now() - started) / BAD_PAYLOAD_WINDOW_MS) + 1;
      const badLines = log.lines.filter((l) => /bad payload/.test(l));
      assert.ok(
        badLines.length >= 1 && badLines.length <= 2 * windows,
        `${badLines.length} lines in ${windows} windows`,
      );
      assert.ok(log.lines.every((l) => !l.includes('\n') && l.length < 600));

      // and it still follows the bridge
      await publisher.publishAsync(t.status, status('failed'), { qos: 1, retain: true });
      await waitForLight(agent, (l) => l.state === 'failed');
      await agent.settled();
      assert.equal(ledFile(dir, 'multi_intensity'), '255 0 0');
    } finally {
      await agent.stop();
    }
  });
});
