/**
 * The entities of one drive, all read from its retained `<root>/drive/<name>`
 * topic: when it last succeeded and how old that copy is, how the last run
 * went, whether it is plugged in, whether it is open (`offsite open`: not
 * safe to remove), whether it is overdue, its free space, and
 * how far the rolling scrub has read it.
 */
import type { Config } from '../config.js';
import { topicsFor } from '../mqtt/messages.js';
import { RESULTS } from '../protocol.js';
import { type Component, componentIds, field, onWhen, type Platform, scaled } from './component.js';

/** the part after the drive name in component keys */
export const DRIVE_KEYS = [
  'last_success',
  'age',
  'last_result',
  'plugged_in',
  'open',
  'overdue',
  'free_space',
  'last_full_scrub',
  'scrub_progress',
] as const;

export function driveComponentKey(drive: string, key: (typeof DRIVE_KEYS)[number]): string {
  return `${drive}_${key}`;
}

export function driveComponents(
  config: Pick<Config, 'node_id' | 'mqtt'>,
  drive: string,
): Record<string, Component> {
  const state_topic = topicsFor(config).drive(drive);
  const entity = (
    key: (typeof DRIVE_KEYS)[number],
    p: Platform,
    rest: Omit<Component, 'p' | 'unique_id' | 'default_entity_id' | 'state_topic'>,
  ): [string, Component] => {
    const k = driveComponentKey(drive, key);
    return [k, { p, ...componentIds(config.node_id, k, p), state_topic, ...rest }];
  };
  return Object.fromEntries([
    entity('last_success', 'sensor', {
      name: `${drive} last success`,
      value_template: field('last_success'),
      device_class: 'timestamp',
    }),
    entity('age', 'sensor', {
      name: `${drive} age`,
      value_template: field('age_days'),
      device_class: 'duration',
      unit_of_measurement: 'd',
      state_class: 'measurement',
      suggested_display_precision: 0,
    }),
    entity('last_result', 'sensor', {
      name: `${drive} last result`,
      value_template: field('last_result'),
      device_class: 'enum',
      options: [...RESULTS],
    }),
    entity('plugged_in', 'binary_sensor', {
      name: `${drive} plugged in`,
      value_template: onWhen('value_json.present'),
      device_class: 'plug',
    }),
    entity('open', 'binary_sensor', {
      name: `${drive} open`,
      value_template: onWhen('value_json.open'),
      // on: opened by `offsite open`, not safe to remove
      device_class: 'opening',
      icon: 'mdi:folder-open',
    }),
    entity('overdue', 'binary_sensor', {
      name: `${drive} overdue`,
      value_template: onWhen('value_json.overdue'),
      device_class: 'problem',
    }),
    entity('free_space', 'sensor', {
      name: `${drive} free space`,
      value_template: scaled('free_bytes', 1e9, 3),
      device_class: 'data_size',
      unit_of_measurement: 'GB',
      state_class: 'measurement',
      suggested_display_precision: 1,
    }),
    entity('last_full_scrub', 'sensor', {
      name: `${drive} last full scrub`,
      value_template: field('scrub_last_full_pass'),
      device_class: 'timestamp',
    }),
    entity('scrub_progress', 'sensor', {
      name: `${drive} scrub pass`,
      value_template: field('scrub_progress'),
      unit_of_measurement: '%',
      state_class: 'measurement',
      suggested_display_precision: 0,
      icon: 'mdi:harddisk',
    }),
  ]);
}
