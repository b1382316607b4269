/**
 * The run's MQTT reporter against a real mosquitto, driven through the real
 * bus: the exact status sequence of a run, throttled progress, retained and
 * non-retained topics, the drive states and events.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import type { RunEnded, RunEvents } from '../../../bridge/events.js';
import { Ledger } from '../../../bridge/ledger.js';
import {
  decode,
  driveSchema,
  eventSchema,
  isoTime,
  type Status,
  statusSchema,
  topics,
} from '../../../bridge/protocol.js';
import { MqttReporter } from '../../../bridge/reporters/mqtt.js';
import { Bus } from '../../../bridge/run/bus.js';
import { freePort, recorder, spawnMosquitto } from '../../../harness/broker.js';
import { fixture, memoryLog } from '../mqtt/helpers.js';

const T = topics('offsite', 'nas');

/** a clock the test moves by hand, so that "half a second later" needs no waiting */
function handClock(start = Date.parse('2026-11-28T10:00:00Z')) {
  let t = start;
  return { now: () => new Date(t), advance: (ms: number) => (t += ms) };
}

function ended(over: Partial<RunEnded> = {}): RunEnded {
  return {
    runId: 'run-1',
    drive: 'alpha',
    result: 'success',
    step: null,
    message: 'copy complete; safe to remove',
    startedAt: new Date('2026-11-28T10:00:00Z'),
    endedAt: new Date('2026-11-28T10:05:00Z'),
    exitCode: 0,
    warnings: [],
    bytes: 123_456,
    freeBytes: 9_000_000,
    sizeBytes: 10_000_000,
    undoErrors: [],
    ...over,
  };
}

/** the messages a subscriber that arrives after the fact is given: only retained ones */
async function retainedOn(url: string, topic: string): Promise<{ payload: string; retain: boolean }[]> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  const got: { payload: string; retain: boolean }[] = [];
  client.on('message', (_t, payload, packet) =>
    got.push({ payload: payload.toString(), retain: packet.retain }),
  );
  await client.subscribeAsync(topic, { qos: 1 });
  // a marker published after the subscription comes back after any retained message
  const marker = `${topic}/__marker`;
  await client.subscribeAsync(marker, { qos: 1 });
  const seen = new Promise<void>((resolve) => client.on('message', (t) => t === marker && resolve()));
  await client.publishAsync(marker, 'x', { qos: 1 });
  await seen;
  await client.endAsync();
  return got.filter((m) => m.payload !== 'x');
}

describe('MQTT reporter', () => {
  let broker: Awaited<ReturnType<typeof spawnMosquitto>>;
  before(async () => {
    broker = await spawnMosquitto(await freePort());
  });
  after(async () => {
    await broker.stop();
  });

  it('publishes the exact status sequence of a run: running, each step, progress, success', async () => {
    const fx = fixture({ url: broker.url });
    const rec = await recorder(broker.url, [T.status]);
    const clock = handClock();
    const log = memoryLog();
    const bus = new Bus<RunEvents>();
    const reporter = new MqttReporter({ config: fx.config, log, clock, present: () => true });
    reporter.attach(bus);
    await reporter.start();

    const at = () => clock.now();
    bus.emit('run:start', { runId: 'run-1', drive: 'alpha', time: at() });
    bus.emit('step:start', { runId: 'run-1', drive: 'alpha', step: 'identify', time: at() });
    bus.emit('step:done', { runId: 'run-1', drive: 'alpha', step: 'identify', time: at(), ms: 3 });
    bus.emit('step:start', { runId: 'run-1', drive: 'alpha', step: 'sync', time: at() });
    for (const percent of [10, 55]) {
      clock.advance(600); // past the 500 ms interval: each goes out
      bus.emit('progress', {
        runId: 'run-1',
        drive: 'alpha',
        step: 'sync',
        time: at(),
        percent,
        bytes: percent * 1000,
        rate: 2_000_000,
        etaSeconds: 90,
      });
    }
    bus.emit('step:start', { runId: 'run-1', drive: 'alpha', step: 'verify', time: at() });
    bus.emit('run:end', ended({ bytes: 55_000 }));
    await rec.waitFor((m) => !m.retain && (m.json() as Status).state === 'success');
    await reporter.stop();
    await rec.close();

    const statuses = rec.messages
      .filter((m) => !m.retain)
      .map((m) => {
        const d = decode(statusSchema, m.payload);
        assert.ok(d.ok, `status validates: ${m.payload}`);
        return d.value;
      });
    assert.deepEqual(
      statuses.map((s) => [s.state, s.step, s.progress]),
      [
        ['running', null, null],
        ['running', 'identify', null],
        ['running', 'sync', null],
        ['running', 'sync', 10],
        ['running', 'sync', 55],
        ['running', 'verify', null],
        ['success', null, 100],
      ],
    );
    const progress = statuses[4]!;
    assert.equal(progress.bytes, 55_000);
    assert.equal(progress.rate, 2_000_000);
    // ETA = now + 90 s, in ISO-8601 with an offset (whole seconds)
    assert.ok(isoTime.safeParse(progress.eta).success);
    assert.equal(Date.parse(progress.eta!), Math.floor((clock.now().getTime() + 90_000) / 1000) * 1000);
    const end = statuses[6]!;
    assert.equal(end.drive, 'alpha');
    assert.equal(end.message, 'copy complete; safe to remove');
    assert.equal(end.eta, null);
    assert.equal(Date.parse(end.last_success!), Date.parse('2026-11-28T10:05:00Z'));
    for (const s of statuses) assert.ok(isoTime.safeParse(s.updated).success);
    assert.equal(log.count('mqtt:'), 0, log.lines.join('\n'));
    fx.cleanup();
  });

  it('sends a burst of 1,000 progress events as at most two messages, the last one included', async () => {
    const fx = fixture({ url: broker.url });
    const rec = await recorder(broker.url, [T.status]);
    const bus = new Bus<RunEvents>();
    const reporter = new MqttReporter({ config: fx.config, log: memoryLog(), present: () => true });
    reporter.attach(bus);
    await reporter.start();
    bus.emit('run:start', { runId: 'run-2', drive: 'alpha', time: new Date() });
    bus.emit('step:start', { runId: 'run-2', drive: 'alpha', step: 'sync', time: new Date() });
    await rec.waitFor((m) => !m.retain && (m.json() as Status).step === 'sync');

    const t0 = Date.now();
    for (let i = 1; i <= 1000; i++)
      bus.emit('progress', {
        runId: 'run-2',
        drive: 'alpha',
        step: 'sync',
        time: new Date(),
        percent: i / 10,
        bytes: i * 4096,
        rate: 1e6,
        etaSeconds: null,
      });
    const burstMs = Date.now() - t0;
    const last = await rec.waitFor((m) => !m.retain && (m.json() as Status).progress === 100);
    const progressMessages = rec.messages.filter((m) => !m.retain && (m.json() as Status).progress !== null);
    // one at once, then the latest when the half second is over (more only if the burst itself took longer)
    assert.ok(
      progressMessages.length <= 2 + Math.floor(burstMs / 500),
      `${progressMessages.length} progress messages for a ${burstMs} ms burst`,
    );
    assert.equal(progressMessages.at(-1), last);
    assert.equal((last.json() as Status).bytes, 1000 * 4096);

    bus.emit('run:end', ended({ runId: 'run-2' }));
    await rec.waitFor((m) => !m.retain && (m.json() as Status).state === 'success');
    await reporter.stop();
    await rec.close();
    fx.cleanup();
  });

  it('retains status, drive and discovery; never the events; drive states come from the ledger', async () => {
    const fx = fixture({ url: broker.url });
    const rec = await recorder(broker.url, [T.event]);
    const bus = new Bus<RunEvents>();
    const ledger = new Ledger(fx.config.state_dir);
    const reporter = new MqttReporter({
      config: fx.config,
      log: memoryLog(),
      ledger,
      present: (d) => d.name === 'alpha',
    });
    reporter.attach(bus);
    // the ledger hearing of the end first changes nothing for the reporter (`offsite run` writes it last)
    bus.on('run:end', (e) => ledger.recordRun(e).then(() => undefined));
    await reporter.start();
    bus.emit('run:start', { runId: 'run-3', drive: 'alpha', time: new Date() });
    bus.emit('step:start', { runId: 'run-3', drive: 'alpha', step: 'mount', time: new Date() });
    bus.emit(
      'run:end',
      ended({
        runId: 'run-3',
        result: 'failed',
        step: 'mount',
        message: 'not a mount point',
        exitCode: 1,
        bytes: null,
      }),
    );
    await rec.waitFor((m) => JSON.parse(m.payload).event_type === 'failed');
    await reporter.stop();
    await rec.close();

    assert.deepEqual(
      rec.messages.map((m) => {
        const e = decode(eventSchema, m.payload);
        assert.ok(e.ok);
        return [e.value.event_type, e.value.drive, e.value.step];
      }),
      [
        ['started', 'alpha', null],
        ['failed', 'alpha', 'mount'],
      ],
    );

    const status = await retainedOn(broker.url, T.status);
    assert.equal(status.length, 1);
    assert.equal(status[0]!.retain, true);
    const s = statusSchema.parse(JSON.parse(status[0]!.payload));
    assert.deepEqual([s.state, s.step, s.message], ['failed', 'mount', 'not a mount point']);

    const alpha = await retainedOn(broker.url, T.drive('alpha'));
    assert.equal(alpha[0]?.retain, true);
    const a = driveSchema.parse(JSON.parse(alpha[0]!.payload));
    assert.deepEqual([a.present, a.last_result, a.last_success, a.overdue], [true, 'failed', null, true]);
    assert.equal(Date.parse(a.last_run!), Date.parse('2026-11-28T10:05:00Z'));
    const beta = driveSchema.parse(JSON.parse((await retainedOn(broker.url, T.drive('beta')))[0]!.payload));
    assert.deepEqual([beta.name, beta.present, beta.last_run], ['beta', false, null]);

    const discovery = await retainedOn(broker.url, 'homeassistant/device/offsite_nas/config');
    assert.equal(discovery[0]?.retain, true);
    assert.equal(Object.keys(JSON.parse(discovery[0]!.payload).cmps).length > 10, true);

    assert.deepEqual(await retainedOn(broker.url, T.event), []);
    fx.cleanup();
  });

  it('builds the drive state from the run outcome when the ledger has not recorded it yet', async () => {
    const fx = fixture({ url: broker.url });
    const bus = new Bus<RunEvents>();
    const reporter = new MqttReporter({ config: fx.config, log: memoryLog(), present: () => true });
    reporter.attach(bus);
    await reporter.start();
    bus.emit('run:start', { runId: 'run-4', drive: 'beta', time: new Date() });
    bus.emit(
      'run:end',
      ended({ runId: 'run-4', drive: 'beta', result: 'warning', warnings: ['2 files vanished'] }),
    );
    await reporter.stop();
    const beta = driveSchema.parse(JSON.parse((await retainedOn(broker.url, T.drive('beta')))[0]!.payload));
    assert.equal(beta.last_result, 'warning');
    assert.equal(Date.parse(beta.last_success!), Date.parse('2026-11-28T10:05:00Z'));
    assert.equal(beta.free_bytes, 9_000_000);
    const s = statusSchema.parse(JSON.parse((await retainedOn(broker.url, T.status))[0]!.payload));
    assert.deepEqual([s.state, s.warnings], ['success', ['2 files vanished']]);
    fx.cleanup();
  });
});
