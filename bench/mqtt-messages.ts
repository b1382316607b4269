/**
 * How many MQTT messages a 100,000-file run sends (docs/design.md §6: progress at most 2
 * a second whatever the file count). A real mosquitto (or aedes), the real
 * bus and reporter; rsync is replaced by progress events at the pace rsync
 * --info=progress2 reports them for small files: one per file.
 *
 *   node --import tsx bench/mqtt-messages.ts [--files 100000] [--seconds 20]
 *
 * Prints one JSON line (and a readable summary on stderr).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfig } from '../bridge/config.js';
import type { RunEvents } from '../bridge/events.js';
import { silentLogger } from '../bridge/log.js';
import { MqttLink, type Outgoing } from '../bridge/mqtt/link.js';
import { topics } from '../bridge/protocol.js';
import { MqttReporter } from '../bridge/reporters/mqtt.js';
import { Bus } from '../bridge/run/bus.js';
import { recorder, startBroker } from '../harness/broker.js';

const { values } = parseArgs({
  options: { files: { type: 'string', default: '100000' }, seconds: { type: 'string', default: '20' } },
});
const files = Number(values.files);
const seconds = Number(values.seconds);

const broker = await startBroker();
const dir = mkdtempSync(join(tmpdir(), 'offsite-bench-mqtt-'));
for (const d of ['source', 'alpha', 'state']) mkdirSync(join(dir, d));
const config = parseConfig({
  node_id: 'bench',
  state_dir: join(dir, 'state'),
  source: { path: join(dir, 'source') },
  drives: [{ name: 'alpha', directory: join(dir, 'alpha') }],
  mqtt: { url: broker.url },
});
const T = topics('offsite', 'bench');
const rec = await recorder(broker.url, [`${T.root}/#`, 'homeassistant/#']);
/** arrival times of live progress messages at the subscriber */
const progressArrivals: number[] = [];
rec.client.on('message', (topic, payload, packet) => {
  if (topic !== T.status || packet.retain) return;
  const s = JSON.parse(payload.toString());
  if (s.step === 'sync' && s.progress !== null) progressArrivals.push(performance.now());
});

const bus = new Bus<RunEvents>();
/** when the reporter hands each sync progress message to the client (what the throttle controls) */
const progressSends: number[] = [];
class TimedLink extends MqttLink {
  override publish(msg: Outgoing): Promise<boolean> {
    if (msg.topic === T.status) {
      const s = JSON.parse(msg.payload);
      if (s.step === 'sync' && s.progress !== null) progressSends.push(performance.now());
    }
    return super.publish(msg);
  }
}
const link = new TimedLink({ config: config.mqtt, log: silentLogger(), role: 'bench' });
const reporter = new MqttReporter({ config, log: silentLogger(), present: () => true, link });
reporter.attach(bus);
await reporter.start();

const runId = 'bench-1';
const drive = 'alpha';
const t0 = Date.now();
const cpu0 = process.cpuUsage();
bus.emit('run:start', { runId, drive, time: new Date() });
for (const step of ['identify', 'unlock', 'mount'])
  bus.emit('step:start', { runId, drive, step, time: new Date() });
bus.emit('step:start', { runId, drive, step: 'sync', time: new Date() });

// one progress event per file, spread evenly over `seconds`, in 10 ms ticks
const ticks = Math.max(1, Math.round((seconds * 1000) / 10));
const perTick = Math.ceil(files / ticks);
let sent = 0;
const syncStart = Date.now();
while (sent < files) {
  const tickEnd = syncStart + ((sent + perTick) / files) * seconds * 1000;
  for (let i = 0; i < perTick && sent < files; i++) {
    sent++;
    const elapsed = (Date.now() - syncStart) / 1000 || 0.001;
    bus.emit('progress', {
      runId,
      drive,
      step: 'sync',
      time: new Date(),
      percent: (sent / files) * 100,
      bytes: sent * 8192,
      rate: (sent * 8192) / elapsed,
      etaSeconds: Math.round(((files - sent) / sent) * elapsed),
    });
  }
  const wait = tickEnd - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
const syncSeconds = (Date.now() - syncStart) / 1000;
for (const step of ['verify', 'unmount', 'close'])
  bus.emit('step:start', { runId, drive, step, time: new Date() });
bus.emit('run:end', {
  runId,
  drive,
  result: 'success',
  step: null,
  message: 'copy complete; safe to remove',
  startedAt: new Date(t0),
  endedAt: new Date(),
  exitCode: 0,
  warnings: [],
  bytes: files * 8192,
  freeBytes: null,
  sizeBytes: null,
  undoErrors: [],
});
await rec.waitFor((m) => m.topic === T.status && JSON.parse(m.payload).state === 'success', 30_000);
await reporter.stop();
const cpu = process.cpuUsage(cpu0);
const runSeconds = (Date.now() - t0) / 1000;

const live = rec.messages.filter((m) => !m.retain);
const status = live.filter((m) => m.topic === T.status);
const progress = status.filter(
  (m) => JSON.parse(m.payload).step === 'sync' && JSON.parse(m.payload).progress !== null,
);
/** the most messages in any one-second window (sliding) */
function busiest(times: number[]): number {
  let most = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= 1000) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}
const gaps = progressSends.slice(1).map((t, i) => t - progressSends[i]!);

const result = {
  files,
  progress_events: sent,
  sync_seconds: Number(syncSeconds.toFixed(2)),
  run_seconds: Number(runSeconds.toFixed(2)),
  messages_total: live.length,
  status_messages: status.length,
  progress_messages: progress.length,
  progress_messages_per_second: Number((progress.length / syncSeconds).toFixed(2)),
  busiest_second_sent: busiest(progressSends),
  busiest_second_arrived: busiest(progressArrivals),
  min_gap_between_progress_sends_ms: gaps.length ? Number(Math.min(...gaps).toFixed(1)) : null,
  other_messages: live.length - status.length,
  process_cpu_ms: Math.round((cpu.user + cpu.system) / 1000),
  broker: broker.kind,
};
console.log(JSON.stringify(result));
console.error(
  `${files} files, ${sent} progress events in ${syncSeconds.toFixed(1)} s -> ${progress.length} progress messages ` +
    `(${result.progress_messages_per_second}/s), ${status.length} status messages, ${live.length} messages in all; ` +
    `process CPU ${result.process_cpu_ms} ms (${broker.kind})`,
);
await rec.close();
await broker.stop();
rmSync(dir, { recursive: true, force: true });
