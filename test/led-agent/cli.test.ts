import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { topics } from '../../bridge/protocol.js';
import { recorder, startBroker, type TestBroker } from '../../harness/broker.js';
import { ledClassDir, ledFile, status } from '../../harness/led-agent.js';
import { freshBase } from './fixtures.js';

let broker: TestBroker;
before(async () => {
  broker = await startBroker();
});
after(() => broker.stop());

const dir = mkdtempSync(join(tmpdir(), 'offsite-led-cli-'));

function configFile(base: string, ledDir: string): string {
  const file = join(dir, `${base}.yaml`);
  writeFileSync(
    file,
    `node_id: nas
source:
  path: /srv/backup
drives:
  - name: alpha
    directory: /tmp/offsite-alpha
mqtt:
  url: ${broker.url}
  base_topic: ${base}
led:
  driver: sysfs
  path: ${ledDir}
  brightness: 10
`,
  );
  return file;
}

function agentProcess(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'led-agent/cli.ts', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, exited, output: () => output };
}

function kill(child: ChildProcess, signal: NodeJS.Signals) {
  assert.ok(child.kill(signal), `could not send ${signal}`);
}

describe('offsite-led, the process', () => {
  it('--help teaches and exits 0', async () => {
    const p = agentProcess(['--help']);
    assert.deepEqual(await p.exited, { code: 0, signal: null });
    assert.match(p.output(), /Usage: offsite-led \[--config FILE\]/);
    assert.match(p.output(), /OFFSITE_CONFIG/);
  });

  it('a configuration error exits 2 and names the file and key', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'source: { path: /srv }\ndrives: [{ name: a, directory: /tmp/a }]\nmqtt: {}\nled: { driver: sysfs }\n',
    );
    const p = agentProcess([], { OFFSITE_CONFIG: bad });
    assert.deepEqual(await p.exited, { code: 2, signal: null });
    assert.match(p.output(), new RegExp(`${bad}: led\\.path: the LED class directory`));
    const unknown = agentProcess(['--colour', 'red']);
    assert.equal((await unknown.exited).code, 2);
  });

  it('without an mqtt section it exits 2: it has nothing to follow', async () => {
    const file = join(dir, 'nomqtt.yaml');
    writeFileSync(file, 'source: { path: /srv }\ndrives: [{ name: a, directory: /tmp/a }]\n');
    const p = agentProcess(['-c', file]);
    assert.deepEqual(await p.exited, { code: 2, signal: null });
    assert.match(p.output(), /mqtt: an enabled mqtt section/);
  });

  it('killed with SIGKILL: the broker publishes its Last Will, offline', async () => {
    const base = freshBase();
    const t = topics(base, 'nas');
    const led = ledClassDir({ multiIndex: 'red green blue' });
    const watch = await recorder(broker.url, [t.ledAvailability]);
    await watch.client.publishAsync(t.status, status('running'), { qos: 1, retain: true });
    const p = agentProcess(['--config', configFile(base, led)]);
    await watch.waitFor((m) => m.payload === 'online');
    kill(p.child, 'SIGKILL');
    assert.equal((await p.exited).signal, 'SIGKILL');
    const will = await watch.waitFor((m) => m.payload === 'offline');
    assert.equal(will.topic, t.ledAvailability);
    await watch.close();
    const late = await recorder(broker.url, [t.ledAvailability]);
    const retained = await late.waitFor(() => true);
    assert.deepEqual([retained.payload, retained.retain], ['offline', true]);
    await late.close();
  });

  it('SIGTERM: shows the light until then, publishes offline, turns the LED off, exits 0', async () => {
    const base = freshBase();
    const t = topics(base, 'nas');
    const led = ledClassDir({ multiIndex: 'red green blue' });
    const watch = await recorder(broker.url, [t.ledAvailability]);
    await watch.client.publishAsync(t.status, status('failed'), { qos: 1, retain: true });
    const p = agentProcess(['-c', configFile(base, led)]);
    await watch.waitFor((m) => m.payload === 'online');
    // the retained failure reaches the LED (the agent logs each light once it shows it)
    for (let i = 0; !/led: shows failed/.test(p.output()); i++) {
      assert.ok(i < 200, p.output());
      await new Promise((r) => setTimeout(r, 50));
    }
    for (let i = 0; ledFile(led, 'multi_intensity') !== '255 0 0'; i++) {
      assert.ok(i < 200, ledFile(led, 'multi_intensity'));
      await new Promise((r) => setTimeout(r, 50));
    }
    kill(p.child, 'SIGTERM');
    assert.deepEqual(await p.exited, { code: 0, signal: null });
    await watch.waitFor((m) => m.payload === 'offline');
    assert.equal(ledFile(led, 'brightness'), '0');
    assert.match(p.output(), /led: stopped/);
    await watch.close();
  });
});
