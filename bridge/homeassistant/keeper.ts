/**
 * Keeps Home Assistant's picture whole between backups. Hosted by a
 * long-running process (the LED agent): when Home Assistant announces itself
 * (`<discovery_prefix>/status` = `online`, its birth message after a restart)
 * it republishes discovery and every drive's retained state; and every
 * `refreshMs` it republishes the drive states, because a drive's age grows and
 * its plug comes and goes while no backup runs. Any broker client can send a
 * birth message: a burst of them is answered by one republish, not one each.
 *
 * What it loads for good is small (no schema library): the republishing
 * itself (ledger, presence, discovery payloads) is in republish.ts, loaded
 * when first needed, or run elsewhere by `deps.republish` (the LED agent runs
 * it in a short-lived child process: docs/benchmarks.md, LED agent).
 */
import { childLogger, type Logger } from '../log.js';
import { MqttLink } from '../mqtt/link.js';
import type { PublisherDeps } from '../mqtt/publisher.js';
import { decodeDrive } from '../payloads.js';
import { AVAILABILITY, homeAssistantStatusTopic, topicsFor } from '../topics.js';

/**
 * Publishes discovery and every drive's state (`all`) or the states alone
 * (`drives`), each drive's `present` as last seen on the broker where the
 * process cannot tell; resolves true once the broker has them all.
 */
export type Republish = (
  what: 'all' | 'drives',
  lastPresent: ReadonlyMap<string, boolean>,
) => Promise<boolean>;

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
  /** default: republish.ts in this process, through this keeper's link */
  republish?: Republish;
}

export class DiscoveryKeeper {
  private readonly deps: DiscoveryKeeperDeps;
  /** every line says "home assistant: " first */
  private readonly log: Logger;
  private readonly link: MqttLink;
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
    // not publisherParts() (mqtt/publisher.ts): that loads the ledger, which republish.ts does
    this.link =
      deps.link ??
      new MqttLink({ config: deps.config.mqtt, log: deps.log, role: 'discovery', env: deps.env });
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
          const d = decodeDrive(payload);
          // not logged here: the LED agent in the same process logs bad drive payloads, rate-limited
          if (d.ok && d.value.name === drive.name) this.lastPresent.set(drive.name, d.value.present);
        }),
      );
    this.link.start();
    // once connected, and after the retained drive states have had a moment to arrive
    void this.link.firstAttempt(this.deps.connectWaitMs ?? 3000).then(() => this.later(500));
    const every = this.deps.refreshMs ?? 3_600_000;
    if (every > 0) {
      this.refresh = setInterval(() => void this.run('drives'), every);
      this.refresh.unref();
    }
  }

  /** Discovery and every configured drive's state, from the ledger. Resolves when the broker has them all. */
  republish(): Promise<boolean> {
    return this.run('all');
  }

  private async run(what: 'all' | 'drives'): Promise<boolean> {
    if (this.deps.republish) return this.deps.republish(what, this.lastPresent);
    const here = await import('./republish.js');
    return here.republish({ ...this.deps, link: this.link }, what, this.lastPresent);
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
}
