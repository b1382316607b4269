/**
 * Home Assistant device-based discovery (docs/homeassistant/README.md): one retained message on
 * `<prefix>/device/offsite_<node>/config` that describes the NAS's backup as
 * one device with all its entities, the node's and each drive's.
 */
import type { Config } from '../config.js';
import { discoveryTopic } from '../protocol.js';
import type { Component, Platform } from './component.js';
import { device, origin } from './device.js';
import { driveComponents } from './drive-components.js';
import { nodeComponents } from './node-components.js';

/** A component reduced to its platform: what Home Assistant needs to remove it. */
export interface Removal {
  p: Platform;
}

export interface DiscoveryPayload {
  dev: ReturnType<typeof device>;
  o: ReturnType<typeof origin>;
  cmps: Record<string, Component | Removal>;
}

export type DiscoveryConfig = Pick<Config, 'node_id' | 'mqtt' | 'led' | 'drives'>;

export function discoveryTopicFor(config: Pick<Config, 'node_id' | 'mqtt'>): string {
  return discoveryTopic(config.mqtt?.discovery_prefix ?? 'homeassistant', config.node_id);
}

/** Every component this configuration creates, keyed by component id. */
export function components(config: DiscoveryConfig): Record<string, Component> {
  const all: Record<string, Component> = { ...nodeComponents(config) };
  for (const d of config.drives) Object.assign(all, driveComponents(config, d.name));
  return all;
}

export function discoveryPayload(config: DiscoveryConfig): DiscoveryPayload {
  return { dev: device(config), o: origin(), cmps: components(config) };
}

/** The entity ids discovery asks Home Assistant for (docs and dashboards refer to these). */
export function entityIds(config: DiscoveryConfig): string[] {
  return Object.values(components(config)).map((c) => c.default_entity_id);
}
