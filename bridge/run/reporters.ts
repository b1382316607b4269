/** The reporters a real run gets from its configuration: MQTT and email, where configured. */
import type { Config } from '../config.js';
import { EmailReporter } from '../email/index.js';
import { Ledger } from '../ledger.js';
import type { Logger } from '../log.js';
import { MqttReporter } from '../mqtt/publisher.js';
import type { Reporter } from './run-drive.js';

export function reportersFor(config: Config, log: Logger): Reporter[] {
  const ledger = new Ledger(config.state_dir);
  const reporters: Reporter[] = [];
  if (config.mqtt?.enabled) reporters.push(new MqttReporter({ config, log, ledger }));
  if (config.email) reporters.push(new EmailReporter({ config, ledger, log }));
  return reporters;
}
