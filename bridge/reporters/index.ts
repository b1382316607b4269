/**
 * Everything that listens to a run, in the order it hears each event: the
 * terminal, then MQTT and email where configured. Their modules (mqtt.js,
 * nodemailer) are loaded only then: a run without them starts ~0.2 s sooner
 * (docs/benchmarks.md). The ledger is a reporter too, but not in this list:
 * the run controller starts it after these and stops it (records the run)
 * after they have all stopped (bridge/run/ledger-reporter.ts), so that a
 * state_dir with no space left costs the record, never the status or the mail.
 */
import type { Config } from '../config.js';
import { Ledger } from '../ledger.js';
import type { Logger } from '../log.js';
import type { Reporter } from '../run/run-drive.js';
import { terminalReporter } from './terminal.js';

/** The reporters of a run, and the log to run with: every line of it clears the terminal's live line first. */
export async function reportersFor(
  config: Config,
  log: Logger,
  out: NodeJS.WriteStream,
): Promise<{ log: Logger; reporters: Reporter[] }> {
  const terminal = terminalReporter(log, out);
  const runLog = terminal.log;
  const ledger = new Ledger(config.state_dir);
  const reporters: Reporter[] = [terminal];
  if (config.mqtt?.enabled) {
    const { MqttReporter } = await import('./mqtt.js');
    reporters.push(new MqttReporter({ config, log: runLog, ledger }));
  }
  if (config.email) {
    const { EmailReporter } = await import('./email.js');
    reporters.push(new EmailReporter({ config, ledger, log: runLog }));
  }
  return { log: runLog, reporters };
}
