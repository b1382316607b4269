/**
 * Publishing discovery: the current payload, plus what takes back the
 * previous one's leftovers. A component that is gone is sent with only its
 * platform (`p`), which removes that entity, and keeps being sent so in every
 * later publish: Home Assistant ignores a component that is simply missing,
 * so one that was offline at the first removal would keep the entity for ever.
 * A node whose id changed gets its old device topic cleared. Retained state
 * topics nobody describes any more are cleared too.
 */
import type { Config } from '../config.js';
import { errorMessage } from '../error-message.js';
import { childLogger, type Logger } from '../log.js';
import type { MqttLink, Outgoing } from '../mqtt/link.js';
import { topicsFor } from '../mqtt/messages.js';
import { statusTopic } from '../protocol.js';
import type { Platform } from './component.js';
import {
  type DiscoveryConfig,
  type DiscoveryPayload,
  discoveryPayload,
  discoveryTopicFor,
} from './discovery.js';
import { loadPublished, type Published, savePublished } from './published.js';

export interface DiscoveryPlan {
  messages: Outgoing[];
  /** what to remember once the discovery message has reached the broker */
  next: Published;
}

/** An empty retained message deletes the retained message on that topic. */
function clear(topic: string): Outgoing {
  return { topic, payload: '', retain: true };
}

export function planDiscovery(config: DiscoveryConfig, previous: Published | null): DiscoveryPlan {
  const topic = discoveryTopicFor(config);
  const t = topicsFor(config);
  const payload: DiscoveryPayload = discoveryPayload(config);
  const next: Published = {
    topic,
    root: t.root,
    components: Object.fromEntries(Object.entries(payload.cmps).map(([id, c]) => [id, c.p])),
    driveTopics: config.drives.map((d) => t.drive(d.name)),
  };
  const messages: Outgoing[] = [];
  if (previous) {
    if (previous.topic !== topic) messages.push(clear(previous.topic));
    else {
      const removed: Record<string, Platform> = {};
      for (const [id, p] of Object.entries({ ...previous.removed, ...previous.components }))
        if (!(id in payload.cmps)) removed[id] = p;
      for (const [id, p] of Object.entries(removed)) payload.cmps[id] = { p };
      if (Object.keys(removed).length) next.removed = removed;
    }
    const now = new Set([t.status, ...next.driveTopics]);
    for (const old of [statusTopic(previous.root), ...previous.driveTopics])
      if (!now.has(old)) messages.push(clear(old));
  }
  messages.push({ topic, payload: JSON.stringify(payload), retain: true });
  return { messages, next };
}

/**
 * Publish discovery through a link. Resolves true once the broker has the
 * discovery message (and state_dir remembers it), false when it did not get
 * out (it is published again by the next run). Never throws.
 */
export async function publishDiscovery(
  link: MqttLink,
  config: DiscoveryConfig & Pick<Config, 'state_dir'>,
  log: Logger,
): Promise<boolean> {
  const plan = planDiscovery(config, loadPublished(config.state_dir));
  const sent = await Promise.all(plan.messages.map((m) => link.publish(m)));
  const delivered = sent[sent.length - 1] === true;
  if (delivered) {
    try {
      savePublished(config.state_dir, plan.next);
    } catch (e) {
      // the removals are simply sent again next time
      childLogger(log, 'home assistant').debug(`cannot remember the published discovery: ${errorMessage(e)}`);
    }
  }
  return delivered;
}
