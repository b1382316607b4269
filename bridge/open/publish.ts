/**
 * What `offsite open` and `offsite close` tell MQTT: the drive's retained
 * state with `open` (what keeps the LED from green while any drive is open,
 * whatever the status topic says later), then the status `open` (or `idle`
 * once closed). The status topic is shared by all drives: one that shows
 * another drive's run in progress is left to that run. A broker that is down
 * is one log line (bridge/mqtt/oneshot.ts): the next run or check republishes.
 */
import type { Config, Drive } from '../config.js';
import { Ledger } from '../ledger.js';
import type { Logger } from '../log.js';
import { driveRecordMessage, latestSuccess, statusMessage, topicsFor } from '../mqtt/messages.js';
import { type Outgoing, publishOnce, readRetained } from '../mqtt/oneshot.js';
import { isPresent } from '../presence.js';
import { decode, isoNow, type Status, statusSchema } from '../protocol.js';

export interface OpenNews {
  /** open now (after `open`), or closed (after `close`) */
  open: boolean;
  /** the status message: where it is mounted, or that it is safe to remove */
  message: string;
}

/** The status after an open (`open`) or a close (`idle`): no run, no step, no progress. */
export function openStatus(drive: string, news: OpenNews, lastSuccess: string | null, now: Date): Status {
  return statusSchema.parse({
    state: news.open ? 'open' : 'idle',
    drive,
    step: null,
    progress: null,
    bytes: null,
    rate: null,
    eta: null,
    message: news.message,
    warnings: [],
    run_id: null,
    last_success: lastSuccess,
    updated: isoNow(now),
  });
}

export async function publishOpenState(
  config: Config,
  drive: Drive,
  news: OpenNews,
  opts: { log: Logger; env?: NodeJS.ProcessEnv },
): Promise<boolean> {
  if (!config.mqtt?.enabled) return false;
  const { log, env } = opts;
  const role = news.open ? 'open' : 'close';
  const ledger = new Ledger(config.state_dir);
  const now = new Date();
  const messages: Outgoing[] = [
    driveRecordMessage(config, ledger.drive(drive.name), now, {
      present: await isPresent(drive),
      open: news.open,
    }),
  ];
  const raw = await readRetained(config.mqtt, topicsFor(config).status, { log, role, env });
  const shown = raw ? decode(statusSchema, raw) : null;
  const otherRun = shown?.ok && shown.value.state === 'running' && shown.value.drive !== drive.name;
  if (!otherRun)
    messages.push(
      statusMessage(
        config,
        openStatus(drive.name, news, latestSuccess(config.drives.map((d) => ledger.drive(d.name))), now),
      ),
    );
  return publishOnce(config.mqtt, messages, { log, role, env });
}
