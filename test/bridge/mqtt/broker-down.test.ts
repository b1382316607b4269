/**
 * docs/design.md §6: the broker being down, or refusing the login, never stops a backup.
 * The reporter starts and stops in bounded time without throwing, logs one line
 * per kind of trouble, keeps only the latest state while it waits, and gets the
 * final state out when the broker comes back in time.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import mqtt from 'mqtt';
import { parseConfig } from '../../../bridge/config.js';
import type { RunEvents } from '../../../bridge/events.js';
import { Ledger } from '../../../bridge/ledger.js';
import { MqttLink } from '../../../bridge/mqtt/link.js';
import { statusSchema, topics } from '../../../bridge/protocol.js';
import { reportersFor } from '../../../bridge/reporters/index.js';
import { MqttReporter } from '../../../bridge/reporters/mqtt.js';
import { Bus } from '../../../bridge/run/bus.js';
import { runDrive } from '../../../bridge/run/run-drive.js';
import { stepsFor } from '../../../bridge/steps/index.js';
import { freePort, spawnMosquitto } from '../../../harness/broker.js';
import { enrolDrive } from '../../../units/prepare/enrol.js';
import { awkwardTree, diffTrees, tempDir } from '../../helpers/trees.js';
import { fixture, memoryLog } from './helpers.js';

const T = topics('offsite', 'nas');
const out = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;

/** a whole run on the bus: start, steps, 500 progress events, success */
function driveRun(bus: Bus<RunEvents>, runId: string): void {
  const at = () => new Date();
  bus.emit('run:start', { runId, drive: 'alpha', time: at() });
  for (const step of ['identify', 'sync', 'verify']) {
    bus.emit('step:start', { runId, drive: 'alpha', step, time: at() });
    if (step === 'sync')
      for (let i = 1; i <= 500; i++)
        bus.emit('progress', {
          runId,
          drive: 'alpha',
          step,
          time: at(),
          percent: i / 5,
          bytes: i,
          rate: 1,
          etaSeconds: 1,
        });
    bus.emit('step:done', { runId, drive: 'alpha', step, time: at(), ms: 1 });
  }
  bus.emit('run:end', {
    runId,
    drive: 'alpha',
    result: 'success',
    step: null,
    message: 'copy complete; safe to remove',
    startedAt: at(),
    endedAt: at(),
    exitCode: 0,
    warnings: [],
    bytes: 500,
    freeBytes: null,
    sizeBytes: null,
    undoErrors: [],
  });
}

async function retainedStatus(url: string, auth: { username?: string; password?: string } = {}) {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0, ...auth });
  const got: string[] = [];
  client.on('message', (t, payload) => t === T.status && got.push(payload.toString()));
  await client.subscribeAsync([T.status, 'marker'], { qos: 1 });
  const done = new Promise<void>((resolve) => client.on('message', (t) => t === 'marker' && resolve()));
  await client.publishAsync('marker', 'x', { qos: 1 });
  await done;
  await client.endAsync();
  return got.map((p) => statusSchema.parse(JSON.parse(p)));
}

describe('MQTT when the broker is away', () => {
  it('a broker down for the whole run: the run goes on, start and stop return, one line per kind of trouble', async () => {
    const port = await freePort();
    const fx = fixture({ url: `mqtt://127.0.0.1:${port}` });
    const log = memoryLog();
    const link = new MqttLink({ config: fx.config.mqtt, log, role: 'run', reconnectMs: 50 });
    const reporter = new MqttReporter({ config: fx.config, log, link, flushMs: 1000, present: () => true });
    const bus = new Bus<RunEvents>();
    reporter.attach(bus);
    await reporter.start();
    driveRun(bus, 'down-1');
    // several reconnection attempts happen while stop() waits
    await reporter.stop();
    assert.equal(log.count(/^warn: mqtt: broker \S+ unreachable/), 1, log.lines.join('\n'));
    assert.equal(log.count('status could not be published'), 1, log.lines.join('\n'));
    assert.equal(log.lines.length, 2, log.lines.join('\n'));
    fx.cleanup();
  });

  it('stop() gives a broker that is not there a last chance, not the whole flush time (an hour here)', async () => {
    const port = await freePort();
    const fx = fixture({ url: `mqtt://127.0.0.1:${port}` });
    const log = memoryLog();
    const link = new MqttLink({ config: fx.config.mqtt, log, role: 'run' });
    link.start();
    const sent = link.publish({ topic: T.status, payload: '{}', retain: true });
    assert.equal(await link.stop(3_600_000), false);
    assert.equal(await sent, false);
    assert.equal(log.count('status could not be published'), 1, log.lines.join('\n'));
    fx.cleanup();
  });

  it('while the broker is away only the latest message per retained topic waits; events wait too', async () => {
    const port = await freePort();
    const fx = fixture({ url: `mqtt://127.0.0.1:${port}` });
    const link = new MqttLink({ config: fx.config.mqtt, log: memoryLog(), role: 'test', reconnectMs: 50 });
    link.start();
    const statuses = Array.from({ length: 300 }, (_, i) =>
      link.publish({ topic: T.status, payload: JSON.stringify({ n: i }), retain: true }),
    );
    const events = ['started', 'succeeded'].map((e) =>
      link.publish({ topic: T.event, payload: e, retain: false }),
    );
    const broker = await spawnMosquitto(port);
    const delivered = await Promise.all(statuses);
    assert.deepEqual(
      delivered.map((d, i) => (d ? i : -1)).filter((i) => i >= 0),
      [299],
      'only the last status reached the broker',
    );
    assert.deepEqual(await Promise.all(events), [true, true]);
    assert.equal(await link.stop(), true);
    await broker.stop();
    fx.cleanup();
  });

  it('a broker that comes back while stop() waits gets the final state', async () => {
    const port = await freePort();
    const fx = fixture({ url: `mqtt://127.0.0.1:${port}` });
    const log = memoryLog();
    // a last chance far longer than the default second, so that the broker's start-up always fits in it
    const link = new MqttLink({
      config: fx.config.mqtt,
      log,
      role: 'run',
      reconnectMs: 50,
      lastChanceMs: 30_000,
    });
    const reporter = new MqttReporter({ config: fx.config, log, link, flushMs: 10_000, present: () => true });
    const bus = new Bus<RunEvents>();
    reporter.attach(bus);
    await reporter.start();
    driveRun(bus, 'back-1');
    const stopping = reporter.stop();
    const broker = await spawnMosquitto(port);
    await stopping;
    const [status] = await retainedStatus(broker.url);
    assert.equal(status?.state, 'success');
    assert.equal(status?.run_id, 'back-1');
    assert.equal(log.count('status could not be published'), 0, log.lines.join('\n'));
    assert.equal(log.count('connected to'), 1, log.lines.join('\n'));
    await broker.stop();
    fx.cleanup();
  });

  it('a whole run with no broker listening ends as the same run with one: result, exit code, ledger, copy', async () => {
    const broker = await spawnMosquitto(await freePort());
    const down = `mqtt://127.0.0.1:${await freePort()}`;
    const ends = [];
    for (const url of [broker.url, down]) {
      const dir = tempDir('offsite-nobroker-');
      const source = join(dir, 'source');
      const target = join(dir, 'drive');
      awkwardTree(source);
      mkdirSync(target);
      const config = parseConfig({
        node_id: 'nas',
        state_dir: join(dir, 'state'),
        source: { path: source },
        drives: [{ name: 'alpha', directory: target }],
        mqtt: { url },
      });
      const drive = config.drives[0]!;
      await enrolDrive(config, drive, { force: false });
      const log = memoryLog();
      const outcome = await runDrive(config, drive, {
        ...(await reportersFor(config, log, out)),
        steps: stepsFor(drive),
      });
      const record = new Ledger(config.state_dir).drive('alpha');
      ends.push({
        result: outcome.result,
        exitCode: outcome.exitCode,
        message: outcome.message,
        warnings: outcome.warnings,
        ledger: [record.last_result, record.last_success !== null],
        copy: diffTrees(source, join(target, 'current')),
        brokerLines: log.count(/mqtt: broker \S+ unreachable/),
      });
      rmSync(dir, { recursive: true, force: true });
    }
    await broker.stop();
    const [up, away] = ends;
    assert.deepEqual({ ...away, brokerLines: 0 }, up);
    assert.equal(up!.result, 'success');
    assert.equal(away!.brokerLines, 1, 'one line says the broker is away');
  });

  it('a broker that refuses the login: the run goes on, one line says so, nothing is published', async () => {
    const broker = await spawnMosquitto(await freePort(), { offsite: 'right horse battery' });
    const fx = fixture({ url: broker.url, username: 'offsite', password_file: 'mqtt-password' });
    // the password as a systemd credential (LoadCredential=): a bare name under $CREDENTIALS_DIRECTORY
    const env = { CREDENTIALS_DIRECTORY: fx.dir };
    writeFileSync(join(fx.dir, 'mqtt-password'), 'wrong staple\n');
    const log = memoryLog();
    const reporter = new MqttReporter({ config: fx.config, log, env, present: () => true });
    const bus = new Bus<RunEvents>();
    reporter.attach(bus);
    await reporter.start();
    driveRun(bus, 'refused-1');
    await reporter.stop();
    assert.equal(log.count(/^warn: mqtt: \S+ refused the login/), 1, log.lines.join('\n'));
    assert.equal(log.count('status could not be published'), 1, log.lines.join('\n'));
    const auth = { username: 'offsite', password: 'right horse battery' };
    assert.deepEqual(await retainedStatus(broker.url, auth), []);

    // the same run with the right password is published
    writeFileSync(join(fx.dir, 'mqtt-password'), 'right horse battery\n');
    const ok = new MqttReporter({ config: fx.config, log: memoryLog(), env, present: () => true });
    const bus2 = new Bus<RunEvents>();
    ok.attach(bus2);
    await ok.start();
    driveRun(bus2, 'accepted-1');
    await ok.stop();
    const [status] = await retainedStatus(broker.url, auth);
    assert.equal(status?.run_id, 'accepted-1');
    await broker.stop();
    fx.cleanup();
  });

  it('a password file that cannot be read is one line, and the run goes on', async () => {
    const fx = fixture({
      url: 'mqtt://127.0.0.1:1',
      username: 'offsite',
      password_file: '/nonexistent/offsite-pw',
    });
    const log = memoryLog();
    const reporter = new MqttReporter({ config: fx.config, log, present: () => true });
    const bus = new Bus<RunEvents>();
    reporter.attach(bus);
    await reporter.start();
    driveRun(bus, 'nopw-1');
    await reporter.stop();
    assert.equal(log.count(/^warn: mqtt: cannot read the MQTT password/), 1, log.lines.join('\n'));
    assert.equal(log.count('status could not be published'), 1, log.lines.join('\n'));
    fx.cleanup();
  });
});
