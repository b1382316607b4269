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
import { topics } from '../../bridge/protocol.js';
import { startBroker, type TestBroker } from '../../harness/broker.js';
import { agentConfig, drive, ledClassDir, ledFile, status } from '../../harness/led-agent.js';
import { LedAgent } from '../../led-agent/agent.js';
import { BAD_PAYLOAD_WINDOW_MS } from '../../led-agent/bad-payloads.js';
import { openSysfsLed } from '../../led-agent/drivers/sysfs.js';
import { sameLight } from '../../led-agent/light.js';
import { collectLog, freshBase, waitForLight } from './fixtures.js';
import { caseArb } from './payload-corpus.js';

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
