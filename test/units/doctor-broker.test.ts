/**
 * `offsite doctor` asks the broker whether a client without a login may publish under offsite's
 * topics (docs/security.md): real mosquitto brokers, open and closed in the two ways a broker
 * closes (no anonymous login; an anonymous login whose ACL grants no write).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Config, parseConfig } from '../../bridge/config.js';
import { anonymousAccess } from '../../bridge/mqtt/anonymous.js';
import { topics } from '../../bridge/protocol.js';
import { freePort, recorder, spawnMosquitto } from '../../harness/broker.js';
import { CHECKS, type Finding } from '../../units/doctor.js';
import { installPaths } from '../../units/paths.js';

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
