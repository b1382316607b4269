/**
 * Keeps Home Assistant's picture whole between backups. Hosted by a
 * long-running process (the LED agent): when Home Assistant announces itself
 * (`<discovery_prefix>/status` = `online`, its birth message after a restart)
 * it republishes discovery and every drive's retained state; and every
 * `refreshMs` it republishes the drive states, because a drive's age grows and
 * its plug comes and goes while no backup runs. Any broker client can send a
 * birth message: a burst of them is answered by one republish, not one each.
 */
import type { Drive } from '../config.js';
import type { Ledger } from '../ledger.js';
import { childLogger, type Logger } from '../log.js';
import type { MqttLink } from '../mqtt/link.js';
import { driveRecordMessage, topicsFor } from '../mqtt/messages.js';
import { type PublisherDeps, publisherParts, recordOf } from '../mqtt/publisher.js';
import { isOpen } from '../open-record.js';
import { presence } from '../presence.js';
import { AVAILABILITY, decode, driveSchema, homeAssistantStatusTopic } from '../protocol.js';
import { publishDiscovery } from './publish.js';

export interface DiscoveryKeeperDeps extends PublisherDeps {
  /**
   * wait up to this long (random) after a birth message before republishing,
   * so that many publishers do not all answer at once (Home Assistant's advice); default 2 s
   */
  jitterMs?: number;
  /** republish once no birth message has come for this long (plus the jitter); default 1 s */
  quietMs?: number;
  /** but never later than this after the first birth message of a burst; default 10 s */
  maxWaitMs?: number;
  /** republish drive states this often (default 1 h; 0: never) */
  refreshMs?: number;
  /** how long to wait for the first connection before the first publish (default 3 s) */
  connectWaitMs?: number;
  /** where udev's by-uuid links are; a sandbox without devices does not have them (tests) */
  byUuidDir?: string;
}

export class DiscoveryKeeper {
  private readonly deps: DiscoveryKeeperDeps;
  /** every line says "home assistant: " first */
  private readonly log: Logger;
  private readonly link: MqttLink;
  private readonly ledger: Pick<Ledger, 'drive'>;
  private readonly now: () => Date;
  private timers = new Set<NodeJS.Timeout>();
  /** the birth messages waiting for one republish */
  private burst: { first: number; births: number; timer: NodeJS.Timeout | undefined } | null = null;
  private refresh: NodeJS.Timeout | undefined;
  private unsubscribe: Array<() => void> = [];
  /** each drive's `present` as last published by anyone (a run knows best) */
  private readonly lastPresent = new Map<string, boolean>();

  constructor(deps: DiscoveryKeeperDeps) {
    this.deps = deps;
    this.log = childLogger(deps.log, 'home assistant');
    ({ link: this.link, ledger: this.ledger, now: this.now } = publisherParts(deps, 'discovery'));
  }

  /** Subscribe to Home Assistant's birth topic and publish once now. Returns at once. */
  async start(): Promise<void> {
    if (!this.link.enabled) return;
    const prefix = this.deps.config.mqtt?.discovery_prefix ?? 'homeassistant';
    this.unsubscribe.push(
      this.link.subscribe(homeAssistantStatusTopic(prefix), (payload) => {
        if (payload.toString().trim() === AVAILABILITY.online) this.onBirth();
      }),
    );
    const t = topicsFor(this.deps.config);
    // the configured drives' topics only: a drive nobody configured is never taken in
    for (const drive of this.deps.config.drives)
      this.unsubscribe.push(
        this.link.subscribe(t.drive(drive.name), (payload) => {
          const d = decode(driveSchema, payload);
          // not logged here: the LED agent in the same process logs bad drive payloads, rate-limited
          if (d.ok && d.value.name === drive.name) this.lastPresent.set(drive.name, d.value.present);
        }),
      );
    this.link.start();
    // once connected, and after the retained drive states have had a moment to arrive
    void this.link.firstAttempt(this.deps.connectWaitMs ?? 3000).then(() => this.later(500));
    const every = this.deps.refreshMs ?? 3_600_000;
    if (every > 0) {
      this.refresh = setInterval(() => void this.publishDrives(), every);
      this.refresh.unref();
    }
  }

  /** Discovery and every configured drive's state, from the ledger. Resolves when the broker has them all. */
  async republish(): Promise<boolean> {
    const [discovery, drives] = await Promise.all([
      publishDiscovery(this.link, this.deps.config, this.deps.log),
      this.publishDrives(),
    ]);
    return discovery && drives;
  }

  async stop(): Promise<void> {
    clearTimeout(this.burst?.timer);
    this.burst = null;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    clearInterval(this.refresh);
    for (const u of this.unsubscribe.splice(0)) u();
    await this.link.stop(2000);
  }

  /**
   * Home Assistant came online (or someone says so): republish once the birth
   * messages stop coming, and at the latest maxWaitMs after the first of them,
   * so a steady stream of them delays Home Assistant's picture but never starves it.
   */
  private onBirth(): void {
    const now = Date.now();
    if (!this.burst) {
      this.burst = { first: now, births: 0, timer: undefined };
      this.log.info('came online; publishing discovery and drive states again');
    }
    const burst = this.burst;
    burst.births += 1;
    clearTimeout(burst.timer);
    const quiet = (this.deps.quietMs ?? 1000) + Math.random() * (this.deps.jitterMs ?? 2000);
    const latest = burst.first + (this.deps.maxWaitMs ?? 10_000) - now;
    burst.timer = setTimeout(
      () => {
        this.burst = null;
        if (burst.births > 1) this.log.info(`${burst.births} birth messages answered by one republish`);
        void this.republish();
      },
      Math.max(0, Math.min(quiet, latest)),
    );
  }

  private later(ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      void this.republish();
    }, ms);
    this.timers.add(t);
  }

  private async publishDrives(): Promise<boolean> {
    const now = this.now();
    const sent = await Promise.all(
      this.deps.config.drives.map(async (drive) => {
        const record = recordOf(this.ledger, drive.name, this.log);
        const present = await this.present(drive);
        const open = isOpen(this.deps.config.state_dir, drive);
        return this.link.publish(driveRecordMessage(this.deps.config, record, now, { present, open }));
      }),
    );
    return sent.every(Boolean);
  }

  /**
   * Plugged in or not, asked of the system; where this process cannot see
   * block devices (a sandbox without /dev/disk), the last published answer
   * stands, rather than calling every drive unplugged.
   */
  private async present(drive: Drive): Promise<boolean> {
    if (this.deps.present) return this.deps.present(drive);
    return (await presence(drive, this.deps.byUuidDir)) ?? this.lastPresent.get(drive.name) ?? false;
  }
}
