/**
 * A size limit on what the broker sends, applied to the bytes on the wire
 * before mqtt.js sees them. mqtt.js (MQTT 3.1.1) buffers a whole packet before
 * parsing it, whatever its size, and offers no limit: one 50 MB message took
 * the LED agent from 62 to 163 MiB, and there it stayed. Any client of the
 * broker can publish, so a
 * PUBLISH whose payload is over the limit is read past and dropped here,
 * never held in memory; at QoS 1 or 2 it is acknowledged, so that the broker
 * does not keep it in flight and stop sending. Every other packet, and every
 * PUBLISH within the limit, passes through unchanged.
 */
import { createConnection } from 'node:net';
import { Duplex } from 'node:stream';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';

export interface DroppedPacket {
  topic: string;
  /** the payload's size, never read */
  bytes: number;
}

export interface GuardOptions {
  maxPayloadBytes: number;
  onDropped(packet: DroppedPacket): void;
}

const PUBLISH = 3;

/**
 * mqtt.connect(), with the guard between the connection and mqtt.js, on the
 * first connection and every reconnection. A plain TCP broker (mqtt://, the
 * usual local one) gets its socket made here: mqtt.connect() would load its
 * stream builders for TLS, WebSocket and SOCKS too, 2.5 MiB resident that the
 * LED agent keeps for good (docs/benchmarks.md). Any other URL goes through
 * mqtt.connect(), whose stream builder is swapped before it first connects
 * (mqtt.js has no option for this).
 */
export function connectGuarded(url: string, options: IClientOptions, guard: GuardOptions): MqttClient {
  const u = new URL(url);
  if (u.protocol === 'mqtt:' || u.protocol === 'tcp:') {
    const port = Number(u.port || 1883);
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost';
    const client = new mqtt.MqttClient(() => new PacketGuard(createConnection({ port, host }), guard), {
      ...options,
    });
    // as mqtt.connect() does: errors are for the listeners the caller adds, never an uncaught exception
    client.on('error', () => {});
    return client;
  }
  const client = mqtt.connect(url, { ...options, manualConnect: true });
  const internal = client as unknown as { streamBuilder: (c: MqttClient) => Duplex };
  const build = internal.streamBuilder;
  internal.streamBuilder = (c) => new PacketGuard(build(c), guard);
  client.options.manualConnect = false;
  client.connect();
  return client;
}

/** The connection as mqtt.js sees it: writes go straight through, reads are filtered. */
export class PacketGuard extends Duplex {
  readonly #socket: Duplex;
  readonly #guard: GuardOptions;
  #mode: 'header' | 'pass' | 'inspect' | 'skip' = 'header';
  /** the fixed header being read: type and flags, then the remaining length (1 to 4 bytes) */
  #header: number[] = [];
  /** bytes of the current packet not yet read */
  #remaining = 0;
  /** an oversized PUBLISH's variable header (topic, packet id): at most 65,539 bytes are kept */
  #head: Buffer[] = [];
  #headBytes = 0;
  #headNeeded = 2;

  constructor(socket: Duplex, guard: GuardOptions) {
    super();
    this.#socket = socket;
    this.#guard = guard;
    socket.on('data', (chunk: Buffer) => {
      const passed = this.#filter(chunk);
      if (passed && !this.push(passed)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (e) => this.destroy(e));
    socket.on('close', () => this.destroy());
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (e?: Error | null) => void): void {
    if (this.#socket.write(chunk)) done();
    else this.#socket.once('drain', () => done());
  }

  override _final(done: (e?: Error | null) => void): void {
    this.#socket.end();
    done();
  }

  override _destroy(e: Error | null, done: (e?: Error | null) => void): void {
    this.#socket.destroy();
    done(e);
  }

  /**
   * What of chunk goes on to mqtt.js: the chunk itself when all of it passes
   * (the usual case: no copy), else the parts that pass, or null.
   */
  #filter(chunk: Buffer): Buffer | null {
    const out = new Passed(chunk);
    let i = 0;
    // where the fixed header being read began in this chunk; -1: in an earlier one
    let headerAt = this.#header.length > 0 ? -1 : 0;
    while (i < chunk.length) {
      if (this.#mode === 'header') {
        if (this.#header.length === 0) headerAt = i;
        const state = this.#readHeader(chunk[i++]!);
        if (state === 'malformed') return this.#fail('a malformed packet header');
        if (state === 'pass') {
          if (headerAt >= 0) out.keep(headerAt, i);
          else out.add(Buffer.from(this.#header));
          this.#header = [];
        }
        continue;
      }
      const n = Math.min(this.#remaining, chunk.length - i);
      if (this.#mode === 'inspect') {
        const taken = Math.min(n, this.#headNeeded - this.#headBytes);
        this.#head.push(chunk.subarray(i, i + taken));
        this.#headBytes += taken;
        this.#remaining -= taken;
        i += taken;
        if (this.#headBytes < this.#headNeeded) continue;
        if (this.#headNeeded === 2) {
          // the topic's length is in: then the topic, and a packet id at QoS 1 and 2
          this.#headNeeded += Buffer.concat(this.#head).readUInt16BE(0) + (this.#qos() > 0 ? 2 : 0);
          if (this.#headNeeded - 2 > this.#remaining)
            return this.#fail('a PUBLISH whose topic is longer than the packet');
          if (this.#headBytes < this.#headNeeded) continue;
        }
        const passed = this.#decide();
        if (passed) out.add(passed);
        continue;
      }
      if (this.#mode === 'pass') out.keep(i, i + n);
      i += n;
      this.#remaining -= n;
      if (this.#remaining === 0) this.#mode = 'header';
    }
    return out.result();
  }

  /** One more byte of a fixed header; once it is whole, the packet is passed on or inspected. */
  #readHeader(byte: number): 'more' | 'malformed' | 'pass' | 'inspect' {
    this.#header.push(byte);
    const length = this.#header.length;
    if (length < 2 || (byte & 0x80) !== 0) return length === 5 ? 'malformed' : 'more';
    const publish = this.#header[0]! >> 4 === PUBLISH;
    if (publish && this.#qos() === 3) return 'malformed';
    this.#remaining = this.#header.slice(1).reduce((sum, b, k) => sum + (b & 0x7f) * 128 ** k, 0);
    // a PUBLISH's body is its variable header and payload: no larger than the limit, the payload is not either
    if (publish && this.#remaining > this.#guard.maxPayloadBytes) {
      this.#mode = 'inspect';
      this.#head = [];
      this.#headBytes = 0;
      this.#headNeeded = 2;
      return 'inspect';
    }
    this.#mode = this.#remaining > 0 ? 'pass' : 'header';
    return 'pass';
  }

  #qos(): number {
    return (this.#header[0]! >> 1) & 3;
  }

  /** The variable header of a large PUBLISH is in: pass the packet on (its bytes so far), or drop its payload unread. */
  #decide(): Buffer | null {
    const header = Buffer.from(this.#header);
    const head = Buffer.concat(this.#head);
    const qos = this.#qos();
    this.#header = [];
    this.#head = [];
    if (this.#remaining <= this.#guard.maxPayloadBytes) {
      // a long topic and a small payload: not this guard's business
      this.#mode = this.#remaining > 0 ? 'pass' : 'header';
      return Buffer.concat([header, head]);
    }
    this.#mode = 'skip';
    const topicLength = head.readUInt16BE(0);
    if (qos > 0 && !this.writableEnded) {
      // PUBACK at QoS 1; PUBREC at QoS 2 (mqtt.js answers the broker's PUBREL with PUBCOMP itself).
      // Written through this stream, so it queues behind whatever mqtt.js is writing.
      const id = head.subarray(2 + topicLength, 4 + topicLength);
      this.write(Buffer.from([qos === 1 ? 0x40 : 0x50, 2, id[0]!, id[1]!]));
    }
    this.#guard.onDropped({
      topic: head.subarray(2, 2 + topicLength).toString('utf8'),
      bytes: this.#remaining,
    });
    return null;
  }

  #fail(why: string): null {
    this.destroy(new Error(`the broker sent ${why}`));
    return null;
  }
}

/** The bytes of one chunk that pass, gathered as ranges so that a chunk passing whole is not copied. */
class Passed {
  readonly #chunk: Buffer;
  readonly #parts: Buffer[] = [];
  #from = 0;
  #to = 0;

  constructor(chunk: Buffer) {
    this.#chunk = chunk;
  }

  /** chunk[from, to) passes */
  keep(from: number, to: number): void {
    if (from === this.#to) {
      this.#to = to;
      return;
    }
    this.#flush();
    this.#from = from;
    this.#to = to;
  }

  /** bytes held from earlier chunks pass, before what follows */
  add(bytes: Buffer): void {
    this.#flush();
    this.#parts.push(bytes);
    // what is kept next starts a range of its own, after these bytes
    this.#from = -1;
    this.#to = -1;
  }

  result(): Buffer | null {
    if (this.#parts.length === 0 && this.#from === 0 && this.#to === this.#chunk.length) return this.#chunk;
    this.#flush();
    return this.#parts.length > 0 ? Buffer.concat(this.#parts) : null;
  }

  #flush(): void {
    if (this.#to > this.#from) this.#parts.push(this.#chunk.subarray(this.#from, this.#to));
    this.#from = this.#to;
  }
}
