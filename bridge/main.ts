/**
 * `offsite`: the command line (bridge/cli.ts is only the executable entry). Each subcommand lives in bridge/commands/ and is
 * listed once in bridge/commands/index.ts.
 */
import { parseArgs } from 'node:util';
import { type Command, EXIT, UsageError } from './commands/command.js';
import { commands, loadCommands } from './commands/index.js';
import { ConfigError, configPath } from './config.js';
import { createLogger } from './log.js';

const COMMON = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
  verbose: { type: 'boolean', short: 'v' },
} as const;

async function mainHelp(): Promise<string> {
  const loaded = await loadCommands();
  const width = Math.max(...loaded.map((c) => c.name.length));
  return [
    'Usage: offsite <command> [options]',
    '',
    'Rotating, encrypted, off-site backup drives: plug a drive in, wait for green.',
    '',
    'Commands:',
    ...loaded.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Options for every command:',
    '  -c, --config FILE   configuration (default: $OFFSITE_CONFIG, else /etc/offsite/config.yaml)',
    '  -v, --verbose       debug output',
    '  -h, --help          help for a command: offsite <command> --help',
    '',
    'Exit codes: 0 success, 1 backup failed, 2 usage or configuration error,',
    '75 the drive vanished before anything started.',
    '',
  ].join('\n');
}

export function commandHelp(cmd: Command): string {
  return `Usage: offsite ${cmd.name}${cmd.usage ? ` ${cmd.usage}` : ''} [options]\n\n${cmd.summary}\n\n${cmd.help.trim()}\n`;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(await mainHelp());
    return name ? EXIT.ok : EXIT.usage;
  }
  if (name === '--version' || name === '-V') {
    const { version } = (await import('./version.js')).default;
    process.stdout.write(`offsite ${version}\n`);
    return EXIT.ok;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    process.stderr.write(`offsite: unknown command "${name}" (see offsite --help)\n`);
    return EXIT.usage;
  }
  const cmd = await entry.load();
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...COMMON, ...cmd.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    process.stderr.write(`offsite ${cmd.name}: ${(e as Error).message}\n\n${commandHelp(cmd)}`);
    return EXIT.usage;
  }
  if (parsed.values.help) {
    process.stdout.write(commandHelp(cmd));
    return EXIT.ok;
  }
  const log = createLogger({ verbose: Boolean(parsed.values.verbose) || undefined });
  try {
    return await cmd.run({
      positionals: parsed.positionals,
      values: parsed.values,
      configFile: configPath(parsed.values.config as string | undefined, env),
      log,
      stdout: process.stdout,
      stderr: process.stderr,
      env,
    });
  } catch (e) {
    if (e instanceof ConfigError) {
      log.error(`configuration error: ${e.message}`);
      return EXIT.usage;
    }
    if (e instanceof UsageError) {
      log.error(`${e.message} (see offsite ${cmd.name} --help)`);
      return EXIT.usage;
    }
    log.error(`offsite ${cmd.name}: ${(e as Error).stack ?? String(e)}`);
    return EXIT.failed;
  }
}
