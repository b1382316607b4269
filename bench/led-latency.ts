/**
 * LED reaction latency: from the moment a status is published to the moment
 * the driver has written the new colour (sysfs files in a temporary LED class
 * directory), over 1,000 changes on loopback mosquitto.
 *
 *   node --import tsx bench/led-latency.ts [--changes 1000]
 */
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { silentLogger } from '../bridge/log.js';
import { topics } from '../bridge/protocol.js';
import { startBroker } from '../harness/broker.js';
import { agentConfig, ledClassDir, status } from '../harness/led-agent.js';
import { LedAgent } from '../led-agent/agent.js';
import type { Driver, Rgb } from '../led-agent/drivers/driver.js';
import { openSysfsLed } from '../led-agent/drivers/sysfs.js';

const { values } = parseArgs({ options: { changes: { type: 'string', default: '1000' } } });
const changes = Number(values.changes);
const warmup = 50;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const broker = await startBroker();
const base = 'bench';
const t = topics(base, 'nas');
const dir = ledClassDir({ multiIndex: 'red green blue' });
const sysfs = await openSysfsLed({ path: dir, brightness: 10 });

// the real driver, with a stopwatch on the way out
let written: ((rgb: Rgb) => void) | null = null;
const driver: Driver = {
  name: 'sysfs',
  motion: sysfs.motion,
  async set(rgb) {
    await sysfs.set(rgb);
    written?.(rgb);
  },
  close: () => sysfs.close(),
};
const config = agentConfig({
  url: broker.url,
  base,
  led: {
    driver: 'sysfs',
    path: dir,
    brightness: 10,
    states: {
      failed: { color: '#ff0000', pattern: 'steady' },
      success: { color: '#00ff00', pattern: 'steady' },
    },
  },
});
const agent = new LedAgent({ config, driver, log: silentLogger() });
await agent.start();
const publisher = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });

const samples: number[] = [];
for (let i = 0; i < changes + warmup; i++) {
  const state = i % 2 === 0 ? 'failed' : 'success';
  const payload = status(state);
  const red = state === 'failed' ? 255 : 0;
  const done = new Promise<number>((resolve) => {
    written = (rgb) => {
      if (rgb[0] === red && (rgb[1] === 0) === (state === 'failed')) resolve(performance.now());
    };
  });
  const start = performance.now();
  await publisher.publishAsync(t.status, payload, { qos: 0 });
  const end = await done;
  if (i >= warmup) samples.push(end - start);
}
written = null;

await publisher.endAsync(true);
await agent.stop();
await broker.stop();

samples.sort((a, b) => a - b);
const result = {
  bench: 'led-latency',
  broker: broker.kind,
  changes: samples.length,
  p50_ms: +percentile(samples, 50).toFixed(3),
  p99_ms: +percentile(samples, 99).toFixed(3),
  max_ms: +samples.at(-1)!.toFixed(3),
  node: process.version,
};
console.log(
  `LED latency, publish -> sysfs write, ${result.changes} changes on loopback ${result.broker}: ` +
    `p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms, max ${result.max_ms} ms`,
);
console.log(JSON.stringify(result));
