/**
 * `offsite`: the command line (bridge/cli.ts is only the executable entry). Each subcommand lives in bridge/commands/ and is
 * listed once in bridge/commands/index.ts.
 */
import { type ParsedArguments, parseArguments } from './commands/arguments.js';
import { type Command, UsageError } from './commands/command.js';
import { type CommandEntry, commands, loadCommands } from './commands/index.js';
import { ConfigError, configPath } from './config.js';
import { errorMessage, errorStack } from './error-message.js';
import { EXIT } from './exit.js';
import { createLogger } from './log.js';
import { nearest } from './nearest.js';

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
    '  -h, --help          help for a command: offsite help <command> (or <command> --help)',
    '',
    'Exit codes: 0 success, 1 backup failed, 2 usage or configuration error,',
    '75 the drive was not plugged in (nothing was started).',
    '',
  ].join('\n');
}

export function commandHelp(cmd: Command): string {
  return `Usage: offsite ${cmd.name}${cmd.usage ? ` ${cmd.usage}` : ''} [options]\n\n${cmd.summary}\n\n${cmd.help.trim()}\n`;
}

/** Where the command line writes: the process's own streams, or a test's. */
export interface Io {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

/** The command named `name`, or undefined after saying on stderr that there is none (and which was meant). */
function findCommand(name: string, stderr: NodeJS.WriteStream): CommandEntry | undefined {
  const entry = commands.find((c) => c.name === name);
  if (entry) return entry;
  const guess = nearest(
    name,
    commands.map((c) => c.name),
  );
  stderr.write(
    `offsite: unknown command "${name}"${guess ? `, did you mean "${guess}"?` : ''} (see offsite --help)\n`,
  );
  return undefined;
}

export async function main(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  io: Io = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const { stdout, stderr } = io;
  const [name, ...rest] = argv;
  if (name === 'help' && rest[0]) {
    const entry = findCommand(rest[0], stderr);
    if (!entry) return EXIT.usage;
    stdout.write(commandHelp(await entry.load()));
    return EXIT.ok;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    stdout.write(await mainHelp());
    return name ? EXIT.ok : EXIT.usage;
  }
  if (name === '--version' || name === '-V') {
    const { version } = (await import('./version.js')).default;
    stdout.write(`offsite ${version}\n`);
    return EXIT.ok;
  }
  const entry = findCommand(name, stderr);
  if (!entry) return EXIT.usage;
  const cmd = await entry.load();
  let parsed: ParsedArguments;
  try {
    parsed = parseArguments(rest, { ...COMMON, ...cmd.options });
  } catch (e) {
    stderr.write(`offsite ${cmd.name}: ${errorMessage(e)} (see offsite help ${cmd.name})\n`);
    return EXIT.usage;
  }
  if (parsed.values.help) {
    stdout.write(commandHelp(cmd));
    return EXIT.ok;
  }
  const log = createLogger({
    verbose: Boolean(parsed.values.verbose) || undefined,
    write: (level, line) => (level === 'error' || level === 'warn' ? stderr : stdout).write(`${line}\n`),
  });
  try {
    return await cmd.run({
      positionals: parsed.positionals,
      values: parsed.values,
      configFile: configPath(parsed.values.config as string | undefined, env),
      log,
      stdout,
      stderr,
      env,
    });
  } catch (e) {
    if (e instanceof ConfigError) {
      for (const line of e.message.split('\n')) log.error(`configuration error: ${line}`);
      return EXIT.usage;
    }
    if (e instanceof UsageError) {
      log.error(`${e.message} (see offsite ${cmd.name} --help)`);
      return EXIT.usage;
    }
    log.error(`offsite ${cmd.name}: ${errorStack(e)}`);
    return EXIT.failed;
  }
}
