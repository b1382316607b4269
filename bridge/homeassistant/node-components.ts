/**
 * The entities of the NAS's backup as a whole: the current run (from the
 * retained status topic), the event entity (from the event topic) and, when
 * an LED is configured, whether the LED agent is connected.
 *
 * No availability topic: the bridge runs only during a backup, and the status
 * it leaves behind is retained and stays true after it exits, so an entity
 * going "unavailable" between backups would be a lie.
 */
import type { Config } from '../config.js';
import { topicsFor } from '../mqtt/messages.js';
import { EVENT_TYPES, RUN_STATES } from '../protocol.js';
import { type Component, componentIds, field, onWhen, type Platform, scaled } from './component.js';

function entity(
  config: Pick<Config, 'node_id'>,
  key: string,
  p: Platform,
  rest: Omit<Component, 'p' | 'unique_id' | 'default_entity_id'>,
): [string, Component] {
  return [key, { p, ...componentIds(config.node_id, key, p), ...rest }];
}

export function nodeComponents(config: Pick<Config, 'node_id' | 'mqtt' | 'led'>): Record<string, Component> {
  const t = topicsFor(config);
  const status = t.status;
  const list: [string, Component][] = [
    entity(config, 'state', 'sensor', {
      name: 'State',
      state_topic: status,
      value_template: field('state'),
      device_class: 'enum',
      options: [...RUN_STATES],
      icon: 'mdi:harddisk',
    }),
    entity(config, 'drive', 'sensor', {
      name: 'Drive',
      state_topic: status,
      value_template: field('drive'),
      icon: 'mdi:harddisk-plus',
    }),
    entity(config, 'step', 'sensor', {
      name: 'Step',
      state_topic: status,
      value_template: field('step'),
      icon: 'mdi:format-list-numbered',
    }),
    entity(config, 'progress', 'sensor', {
      name: 'Progress',
      state_topic: status,
      value_template: field('progress'),
      unit_of_measurement: '%',
      state_class: 'measurement',
      suggested_display_precision: 0,
      icon: 'mdi:progress-upload',
    }),
    entity(config, 'bytes', 'sensor', {
      name: 'Copied',
      state_topic: status,
      value_template: scaled('bytes', 1e9, 3),
      device_class: 'data_size',
      unit_of_measurement: 'GB',
      state_class: 'measurement',
      suggested_display_precision: 2,
    }),
    entity(config, 'rate', 'sensor', {
      name: 'Speed',
      state_topic: status,
      value_template: scaled('rate', 1e6, 2),
      device_class: 'data_rate',
      unit_of_measurement: 'MB/s',
      state_class: 'measurement',
      suggested_display_precision: 1,
    }),
    entity(config, 'eta', 'sensor', {
      name: 'Finishes',
      state_topic: status,
      value_template: field('eta'),
      device_class: 'timestamp',
    }),
    entity(config, 'last_success', 'sensor', {
      name: 'Last success',
      state_topic: status,
      value_template: field('last_success'),
      device_class: 'timestamp',
    }),
    entity(config, 'running', 'binary_sensor', {
      name: 'Running',
      state_topic: status,
      value_template: onWhen("value_json.state == 'running'"),
      device_class: 'running',
    }),
    entity(config, 'problem', 'binary_sensor', {
      name: 'Problem',
      state_topic: status,
      value_template: onWhen("value_json.state == 'failed'"),
      device_class: 'problem',
    }),
    entity(config, 'event', 'event', {
      name: 'Backup',
      state_topic: t.event,
      event_types: [...EVENT_TYPES],
      icon: 'mdi:backup-restore',
    }),
  ];
  if (config.led.driver !== 'none')
    list.push(
      entity(config, 'led_agent', 'binary_sensor', {
        name: 'LED agent',
        state_topic: t.ledAvailability,
        payload_on: 'online',
        payload_off: 'offline',
        device_class: 'connectivity',
        entity_category: 'diagnostic',
      }),
    );
  return Object.fromEntries(list);
}
