/**
 * LED agent memory: the resident set of the real `offsite-led` process (compiled
 * to JavaScript, as installed) while 100,000 messages go through it, twice over:
 * a leak shows as growth between the first and the second 100,000.
 *
 *   node --import tsx bench/led-memory.ts [--messages 100000]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { topics } from '../bridge/protocol.js';
import { recorder, startBroker } from '../test/helpers/broker.js';
import { drive, ledClassDir, ledFile, status } from '../test/led-agent/fixtures.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '100000' },
    // V8 flags for the agent process, e.g. "--max-semi-space-size=1" (what offsite-led.service sets)
    'node-flags': { type: 'string', default: '' },
  },
});
const perRound = Number(values.messages);
const nodeFlags = values['node-flags'].split(' ').filter(Boolean);

// compile the agent the way `npm run build` would, but only its own files, inside the
// checkout so that its imports (mqtt, zod, yaml) resolve from node_modules
const out = join('node_modules', '.cache', 'offsite-led-bench');
rmSync(out, { recursive: true, force: true });
const tsc = spawnSync(
  process.execPath,
  [
    'node_modules/typescript/bin/tsc',
    'led-agent/cli.ts',
    ...['--outDir', out, '--rootDir', '.', '--module', 'NodeNext', '--moduleResolution', 'NodeNext'],
    ...['--strict', '--target', 'ES2022', '--skipLibCheck', '--esModuleInterop', '--types', 'node'],
  ],
  { encoding: 'utf8' },
);
if (tsc.status !== 0) throw new Error(`tsc failed:\n${tsc.stdout}${tsc.stderr}`);

const broker = await startBroker();
const base = 'bench';
const t = topics(base, 'nas');
const led = ledClassDir({ multiIndex: 'red green blue' });
const dir = mkdtempSync(join(tmpdir(), 'offsite-led-bench-'));
const config = join(dir, 'config.yaml');
writeFileSync(
  config,
  `node_id: nas
source: { path: /srv/backup }
drives: [{ name: alpha, directory: /tmp/offsite-alpha }]
mqtt: { url: '${broker.url}', base_topic: ${base} }
led: { driver: sysfs, path: '${led}', brightness: 10 }
`,
);

const watch = await recorder(broker.url, [t.ledAvailability]);
const agent = spawn(process.execPath, [...nodeFlags, join(out, 'led-agent', 'cli.js'), '--config', config], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
// never leave the agent behind when the benchmark fails half-way
process.on('exit', () => agent.kill('SIGKILL'));
let stdout = '';
agent.stdout.on('data', (d) => {
  stdout += d;
});
await watch.waitFor((m) => m.payload === 'online');

function rssMiB(): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${agent.pid}/status`, 'utf8'))?.[1]);
  return +(kb / 1024).toFixed(1);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(pred: () => boolean): Promise<void> {
  for (let i = 0; !pred(); i++) {
    if (i > 6000) throw new Error('the agent did not catch up within 60 s');
    await sleep(10);
  }
}

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

/** A change of light, seen on the LED: the agent has read everything published before it. */
async function caughtUp(): Promise<void> {
  await publisher.publishAsync(t.status, status('failed'), { qos: 1 });
  await until(() => ledFile(led, 'multi_intensity') === '255 0 0');
  await publisher.publishAsync(t.status, status('idle'), { qos: 1 });
  await until(() => ledFile(led, 'brightness') === '0');
}

async function round(label: string): Promise<void> {
  for (let i = 0; i < perRound; i += 200) {
    const batch: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(perRound, i + 200); j++) {
      const [topic, payload] = message(j);
      batch.push(publisher.publishAsync(topic, payload, { qos: 1 }));
    }
    await Promise.all(batch);
    // the broker queues at most 1,000 messages per client: pace the flood so none is dropped
    if ((i + 200) % 2000 === 0) await caughtUp();
  }
  await caughtUp();
  await sleep(1000);
  samples.push({ label, rss_mib: rssMiB() });
}

const samples: Array<{ label: string; rss_mib: number }> = [{ label: 'idle after start', rss_mib: rssMiB() }];
const started = performance.now();
await round(`after ${perRound.toLocaleString('en')} messages`);
const firstRoundS = (performance.now() - started) / 1000;
await round(`after ${(2 * perRound).toLocaleString('en')} messages`);

agent.kill('SIGTERM');
const code = await new Promise<number | null>((resolve) => agent.once('exit', resolve));
await publisher.endAsync(true);
await watch.close();
await broker.stop();
rmSync(dir, { recursive: true, force: true });

const stats = /stopped \((\d+) messages, (\d+) ignored\)/.exec(stdout);
const result = {
  bench: 'led-memory',
  broker: broker.kind,
  published: 2 * (perRound + 2 * (Math.ceil(perRound / 2000) + 1)),
  received: Number(stats?.[1]),
  ignored: Number(stats?.[2]),
  messages_per_s: Math.round(perRound / firstRoundS),
  samples,
  growth_mib: +(samples[2]!.rss_mib - samples[1]!.rss_mib).toFixed(1),
  exit: code,
  node_flags: nodeFlags.join(' '),
  node: process.version,
};
for (const s of samples) console.log(`RSS ${s.label}: ${s.rss_mib} MiB`);
console.log(
  `growth over the second ${perRound.toLocaleString('en')}: ${result.growth_mib} MiB; ` +
    `${result.received} received, ${result.ignored} ignored, ~${result.messages_per_s} messages/s; exit ${code}`,
);
console.log(JSON.stringify(result));
