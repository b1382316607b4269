/**
 * The reporters a real run gets from its configuration, in the order they hear
 * each event: MQTT and email, where configured. Their modules (mqtt.js,
 * nodemailer) are loaded only then: a run without them starts ~0.2 s sooner
 * (docs/benchmarks.md). The terminal (terminal.ts) is attached by the run
 * controller itself, first, because every line of the run's log goes through
 * it; the ledger is written by the controller last, after these have stopped,
 * so that a state_dir with no space left costs the record, never the status or
 * the mail (bridge/run/run-drive.ts).
 */
import type { Config } from '../config.js';
import { Ledger } from '../ledger.js';
import type { Logger } from '../log.js';
import type { Reporter } from '../run/run-drive.js';

export async function reportersFor(config: Config, log: Logger): Promise<Reporter[]> {
  const ledger = new Ledger(config.state_dir);
  const reporters: Reporter[] = [];
  if (config.mqtt?.enabled) {
    const { MqttReporter } = await import('./mqtt.js');
    reporters.push(new MqttReporter({ config, log, ledger }));
  }
  if (config.email) {
    const { EmailReporter } = await import('./email.js');
    reporters.push(new EmailReporter({ config, ledger, log }));
  }
  return reporters;
}
