/**
 * `offsite-led`: the long-running LED agent (led-agent/cli.ts is only the
 * executable entry). Reads the same configuration as `offsite`, found the same way.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../bridge/config/config-error.js';
import { errorMessage } from '../bridge/error-message.js';
import { DiscoveryKeeper } from '../bridge/homeassistant/keeper.js';
import { childLogger, createLogger } from '../bridge/log.js';
import { MqttLink } from '../bridge/mqtt/link.js';
import { LedAgent } from './agent.js';
import { systemClock } from './clock.js';
import { drivers } from './drivers/index.js';
import { readConfig, republishInChild } from './offload.js';

const HELP = `Usage: offsite-led [--config FILE] [--verbose]

Shows the state of the offsite backups on an LED: the colour of the current
run (working, safe to remove, failed), or a slow amber reminder when every
drive is overdue. It follows <base_topic>/<node>/status and .../drive/+ on the
MQTT broker for each node in led.nodes (default: this node), and announces
itself on .../led/availability (online, or offline as its Last Will).

Being the long-running part of offsite, it also keeps Home Assistant's view
whole: when Home Assistant announces itself (<discovery_prefix>/status =
online) it republishes discovery and each drive's state, and it refreshes the
drives' ages hourly (see docs/homeassistant/README.md). With led.driver: none
it does only that.

Options:
  -c, --config FILE  configuration file (default: $OFFSITE_CONFIG, else
                     /etc/offsite/config.yaml)
  -v, --verbose      log debug lines (connection retries, MQTT errors)
  -h, --help         show this help

The led: section chooses the driver (blinkstick, sysfs, console, none), the
LED (index, channel, path, serial), the brightness cap in percent, and the
colour and pattern (steady, blink, pulse, off) of each state. See docs/led.md.

Exit status: 0 when stopped by SIGTERM or SIGINT (the light is turned off and
"offline" published), 1 on an unexpected error, 2 on a usage or configuration
error.
`;

export async function main(argv: string[]): Promise<number> {
  let values: { config?: string; verbose?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        verbose: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    process.stderr.write(`offsite-led: ${errorMessage(e)}\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const log = createLogger(values.verbose ? { verbose: true } : {});
  const led = childLogger(log, 'led');
  let agent: LedAgent;
  let keeper: DiscoveryKeeper;
  try {
    // read and checked in a child process: the schema is not loaded here for good
    const config = await readConfig(values.config);
    const driver = await drivers[config.led.driver](config.led, {
      file: config.file,
      log: childLogger(led, config.led.driver),
      clock: systemClock,
    });
    agent = new LedAgent({ config, driver, log });
    // long-running like the agent's: never gives up, retries with the same backoff
    const link = new MqttLink({
      config: config.mqtt,
      log: childLogger(log, 'home assistant'),
      role: 'discovery',
      persistent: true,
      backoff: { firstMs: 500, maxMs: 30_000 },
      whileAway: "Home Assistant's view is published again when it is back",
    });
    keeper = new DiscoveryKeeper({ config, log, link, republish: republishInChild(config, link) });
  } catch (e) {
    if (e instanceof ConfigError) {
      for (const line of e.message.split('\n')) log.error(`configuration error: ${line}`);
      return 2;
    }
    throw e;
  }
  return new Promise<number>((resolve) => {
    const shutdown = (signal: string) => {
      log.info(`${signal}: stopping`);
      Promise.all([agent.stop(), keeper.stop()]).then(
        () => resolve(0),
        (e) => {
          log.error(`stopping: ${errorMessage(e)}`);
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
    keeper.start().catch((e) => log.warn(`home assistant discovery: ${errorMessage(e)}`));
    agent.start().catch((e) => {
      led.error(errorMessage(e));
      resolve(1);
    });
  });
}
