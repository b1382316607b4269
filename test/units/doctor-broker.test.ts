/**
 * `offsite doctor` asks the broker whether a client without a login may publish under offsite's
 * topics (docs/security.md): real mosquitto brokers, open and closed in the two ways a broker
 * closes (no anonymous login; an anonymous login whose ACL grants no write).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type Config, parseConfig } from '../../bridge/config.js';
import { anonymousAccess } from '../../bridge/mqtt/anonymous.js';
import { topics } from '../../bridge/protocol.js';
import { freePort, recorder, spawnMosquitto } from '../../harness/broker.js';
import { CHECKS, type Finding } from '../../units/doctor.js';
import { installPaths } from '../../units/paths.js';
import { selfSignedCert } from '../helpers/tls.js';

function config(url: string): Config {
  return parseConfig({
    node_id: 'nas',
    source: { path: '/srv/backup' },
    mqtt: { url, base_topic: 'offsite' },
  });
}

async function brokerAccess(url: string): Promise<Finding[]> {
  const check = CHECKS.find((c) => c.name === 'broker access');
  assert.ok(check, 'doctor has a broker access check');
  const c = config(url);
  return check.run({
    config: c,
    root: '/',
    paths: installPaths({ config: '/etc/offsite/config.yaml', node: process.execPath }),
    timeoutMs: 5000,
  });
}

describe('offsite doctor: may a client without a login publish under offsite/?', () => {
  it('warns on a broker that lets anyone in (allow_anonymous true), and the probe really went through', async () => {
    const broker = await spawnMosquitto(await freePort());
    try {
      const probe = topics('offsite', 'nas').probe;
      const watch = await recorder(broker.url, [probe]);
      const [finding, ...rest] = await brokerAccess(broker.url);
      assert.deepEqual(rest, []);
      assert.equal(finding!.warning, true);
      assert.equal(finding!.ok, true, 'a warning, not a problem: a run works all the same');
      assert.match(finding!.what, /a client without a login may publish under offsite\/nas\//);
      assert.match(finding!.fix ?? '', /docs\/security\.md, "Closing the broker"/);
      const seen = await watch.waitFor((m) => m.topic === probe);
      assert.deepEqual({ payload: seen.payload, retain: seen.retain }, { payload: '', retain: false });
      await watch.close();
    } finally {
      await broker.stop();
    }
  });

  it('is content with a broker that refuses anonymous logins (password file)', async () => {
    const broker = await spawnMosquitto(await freePort(), { offsite: 'right horse battery' });
    try {
      assert.equal(
        await anonymousAccess(config(broker.url).mqtt!, 'offsite/nas/probe', 5000),
        'login refused',
      );
      const findings = await brokerAccess(broker.url);
      assert.deepEqual(
        findings.map((f) => [f.ok, f.warning ?? false, f.what]),
        [[true, false, 'the broker refuses clients without a login']],
      );
    } finally {
      await broker.stop();
    }
  });

  it('is content with anonymous logins whose ACL grants no write under offsite/', async () => {
    const acl = 'topic read offsite/#\n\nuser offsite\ntopic readwrite offsite/#\n';
    const broker = await spawnMosquitto(await freePort(), undefined, undefined, acl);
    try {
      const findings = await brokerAccess(broker.url);
      assert.deepEqual(
        findings.map((f) => [f.ok, f.warning ?? false, f.what]),
        [[true, false, 'a client without a login may not publish under offsite/nas/']],
      );
    } finally {
      await broker.stop();
    }
  });

  it('says nothing when there is no broker to ask (the broker check reports that)', async () => {
    assert.deepEqual(await brokerAccess(`mqtt://127.0.0.1:${await freePort()}`), []);
  });
});

describe('offsite doctor: does the broker answer?', () => {
  async function brokerCheck(mqtt: Record<string, unknown>): Promise<Finding[]> {
    const check = CHECKS.find((c) => c.name === 'MQTT broker');
    assert.ok(check, 'doctor has a broker check');
    return check.run({
      config: parseConfig({ node_id: 'nas', source: { path: '/srv/backup' }, mqtt }),
      root: '/',
      paths: installPaths({ config: '/etc/offsite/config.yaml', node: process.execPath }),
      timeoutMs: 5000,
    });
  }

  it('connects as a run does: to a TLS broker with its CA (mqtt.ca_file) and a login', async () => {
    const tls = selfSignedCert();
    const secret = join(tls.dir, 'password');
    writeFileSync(secret, 'right horse battery\n');
    const broker = await spawnMosquitto(await freePort(), { offsite: 'right horse battery' }, tls);
    try {
      const [finding, ...rest] = await brokerCheck({
        url: broker.url,
        ca_file: tls.cert,
        username: 'offsite',
        password_file: secret,
      });
      assert.deepEqual(rest, []);
      assert.equal(finding!.ok, true, finding!.what);
      assert.match(finding!.what, /^MQTT broker mqtts:\/\/127\.0\.0\.1:\d+ answers$/);
    } finally {
      await broker.stop();
      tls.remove();
    }
  });

  it('names the CA file it cannot read', async () => {
    const [finding] = await brokerCheck({ url: 'mqtts://127.0.0.1:1', ca_file: '/nonexistent/ca.pem' });
    assert.equal(finding!.ok, false);
    assert.match(finding!.what, /mqtt\.ca_file \/nonexistent\/ca\.pem/);
  });
});
