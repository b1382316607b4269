/**
 * What the two long-lived publishers of the drives' retained states share, the
 * run's MQTT reporter (reporters/mqtt.ts) and the Home Assistant keeper
 * (homeassistant/keeper.ts): what they are built from, and a drive's record
 * read so that a ledger that cannot be read never stops them.
 */
import type { Config, Drive } from '../config.js';
import { errorMessage } from '../error-message.js';
import { type DriveRecord, emptyRecord, Ledger } from '../ledger.js';
import type { Logger } from '../log.js';
import { MqttLink } from './link.js';

export interface PublisherDeps {
  config: Config;
  log: Logger;
  ledger?: Pick<Ledger, 'drive'>;
  clock?: { now(): Date };
  /** is a drive plugged in (default: asked of the system, bridge/presence.ts) */
  present?: (drive: Drive) => boolean | Promise<boolean>;
  /** a link of one's own (tests); default: one built from config.mqtt */
  link?: MqttLink;
  env?: NodeJS.ProcessEnv;
}

/** The link, the ledger and the clock of a publisher: the ones given, else the real ones. */
export function publisherParts(
  deps: PublisherDeps,
  role: string,
): { link: MqttLink; ledger: Pick<Ledger, 'drive'>; now(): Date } {
  const clock = deps.clock ?? { now: () => new Date() };
  return {
    link: deps.link ?? new MqttLink({ config: deps.config.mqtt, log: deps.log, role, env: deps.env }),
    ledger: deps.ledger ?? new Ledger(deps.config.state_dir),
    now: () => clock.now(),
  };
}

/** A drive's record; one that cannot be read is logged and taken as empty (never backed up). */
export function recordOf(ledger: Pick<Ledger, 'drive'>, name: string, log: Logger): DriveRecord {
  try {
    return ledger.drive(name);
  } catch (e) {
    log.warn(`cannot read the ledger for ${name}: ${errorMessage(e)}`);
    return emptyRecord(name);
  }
}
