/**
 * The LED agent hosts the DiscoveryKeeper: a restarted Home Assistant gets
 * discovery and the drives' states again without waiting for the next backup.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { discoveryTopic, homeAssistantStatusTopic, topics } from '../../bridge/protocol.js';
import { recorder, startBroker, type TestBroker } from '../../harness/broker.js';

describe('the LED agent keeps Home Assistant whole', () => {
  let broker: TestBroker;
  const dir = mkdtempSync(join(tmpdir(), 'offsite-keeper-'));
  before(async () => {
    broker = await startBroker();
  });
  after(() => broker.stop());

  it('republishes discovery and drive states when Home Assistant announces itself', async () => {
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      `node_id: nas
state_dir: ${join(dir, 'state')}
source: { path: /srv/backup }
drives:
  - name: alpha
    directory: ${join(dir, 'alpha')}
mqtt: { url: "${broker.url}" }
led: { driver: none }
`,
    );
    const discovery = discoveryTopic('homeassistant', 'nas');
    const drive = topics('offsite', 'nas').drive('alpha');
    const watch = await recorder(broker.url, [discovery, drive]);
    const agent = spawn(process.execPath, ['--import', 'tsx', 'led-agent/cli.ts', '--config', config], {
      stdio: 'ignore',
    });
    try {
      // its first publish on start
      await watch.waitFor((m) => m.topic === discovery, 20_000);
      await watch.waitFor((m) => m.topic === drive, 20_000);
      const before = watch.messages.length;

      const ha = await mqtt.connectAsync(broker.url);
      await ha.publishAsync(homeAssistantStatusTopic('homeassistant'), 'online');
      await ha.endAsync();

      const again = await watch.waitFor(
        (m) => m.topic === discovery && watch.messages.indexOf(m) >= before,
        20_000,
      );
      const cmps = (again.json() as { cmps: Record<string, { p: string }> }).cmps;
      assert.ok(
        Object.keys(cmps).some((k) => k.includes('alpha')),
        'the drive has its entities',
      );
      const driveAgain = await watch.waitFor(
        (m) => m.topic === drive && watch.messages.indexOf(m) >= before,
        20_000,
      );
      assert.equal((driveAgain.json() as { name: string; overdue: boolean }).name, 'alpha');
      assert.equal(
        (driveAgain.json() as { overdue: boolean }).overdue,
        true,
        'a drive that never ran is overdue',
      );
    } finally {
      agent.kill('SIGTERM');
      await watch.close();
    }
  });
});
