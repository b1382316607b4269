/**
 * The LED agent's link (docs/led.md): it never gives up, since what is wrong
 * may be put right while it runs, and it waits longer after each failed
 * attempt. A run's link gives up on a refused login (broker-down.test.ts).
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Backoff } from '../../../bridge/mqtt/connection.js';
import { MqttLink } from '../../../bridge/mqtt/link.js';
import { freePort, spawnMosquitto } from '../../../harness/broker.js';
import { fixture, memoryLog } from './helpers.js';

async function until(pred: () => boolean, lines: string[]): Promise<void> {
  for (let i = 0; !pred(); i++) {
    if (i > 1000) assert.fail(`not reached within 10 s; log:\n${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('a persistent link', () => {
  it('keeps trying after a refused login and an unreadable password file, and logs in once they are put right', async () => {
    const broker = await spawnMosquitto(await freePort(), { offsite: 'right horse battery' });
    const fx = fixture({ url: broker.url, username: 'offsite', password_file: 'mqtt-password' });
    const env = { CREDENTIALS_DIRECTORY: fx.dir };
    const secret = join(fx.dir, 'mqtt-password');
    const log = memoryLog();
    const link = new MqttLink({
      config: fx.config.mqtt,
      log,
      role: 'led',
      env,
      persistent: true,
      backoff: { firstMs: 20, maxMs: 100 },
    });
    const changes: boolean[] = [];
    link.onChange((up) => changes.push(up));
    try {
      writeFileSync(secret, 'wrong staple\n');
      link.start();
      await until(() => log.count(/refused the login/) === 1, log.lines);
      rmSync(secret);
      await until(() => log.count(/cannot read the MQTT password/) === 1, log.lines);
      writeFileSync(secret, 'right horse battery\n');
      await until(() => link.connected && changes.at(-1) === true, log.lines);
      assert.equal(log.count(/refused the login/), 1, log.lines.join('\n'));
      assert.equal(log.count(/cannot read the MQTT password/), 1, log.lines.join('\n'));
      assert.ok(
        changes.slice(0, -1).every((up) => !up),
        'every failed attempt said so',
      );
    } finally {
      await link.stop(1000);
      await broker.stop();
      fx.cleanup();
    }
  });

  it('waits longer after each failed attempt, up to a limit, and starts over once connected', () => {
    const backoff = new Backoff({ firstMs: 500, maxMs: 30_000 });
    const pauses = Array.from({ length: 9 }, () => backoff.next());
    assert.deepEqual(pauses, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
    backoff.reset();
    assert.equal(backoff.next(), 500);
    const fixed = new Backoff({ firstMs: 2000, maxMs: 2000 });
    assert.deepEqual([fixed.next(), fixed.next()], [2000, 2000]);
  });
});
