/**
 * Home Assistant's rules for what we send, as a table the tests check our
 * discovery against. Taken from Home Assistant's MQTT documentation and its
 * sensor constants (device classes, their units and state classes), written
 * down here so that a change of ours that Home Assistant would reject (or
 * quietly ignore) fails a test instead of a user's setup.
 */

/** keys a device-based discovery message may have at its root, short and long forms */
export const ROOT_KEYS = new Set([
  'dev',
  'device',
  'o',
  'origin',
  'cmps',
  'components',
  'state_topic',
  'qos',
  'encoding',
]);
export const DEVICE_KEYS = new Set([
  'ids',
  'identifiers',
  'name',
  'mf',
  'manufacturer',
  'mdl',
  'model',
  'mdl_id',
  'model_id',
  'sw',
  'sw_version',
  'hw',
  'hw_version',
  'sn',
  'serial_number',
  'sa',
  'suggested_area',
  'cu',
  'configuration_url',
  'cns',
  'connections',
  'via_device',
]);
export const ORIGIN_KEYS = new Set(['name', 'sw', 'sw_version', 'url', 'support_url']);

/** options every entity platform here accepts (full names; `p` is device discovery's platform key) */
const COMMON = [
  'p',
  'platform',
  'name',
  'unique_id',
  'default_entity_id',
  'state_topic',
  'value_template',
  'device_class',
  'icon',
  'entity_category',
  'enabled_by_default',
  'qos',
  'encoding',
  'availability',
  'availability_topic',
  'availability_mode',
  'json_attributes_topic',
  'json_attributes_template',
  'entity_picture',
];
export const PLATFORM_OPTIONS: Record<string, Set<string>> = {
  sensor: new Set([
    ...COMMON,
    'unit_of_measurement',
    'state_class',
    'suggested_display_precision',
    'options',
    'expire_after',
    'force_update',
    'last_reset_value_template',
  ]),
  binary_sensor: new Set([
    ...COMMON,
    'payload_on',
    'payload_off',
    'off_delay',
    'expire_after',
    'force_update',
  ]),
  event: new Set([...COMMON, 'event_types']),
};

/** required in a component of device-based discovery (entities need a unique_id there) */
export const REQUIRED: Record<string, string[]> = {
  sensor: ['p', 'unique_id', 'state_topic'],
  binary_sensor: ['p', 'unique_id', 'state_topic'],
  event: ['p', 'unique_id', 'state_topic', 'event_types'],
};

/** the options that replaced older ones: sending the old one is deprecated (object_id: removed in 2026.4) */
export const DEPRECATED = new Set(['object_id', 'obj_id']);

/**
 * Sensor device classes we use: the units Home Assistant accepts with each
 * (null: no unit allowed) and the state classes it accepts.
 */
export const SENSOR_CLASSES: Record<string, { units: string[] | null; stateClasses: string[] }> = {
  enum: { units: null, stateClasses: [] },
  timestamp: { units: null, stateClasses: [] },
  data_size: {
    units: [
      'bit',
      'kbit',
      'Mbit',
      'Gbit',
      'B',
      'kB',
      'MB',
      'GB',
      'TB',
      'PB',
      'EB',
      'ZB',
      'YB',
      'KiB',
      'MiB',
      'GiB',
      'TiB',
      'PiB',
      'EiB',
      'ZiB',
      'YiB',
    ],
    stateClasses: ['measurement', 'total', 'total_increasing'],
  },
  data_rate: {
    units: ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'B/s', 'kB/s', 'MB/s', 'GB/s', 'KiB/s', 'MiB/s', 'GiB/s'],
    stateClasses: ['measurement'],
  },
  duration: {
    units: ['d', 'h', 'min', 's', 'ms', 'µs'],
    stateClasses: ['measurement', 'total', 'total_increasing'],
  },
};
export const STATE_CLASSES = new Set(['measurement', 'measurement_angle', 'total', 'total_increasing']);

export const BINARY_SENSOR_CLASSES = new Set([
  'battery',
  'battery_charging',
  'carbon_monoxide',
  'cold',
  'connectivity',
  'door',
  'garage_door',
  'gas',
  'heat',
  'light',
  'lock',
  'moisture',
  'motion',
  'moving',
  'occupancy',
  'opening',
  'plug',
  'power',
  'presence',
  'problem',
  'running',
  'safety',
  'smoke',
  'sound',
  'tamper',
  'update',
  'vibration',
  'window',
]);

/** entity ids: `<domain>.<object id>`, lower-case letters, digits and single underscores */
export const ENTITY_ID = /^(sensor|binary_sensor|event)\.[a-z0-9]+(_[a-z0-9]+)*$/;

/** what Home Assistant's MQTT sensor takes as "unknown" */
export const PAYLOAD_NONE = 'None';

/**
 * Render the few template shapes we use, the way Home Assistant's Jinja would
 * for a JSON payload (JSON null prints as `None`). Anything else throws, so a
 * new template shape gets a rule here before it ships.
 */
export function render(template: string, json: Record<string, unknown>): string {
  const py = (v: unknown) =>
    v === null || v === undefined ? 'None' : typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v);
  let m = /^\{\{ value_json\.([a-z_]+) \}\}$/.exec(template);
  if (m) return py(json[m[1]!]);
  m = /^\{\{ '(\w+)' if value_json\.([a-z_]+) == '(\w+)' else '(\w+)' \}\}$/.exec(template);
  if (m) return json[m[2]!] === m[3] ? m[1]! : m[4]!;
  m = /^\{\{ '(\w+)' if value_json\.([a-z_]+) else '(\w+)' \}\}$/.exec(template);
  if (m) return json[m[2]!] ? m[1]! : m[3]!;
  m =
    /^\{\{ \(value_json\.([a-z_]+) \/ (\d+)\) \| round\((\d)\) if value_json\.([a-z_]+) is not none else 'None' \}\}$/.exec(
      template,
    );
  if (m && m[1] === m[4]) {
    const v = json[m[1]!];
    if (v === null || v === undefined) return 'None';
    const f = 10 ** Number(m[3]);
    return String(Math.round((Number(v) / Number(m[2])) * f) / f);
  }
  throw new Error(`no rule for the template ${template}`);
}
