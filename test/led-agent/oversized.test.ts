/**
 * Payloads too large to be the bridge's, through a real mosquitto: dropped on
 * the wire unread (bridge/mqtt/packet-guard.ts), logged, and the agent goes on
 * following. How much memory that saves is a benchmark (bench/led-flood.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { createLogger } from '../../bridge/log.js';
import { topics } from '../../bridge/protocol.js';
import { startBroker, type TestBroker } from '../../harness/broker.js';
import { agentConfig, ledClassDir, ledFile, status } from '../../harness/led-agent.js';
import { LedAgent, MAX_PAYLOAD_BYTES } from '../../led-agent/agent.js';
import { openSysfsLed } from '../../led-agent/drivers/sysfs.js';
import { collectLog, freshBase, waitForLight } from './fixtures.js';

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

/** A valid `failed` status, padded with spaces to `bytes`: only its size is wrong. */
function paddedFailure(bytes: number): Buffer {
  const valid = status('failed');
  return Buffer.from(valid.replace('{', `{${' '.repeat(bytes - valid.length)}`));
}

describe('LED agent and oversized payloads', () => {
  it('drops them unread with a log line, acknowledges them, and keeps following', async () => {
    const base = freshBase();
    const dir = ledClassDir({ multiIndex: 'red green blue' });
    const log = collectLog();
    const config = agentConfig({
      url: broker.url,
      base,
      led: { driver: 'sysfs', path: dir, brightness: 10 },
    });
    const agent = new LedAgent({
      config,
      driver: await openSysfsLed({ path: dir, brightness: 10 }),
      log: createLogger({ write: log.write }),
    });
    await agent.start();
    try {
      const t = topics(base, 'nas');
      await publisher.publishAsync(t.status, status('success'), { qos: 1, retain: true });
      await waitForLight(agent, (l) => l.state === 'success');
      const seen: string[] = [];
      agent.onLight((l) => seen.push(l.state));
      // more than mosquitto keeps in flight to one client (20): unacknowledged, they would stall it
      const sizes = [MAX_PAYLOAD_BYTES + 1, ...Array.from({ length: 30 }, () => 70_000), 5 * 1024 * 1024];
      for (const size of sizes) await publisher.publishAsync(t.status, paddedFailure(size), { qos: 1 });
      await publisher.publishAsync(t.status, status('running'), { qos: 1, retain: true });
      await waitForLight(agent, (l) => l.state === 'running');
      assert.deepEqual(seen, ['running'], 'the padded failures never showed');
      assert.equal(agent.stats.ignored, sizes.length);
      assert.equal(agent.stats.received, 1 + sizes.length + 1);
      assert.ok(
        log.lines.some((l) =>
          l.includes(`${t.status}: a payload of 65537 bytes exceeds 65536: dropped unread`),
        ),
        log.lines.join('\n'),
      );
      await agent.settled();
      assert.equal(ledFile(dir, 'multi_intensity'), '51 194 128');
      assert.ok(agent.connected, 'the connection stayed up');
    } finally {
      await agent.stop();
    }
  });
});
