/**
 * The keeper's publishing (keeper.ts decides when): discovery and every
 * configured drive's retained state, from the ledger. Kept apart so that the
 * process that waits for Home Assistant need not load the ledger, presence
 * checks and the schemas until it publishes, or at all (the LED agent runs
 * this in a short-lived child: led-agent/helper.ts).
 */
import type { Drive } from '../config.js';
import { childLogger } from '../log.js';
import type { MqttLink } from '../mqtt/link.js';
import { driveRecordMessage } from '../mqtt/messages.js';
import { type PublisherDeps, publisherParts, recordOf } from '../mqtt/publisher.js';
import { isOpen } from '../open-record.js';
import { presence } from '../presence.js';
import { publishDiscovery } from './publish.js';

export interface RepublishDeps extends PublisherDeps {
  link: MqttLink;
  /** where udev's by-uuid links are; a sandbox without devices does not have them (tests) */
  byUuidDir?: string;
}

/** See keeper.ts's `Republish`. Never throws. */
export async function republish(
  deps: RepublishDeps,
  what: 'all' | 'drives',
  lastPresent: ReadonlyMap<string, boolean>,
): Promise<boolean> {
  if (what === 'drives') return publishDrives(deps, lastPresent);
  const [discovery, drives] = await Promise.all([
    publishDiscovery(deps.link, deps.config, deps.log),
    publishDrives(deps, lastPresent),
  ]);
  return discovery && drives;
}

async function publishDrives(
  deps: RepublishDeps,
  lastPresent: ReadonlyMap<string, boolean>,
): Promise<boolean> {
  const log = childLogger(deps.log, 'home assistant');
  const { ledger, now: clock } = publisherParts(deps, 'discovery');
  const now = clock();
  const sent = await Promise.all(
    deps.config.drives.map(async (drive) => {
      const record = recordOf(ledger, drive.name, log);
      const present = await isPresent(deps, drive, lastPresent);
      const open = isOpen(deps.config.state_dir, drive);
      return deps.link.publish(driveRecordMessage(deps.config, record, now, { present, open }));
    }),
  );
  return sent.every(Boolean);
}

/**
 * Plugged in or not, asked of the system; where this process cannot see
 * block devices (a sandbox without /dev/disk), the last published answer
 * stands, rather than calling every drive unplugged.
 */
async function isPresent(
  deps: RepublishDeps,
  drive: Drive,
  lastPresent: ReadonlyMap<string, boolean>,
): Promise<boolean> {
  if (deps.present) return deps.present(drive);
  return (await presence(drive, deps.byUuidDir)) ?? lastPresent.get(drive.name) ?? false;
}
