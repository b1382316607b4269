/**
 * A connection to the broker that never holds anything up (docs/design.md §6). It
 * connects in the background and keeps trying; while it is down it keeps only
 * the latest message per retained topic (a status replaces the one before it,
 * so a broker away during a sync does not collect thousands of progress
 * messages) plus a few events; when it comes back it sends them in order.
 * stop() gives the final state a bounded time to get out, then gives up with
 * one log line: the next run republishes everything retained. A broker that
 * is not connected at stop() gets `lastChanceMs` (default 1 s) of fresh
 * connection attempts, not the whole flush time: a stopped broker costs a run
 * at most that, plus the first attempt's wait at start (docs/mqtt.md).
 *
 * It also carries the LED agent's one long-lived connection (docs/led.md): a
 * Last Will, reconnection with backoff, and `persistent`, which never gives up.
 * The pause between attempts is the link's own (mqtt.js only knows a fixed period).
 */
import type { MqttClient } from 'mqtt';
import type { MqttConfig } from '../config.js';
import { errorMessage } from '../error-message.js';
import { childLogger, type Logger } from '../log.js';
import { MAX_PAYLOAD_BYTES } from '../topics.js';
import { Backoff, clientOptions, type FailureKind, failureKind, failureText } from './connection.js';
import { connectGuarded, type DroppedPacket } from './packet-guard.js';

export interface Outgoing {
  topic: string;
  payload: string;
  retain: boolean;
}

export interface LinkOptions {
  /** undefined or enabled: false: nothing is published and nothing is logged */
  config: MqttConfig | undefined;
  log: Logger;
  role: string;
  env?: NodeJS.ProcessEnv;
  /** default 3 s */
  connectTimeoutMs?: number;
  /** default 2 s */
  reconnectMs?: number;
  /** events (not retained) kept while disconnected; older ones are dropped first (default 20) */
  maxQueuedEvents?: number;
  /** how long stop() keeps trying a broker that is not connected (default 1 s) */
  lastChanceMs?: number;
  /** published (QoS 1, retained) by the broker when this client vanishes without a word */
  will?: { topic: string; payload: string };
  /** the pause between attempts doubles from firstMs after each failed one, up to maxMs (default: reconnectMs, fixed) */
  backoff?: { firstMs: number; maxMs: number };
  /**
   * A long-running client: never gives up (a refused login or an unreadable
   * password file may be put right meanwhile, and the attempt after one reads
   * the options again), and logs each kind of trouble once per outage, not once for good.
   */
  persistent?: boolean;
  /** what the broker being away means for this client, in the warning (default: a run's words) */
  whileAway?: string;
  /** a payload over MAX_PAYLOAD_BYTES, dropped unread (default: logged here) */
  onDropped?: (packet: DroppedPacket) => void;
}

/** between two connection attempts in stop()'s last chance */
const LAST_CHANCE_RETRY_MS = 250;

interface Queued {
  msg: Outgoing;
  settle: (delivered: boolean) => void;
}

type Handler = (payload: Buffer, retained: boolean) => void;
type ChangeListener = (connected: boolean) => void;

export class MqttLink {
  private readonly opts: LinkOptions;
  private readonly log: Logger;
  private client: MqttClient | null = null;
  private readonly queue: Queued[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly handlers = new Map<string, Set<Handler>>();
  private readonly listeners = new Set<ChangeListener>();
  private readonly logged = new Set<FailureKind>();
  /** why nothing can be sent until the next run, when that is known for sure */
  private hopeless: string | null = null;
  private lastFailure: string | null = null;
  private everConnected = false;
  /** a connection attempt is under way (from mqtt.js's connect or reconnect until connect or close) */
  private attempting = false;
  private started = false;
  private stopped = false;
  private silenceTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private dropped = 0;

  constructor(opts: LinkOptions) {
    this.opts = opts;
    this.log = childLogger(opts.log, 'mqtt');
    const fixed = opts.reconnectMs ?? 2000;
    this.backoff = new Backoff(opts.backoff ?? { firstMs: fixed, maxMs: fixed });
  }

  get enabled(): boolean {
    return Boolean(this.opts.config?.enabled);
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** Begin connecting; returns at once. */
  start(): void {
    if (!this.opts.config?.enabled || this.started || this.stopped) return;
    this.started = true;
    this.connect();
  }

  /**
   * Called with true once connected and subscribed, with false each time an
   * attempt fails or the connection is lost; returns the way to stop listening.
   */
  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A new client from the configuration (the password and CA files are read here). */
  private connect(): void {
    const cfg = this.opts.config!;
    const connectTimeoutMs = this.opts.connectTimeoutMs ?? 3000;
    let client: MqttClient;
    try {
      const options = clientOptions(cfg, {
        role: this.opts.role,
        connectTimeoutMs,
        // the pause between attempts is ours (scheduleRetry)
        reconnectMs: 0,
        env: this.opts.env,
        ...(this.opts.will ? { will: this.opts.will } : {}),
      });
      client = connectGuarded(cfg.url, options, {
        maxPayloadBytes: MAX_PAYLOAD_BYTES,
        onDropped: (packet) => (this.opts.onDropped ?? ((p) => this.onDropped(p)))(packet),
      });
    } catch (e) {
      // an unreadable password or CA file, or a URL that does not parse
      this.giveUp('config', errorMessage(e));
      return;
    }
    this.client = client;
    this.attempting = true;
    client.on('reconnect', () => {
      this.attempting = true;
    });
    client.on('close', () => {
      if (this.client !== client) return;
      this.attempting = false;
      this.changed(false);
      this.scheduleRetry();
    });
    client.on('connect', () => void this.onConnect(client));
    client.on('error', (e) => {
      if (this.client === client) this.onError(e);
    });
    client.on('message', (topic, payload, packet) => {
      for (const h of this.handlers.get(topic) ?? []) {
        try {
          h(payload, packet.retain);
        } catch (e) {
          this.log.warn(`handling a message on ${topic} failed: ${errorMessage(e)}`);
        }
      }
    });
    if (this.silenceTimer) return;
    // a broker that swallows packets without answering raises no error at all
    this.silenceTimer = setTimeout(() => {
      if (!this.everConnected && !this.lastFailure)
        this.fail('unreachable', `no answer within ${connectTimeoutMs} ms`);
    }, connectTimeoutMs + 100);
    this.silenceTimer.unref();
  }

  /** The next attempt, after a pause that grows with each failure (backoff) and is reset by a connection. */
  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer || (this.hopeless && !this.opts.persistent)) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.retry();
    }, this.backoff.next());
  }

  /** Try again now: on the same client (what it was sending is kept), or on a new one after a config failure. */
  private retry(): void {
    if (this.stopped || this.attempting) return;
    const client = this.client;
    if (!client) {
      this.connect();
      return;
    }
    this.attempting = true;
    client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore });
  }

  /**
   * Send a message (QoS 1). Resolves true once the broker has it, false when it
   * was replaced by a newer message on the same topic or never got out. Never rejects.
   */
  publish(msg: Outgoing): Promise<boolean> {
    if (!this.enabled || this.stopped) return Promise.resolve(false);
    if (this.client?.connected) return this.send(msg);
    return new Promise((settle) => {
      if (msg.retain) {
        const i = this.queue.findIndex((q) => q.msg.retain && q.msg.topic === msg.topic);
        if (i >= 0) this.queue.splice(i, 1)[0]!.settle(false);
      } else {
        const events = this.queue.filter((q) => !q.msg.retain);
        if (events.length >= (this.opts.maxQueuedEvents ?? 20)) {
          this.queue.splice(this.queue.indexOf(events[0]!), 1);
          events[0]!.settle(false);
        }
      }
      this.queue.push({ msg, settle });
    });
  }

  /** Listen to one topic (exact match); the subscription is renewed on every reconnect. */
  subscribe(topic: string, handler: Handler): () => void {
    let set = this.handlers.get(topic);
    if (!set) {
      set = new Set();
      this.handlers.set(topic, set);
      if (this.client?.connected) void this.client.subscribeAsync(topic, { qos: 1 }).catch(() => {});
    }
    set.add(handler);
    return () => set.delete(handler);
  }

  /**
   * Resolves once the first connection attempt has an outcome: true when
   * connected, false when it failed or `timeoutMs` passed. Lets a run start
   * with a live connection when the broker is there, without waiting long when it is not.
   */
  async firstAttempt(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (!this.connected && !this.lastFailure && !this.hopeless && this.client && Date.now() < until)
      await new Promise((r) => setTimeout(r, 10));
    return this.connected;
  }

  /** Wait until everything queued and in flight has reached the broker; false when the time ran out. */
  async flush(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (this.queue.length === 0 && this.inFlight.size === 0) return true;
      if (this.hopeless || Date.now() >= until) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Give the last messages up to `flushMs` to get out, then disconnect. Logs
   * one line when something could not be published. Never throws.
   */
  async stop(flushMs = 5000): Promise<boolean> {
    if (this.stopped) return true;
    const pending = this.queue.length + this.inFlight.size;
    if (this.client && pending && !this.connected) await this.lastChance();
    const left = () => this.queue.length + this.inFlight.size;
    const delivered = !this.client
      ? pending === 0
      : this.connected
        ? await this.flush(flushMs)
        : left() === 0;
    this.stopped = true;
    clearTimeout(this.silenceTimer);
    clearTimeout(this.retryTimer);
    if (!delivered && this.enabled) {
      const why = this.hopeless ?? this.lastFailure ?? 'the broker did not answer in time';
      this.log.warn(`status could not be published (${why}); the next run publishes it again`);
    }
    for (const q of this.queue.splice(0)) q.settle(false);
    const client = this.client;
    this.client = null;
    if (client) {
      // a clean disconnect when all went out; otherwise drop the socket, the broker is not listening
      if (delivered && client.connected)
        await Promise.race([
          client.endAsync().catch(() => {}),
          new Promise((r) => setTimeout(r, 1000).unref()),
        ]);
      client.end(true);
    }
    return delivered;
  }

  /**
   * The broker is not there at the end: try again now and every 250 ms, for
   * `lastChanceMs` at most (it may be restarting), instead of waiting for
   * mqtt.js's next scheduled attempt. Resolves once connected or out of time.
   */
  private async lastChance(): Promise<void> {
    const until = Date.now() + (this.opts.lastChanceMs ?? 1000);
    let retryAt = 0;
    while (!this.connected && !this.hopeless && this.client && Date.now() < until) {
      if (!this.attempting && Date.now() >= retryAt) {
        retryAt = Date.now() + LAST_CHANCE_RETRY_MS;
        this.retry();
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private send(msg: Outgoing): Promise<boolean> {
    const client = this.client!;
    const p = client.publishAsync(msg.topic, msg.payload, { qos: 1, retain: msg.retain }).then(
      () => true,
      (e: Error) => {
        if (!this.stopped) this.fail('publish', `${msg.topic}: ${e.message}`);
        return false;
      },
    );
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
    return p;
  }

  private async onConnect(client: MqttClient): Promise<void> {
    if (this.client !== client) return;
    const url = this.opts.config?.url;
    if (this.lastFailure) this.log.info(`connected to ${url}${this.everConnected ? ' again' : ''}`);
    this.everConnected = true;
    this.lastFailure = null;
    this.backoff.reset();
    if (this.opts.persistent) this.logged.clear();
    const topicsToWatch = [...this.handlers.keys()];
    for (const q of this.queue.splice(0)) void this.send(q.msg).then(q.settle);
    if (topicsToWatch.length) {
      try {
        await client.subscribeAsync(topicsToWatch, { qos: 1 });
      } catch (e) {
        // the connection dropped at once: its close tells the listeners
        this.log.debug(`subscribing: ${errorMessage(e)}`);
        return;
      }
    }
    if (this.client === client && client.connected) this.changed(true);
  }

  private changed(connected: boolean): void {
    if (this.stopped) return;
    for (const listener of this.listeners) listener(connected);
  }

  /** A payload too large to read: the first is a warning, the rest only count (anyone may publish). */
  private onDropped(packet: DroppedPacket): void {
    this.dropped += 1;
    const line = `dropped a payload of ${packet.bytes} bytes on ${JSON.stringify(packet.topic.slice(0, 200))} unread (over ${MAX_PAYLOAD_BYTES})`;
    if (this.dropped === 1) this.log.warn(`${line}; further ones are logged with --verbose only`);
    else this.log.debug(`${line} (${this.dropped} so far)`);
  }

  private onError(e: Error): void {
    const kind = failureKind(e);
    const code = (e as Error & { code?: unknown }).code;
    const detail = typeof code === 'string' ? code : e.message;
    if (kind === 'login refused') {
      this.giveUp(kind, detail);
      return;
    }
    this.fail(kind, detail);
  }

  private fail(kind: FailureKind, detail: string): void {
    this.lastFailure = kind === 'unreachable' ? `broker unreachable: ${detail}` : `${kind}: ${detail}`;
    if (this.logged.has(kind)) return;
    this.logged.add(kind);
    this.log.warn(failureText(kind, this.opts.config?.url ?? '(no url)', detail, this.opts.whileAway));
  }

  /**
   * Nothing will get through before the configuration changes: stop trying,
   * or (persistent) try again later on a new client, which reads the options again.
   */
  private giveUp(kind: FailureKind, detail: string): void {
    this.fail(kind, detail);
    const client = this.client;
    this.client = null;
    this.attempting = false;
    client?.end(true);
    if (!this.opts.persistent) {
      this.hopeless = this.lastFailure;
      return;
    }
    this.changed(false);
    this.scheduleRetry();
  }
}
