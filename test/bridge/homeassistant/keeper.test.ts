/**
 * Discovery kept whole on a real mosquitto: republished when Home Assistant
 * announces itself, and entities taken back when a drive leaves the
 * configuration or the node is renamed.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { parseConfig } from '../../../bridge/config.js';
import { discoveryTopicFor } from '../../../bridge/homeassistant/discovery.js';
import { DiscoveryKeeper } from '../../../bridge/homeassistant/keeper.js';
import { publishDiscovery } from '../../../bridge/homeassistant/publish.js';
import { loadPublished, publishedFile } from '../../../bridge/homeassistant/published.js';
import { Ledger } from '../../../bridge/ledger.js';
import { MqttLink } from '../../../bridge/mqtt/link.js';
import { type DriveState, driveSchema, homeAssistantStatusTopic, topics } from '../../../bridge/protocol.js';
import { freePort, type Mosquitto, recorder, spawnMosquitto } from '../../../harness/broker.js';
import { fixture, memoryLog } from '../mqtt/helpers.js';

async function until(pred: () => boolean): Promise<void> {
  for (let i = 0; !pred(); i++) {
    if (i > 2000) assert.fail('not reached within 20 s');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** the retained messages on these topics, as a newcomer (Home Assistant after a restart) gets them */
async function retained(url: string, topicsToRead: string[]): Promise<Map<string, string>> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  const got = new Map<string, string>();
  client.on('message', (t, payload, packet) => packet.retain && got.set(t, payload.toString()));
  await client.subscribeAsync([...topicsToRead, 'marker/keeper'], { qos: 1 });
  const done = new Promise<void>((resolve) =>
    client.on('message', (t) => t === 'marker/keeper' && resolve()),
  );
  await client.publishAsync('marker/keeper', 'x', { qos: 1 });
  await done;
  await client.endAsync();
  return got;
}

async function publishWith(url: string, config: Parameters<typeof publishDiscovery>[1]): Promise<boolean> {
  const link = new MqttLink({ config: { ...config.mqtt!, url }, log: memoryLog(), role: 'test' });
  link.start();
  const ok = await publishDiscovery(link, config, memoryLog());
  await link.stop();
  return ok;
}

/**
 * A keeper that cannot see block devices, for a LUKS drive `vault`, after this
 * drive payload was left retained on vault's topic: the state it republishes.
 */
async function republishedAfter(
  url: string,
  base: string,
  left: { name: string; present: boolean; overdue: boolean },
): Promise<DriveState> {
  const fx = fixture({ url, base_topic: base, discovery_prefix: `ha_${base}` });
  const config = parseConfig({
    node_id: 'nas',
    state_dir: fx.config.state_dir,
    source: { path: fx.config.source.path },
    drives: [
      {
        name: 'vault',
        luks_uuid: '0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d',
        key_file: '/etc/offsite/keys/vault.key',
        mount_point: '/mnt/offsite/vault',
      },
    ],
    mqtt: { url, base_topic: base, discovery_prefix: `ha_${base}` },
  });
  const T = topics(base, 'nas');
  const run = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  const payload = {
    last_run: null,
    last_result: null,
    last_success: null,
    free_bytes: null,
    size_bytes: null,
  };
  await run.publishAsync(T.drive('vault'), JSON.stringify({ ...payload, ...left }), { qos: 1, retain: true });
  await run.endAsync();
  const rec = await recorder(url, [T.drive('vault')]);
  const keeper = new DiscoveryKeeper({ config, log: memoryLog(), byUuidDir: '/nonexistent/by-uuid' });
  await keeper.start();
  try {
    const republished = await rec.waitFor((m) => !m.retain);
    return driveSchema.parse(JSON.parse(republished.payload));
  } finally {
    await keeper.stop();
    await rec.close();
    fx.cleanup();
  }
}

describe('Home Assistant discovery kept whole', () => {
  let broker: Mosquitto;
  before(async () => {
    broker = await spawnMosquitto(await freePort());
  });
  after(async () => {
    await broker.stop();
  });

  it('republishes discovery and the drive states when Home Assistant comes online', async () => {
    const fx = fixture({ url: broker.url, base_topic: 'birth', discovery_prefix: 'ha_birth' });
    const ledger = new Ledger(fx.config.state_dir);
    await ledger.recordRun({
      runId: 'r1',
      drive: 'alpha',
      result: 'success',
      step: null,
      message: 'ok',
      startedAt: new Date(),
      endedAt: new Date(),
      exitCode: 0,
      warnings: [],
      bytes: 1,
      freeBytes: 5_000,
      sizeBytes: 10_000,
      undoErrors: [],
    });
    const T = topics('birth', 'nas');
    const discovery = discoveryTopicFor(fx.config);
    const rec = await recorder(broker.url, [discovery, T.driveWildcard]);
    const log = memoryLog();
    const keeper = new DiscoveryKeeper({ config: fx.config, log, jitterMs: 0, present: () => true });
    await keeper.start();
    // at start it publishes once
    await rec.waitFor((m) => m.topic === discovery);
    await rec.waitFor((m) => m.topic === T.drive('beta'));
    const before = rec.messages.length;

    // Home Assistant restarts: its birth message
    const ha = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    await ha.publishAsync(homeAssistantStatusTopic('ha_birth'), 'online', { qos: 1 });
    await ha.endAsync();
    await rec.waitFor((m) => m.topic === discovery && rec.messages.indexOf(m) >= before);
    await rec.waitFor((m) => m.topic === T.drive('alpha') && rec.messages.indexOf(m) >= before);
    await rec.waitFor((m) => m.topic === T.drive('beta') && rec.messages.indexOf(m) >= before);
    const alpha = rec.messages.filter((m) => m.topic === T.drive('alpha')).at(-1)!;
    const state = driveSchema.parse(JSON.parse(alpha.payload));
    assert.equal(state.last_result, 'success');
    assert.equal(state.free_bytes, 5_000);
    assert.equal(state.present, true);
    assert.equal(log.count('came online'), 1);

    await keeper.stop();
    await rec.close();
    fx.cleanup();
  });

  it('where it cannot see block devices, keeps what the last run said about a drive being plugged in', async () => {
    const state = await republishedAfter(broker.url, 'sandbox', {
      name: 'vault',
      present: true,
      overdue: true,
    });
    assert.equal(state.present, true);
  });

  it('300 birth messages in a burst get one round of publishes, not 300', async () => {
    const fx = fixture({ url: broker.url, base_topic: 'burst', discovery_prefix: 'ha_burst' });
    const T = topics('burst', 'nas');
    const discovery = discoveryTopicFor(fx.config);
    const rec = await recorder(broker.url, [discovery, T.drive('alpha'), T.drive('beta'), 'marker/burst']);
    const log = memoryLog();
    // a quiet time far longer than 300 publishes take, so the burst is one burst on a slow machine too
    const keeper = new DiscoveryKeeper({
      config: fx.config,
      log,
      jitterMs: 0,
      quietMs: 3000,
      present: () => true,
    });
    await keeper.start();
    try {
      await rec.waitFor((m) => m.topic === T.drive('beta'));
      await rec.waitFor((m) => m.topic === discovery);
      const before = rec.messages.length;

      const ha = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
      await Promise.all(
        Array.from({ length: 300 }, () =>
          ha.publishAsync(homeAssistantStatusTopic('ha_burst'), 'online', { qos: 1 }),
        ),
      );
      await ha.endAsync();
      // all 300 counted into one burst: exactly one round, and no birth left to start another
      await until(() => log.count('300 birth messages answered by one republish') === 1);
      for (const topic of [discovery, T.drive('alpha'), T.drive('beta')])
        await rec.waitFor((m) => m.topic === topic && rec.messages.indexOf(m) >= before);
      // a marker after the round: anything else the keeper sent would be in by now
      await rec.client.publishAsync('marker/burst', 'x', { qos: 1 });
      await rec.waitFor((m) => m.topic === 'marker/burst');
      const after = rec.messages.slice(before).filter((m) => m.topic !== 'marker/burst');
      assert.deepEqual(
        after.map((m) => m.topic).sort(),
        [discovery, T.drive('alpha'), T.drive('beta')].sort(),
      );
      assert.equal(log.count('came online'), 1);
    } finally {
      await keeper.stop();
      await rec.close();
      fx.cleanup();
    }
  });

  it('drops an oversized birth message unread, with one warning, and answers the next real one', async () => {
    const fx = fixture({ url: broker.url, base_topic: 'huge', discovery_prefix: 'ha_huge' });
    const discovery = discoveryTopicFor(fx.config);
    const rec = await recorder(broker.url, [discovery]);
    const log = memoryLog();
    const keeper = new DiscoveryKeeper({
      config: fx.config,
      log,
      jitterMs: 0,
      quietMs: 0,
      present: () => true,
    });
    await keeper.start();
    try {
      await rec.waitFor((m) => m.topic === discovery);
      const ha = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
      const huge = Buffer.from(`online${' '.repeat(2 * 1024 * 1024)}`);
      for (let i = 0; i < 3; i++)
        await ha.publishAsync(homeAssistantStatusTopic('ha_huge'), huge, { qos: 1 });
      await ha.publishAsync(homeAssistantStatusTopic('ha_huge'), 'online', { qos: 1 });
      await ha.endAsync();
      await until(() => log.count('came online') === 1);
      assert.equal(log.count(/warn.*dropped a payload of 2097158 bytes on "ha_huge\/status" unread/), 1);
      assert.equal(log.count('dropped a payload'), 3, 'the other two only with --verbose');
    } finally {
      await keeper.stop();
      await rec.close();
      fx.cleanup();
    }
  });

  it("believes a drive's plug state only from a payload that names that drive", async () => {
    const state = await republishedAfter(broker.url, 'forged', {
      name: 'mallory',
      present: true,
      overdue: false,
    });
    assert.deepEqual([state.name, state.present], ['vault', false]);
  });

  it('takes back a removed drive: its components with only `p`, in every later publish too; its state cleared', async () => {
    const fx = fixture({ url: broker.url, base_topic: 'removal', discovery_prefix: 'ha_removal' });
    const T = topics('removal', 'nas');
    const topic = discoveryTopicFor(fx.config);
    assert.equal(await publishWith(broker.url, fx.config), true);
    // the drive's retained state, as a run would have left it
    const c = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
    await c.publishAsync(T.drive('beta'), '{"name":"beta"}', { qos: 1, retain: true });
    await c.endAsync();
    assert.ok(Object.keys(loadPublished(fx.config.state_dir)!.components).includes('beta_age'));

    const withoutBeta = { ...fx.config, drives: fx.config.drives.filter((d) => d.name !== 'beta') };
    assert.equal(await publishWith(broker.url, withoutBeta), true);
    let got = await retained(broker.url, [topic, T.drive('beta'), T.drive('alpha')]);
    const cmps = JSON.parse(got.get(topic)!).cmps;
    for (const key of ['last_success', 'age', 'last_result', 'plugged_in', 'overdue', 'free_space'])
      assert.deepEqual(cmps[`beta_${key}`], {
        p: key === 'plugged_in' || key === 'overdue' ? 'binary_sensor' : 'sensor',
      });
    assert.equal(cmps.alpha_age.device_class, 'duration');
    assert.equal(got.has(T.drive('beta')), false, "the removed drive's retained state is gone");
    assert.ok(
      !Object.keys(loadPublished(fx.config.state_dir)!.components).some((k) => k.startsWith('beta_')),
    );

    // every later publish still takes it back: a Home Assistant that was offline just now
    // reads only the latest retained discovery, and ignores a component that is simply missing
    for (let i = 0; i < 2; i++) {
      assert.equal(await publishWith(broker.url, withoutBeta), true);
      got = await retained(broker.url, [topic]);
      const later = JSON.parse(got.get(topic)!).cmps;
      assert.deepEqual(later.beta_age, { p: 'sensor' });
      assert.deepEqual(later.beta_plugged_in, { p: 'binary_sensor' });
    }

    // the drive comes back: whole again, and no longer taken back
    assert.equal(await publishWith(broker.url, fx.config), true);
    got = await retained(broker.url, [topic]);
    assert.equal(JSON.parse(got.get(topic)!).cmps.beta_age.device_class, 'duration');
    assert.equal(loadPublished(fx.config.state_dir)!.removed, undefined);
    fx.cleanup();
  });

  it('a renamed node leaves no stale device behind', async () => {
    const fx = fixture({ url: broker.url, base_topic: 'rename', discovery_prefix: 'ha_rename' });
    assert.equal(await publishWith(broker.url, fx.config), true);
    const oldTopic = discoveryTopicFor(fx.config);
    const renamed = parseConfig({
      node_id: 'nas-new',
      state_dir: fx.config.state_dir,
      source: { path: fx.config.source.path },
      drives: [{ name: 'alpha', directory: `${fx.dir}/alpha` }],
      mqtt: { url: broker.url, base_topic: 'rename', discovery_prefix: 'ha_rename' },
    });
    assert.equal(await publishWith(broker.url, renamed), true);
    const got = await retained(broker.url, [oldTopic, discoveryTopicFor(renamed)]);
    assert.equal(got.has(oldTopic), false, 'the old device is cleared');
    assert.ok(JSON.parse(got.get(discoveryTopicFor(renamed))!).cmps.alpha_age);
    assert.equal(loadPublished(fx.config.state_dir)?.topic, discoveryTopicFor(renamed));
    fx.cleanup();
  });

  it('remembers nothing when the discovery did not reach a broker, so the removal is sent again', async () => {
    const fx = fixture({ url: `mqtt://127.0.0.1:${await freePort()}` });
    const link = new MqttLink({ config: fx.config.mqtt, log: memoryLog(), role: 'test' });
    link.start();
    const pending = publishDiscovery(link, fx.config, memoryLog());
    await link.stop(200);
    assert.equal(await pending, false);
    assert.equal(existsSync(publishedFile(fx.config.state_dir)), false);
    fx.cleanup();
  });
});
