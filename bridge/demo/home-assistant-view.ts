/**
 * What Home Assistant would show during the demo: a subscriber on the same
 * topics Home Assistant reads, printing each change of state in a line.
 */
import mqtt from 'mqtt';
import type { Config } from '../config.js';
import { topicsFor } from '../mqtt/messages.js';
import { decode, discoveryTopic, eventSchema, statusSchema } from '../protocol.js';

export async function watchAsHomeAssistant(
  config: Config,
  print: (line: string) => void,
): Promise<() => Promise<void>> {
  const mqttConfig = config.mqtt!;
  const t = topicsFor(config);
  const discovery = discoveryTopic(mqttConfig.discovery_prefix, config.node_id);
  const client = await mqtt.connectAsync(mqttConfig.url, { reconnectPeriod: 0 });
  let lastLine = '';
  client.on('message', (topic, payload) => {
    if (topic === discovery) {
      const cmps = (JSON.parse(payload.toString()) as { cmps?: Record<string, { p: string }> }).cmps ?? {};
      const kinds = Object.values(cmps).reduce<Record<string, number>>((acc, c) => {
        acc[c.p] = (acc[c.p] ?? 0) + 1;
        return acc;
      }, {});
      print(
        `HA   discovered device "offsite ${config.node_id}": ${Object.entries(kinds)
          .map(([p, n]) => `${n} ${p}`)
          .join(', ')}`,
      );
      return;
    }
    if (topic === t.event) {
      const e = decode(eventSchema, payload);
      if (e.ok)
        print(
          `HA   event ${e.value.event_type}${e.value.drive ? ` (${e.value.drive})` : ''}: ${e.value.message ?? ''}`,
        );
      return;
    }
    const s = decode(statusSchema, payload);
    if (!s.ok) return;
    const v = s.value;
    const progress = v.progress === null ? '' : `, ${Math.round(v.progress)} %`;
    const line = `HA   status ${v.state}${v.drive ? ` · ${v.drive}` : ''}${v.step ? ` · ${v.step}` : ''}${progress}${
      v.state === 'success' || v.state === 'failed' ? ` · ${v.message ?? ''}` : ''
    }`;
    if (line !== lastLine) print(line);
    lastLine = line;
  });
  await client.subscribeAsync([t.status, t.event, discovery]);
  return async () => {
    await client.endAsync(true);
  };
}
