/** Every `offsite` subcommand, in the order `offsite --help` lists them. */
import type { Command } from './command.js';

export const commands: Command[] = [];
