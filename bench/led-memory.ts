/**
 * LED agent memory: the resident set of the real `offsite-led` process (compiled
 * to JavaScript, as installed) idle 5 s after start, then while 100,000 messages
 * go through it, twice over: a leak shows as growth between the first and the
 * second 100,000.
 *
 *   node --import tsx bench/led-memory.ts [--messages 100000]
 */
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { topics } from '../bridge/protocol.js';
import { startBroker } from '../harness/broker.js';
import { drive, status } from '../harness/led-agent.js';
import { caughtUp, compileAgent, sleep, startAgentProcess } from './led-process.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '100000' },
    // V8 flags for the agent process, e.g. "--max-semi-space-size=1" (what offsite-led.service sets)
    'node-flags': { type: 'string', default: '' },
  },
});
const perRound = Number(values.messages);
const PACE = 800;
const nodeFlags = values['node-flags'].split(' ').filter(Boolean);

const cli = compileAgent();
const broker = await startBroker();
const base = 'bench';
const t = topics(base, 'nas');
const agent = await startAgentProcess({ cli, brokerUrl: broker.url, base, nodeFlags });
// idle: after the Home Assistant keeper's first publish (about a second after connecting)
await sleep(5000);
const rssMiB = () => agent.rss();

const publisher = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
/**
 * A day of a busy bridge, compressed: progress updates of a running sync (the
 * light does not change), drive updates for three drives, one bad payload in
 * fifty, and a change of light every thousand messages.
 */
function message(i: number): [string, string] {
  if (i % 50 === 7) return [t.status, '{"state":"exploded"}'];
  if (i % 20 === 3) {
    const name = ['alpha', 'beta', 'gamma'][i % 3]!;
    return [t.drive(name), drive(name, false, { free_bytes: i })];
  }
  const state = Math.floor(i / 1000) % 2 === 0 ? 'running' : 'success';
  return [t.status, status(state, state === 'running' ? { progress: (i % 1000) / 10, bytes: i } : {})];
}

async function round(label: string): Promise<void> {
  for (let i = 0; i < perRound; i += 200) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(perRound, i + 200); j++) {
      const [topic, payload] = message(j);
      batch.push(publisher.publishAsync(topic, payload, { qos: 1 }));
    }
    await Promise.all(batch);
    // the broker queues at most 1,000 messages per client: pace the flood so none is dropped,
    // even when the agent has read none of them yet (a loaded machine)
    if ((i + 200) % PACE === 0) await caughtUp(publisher, agent, base);
  }
  await caughtUp(publisher, agent, base);
  await sleep(1000);
  samples.push({ label, rss_mib: rssMiB() });
}

const samples: Array<{ label: string; rss_mib: number }> = [{ label: 'idle after start', rss_mib: rssMiB() }];
const started = performance.now();
await round(`after ${perRound.toLocaleString('en')} messages`);
const firstRoundS = (performance.now() - started) / 1000;
await round(`after ${(2 * perRound).toLocaleString('en')} messages`);

const peakMiB = agent.peak();
const { code, stdout } = await agent.stop();
await publisher.endAsync(true);
await broker.stop();

const stats = /stopped \((\d+) messages, (\d+) ignored\)/.exec(stdout);
const result = {
  bench: 'led-memory',
  broker: broker.kind,
  published: 2 * (perRound + 2 * (Math.ceil(perRound / PACE) + 1)),
  received: Number(stats?.[1]),
  ignored: Number(stats?.[2]),
  messages_per_s: Math.round(perRound / firstRoundS),
  samples,
  growth_mib: +(samples[2]!.rss_mib - samples[1]!.rss_mib).toFixed(1),
  peak_mib: peakMiB,
  exit: code,
  node_flags: nodeFlags.join(' '),
  node: process.version,
};
for (const s of samples) console.log(`RSS ${s.label}: ${s.rss_mib} MiB`);
console.log(`peak RSS: ${peakMiB} MiB`);
console.log(
  `growth over the second ${perRound.toLocaleString('en')}: ${result.growth_mib} MiB; ` +
    `${result.received} received, ${result.ignored} ignored, ~${result.messages_per_s} messages/s; exit ${code}`,
);
console.log(JSON.stringify(result));
