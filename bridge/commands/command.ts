/**
 * One subcommand of `offsite`: a file in bridge/commands/ plus one line in
 * bridge/commands/index.ts. Options are parsed with node:util's parseArgs.
 */
import type { ParseArgsConfig } from 'node:util';
import { type Config, type Drive, findDrive } from '../config.js';
import type { Logger } from '../log.js';

export class UsageError extends Error {
  override name = 'UsageError';
}

/** The drive a command is asked about, or a usage error naming the drives the configuration has. */
export function driveNamed(config: Config, name: string, hint = ''): Drive {
  const drive = findDrive(config, name);
  if (drive) return drive;
  const known = config.drives.length
    ? `drives: ${config.drives.map((d) => d.name).join(', ')}`
    : 'it has no drive yet';
  throw new UsageError(`no drive named "${name}" in ${config.file} (${known})${hint}`);
}

export interface CommandContext {
  /** positional arguments after the subcommand */
  positionals: string[];
  /** parsed options (strings or booleans, as declared) */
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  /** the --config path as resolved (flag, $OFFSITE_CONFIG, /etc/offsite/config.yaml) */
  configFile: string;
  log: Logger;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

export interface Command {
  name: string;
  /** one line for `offsite --help` */
  summary: string;
  /** the full `offsite <name> --help` text after the usage line */
  help: string;
  /** e.g. "<drive>" */
  usage: string;
  options?: NonNullable<ParseArgsConfig['options']>;
  run(ctx: CommandContext): Promise<number>;
}
