/**
 * The packet guard on a real TCP connection, the test playing the broker byte
 * by byte: what reaches mqtt.js, what the guard answers, and what it refuses.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { describe, it } from 'node:test';
import mqtt from 'mqtt';
import { parseConfig } from '../../../bridge/config.js';
import { MqttLink } from '../../../bridge/mqtt/link.js';
import { type DroppedPacket, PacketGuard } from '../../../bridge/mqtt/packet-guard.js';
import { freePort, spawnMosquitto } from '../../../harness/broker.js';
import { selfSignedCert } from '../../helpers/tls.js';
import { memoryLog } from './helpers.js';

/** A fixed header with the MQTT remaining-length encoding. */
function header(first: number, length: number): number[] {
  const bytes = [first];
  do {
    let digit = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) digit |= 0x80;
    bytes.push(digit);
  } while (length > 0);
  return bytes;
}

function publish(topic: string, payload: Buffer, qos = 0, id = 0): Buffer {
  const name = Buffer.from(topic);
  const variable = [name.length >> 8, name.length & 0xff, ...name, ...(qos > 0 ? [id >> 8, id & 0xff] : [])];
  return Buffer.concat([
    Buffer.from(header(0x30 | (qos << 1), variable.length + payload.length)),
    Buffer.from(variable),
    payload,
  ]);
}

const CONNACK = Buffer.from([0x20, 2, 0, 0]);
const PINGRESP = Buffer.from([0xd0, 0]);
const SUBACK = Buffer.from([0x90, 3, 0, 1, 1]);

/** A guard on the client end of a loopback connection; `broker` is the other end. */
async function guarded(maxPayloadBytes: number) {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const socket = tcpConnect(port, '127.0.0.1');
  const [broker] = await accepted;
  broker.setNoDelay(true);
  const dropped: DroppedPacket[] = [];
  const guard = new PacketGuard(socket, { maxPayloadBytes, onDropped: (p) => dropped.push(p) });
  const passed: Buffer[] = [];
  guard.on('data', (chunk: Buffer) => passed.push(chunk));
  const answered: Buffer[] = [];
  broker.on('data', (chunk: Buffer) => answered.push(chunk));
  return {
    broker,
    guard,
    dropped,
    /** send, byte by byte when asked, then close the broker's side and wait until the guard has read it all */
    async sendAndEnd(bytes: Buffer, byteByByte = false): Promise<{ passed: Buffer; answered: Buffer }> {
      if (byteByByte)
        for (const b of bytes) {
          broker.write(Buffer.from([b]));
          await new Promise((r) => setImmediate(r));
        }
      else broker.write(bytes);
      // the guard has read everything once it sees the end; its answers are in once the broker's side ends
      const ended = Promise.all([once(guard, 'end'), once(broker, 'end')]);
      broker.end();
      await ended;
      server.close();
      return { passed: Buffer.concat(passed), answered: Buffer.concat(answered) };
    },
    close: () => {
      broker.destroy();
      server.close();
    },
  };
}

describe('the packet guard between the broker and mqtt.js', () => {
  it('passes every packet within the limit byte for byte, however the bytes are split', async () => {
    const stream = Buffer.concat([
      CONNACK,
      SUBACK,
      publish('offsite/nas/status', Buffer.from('{"state":"idle"}')),
      publish('offsite/nas/drive/alpha', Buffer.alloc(200, 0x20), 1, 0x0102),
      // a remaining length of two bytes (200 + header > 127)
      PINGRESP,
    ]);
    for (const byteByByte of [false, true]) {
      const g = await guarded(1024);
      const { passed, answered } = await g.sendAndEnd(stream, byteByByte);
      assert.deepEqual(passed, stream);
      assert.equal(answered.length, 0, 'nothing answered: mqtt.js acknowledges what it gets');
      assert.equal(g.dropped.length, 0);
    }
  });

  it('drops a PUBLISH over the limit unread, says which, and the next packet still arrives', async () => {
    for (const byteByByte of [false, true]) {
      const g = await guarded(64);
      const big = publish('offsite/nas/status', Buffer.alloc(10_000, 0x7b));
      const after = publish('offsite/nas/status', Buffer.from('{"ok":1}'));
      const { passed } = await g.sendAndEnd(Buffer.concat([CONNACK, big, after, PINGRESP]), byteByByte);
      assert.deepEqual(passed, Buffer.concat([CONNACK, after, PINGRESP]));
      assert.deepEqual(g.dropped, [{ topic: 'offsite/nas/status', bytes: 10_000 }]);
    }
  });

  it('acknowledges a dropped QoS 1 message (PUBACK) and a QoS 2 one (PUBREC), so the broker sends on', async () => {
    const g = await guarded(64);
    const stream = Buffer.concat([
      publish('a/b', Buffer.alloc(5000), 1, 0x1234),
      publish('a/c', Buffer.alloc(5000), 2, 0xbeef),
    ]);
    const { passed, answered } = await g.sendAndEnd(stream);
    assert.equal(passed.length, 0);
    assert.deepEqual([...answered], [0x40, 2, 0x12, 0x34, 0x50, 2, 0xbe, 0xef]);
    assert.deepEqual(
      g.dropped.map((d) => d.topic),
      ['a/b', 'a/c'],
    );
  });

  it('passes a PUBLISH whose topic makes it long but whose payload is within the limit', async () => {
    const g = await guarded(64);
    const long = publish(`offsite/${'x'.repeat(100)}`, Buffer.from('{}'), 1, 7);
    const { passed, answered } = await g.sendAndEnd(long, true);
    assert.deepEqual(passed, long);
    assert.equal(answered.length, 0);
  });

  it('reads past a 50 MB payload in the chunks it arrives in and follows the next packet', async () => {
    const g = await guarded(64 * 1024);
    const after = publish('t', Buffer.from('{}'));
    const { passed } = await g.sendAndEnd(
      Buffer.concat([publish('t', Buffer.alloc(50 * 1024 * 1024, 0x20), 1, 1), after]),
    );
    assert.deepEqual(passed, after);
    assert.deepEqual(g.dropped, [{ topic: 't', bytes: 50 * 1024 * 1024 }]);
  });

  it('closes the connection on a packet length longer than MQTT allows, or a topic longer than its packet', async () => {
    for (const bad of [
      Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]),
      Buffer.concat([Buffer.from(header(0x30, 100)), Buffer.from([0xff, 0xff]), Buffer.alloc(98)]),
    ]) {
      const g = await guarded(16);
      const failed = once(g.guard, 'error');
      g.broker.write(bad);
      const [e] = (await failed) as [Error];
      assert.match(e.message, /^the broker sent a/);
      g.close();
    }
  });

  it('is in place over TLS too (mqtts://, where mqtt.js builds the connection): MqttLink drops a 1 MB payload', async () => {
    const tls = selfSignedCert();
    const { cert } = tls;
    const broker = await spawnMosquitto(await freePort(), undefined, tls);
    const config = parseConfig({
      source: { path: '/srv' },
      mqtt: { url: broker.url, ca_file: cert },
    }).mqtt;
    const log = memoryLog();
    const link = new MqttLink({ config, log, role: 'test' });
    const got: string[] = [];
    for (const topic of ['guard/tls/big', 'guard/tls/small'])
      link.subscribe(topic, (payload) => got.push(`${topic}: ${payload.toString().trim()}`));
    const publisher = await mqtt.connectAsync(broker.url, { ca: readFileSync(cert), reconnectPeriod: 0 });
    try {
      // retained, so they reach the link whenever its subscriptions are made
      await publisher.publishAsync('guard/tls/big', Buffer.alloc(1024 * 1024, 0x20), {
        qos: 1,
        retain: true,
      });
      await publisher.publishAsync('guard/tls/small', 'small', { qos: 1, retain: true });
      link.start();
      const dropped = 'dropped a payload of 1048576 bytes on "guard/tls/big" unread';
      for (let i = 0; got.length === 0 || log.count(dropped) === 0; i++) {
        assert.ok(i < 1000, `within 10 s; log: ${log.lines.join(' | ')}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(link.connected, 'connected over TLS');
      assert.deepEqual(got, ['guard/tls/small: small']);
      assert.equal(log.count(dropped), 1);
    } finally {
      await publisher.endAsync(true);
      await link.stop(1000);
      await broker.stop();
      tls.remove();
    }
  });
});
