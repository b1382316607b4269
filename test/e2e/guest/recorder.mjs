// The guest-side witness of the e2e scenarios, one JSON line per observation in <out>:
//   {kind:'mqtt', t, topic, retain, payload}   every message under <base>/#
//   {kind:'at-success', t, drive, mounted, mapper}   the moment a live `success` status
//       arrives: is anything still mounted at the drive's mount point, is its mapping open?
//       Checked synchronously in the message handler, before anything else can happen.
//   {kind:'led', t, brightness, multi_intensity}   every change of the LED files (polled
//       every 20 ms), so a light shown for a second is still seen.
// Usage: node recorder.mjs <out.jsonl> <mqtt url> <base topic> <led dir> <config.yaml>
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { parse } from 'yaml';

const [out, url, base, ledDir, configFile] = process.argv.slice(2);
const write = (o) => appendFileSync(out, `${JSON.stringify({ t: Date.now(), ...o })}\n`);

function driveOf(name) {
  const config = parse(readFileSync(configFile, 'utf8'));
  return (config.drives ?? []).find((d) => d.name === name);
}

function mountedAt(dir) {
  // /proc/mounts escapes a space as \040
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[1]?.replace(/\\040/g, ' ') === dir);
}

const client = mqtt.connect(url, { reconnectPeriod: 500 });
client.on('connect', () => {
  client.subscribe(`${base}/#`);
  write({ kind: 'connected' });
});
client.on('message', (topic, payload, packet) => {
  let json = null;
  try {
    json = JSON.parse(payload.toString());
  } catch {}
  if (!packet.retain && json?.state === 'success' && topic.endsWith('/status') && json.drive) {
    const drive = driveOf(json.drive);
    const mapper = `/dev/mapper/${drive?.mapper ?? `offsite_${json.drive}`}`;
    write({
      kind: 'at-success',
      drive: json.drive,
      mounted: drive ? mountedAt(drive.mount_point) : null,
      mapper: existsSync(mapper),
    });
  }
  write({ kind: 'mqtt', topic, retain: packet.retain, payload: json ?? payload.toString() });
});

let last = '';
setInterval(() => {
  try {
    const brightness = readFileSync(join(ledDir, 'brightness'), 'utf8').trim();
    const multi_intensity = readFileSync(join(ledDir, 'multi_intensity'), 'utf8').trim();
    const now = `${brightness}|${multi_intensity}`;
    // a read between the agent's truncate and its write sees an empty file: not a colour
    if (now !== last && multi_intensity !== '') {
      last = now;
      write({ kind: 'led', brightness, multi_intensity });
    }
  } catch {}
}, 20);
