/**
 * The LED agent: follows the status topic and the configured drives' topics of
 * each followed node, keeps the latest valid payload of each, and shows the
 * light that arbitrate() picks. It knows nothing of backups beyond the MQTT
 * contract, and nothing in a message is ever executed: payloads are parsed as
 * JSON, validated (bridge/payloads.ts, held to the zod schemas by a test), stored. Any broker client can publish, so a drive the
 * configuration does not name is never followed: it could only be a forgery.
 */

import { ConfigError } from '../bridge/config/config-error.js';
import type { Config, MqttConfig } from '../bridge/config.js';
import { childLogger, type Logger, silentLogger } from '../bridge/log.js';
import { MqttLink } from '../bridge/mqtt/link.js';
import type { DroppedPacket } from '../bridge/mqtt/packet-guard.js';
import { decodeDrive, decodeStatus } from '../bridge/payloads.js';
import { AVAILABILITY, MAX_PAYLOAD_BYTES, type Topics, topics } from '../bridge/topics.js';
import { BadPayloadLog } from './bad-payloads.js';
import { type Clock, systemClock, type Timer } from './clock.js';
import type { Driver } from './drivers/driver.js';
import { arbitrate, type Light, type NodeView, OFF, sameLight } from './light.js';
import { PatternPlayer } from './player.js';

export { MAX_PAYLOAD_BYTES };

export interface LedAgentOptions {
  config: Config;
  driver: Driver;
  log?: Logger;
  clock?: Clock;
  /**
   * How long the broker may be unreachable before the light goes off. A broker
   * restart takes a second or two; an outage longer than this means the light
   * no longer knows anything, and a stale green must not say "safe to remove".
   */
  offlineGraceMs?: number;
  /** reconnect delay: doubles from firstMs after each failure, up to maxMs */
  backoff?: { firstMs: number; maxMs: number };
}

interface Followed {
  node: string;
  topics: Topics;
  /** the drives whose state and runs count for this node */
  drives: ReadonlySet<string>;
}

/** led.nodes (default: this node), each with the drives the LED may follow. */
export function followedNodes(config: Config): Array<{ node: string; drives: string[] }> {
  const own = config.drives.map((d) => d.name);
  return (config.led.nodes ?? [config.node_id]).map((entry) => {
    const { node, drives } = typeof entry === 'string' ? { node: entry, drives: undefined } : entry;
    // config validation makes another node name its drives
    return { node, drives: drives ?? (node === config.node_id ? own : []) };
  });
}

/** The mqtt section the agent needs; the bridge may run without MQTT, the LED agent cannot. */
export function requireMqtt(config: Config): MqttConfig {
  if (!config.mqtt?.enabled)
    throw new ConfigError(
      config.file,
      'mqtt',
      'an enabled mqtt section: the LED agent follows the bridge through the broker',
    );
  return config.mqtt;
}

export class LedAgent {
  readonly #config: Config;
  readonly #mqtt: MqttConfig;
  readonly #driver: Driver;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #player: PatternPlayer;
  readonly #bad: BadPayloadLog;
  readonly #followed: Followed[];
  readonly #own: Topics;
  readonly #views = new Map<string, NodeView>();
  readonly #graceMs: number;
  readonly #link: MqttLink;
  readonly #listeners = new Set<(light: Light) => void>();
  #grace: Timer | null = null;
  #outage = false;
  #stopping = false;
  #started = false;

  light: Light = OFF;
  /** counters for tests, the benchmark and the shutdown line */
  readonly stats = { received: 0, ignored: 0 };

  constructor(options: LedAgentOptions) {
    this.#config = options.config;
    this.#mqtt = requireMqtt(options.config);
    this.#driver = options.driver;
    this.#log = childLogger(options.log ?? silentLogger(), 'led');
    this.#clock = options.clock ?? systemClock;
    this.#graceMs = options.offlineGraceMs ?? 5000;
    this.#player = new PatternPlayer(this.#driver, this.#clock, childLogger(this.#log, this.#driver.name));
    this.#bad = new BadPayloadLog(this.#log, this.#clock);
    this.#followed = followedNodes(options.config).map(({ node, drives }) => ({
      node,
      topics: topics(this.#mqtt.base_topic, node),
      drives: new Set(drives),
    }));
    this.#own = topics(this.#mqtt.base_topic, options.config.node_id);
    const backoff = options.backoff ?? { firstMs: 500, maxMs: 30_000 };
    this.#link = new MqttLink({
      config: this.#mqtt,
      log: this.#log,
      role: 'led',
      connectTimeoutMs: 10_000,
      backoff,
      persistent: true,
      will: { topic: this.#own.ledAvailability, payload: AVAILABILITY.offline },
      whileAway: `the light goes off after ${this.#graceMs / 1000} s without it; retrying, at most ${backoff.maxMs / 1000} s apart`,
      onDropped: (packet) => this.#dropped(packet),
    });
    // exact topics, no drive/+ wildcard: a forged drive's messages never reach this process
    for (const f of this.#followed)
      for (const topic of [f.topics.status, ...[...f.drives].map((d) => f.topics.drive(d))])
        this.#link.subscribe(topic, (payload) => this.receive(topic, payload));
    this.#link.onChange((connected) => (connected ? this.#connected() : this.#lost()));
  }

  get connected(): boolean {
    return this.#link.connected;
  }

  /** Called with each new light (not with a new reason for the same light). */
  onLight(listener: (light: Light) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves when the driver has every frame asked for so far (tests read the LED after this). */
  settled(): Promise<void> {
    return this.#player.flushed();
  }

  /** The pattern player's write count (the benchmark's check that bursts are coalesced). */
  get writes(): number {
    return this.#player.writes;
  }

  /**
   * Shows "off" (nothing known yet) and makes the first connection attempt. If
   * the broker is not there, it resolves anyway and keeps trying with backoff.
   */
  async start(): Promise<void> {
    if (this.#started) throw new Error('the LED agent is already started');
    this.#started = true;
    this.#player.show(OFF);
    this.#log.info(
      `driver ${this.#driver.name}, following ${this.#followed.map((f) => f.node).join(', ')} on ${this.#mqtt.url}`,
    );
    const attempted = new Promise<void>((resolve) => {
      const off = this.#link.onChange(() => {
        off();
        resolve();
      });
    });
    this.#link.start();
    await attempted;
  }

  /** Publishes `offline`, turns the light off, releases the driver. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#grace?.cancel();
    this.#bad.stop();
    // not connected: the broker publishes our Last Will (`offline`) itself
    if (this.#link.connected) void this.#link.publish(this.#availability(AVAILABILITY.offline));
    await this.#link.stop(2000);
    await this.#player.stop();
    await this.#driver.close();
    this.#log.info(
      `stopped (${this.stats.received} messages, ${this.stats.ignored} ignored); the light is off`,
    );
  }

  /** One message from the broker. Public so the fuzz test can also call it directly. */
  receive(topic: string, payload: Buffer): void {
    this.stats.received += 1;
    const source = this.#sourceOf(topic);
    if (!source) {
      this.#ignore(topic, 'not the status or a configured drive of a followed node');
      return;
    }
    const view: NodeView = this.#views.get(source.node) ?? { drives: new Map() };
    this.#views.set(source.node, view);
    // an empty retained message is how a retained topic is deleted: forget that source
    if (payload.length === 0) {
      if (source.drive === null) view.status = undefined;
      else view.drives.delete(source.drive);
      this.#update();
      return;
    }
    if (source.drive === null) {
      const status = decodeStatus(payload);
      if (!status.ok) {
        this.#ignore(topic, status.error);
        return;
      }
      const named = status.value.drive;
      if (named !== null && !source.drives.has(named)) {
        this.#ignore(topic, `the status names drive "${named}", which is not configured for ${source.node}`);
        return;
      }
      view.status = status.value;
    } else {
      const drive = decodeDrive(payload);
      if (!drive.ok) {
        this.#ignore(topic, drive.error);
        return;
      }
      if (drive.value.name !== source.drive) {
        this.#ignore(topic, `the payload names drive "${drive.value.name}"`);
        return;
      }
      view.drives.set(source.drive, drive.value);
    }
    this.#update();
  }

  #sourceOf(topic: string): { node: string; drive: string | null; drives: ReadonlySet<string> } | null {
    for (const f of this.#followed) {
      if (topic === f.topics.status) return { node: f.node, drive: null, drives: f.drives };
      const drive = f.topics.driveOf(topic);
      if (drive && f.drives.has(drive)) return { node: f.node, drive, drives: f.drives };
    }
    return null;
  }

  /** A payload over MAX_PAYLOAD_BYTES, read past on the wire (bridge/mqtt/packet-guard.ts): never in memory. */
  #dropped(packet: DroppedPacket): void {
    this.stats.received += 1;
    this.#ignore(
      packet.topic,
      `a payload of ${packet.bytes} bytes exceeds ${MAX_PAYLOAD_BYTES}: dropped unread`,
    );
  }

  #ignore(topic: string, reason: string): void {
    this.stats.ignored += 1;
    this.#bad.report(topic, reason);
  }

  #update(): void {
    const light = arbitrate(this.#views, this.#config.led.states);
    if (sameLight(light, this.light)) return;
    this.light = light;
    this.#log.info(`shows ${light.state}: ${light.because}`);
    this.#player.show(light);
    for (const listener of this.#listeners) listener(light);
  }

  #availability(payload: string) {
    return { topic: this.#own.ledAvailability, payload, retain: true };
  }

  /** Connected and subscribed: the retained messages restore the light. */
  #connected(): void {
    this.#grace?.cancel();
    this.#grace = null;
    this.#outage = false;
    void this.#link.publish(this.#availability(AVAILABILITY.online));
  }

  /** Broker gone or not reachable: keep the light for a grace period, then off (the link retries with backoff). */
  #lost(): void {
    if (this.#stopping || this.#outage) return;
    this.#outage = true;
    this.#grace ??= this.#clock.setTimeout(() => {
      this.#grace = null;
      this.#views.clear();
      this.#update();
    }, this.#graceMs);
  }
}
