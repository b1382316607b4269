/**
 * The discovery payload against Home Assistant's rules (ha-rules.ts), and its
 * templates against the payloads the bridge really publishes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../bridge/config.js';
import type { RunEnded } from '../../../bridge/events.js';
import type { Component } from '../../../bridge/homeassistant/component.js';
import { deviceName } from '../../../bridge/homeassistant/device.js';
import { discoveryPayload, discoveryTopicFor, entityIds } from '../../../bridge/homeassistant/discovery.js';
import { driveState, emptyRecord } from '../../../bridge/ledger.js';
import { eventMessage, recordAfterRun } from '../../../bridge/mqtt/messages.js';
import { openStatus } from '../../../bridge/open/publish.js';
import { EVENT_TYPES, idleStatus, isoTime, topics } from '../../../bridge/protocol.js';
import { RunStatus } from '../../../bridge/reporters/run-status.js';
import {
  BINARY_SENSOR_CLASSES,
  DEPRECATED,
  DEVICE_KEYS,
  ENTITY_ID,
  ORIGIN_KEYS,
  PAYLOAD_NONE,
  PLATFORM_OPTIONS,
  REQUIRED,
  ROOT_KEYS,
  render,
  SENSOR_CLASSES,
  STATE_CLASSES,
} from './ha-rules.js';

const config = parseConfig({
  node_id: 'nas-2',
  source: { path: '/srv/backup' },
  drives: [
    { name: 'alpha', directory: '/tmp/alpha' },
    { name: 'beta', directory: '/tmp/beta' },
  ],
  led: { driver: 'blinkstick' },
});
const payload = discoveryPayload(config);
const cmps = Object.entries(payload.cmps) as [string, Component][];
const T = topics('offsite', 'nas-2');

/** the status in the middle of a sync */
function sync(run: RunStatus, now: Date) {
  run.progress(
    {
      runId: 'r',
      drive: 'alpha',
      step: 'sync',
      time: now,
      percent: 42.5,
      bytes: 1e9,
      rate: 5e7,
      etaSeconds: 60,
    },
    now,
  );
  return run.snapshot(now);
}

/** what the bridge publishes on each topic over a run's life */
function publishedPayloads(): Map<string, Record<string, unknown>[]> {
  const now = new Date('2026-11-28T12:00:00+01:00');
  const run = new RunStatus(null);
  const end: RunEnded = {
    runId: 'r',
    drive: 'alpha',
    result: 'failed',
    step: 'mount',
    message: 'not a mount point',
    startedAt: now,
    endedAt: now,
    exitCode: 1,
    warnings: [],
    bytes: null,
    freeBytes: null,
    sizeBytes: null,
    undoErrors: [],
  };
  const statuses = [
    idleStatus(),
    run.started({ runId: 'r', drive: 'alpha', time: now }, now),
    run.step({ runId: 'r', drive: 'alpha', step: 'sync', time: now }, now),
    sync(run, now),
    run.ended(end, now),
    new RunStatus(null).ended({ ...end, result: 'success', step: null, message: 'done', bytes: 5 }, now),
    openStatus(
      'alpha',
      { open: true, message: 'alpha is open, read-only, on /mnt/offsite/alpha' },
      null,
      now,
    ),
    openStatus('alpha', { open: false, message: 'alpha is closed: safe to remove' }, null, now),
  ];
  const never = emptyRecord('alpha');
  const done = recordAfterRun(never, { ...end, result: 'success', freeBytes: 12, sizeBytes: 100 });
  const scrubbed = {
    ...done,
    scrub: {
      next: { path: 'data/0/17', offset: 4096 },
      position_bytes: 1234,
      copy_bytes: 5000,
      pass_started: '2026-11-01T10:00:00+01:00',
      last_full_pass: '2026-11-01T10:00:00+01:00',
    },
  };
  const drives = (name: string) =>
    [never, done, scrubbed].flatMap((r) =>
      [
        { present: true, open: false },
        { present: false, open: false },
        { present: true, open: true },
      ].map((facts) => driveState({ ...r, name }, config, now, facts) as Record<string, unknown>),
    );
  return new Map<string, Record<string, unknown>[]>([
    [T.status, statuses as unknown as Record<string, unknown>[]],
    [T.drive('alpha'), drives('alpha')],
    [T.drive('beta'), drives('beta')],
    [
      T.event,
      EVENT_TYPES.map((e) => JSON.parse(eventMessage(config, { event_type: e, drive: 'alpha' }).payload)),
    ],
  ]);
}

describe('Home Assistant discovery', () => {
  it('is one device-based message with dev, o and cmps, in forms Home Assistant knows', () => {
    assert.equal(discoveryTopicFor(config), 'homeassistant/device/offsite_nas_2/config');
    for (const k of Object.keys(payload)) assert.ok(ROOT_KEYS.has(k), `root key ${k}`);
    for (const k of Object.keys(payload.dev)) assert.ok(DEVICE_KEYS.has(k), `device key ${k}`);
    for (const k of Object.keys(payload.o)) assert.ok(ORIGIN_KEYS.has(k), `origin key ${k}`);
    assert.deepEqual(payload.dev.ids, ['offsite_nas_2']);
    assert.ok(payload.dev.name && payload.o.name === 'offsite' && payload.o.sw);
  });

  it('gives every component its platform, required options, and only options its platform has', () => {
    for (const [id, c] of cmps) {
      assert.ok(c.p in REQUIRED, `${id}: platform ${c.p}`);
      for (const k of REQUIRED[c.p]!) assert.ok(k in c, `${id}: ${k} is required`);
      for (const k of Object.keys(c)) {
        assert.ok(PLATFORM_OPTIONS[c.p]!.has(k), `${id}: ${c.p} has no option ${k}`);
        assert.ok(!DEPRECATED.has(k), `${id}: ${k} is deprecated`);
      }
    }
  });

  it('has stable ids and entity ids that say what they are', () => {
    const again = discoveryPayload(config);
    const uniqueIds = cmps.map(([, c]) => c.unique_id);
    assert.equal(new Set(uniqueIds).size, uniqueIds.length, 'unique ids are unique');
    for (const [id, c] of cmps) {
      assert.equal((again.cmps[id] as Component).unique_id, c.unique_id, 'the same on every publish');
      assert.equal(c.unique_id, `offsite_nas_2_${id}`);
      assert.match(c.default_entity_id, ENTITY_ID);
      assert.equal(c.default_entity_id, `${c.p}.${c.unique_id}`);
      // names read after the device name; repeating it would read "Offsite nas-2 Offsite nas-2 …"
      assert.ok(!c.name.toLowerCase().startsWith(deviceName('nas-2').toLowerCase()), c.name);
    }
    assert.ok(entityIds(config).includes('sensor.offsite_nas_2_alpha_age'));
    assert.ok(entityIds(config).includes('event.offsite_nas_2_event'));
  });

  it('pairs device classes with the units and state classes Home Assistant accepts', () => {
    for (const [id, c] of cmps) {
      if (c.state_class) assert.ok(STATE_CLASSES.has(c.state_class), `${id}: state class ${c.state_class}`);
      if (c.p === 'binary_sensor') {
        assert.ok(c.device_class && BINARY_SENSOR_CLASSES.has(c.device_class), `${id}: ${c.device_class}`);
        continue;
      }
      if (c.p !== 'sensor' || !c.device_class) continue;
      const rule = SENSOR_CLASSES[c.device_class];
      assert.ok(rule, `${id}: no rule for device class ${c.device_class}`);
      if (rule.units === null)
        assert.equal(c.unit_of_measurement, undefined, `${id}: ${c.device_class} takes no unit`);
      else
        assert.ok(rule.units.includes(c.unit_of_measurement ?? ''), `${id}: unit ${c.unit_of_measurement}`);
      if (c.state_class)
        assert.ok(rule.stateClasses.includes(c.state_class), `${id}: state class ${c.state_class}`);
      if (c.device_class === 'enum')
        assert.ok(c.options && c.options.length > 0, `${id}: enum needs options`);
      else assert.equal(c.options, undefined, `${id}: options only with enum`);
    }
  });

  it('has the entities the issue asks for, for the node and for each drive', () => {
    const byId = new Map(cmps);
    const expect = (id: string, p: string, deviceClass?: string) => {
      const c = byId.get(id);
      assert.ok(c, `component ${id}`);
      assert.equal(c.p, p, id);
      assert.equal(c.device_class, deviceClass, id);
    };
    expect('state', 'sensor', 'enum');
    assert.deepEqual(byId.get('state')?.options, ['idle', 'running', 'success', 'failed', 'open']);
    expect('step', 'sensor');
    expect('progress', 'sensor');
    assert.equal(byId.get('progress')?.unit_of_measurement, '%');
    expect('bytes', 'sensor', 'data_size');
    expect('rate', 'sensor', 'data_rate');
    expect('eta', 'sensor', 'timestamp');
    expect('last_success', 'sensor', 'timestamp');
    expect('running', 'binary_sensor', 'running');
    expect('problem', 'binary_sensor', 'problem');
    expect('event', 'event');
    assert.deepEqual(byId.get('event')?.event_types, ['started', 'succeeded', 'failed', 'overdue']);
    expect('led_agent', 'binary_sensor', 'connectivity');
    for (const d of ['alpha', 'beta']) {
      expect(`${d}_last_success`, 'sensor', 'timestamp');
      expect(`${d}_age`, 'sensor', 'duration');
      assert.equal(byId.get(`${d}_age`)?.unit_of_measurement, 'd');
      expect(`${d}_last_result`, 'sensor', 'enum');
      expect(`${d}_plugged_in`, 'binary_sensor', 'plug');
      expect(`${d}_open`, 'binary_sensor', 'opening');
      expect(`${d}_overdue`, 'binary_sensor', 'problem');
      expect(`${d}_free_space`, 'sensor', 'data_size');
      expect(`${d}_last_full_scrub`, 'sensor', 'timestamp');
      assert.equal(byId.get(`${d}_scrub_progress`)?.unit_of_measurement, '%');
    }
  });

  it('reads values Home Assistant accepts out of every payload the bridge publishes', () => {
    const published = publishedPayloads();
    let checked = 0;
    for (const [id, c] of cmps) {
      if (c.state_topic === T.ledAvailability) {
        assert.deepEqual([c.payload_on, c.payload_off], ['online', 'offline']);
        continue;
      }
      const samples = published.get(c.state_topic);
      assert.ok(samples?.length, `${id}: nothing is published on ${c.state_topic}`);
      for (const json of samples) {
        checked++;
        if (c.p === 'event') {
          assert.ok(
            c.event_types?.includes(json.event_type as string),
            `${id}: event_type ${json.event_type}`,
          );
          assert.ok(isoTime.safeParse(json.time).success, `${id}: time with an offset`);
          continue;
        }
        const value = render(c.value_template!, json);
        if (c.p === 'binary_sensor') {
          assert.ok([c.payload_on ?? 'ON', c.payload_off ?? 'OFF'].includes(value), `${id}: ${value}`);
        } else if (value === PAYLOAD_NONE) {
        } else if (c.device_class === 'enum') {
          assert.ok(c.options?.includes(value), `${id}: ${value} is not an option`);
        } else if (c.device_class === 'timestamp') {
          assert.ok(isoTime.safeParse(value).success, `${id}: ${value} is not a time with an offset`);
        } else if (c.unit_of_measurement || c.state_class) {
          assert.ok(Number.isFinite(Number(value)), `${id}: ${value} is not a number`);
        } else {
          assert.ok(value.length <= 255, `${id}: a state is at most 255 characters`);
        }
      }
    }
    assert.ok(checked > 100);
  });

  it('never retains an event', () => {
    for (const e of EVENT_TYPES)
      assert.equal(eventMessage(config, { event_type: e, drive: null }).retain, false);
  });
});
