/**
 * One entity in the device-based discovery payload. Keys are Home Assistant's
 * full option names, except `p` (platform), which device-based discovery
 * documents in its short form; the full names keep the payload readable in an
 * MQTT explorer.
 */
import { nodeKey } from './device.js';

export type Platform = 'sensor' | 'binary_sensor' | 'event';

export interface Component {
  p: Platform;
  name: string;
  unique_id: string;
  /** `<platform>.<object id>`: the entity id Home Assistant gives the entity when it first sees it */
  default_entity_id: string;
  state_topic: string;
  value_template?: string;
  device_class?: string;
  unit_of_measurement?: string;
  state_class?: 'measurement' | 'total' | 'total_increasing';
  suggested_display_precision?: number;
  options?: string[];
  event_types?: string[];
  payload_on?: string;
  payload_off?: string;
  entity_category?: 'diagnostic' | 'config';
  icon?: string;
}

/** Component keys double as the last part of unique and entity ids. */
export function componentIds(nodeId: string, key: string, p: Platform) {
  const objectId = `offsite_${nodeKey(nodeId)}_${key}`;
  return { unique_id: objectId, default_entity_id: `${p}.${objectId}` };
}

/**
 * A template that reads one field of the JSON payload. JSON null renders as
 * `None`, which Home Assistant's MQTT sensor takes as "unknown".
 */
export function field(name: string): string {
  return `{{ value_json.${name} }}`;
}

/**
 * A number of bytes in a larger unit (GB, MB/s): what a person reads on a
 * dashboard without first changing the entity's display unit. The payload
 * itself stays in bytes.
 */
export function scaled(name: string, divisor: number, digits: number): string {
  return `{{ (value_json.${name} / ${divisor}) | round(${digits}) if value_json.${name} is not none else 'None' }}`;
}

/** A binary sensor's ON/OFF from a Jinja condition on the payload. */
export function onWhen(condition: string): string {
  return `{{ 'ON' if ${condition} else 'OFF' }}`;
}
