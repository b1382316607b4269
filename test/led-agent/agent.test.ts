import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import { createLogger } from '../../bridge/log.js';
import { topics } from '../../bridge/protocol.js';
import { recorder, startBroker, type TestBroker } from '../../harness/broker.js';
import { agentConfig, drive, ledClassDir, ledFile, status } from '../../harness/led-agent.js';
import { LedAgent } from '../../led-agent/agent.js';
import { openSysfsLed } from '../../led-agent/drivers/sysfs.js';
import { collectLog, freshBase, waitForLight } from './fixtures.js';

let broker: TestBroker;
let publisher: MqttClient;
const agents: LedAgent[] = [];

before(async () => {
  broker = await startBroker();
  publisher = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
});
after(async () => {
  for (const a of agents) await a.stop();
  await publisher.endAsync(true);
  await broker.stop();
});

/** An agent on a multicolour LED class directory, started. */
async function startAgent(opts: {
  base: string;
  nodes?: Array<string | { node: string; drives: string[] }>;
  dir?: string;
  url?: string;
}) {
  const dir = opts.dir ?? ledClassDir({ multiIndex: 'red green blue' });
  const config = agentConfig({
    url: opts.url ?? broker.url,
    base: opts.base,
    ...(opts.nodes ? { nodes: opts.nodes } : {}),
    led: { driver: 'sysfs', path: dir, brightness: 10 },
  });
  const driver = await openSysfsLed({ path: dir, brightness: 10 });
  const log = collectLog();
  const agent = new LedAgent({
    config,
    driver,
    log: createLogger({ write: log.write }),
    offlineGraceMs: 200,
    backoff: { firstMs: 50, maxMs: 400 },
  });
  agents.push(agent);
  await agent.start();
  return { agent, dir, log, t: topics(opts.base, 'nas') };
}

async function until(pred: () => boolean, log: string[]): Promise<void> {
  for (let i = 0; !pred(); i++) {
    if (i > 1000) assert.fail(`not reached within 10 s; log:\n${log.join('\n')}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const put = (topic: string, payload: string) =>
  publisher.publishAsync(topic, payload, { qos: 1, retain: true });
const is = (state: string) => (l: { state: string }) => l.state === state;

describe('LED agent against a real broker', () => {
  it('shows the configured light for every state, on the LED itself', async () => {
    const { agent, dir, t } = await startAgent({ base: freshBase() });
    assert.equal(agent.light.state, 'off');
    await agent.settled();
    assert.equal(ledFile(dir, 'brightness'), '0');
    const expected: Array<[string, string, string]> = [
      ['running', '#33c280', '51 194 128'],
      ['success', '#00ff00', '0 255 0'],
      ['failed', '#ff0000', '255 0 0'],
    ];
    for (const [state, color, intensity] of expected) {
      await put(t.status, status(state as 'running'));
      const light = await waitForLight(agent, is(state));
      assert.equal(light.color, color);
      await agent.settled();
      assert.equal(ledFile(dir, 'multi_intensity'), intensity, state);
      assert.equal(ledFile(dir, 'brightness'), '26', `${state}: 10% of 255`);
    }
    await put(t.status, status('idle'));
    await waitForLight(agent, is('idle'));
    await agent.settled();
    assert.equal(ledFile(dir, 'brightness'), '0', 'idle is off by default');
    await put(t.drive('alpha'), drive('alpha', true));
    const overdue = await waitForLight(agent, is('overdue'));
    assert.deepEqual([overdue.color, overdue.pattern], ['#ffbf00', 'pulse']);
    // the pulse keeps writing: read until a frame is complete, not mid-write
    let intensity = '';
    for (let i = 0; !/^\d+ \d+ \d+$/.test(intensity); i++) {
      assert.ok(i < 1000, `multi_intensity "${intensity}"`);
      await agent.settled();
      intensity = ledFile(dir, 'multi_intensity');
    }
    const [r, g, b] = intensity.split(' ').map(Number);
    assert.ok(r! > g! && g! > 0 && b === 0, `amber, got ${r} ${g} ${b}`);
    assert.equal(
      ledFile(dir, 'brightness'),
      '26',
      'the cap, written once: a pulse changes only the intensities',
    );
  });

  it('two drives: overdue only when both are, and a run outranks the reminder', async () => {
    const { agent, t } = await startAgent({ base: freshBase() });
    await put(t.status, status('success'));
    await put(t.drive('alpha'), drive('alpha', true));
    await put(t.drive('beta'), drive('beta', false));
    await waitForLight(agent, is('success'));
    await put(t.drive('beta'), drive('beta', true));
    await waitForLight(agent, is('overdue'));
    await put(t.status, status('running', { drive: 'beta' }));
    await waitForLight(agent, is('running'));
    await put(t.status, status('failed', { drive: 'beta' }));
    await waitForLight(agent, is('failed'));
    await put(t.status, status('success', { drive: 'beta' }));
    await put(t.drive('beta'), drive('beta', false));
    const light = await waitForLight(agent, is('success'));
    assert.match(light.because, /nas: beta success/);
  });

  it('two nodes: the most urgent one wins', async () => {
    const base = freshBase();
    const { agent } = await startAgent({ base, nodes: ['nas', { node: 'pi', drives: ['gamma'] }] });
    const nas = topics(base, 'nas');
    const pi = topics(base, 'pi');
    await put(nas.status, status('success'));
    await waitForLight(agent, is('success'));
    await put(pi.status, status('failed', { drive: 'gamma' }));
    const failed = await waitForLight(agent, is('failed'));
    assert.match(failed.because, /^pi: /);
    await put(pi.status, status('running', { drive: 'gamma' }));
    await waitForLight(agent, is('running'));
    await put(pi.status, status('idle'));
    await waitForLight(agent, is('success'));
    await put(nas.drive('alpha'), drive('alpha', true));
    await put(nas.drive('beta'), drive('beta', true));
    await put(pi.drive('gamma'), drive('gamma', true));
    await waitForLight(agent, is('overdue'));
  });

  it('a restart restores the light from the retained state, without a new message', async () => {
    const base = freshBase();
    const first = await startAgent({ base });
    await put(first.t.status, status('failed'));
    await waitForLight(first.agent, is('failed'));
    await first.agent.stop();
    await first.agent.settled();
    assert.equal(ledFile(first.dir, 'brightness'), '0', 'stopping turns the LED off');
    const second = await startAgent({ base, dir: first.dir });
    const light = await waitForLight(second.agent, is('failed'));
    assert.equal(light.color, '#ff0000');
    await second.agent.settled();
    assert.equal(ledFile(first.dir, 'multi_intensity'), '255 0 0');
    assert.equal(ledFile(first.dir, 'brightness'), '26');
  });

  it('availability: retained online while running, offline once stopped', async () => {
    const base = freshBase();
    const t = topics(base, 'nas');
    const watch = await recorder(broker.url, [t.ledAvailability]);
    const { agent } = await startAgent({ base });
    const online = await watch.waitFor((m) => m.payload === 'online');
    assert.equal(online.topic, t.ledAvailability);
    await agent.stop();
    await watch.waitFor((m) => m.payload === 'offline');
    await watch.close();
    const late = await recorder(broker.url, [t.ledAvailability]);
    const retained = await late.waitFor(() => true);
    assert.deepEqual([retained.payload, retained.retain], ['offline', true]);
    await late.close();
  });

  it('an empty retained payload (a deleted topic) forgets that drive', async () => {
    const { agent, t } = await startAgent({ base: freshBase() });
    await put(t.status, status('success'));
    await put(t.drive('alpha'), drive('alpha', true));
    await put(t.drive('beta'), drive('beta', true));
    await waitForLight(agent, is('overdue'));
    await put(t.drive('beta'), '');
    await put(t.drive('beta'), drive('beta', true));
    await put(t.drive('alpha'), '');
    await put(t.drive('beta'), '');
    await waitForLight(agent, is('success'));
    assert.equal(agent.stats.ignored, 0);
  });

  it('a payload naming another drive than its topic is ignored', async () => {
    const { agent, t, log } = await startAgent({ base: freshBase() });
    await put(t.status, status('success'));
    await waitForLight(agent, is('success'));
    await put(t.drive('alpha'), drive('beta', true));
    await put(t.status, status('running'));
    await waitForLight(agent, is('running'));
    assert.equal(agent.stats.ignored, 1);
    assert.ok(
      log.lines.some((l) => /drive\/alpha: the payload names drive "beta"/.test(l)),
      log.lines.join('\n'),
    );
  });
});

describe('LED agent and drives the configuration does not name', () => {
  it('a forged success and drive state for an unknown drive leave the LED as it was', async () => {
    const { agent, dir, t, log } = await startAgent({ base: freshBase() });
    await put(t.status, status('failed'));
    await waitForLight(agent, is('failed'));
    await agent.settled();
    // what any broker client can leave behind, retained: a drive nobody enrolled, fresh and plugged in
    await put(t.drive('mallory'), drive('mallory', false, { present: true }));
    await put(t.status, status('success', { drive: 'mallory' }));
    await until(() => log.lines.some((l) => /status names drive "mallory"/.test(l)), log.lines);
    // a message after the forgeries: once it is in, everything before it has been handled
    await put(t.drive('alpha'), drive('alpha', false));
    await until(() => agent.stats.received >= 3, log.lines);
    assert.equal(agent.light.state, 'failed');
    await agent.settled();
    assert.equal(ledFile(dir, 'multi_intensity'), '255 0 0');
    assert.equal(agent.stats.received, 3, 'drive/mallory is not subscribed to: it never arrives');
    assert.equal(agent.stats.ignored, 1);
  });

  it('an unknown drive topic handed to it directly is ignored too, with one log line for a thousand', async () => {
    const { agent, t, log } = await startAgent({ base: freshBase() });
    for (let i = 0; i < 1000; i++)
      agent.receive(t.drive(`forged_${i}`), Buffer.from(drive(`forged_${i}`, false)));
    assert.equal(agent.stats.ignored, 1000);
    assert.equal(agent.light.state, 'off');
    assert.equal(
      log.lines.filter((l) => /forged_/.test(l)).length,
      1,
      'rate-limited: one line, then a count',
    );
  });
});

describe('LED agent when the broker goes away', () => {
  it('turns the light off (nothing known), reconnects with backoff, and follows again', async () => {
    const own = await startBroker({ kind: 'mosquitto' });
    try {
      const base = freshBase();
      const { agent, dir, t, log } = await startAgent({ base, url: own.url });
      const pub = await mqtt.connectAsync(own.url, { reconnectPeriod: 0 });
      await pub.publishAsync(t.status, status('success'), { qos: 1, retain: true });
      await waitForLight(agent, is('success'));
      await pub.endAsync(true);
      await own.stop();
      await waitForLight(agent, is('off'));
      await agent.settled();
      assert.equal(ledFile(dir, 'brightness'), '0');
      assert.equal(agent.connected, false);
      await own.start();
      const watch = await recorder(own.url, [t.ledAvailability, t.status]);
      await watch.waitFor((m) => m.topic === t.ledAvailability && m.payload === 'online');
      await watch.client.publishAsync(t.status, status('running'), { qos: 1, retain: true });
      await waitForLight(agent, is('running'));
      await watch.close();
      assert.equal(
        log.lines.filter((l) => /unreachable/.test(l)).length,
        1,
        `one warning for the outage:\n${log.lines.join('\n')}`,
      );
      assert.ok(
        log.lines.some((l) => /^led: mqtt: connected to .* again/.test(l)),
        log.lines.join('\n'),
      );
    } finally {
      await own.stop();
    }
  });

  it('starts without a broker and connects when it appears', async () => {
    const own = await startBroker({ kind: 'mosquitto' });
    await own.stop();
    const base = freshBase();
    const { agent, t } = await startAgent({ base, url: own.url });
    assert.equal(agent.connected, false);
    assert.equal(agent.light.state, 'off');
    await own.start();
    try {
      const watch = await recorder(own.url, [t.ledAvailability]);
      await watch.waitFor((m) => m.payload === 'online');
      await watch.client.publishAsync(t.status, status('failed'), { qos: 1, retain: true });
      await waitForLight(agent, is('failed'));
      await watch.close();
    } finally {
      await agent.stop();
      await own.stop();
    }
  });
});
