/**
 * The LED agent's short-lived child (led-agent/offload.ts starts it): the work
 * that needs the configuration's schema, the ledger and the payload schemas,
 * done in a process that exits afterwards, so that the long-running agent
 * never loads them (docs/benchmarks.md, LED agent).
 *
 *   helper.js config [FILE]                      the configuration, checked, as JSON on stdout
 *   helper.js republish FILE all|drives PRESENT  Home Assistant's discovery and drive states
 */
import { ConfigError, configPath, loadConfig } from '../bridge/config.js';
import { errorStack } from '../bridge/error-message.js';
import { republish } from '../bridge/homeassistant/republish.js';
import { createLogger } from '../bridge/log.js';
import { MqttLink } from '../bridge/mqtt/link.js';
import { requireMqtt } from './agent.js';

/** What `config` prints: the configuration, or its problems (exit 2). */
export type ConfigAnswer =
  | { ok: true; config: ReturnType<typeof loadConfig> }
  | { ok: false; file: string; problems: ConfigError['problems'] };

async function main(job: string | undefined, args: string[]): Promise<number> {
  if (job === 'config') {
    let answer: ConfigAnswer;
    try {
      const config = loadConfig(configPath(args[0]));
      requireMqtt(config);
      answer = { ok: true, config };
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      answer = { ok: false, file: e.file, problems: e.problems };
    }
    process.stdout.write(JSON.stringify(answer));
    return answer.ok ? 0 : 2;
  }
  if (job === 'republish' && args.length === 3) {
    const [file, what, present] = args as [string, string, string];
    if (what !== 'all' && what !== 'drives') return 2;
    const config = loadConfig(file);
    const log = createLogger();
    const link = new MqttLink({
      config: config.mqtt,
      log,
      role: 'discovery',
      whileAway: "Home Assistant's view is published again when it is back",
    });
    link.start();
    const lastPresent = new Map(Object.entries(JSON.parse(present) as Record<string, boolean>));
    const sent = republish({ config, log, link }, what, lastPresent);
    // the parent asks only while its own connection is up: this one should connect at once
    if (await link.firstAttempt(10_000))
      await Promise.race([sent, new Promise((r) => setTimeout(r, 10_000).unref())]);
    const flushed = await link.stop(5000);
    return (await sent) && flushed ? 0 : 1;
  }
  process.stderr.write('usage: helper.js config [FILE] | republish FILE all|drives PRESENT\n');
  return 2;
}

main(process.argv[2], process.argv.slice(3)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`offsite-led helper: ${errorStack(e)}\n`);
    process.exit(1);
  },
);
