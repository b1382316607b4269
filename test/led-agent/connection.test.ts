/**
 * The LED agent connects with the bridge's client options (bridge/mqtt/connection.ts):
 * a password file it cannot read is named in the log, and its availability
 * goes `offline` by its Last Will when it vanishes without a word.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../bridge/config.js';
import { createLogger } from '../../bridge/log.js';
import { AVAILABILITY, topics } from '../../bridge/protocol.js';
import { recorder, startBroker, type TestBroker } from '../../harness/broker.js';
import { LedAgent } from '../../led-agent/agent.js';
import { openNoLed } from '../../led-agent/drivers/none.js';
import { collectLog, freshBase } from './fixtures.js';

let broker: TestBroker;
before(async () => {
  broker = await startBroker();
});
after(() => broker.stop());

function raw(base: string, mqtt: Record<string, unknown> = {}) {
  return {
    node_id: 'nas',
    source: { path: '/srv/backup' },
    drives: [{ name: 'alpha', directory: '/tmp/offsite-alpha' }],
    mqtt: { url: broker.url, base_topic: base, ...mqtt },
    led: { driver: 'none' },
  };
}

describe('the LED agent connects like the rest of offsite', () => {
  it('names the password file it cannot read, and keeps trying until it can', async () => {
    const log = collectLog();
    const secret = join(mkdtempSync(join(tmpdir(), 'offsite-led-secret-')), 'password');
    const agent = new LedAgent({
      config: parseConfig(raw(freshBase(), { username: 'offsite', password_file: secret })),
      driver: openNoLed(),
      log: createLogger({ write: log.write }),
      offlineGraceMs: 50,
      backoff: { firstMs: 50, maxMs: 100 },
    });
    await agent.start();
    try {
      for (let i = 0; !log.lines.some((l) => l.includes('mqtt.password_file')); i++) {
        if (i > 500) assert.fail(`no line names mqtt.password_file:\n${log.lines.join('\n')}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(
        log.lines.some((l) => l.includes(`cannot read the MQTT password (mqtt.password_file ${secret})`)),
        log.lines.join('\n'),
      );
      assert.equal(agent.connected, false);
      // the test broker lets anyone in: what counts is that the file is read again
      writeFileSync(secret, 'horse battery\n');
      for (let i = 0; !agent.connected; i++) {
        if (i > 1000) assert.fail(`not connected once the file was there:\n${log.lines.join('\n')}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      await agent.stop();
    }
  });

  it('leaves a Last Will: killed outright, its availability goes offline (retained) all the same', async () => {
    const base = freshBase();
    const dir = mkdtempSync(join(tmpdir(), 'offsite-led-will-'));
    const file = join(dir, 'config.yaml');
    writeFileSync(file, JSON.stringify({ ...raw(base), led: { driver: 'none' } }));
    const t = topics(base, 'nas');
    const watch = await recorder(broker.url, [t.ledAvailability]);
    const child = spawn(process.execPath, ['--import', 'tsx', 'led-agent/cli.ts', '--config', file], {
      stdio: 'ignore',
    });
    try {
      await watch.waitFor((m) => m.payload === AVAILABILITY.online);
      child.kill('SIGKILL'); // no goodbye: only the broker can say it went
      await watch.waitFor((m) => m.payload === AVAILABILITY.offline);
      // and it stays said: a subscriber that comes later is told at once
      const later = await recorder(broker.url, [t.ledAvailability]);
      const kept = await later.waitFor(() => true);
      await later.close();
      assert.deepEqual([kept.payload, kept.retain], [AVAILABILITY.offline, true]);
    } finally {
      child.kill('SIGKILL');
      await watch.close();
    }
  });
});
