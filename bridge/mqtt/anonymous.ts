/**
 * May a client without a login publish under offsite's topics? Asked the only
 * way that tells: an anonymous MQTT 5 client publishes one empty, not
 * retained message at QoS 1, and the broker's answer (CONNACK, then PUBACK
 * with its reason code) says whether it took it. A v3.1.1 client would not be
 * told: the broker acknowledges a publish its ACL drops. Used by `offsite doctor`.
 */
import mqtt from 'mqtt';
import type { MqttConfig } from '../config.js';
import { clientOptions } from './connection.js';

export type AnonymousAccess =
  /** the broker took an anonymous client's publish */
  | 'publishes'
  /** the broker refused the anonymous login */
  | 'login refused'
  /** logged in, but the ACL refused the publish */
  | 'publish refused'
  /** no answer (down, TLS trouble, no MQTT 5): the broker check reports that */
  | 'unknown';

/** MQTT 5 reason codes: bad user name or password, not authorized */
const REFUSED = [134, 135];
/** MQTT 3.1.1 CONNACK return codes, from a broker that answers a v5 CONNECT the old way */
const REFUSED_V3 = [4, 5];

export async function anonymousAccess(
  cfg: MqttConfig,
  topic: string,
  timeoutMs: number,
): Promise<AnonymousAccess> {
  const {
    username: _u,
    password: _p,
    ...opts
  } = clientOptions(cfg, {
    role: 'doctor-anonymous',
    connectTimeoutMs: timeoutMs,
    reconnectMs: 0,
  });
  let client: mqtt.MqttClient;
  try {
    client = await mqtt.connectAsync(cfg.url, { ...opts, protocolVersion: 5, reconnectPeriod: 0 });
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'number' && [...REFUSED, ...REFUSED_V3].includes(code)
      ? 'login refused'
      : 'unknown';
  }
  let timer: NodeJS.Timeout | undefined;
  const noAnswer = new Promise<AnonymousAccess>((resolve) => {
    timer = setTimeout(() => resolve('unknown'), timeoutMs);
  });
  const answer = client.publishAsync(topic, '', { qos: 1, retain: false }).then(
    (): AnonymousAccess => 'publishes',
    (e: unknown): AnonymousAccess => {
      const code = (e as { code?: unknown }).code;
      return typeof code === 'number' && REFUSED.includes(code) ? 'publish refused' : 'unknown';
    },
  );
  try {
    return await Promise.race([answer, noAnswer]);
  } finally {
    clearTimeout(timer);
    await client.endAsync(true).catch(() => {});
  }
}
