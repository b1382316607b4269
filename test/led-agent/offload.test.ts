/**
 * What the LED agent hands to its short-lived child (led-agent/offload.ts):
 * the configuration comes back exactly as loadConfig() reads it, or as the same
 * ConfigError; and Home Assistant's republishing waits for the connection, one
 * child for however many asked while the broker was away.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type ConfigError, loadConfig } from '../../bridge/config.js';
import { createLogger } from '../../bridge/log.js';
import { MqttLink } from '../../bridge/mqtt/link.js';
import { discoveryTopic, topics } from '../../bridge/protocol.js';
import { freePort, recorder, spawnMosquitto } from '../../harness/broker.js';
import { readConfig, republishInChild } from '../../led-agent/offload.js';

const dir = mkdtempSync(join(tmpdir(), 'offsite-offload-'));

function configFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** every kind of drive, mail, the LED's states and nodes: whatever JSON could lose */
const RICH = (url: string) => `node_id: nas
state_dir: ${join(dir, 'state')}
source: { path: /srv/backup, lock: [flock, /srv/backup/lock] }
drives:
  - { name: alpha, luks_uuid: 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0, key_file: /etc/offsite/keys/alpha.key, mount_point: /mnt/offsite/alpha }
  - { name: plain, uuid: 2d3e4f50-6172-8394-a5b6-c7d8e9f0a1b2, mount_point: /mnt/offsite/plain }
  - { name: beta, directory: ${join(dir, 'beta')} }
mqtt: { url: "${url}", username: offsite, password_file: mqtt-password, base_topic: home/offsite }
email:
  smtp: { host: 127.0.0.1, port: 2525 }
  from: nas@example.org
  to: [me@example.org]
led:
  driver: none
  nodes: [nas, { node: pi, drives: [gamma] }]
  states: { running: { color: "#0000ff", pattern: blink } }
`;

describe("the LED agent's child", () => {
  it('hands over the configuration exactly as loadConfig() reads it', async () => {
    const file = configFile('rich.yaml', RICH('mqtt://127.0.0.1:1883'));
    assert.deepStrictEqual(await readConfig(file), loadConfig(file));
  });

  it('and a configuration problem as the same ConfigError, every problem in it', async () => {
    const file = configFile(
      'bad.yaml',
      RICH('mqtt://127.0.0.1:1883')
        .replace('driver: none', 'driver: lava-lamp')
        .replace('port: 2525', 'port: x'),
    );
    const expected = (() => {
      try {
        loadConfig(file);
      } catch (e) {
        return e as ConfigError;
      }
      assert.fail('loadConfig took it');
    })();
    await assert.rejects(readConfig(file), (e: unknown) => {
      assert.ok(e instanceof Error && e.name === 'ConfigError', String(e));
      assert.equal(e.message, expected.message);
      assert.equal((e as ConfigError).problems.length, 2);
      return true;
    });
    // no mqtt section: the agent cannot run, and says so before it starts
    const without = configFile(
      'no-mqtt.yaml',
      'source: { path: /srv }\ndrives: [{ name: a, directory: /tmp/a }]\n',
    );
    await assert.rejects(readConfig(without), /an enabled mqtt section/);
  });

  it('republishes only once connected: asked twice while the broker is away, one child when it is back', async () => {
    const port = await freePort();
    const url = `mqtt://127.0.0.1:${port}`;
    const file = configFile(
      'ha.yaml',
      `node_id: nas\nstate_dir: ${join(dir, 'ha-state')}\nsource: { path: /srv/backup }\ndrives: [{ name: beta, directory: ${join(dir, 'beta')} }]\nmqtt: { url: "${url}" }\nled: { driver: none }\n`,
    );
    const config = loadConfig(file);
    const link = new MqttLink({
      config: config.mqtt,
      log: createLogger({ write: () => {} }),
      role: 'discovery',
      persistent: true,
      backoff: { firstMs: 50, maxMs: 200 },
    });
    const republish = republishInChild(config, link);
    link.start();
    const first = republish('drives', new Map());
    const second = republish('all', new Map([['beta', true]]));
    assert.equal(first, second, 'one child for both');
    const broker = await spawnMosquitto(port);
    try {
      const discovery = discoveryTopic('homeassistant', 'nas');
      const drive = topics('offsite', 'nas').drive('beta');
      const watch = await recorder(url, [discovery, drive]);
      assert.equal(await first, true);
      // the full republish won over the drives-only one
      await watch.waitFor((m) => m.topic === discovery);
      const state = (await watch.waitFor((m) => m.topic === drive)).json() as { name: string };
      assert.equal(state.name, 'beta');
      await watch.close();
    } finally {
      await link.stop(1000);
      await broker.stop();
    }
  });
});
