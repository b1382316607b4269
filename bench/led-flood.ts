/**
 * The LED agent against what any broker client can send (issue 9): the real
 * `offsite-led` process, its resident set and peak (VmHWM, reset before each) around
 *
 * - one 50 MB payload on the status topic,
 * - 2,000 payloads just under the 64 KiB limit (each read and parsed),
 * - 20,000 distinct drive topics, each with a valid drive state,
 * - 300 Home Assistant birth messages (and how many publishes they cause).
 *
 *   node --import tsx bench/led-flood.ts ["--node-flags=--lite-mode --max-semi-space-size=1"]
 */
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { discoveryTopic, homeAssistantStatusTopic, type Topics, topics } from '../bridge/protocol.js';
import { recorder, startBroker } from '../harness/broker.js';
import { drive, status } from '../harness/led-agent.js';
import { caughtUp, compileAgent, sleep, startAgentProcess } from './led-process.js';

const { values } = parseArgs({
  options: { 'node-flags': { type: 'string', default: '--lite-mode --max-semi-space-size=1' } },
});
const nodeFlags = values['node-flags'].split(' ').filter(Boolean);

const cli = compileAgent();
const broker = await startBroker();
const publisher = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });

const rows: Array<{ case: string; idle: number; after: number; peak: number; note?: string }> = [];
let stats = { received: 0, ignored: 0, exits: [] as Array<number | null> };
let run = 0;
/** Each case on a fresh agent, 5 s after its start: the peak is that case's alone. */
async function measure(name: string, work: (t: Topics) => Promise<string | undefined>): Promise<void> {
  const base = `flood${++run}`;
  const agent = await startAgentProcess({ cli, brokerUrl: broker.url, base, nodeFlags });
  await sleep(5000);
  await caughtUp(publisher, agent, base);
  agent.resetPeak();
  const idle = agent.rss();
  const note = await work(topics(base, 'nas'));
  await caughtUp(publisher, agent, base);
  await sleep(1000);
  rows.push({ case: name, idle, after: agent.rss(), peak: agent.peak(), note });
  const { code, stdout } = await agent.stop();
  const counted = /stopped \((\d+) messages, (\d+) ignored\)/.exec(stdout);
  stats = {
    received: stats.received + Number(counted?.[1]),
    ignored: stats.ignored + Number(counted?.[2]),
    exits: [...stats.exits, code],
  };
}

await measure('one 50 MB payload on the status topic', async (t) => {
  const payload = Buffer.from(status('failed').replace('{', `{${' '.repeat(50 * 1024 * 1024)}`));
  await publisher.publishAsync(t.status, payload, { qos: 1 });
  return undefined;
});

await measure('2,000 payloads just under the 64 KiB limit', async (t) => {
  const payload = Buffer.from(status('failed').replace('{', `{${' '.repeat(64 * 1024 - 400)}`));
  for (let i = 0; i < 2000; i += 100)
    await Promise.all(
      Array.from({ length: 100 }, () => publisher.publishAsync(t.status, payload, { qos: 1 })),
    );
  return undefined;
});

await measure('20,000 distinct drive topics', async (t) => {
  for (let i = 0; i < 20_000; i += 500) {
    await Promise.all(
      Array.from({ length: 500 }, (_, j) =>
        publisher.publishAsync(t.drive(`forged_${i + j}`), drive(`forged_${i + j}`, false), { qos: 1 }),
      ),
    );
  }
  return undefined;
});

await measure('300 Home Assistant birth messages', async (t) => {
  const watch = await recorder(broker.url, [discoveryTopic('homeassistant', 'nas'), `${t.root}/drive/+`]);
  await Promise.all(
    Array.from({ length: 300 }, () =>
      publisher.publishAsync(homeAssistantStatusTopic('homeassistant'), 'online', { qos: 1 }),
    ),
  );
  // the keeper answers after a quiet second (plus up to 2 s of jitter), at most 10 s after the first
  await sleep(15_000);
  await watch.close();
  return `${watch.messages.filter((m) => !m.retain).length} publishes in answer`;
});

await publisher.endAsync(true);
await broker.stop();
for (const r of rows)
  console.log(`${r.case}: RSS ${r.idle} -> ${r.after} MiB, peak ${r.peak} MiB${r.note ? `; ${r.note}` : ''}`);
console.log(
  JSON.stringify({
    bench: 'led-flood',
    broker: broker.kind,
    rows,
    ...stats,
    node_flags: nodeFlags.join(' '),
    node: process.version,
  }),
);
