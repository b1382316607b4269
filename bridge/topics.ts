/**
 * The half of the MQTT contract that needs no schema: topics, names, states
 * and limits. bridge/protocol.ts re-exports all of it next to the payload
 * schemas; the long-running LED agent imports this half alone, so that zod is
 * not loaded for good (docs/benchmarks.md, LED agent).
 */
/** `open`: a drive is unlocked and mounted read-only for browsing or a restore (`offsite open`): not safe to remove */
export const RUN_STATES = ['idle', 'running', 'success', 'failed', 'open'] as const;
export type RunState = (typeof RUN_STATES)[number];

export const RESULTS = ['success', 'warning', 'failed'] as const;
export type Result = (typeof RESULTS)[number];

export const EVENT_TYPES = ['started', 'succeeded', 'failed', 'overdue'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const AVAILABILITY = { online: 'online', offline: 'offline' } as const;

/** ISO-8601 with an explicit offset (`Z` or `+01:00`), as Home Assistant's timestamp sensors need. */
export const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Drive and node names travel inside topics, so they must never contain `/`, `+` or `#`.
 * A node id has no `_`: Home Assistant ids turn its `-` into `_` (they allow no `-`), and
 * `nas-1` and `nas_1` would be one device there.
 */
export const DRIVE_NAME = /^[a-z0-9_]+$/;
export const NODE_ID = /^[a-z0-9-]+$/;

/** `mqtt.base_topic` when the configuration does not say (topicsFor applies it). */
export const DEFAULT_BASE_TOPIC = 'offsite';

/** The retained status topic under a node's root (`<base_topic>/<node_id>`). */
export function statusTopic(root: string): string {
  return `${root}/status`;
}

/** Topic builders for one node. */
export function topics(baseTopic: string, nodeId: string) {
  const root = `${baseTopic}/${nodeId}`;
  return {
    root,
    status: statusTopic(root),
    drive: (name: string) => `${root}/drive/${name}`,
    driveWildcard: `${root}/drive/+`,
    event: `${root}/event`,
    ledAvailability: `${root}/led/availability`,
    bridgeAvailability: `${root}/bridge/availability`,
    /** `offsite doctor` publishes one empty message here as a client without a login: does the broker take it? */
    probe: `${root}/probe`,
    /** the drive name in a `<root>/drive/<name>` topic, or null for any other topic */
    driveOf(topic: string): string | null {
      const prefix = `${root}/drive/`;
      if (!topic.startsWith(prefix)) return null;
      const name = topic.slice(prefix.length);
      return DRIVE_NAME.test(name) ? name : null;
    },
  };
}
export type Topics = ReturnType<typeof topics>;

/** Home Assistant device-based discovery topic for a node. */
export function discoveryTopic(discoveryPrefix: string, nodeId: string): string {
  return `${discoveryPrefix}/device/offsite_${nodeId.replace(/-/g, '_')}/config`;
}

/** Home Assistant's birth/last-will topic (`online` when it (re)starts). */
export function homeAssistantStatusTopic(discoveryPrefix: string): string {
  return `${discoveryPrefix}/status`;
}

/** Every topic of this node, under the configured base topic (or the default). */
export function topicsFor(config: { node_id: string; mqtt?: { base_topic: string } | undefined }): Topics {
  return topics(config.mqtt?.base_topic ?? DEFAULT_BASE_TOPIC, config.node_id);
}

/** The largest payload anyone reads (the bridge's are a few hundred bytes); larger ones are dropped unread. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;
