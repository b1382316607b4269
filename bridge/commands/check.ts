import { type Config, loadConfig } from '../config.js';
import { errorMessage } from '../error-message.js';
import { EXIT } from '../exit.js';
import { driveState, Ledger, successUnknown } from '../ledger.js';
import { childLogger, type Logger } from '../log.js';
import { driveMessage, eventMessage } from '../mqtt/messages.js';
import { type Outgoing, publishOnce } from '../mqtt/oneshot.js';
import { isOpen } from '../open-record.js';
import { isPresent } from '../presence.js';
import { type DriveState, isoNow } from '../protocol.js';
import { EmailReporter } from '../reporters/email.js';
import { formatAge, localTime, overdueText } from '../words.js';
import type { Command } from './command.js';

export interface CheckDeps {
  config: Config;
  ledger: Ledger;
  log: Logger;
  email: EmailReporter;
  now: Date;
  present?: (drive: Config['drives'][number]) => Promise<boolean>;
  /** default: one MQTT connection for all messages, tolerant of a broker that is down */
  publish?: (messages: Outgoing[]) => Promise<boolean>;
  env?: NodeJS.ProcessEnv;
}

export interface DriveCheck {
  state: DriveState;
  /** it became overdue at this check (the mail and the event went out now) */
  becameOverdue: boolean;
}

/**
 * Recompute every drive's overdue flag from the ledger, publish the retained
 * drive states, and say it once when a drive becomes overdue: one mail and one
 * `overdue` event, remembered in the ledger (overdue_notified_at) until a
 * success clears it.
 */
export async function checkDrives(deps: CheckDeps): Promise<DriveCheck[]> {
  const { config, ledger, log, now } = deps;
  const present = deps.present ?? isPresent;
  const messages: Outgoing[] = [];
  const results: DriveCheck[] = [];

  // a ledger that cannot be used is moved aside and said; the drives then count as never backed up
  const reset = await ledger.repairOrSay(log);
  if (reset) await deps.email.ledgerReset(reset);

  for (const drive of config.drives) {
    const driveLog = childLogger(log, drive.name);
    const record = ledger.drive(drive.name);
    const state = driveState(record, config, now, {
      present: await present(drive),
      open: isOpen(config.state_dir, drive),
    });
    messages.push(driveMessage(config, state));
    const becameOverdue = state.overdue && !record.overdue_notified_at;
    const said = overdueText(
      drive.name,
      state.age_days,
      config.overdue_after_days,
      successUnknown(record, now),
    );

    if (becameOverdue) {
      driveLog.warn(`overdue: ${said}`);
      messages.push(
        eventMessage(config, { event_type: 'overdue', drive: drive.name, message: said, time: isoNow(now) }),
      );
      const delivery = await deps.email.overdue(record, now);
      // a mail that did not go out is tried again at the next check (the event may then repeat)
      if (delivery !== 'failed') await note(ledger, drive.name, isoNow(now), driveLog);
    } else if (state.overdue) {
      driveLog.info(`still overdue (said so on ${localTime(record.overdue_notified_at)}): ${said}`);
    } else {
      // e.g. overdue_after_days was raised: the next time it becomes overdue is news again
      if (record.overdue_notified_at) await note(ledger, drive.name, null, driveLog);
      driveLog.info(
        `last success ${localTime(record.last_success)} (${formatAge(state.age_days)} ago), not overdue`,
      );
    }
    results.push({ state, becameOverdue });
  }

  const publish =
    deps.publish ?? ((m: Outgoing[]) => publishOnce(config.mqtt, m, { log, role: 'check', env: deps.env }));
  await publish(messages);
  return results;
}

/** Remember when the overdue reminder went out; a ledger that cannot be written is logged (in the drive's log). */
async function note(ledger: Ledger, drive: string, at: string | null, log: Logger): Promise<void> {
  try {
    await ledger.update(drive, () => ({ overdue_notified_at: at }));
  } catch (e) {
    log.error(`could not record the reminder in ${ledger.file}: ${errorMessage(e)}`);
  }
}

export const checkCommand: Command = {
  name: 'check',
  usage: '',
  summary: 'recompute overdue per drive, publish it, notify once when a drive becomes overdue',
  help: `
Run daily by offsite-check.timer. For every configured drive it reads the
ledger, works out whether the drive is overdue (its last success is older than
overdue_after_days, or it never succeeded), and publishes the retained MQTT
drive state, so Home Assistant and the LED agent see the drive age even when
no drive is plugged in.

When a drive becomes overdue, one email (if email.on lists "overdue") and one
MQTT "overdue" event go out. They are not repeated at the next checks; the
next success of that drive resets this. A broker that is down is logged and
does not fail the check.

A ledger that cannot be read (not JSON, not a ledger) is moved aside to
ledger.json.bad-<time>, logged and mailed once; every drive then counts as
never backed up until its next success.

Exit codes: 0 (also when drives are overdue: this is a report), 2 on a
configuration error.

Example:
  offsite check
`,
  async run(ctx) {
    const config = loadConfig(ctx.configFile);
    const ledger = new Ledger(config.state_dir, { log: ctx.log });
    const email = new EmailReporter({ config, ledger, log: ctx.log, env: ctx.env });
    await checkDrives({ config, ledger, log: ctx.log, email, now: new Date(), env: ctx.env });
    return EXIT.ok;
  },
};
