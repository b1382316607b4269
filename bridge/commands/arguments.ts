/**
 * A subcommand's arguments, parsed with node:util's parseArgs, and its
 * mistakes told in one short sentence ("unknown option --conifg, did you mean
 * --config?") instead of the parser's own text.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { type Config, type Drive, loadConfig } from '../config.js';
import { errorMessage } from '../error-message.js';
import { nearest } from '../nearest.js';
import { type CommandContext, driveNamed, UsageError } from './command.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export interface ParsedArguments {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

/** Parse `args` against `options`; a UsageError names the first mistake. */
export function parseArguments(args: string[], options: Options): ParsedArguments {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(mistake(args, options) ?? errorMessage(e).split('\n')[0]);
  }
}

/** What is wrong with `args`, read from the tokens of a lenient parse (the strict one only throws). */
function mistake(args: string[], options: Options): string | undefined {
  const { tokens } = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    const option = Object.hasOwn(options, t.name) ? options[t.name] : undefined;
    if (!option) {
      // "-verbose" is read as -v -e ...: suggest from the whole word as typed
      const typed = (args[t.index] ?? t.rawName).split('=')[0] as string;
      const guess = nearest(typed.replace(/^-+/, ''), Object.keys(options));
      const shown = guess || typed.startsWith('--') ? typed : t.rawName;
      return `unknown option ${shown}${guess ? `, did you mean --${guess}?` : ''}`;
    }
    if (option.type === 'boolean' && t.value !== undefined) return `${t.rawName} takes no value`;
    if (option.type === 'string' && t.value === undefined) return `${t.rawName} needs a value`;
    if (option.type === 'string' && !t.inlineValue && t.value?.startsWith('-'))
      return `${t.rawName} needs a value, and ${t.value} looks like an option (write ${t.rawName}=${t.value} if it is the value)`;
  }
  return undefined;
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** "30m", "2h", "90s", "1h30m" in seconds; a UsageError naming `option` otherwise. */
export function parseDuration(text: string, option: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)([smhd])/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== text)
    throw new UsageError(`${option} takes a duration such as 30m, 2h, 90s or 1h30m (got "${text}")`);
  const seconds = parts.reduce((sum, p) => sum + Number(p[1]) * DURATION_UNITS[p[2]!]!, 0);
  if (!(seconds > 0)) throw new UsageError(`${option} takes a duration longer than nothing (got "${text}")`);
  return seconds;
}

/** The one drive a command is about (`offsite <command> <drive>`), from the configuration; a UsageError otherwise. */
export function oneDrive(ctx: CommandContext, command: string): { config: Config; drive: Drive } {
  const [name, ...extra] = ctx.positionals;
  if (!name) throw new UsageError(`which drive? e.g. offsite ${command} alpha`);
  if (extra.length) throw new UsageError(`one drive at a time (got ${ctx.positionals.join(', ')})`);
  const config = loadConfig(ctx.configFile);
  return { config, drive: driveNamed(config, name) };
}
