/** Every `offsite` subcommand, in the order `offsite --help` lists them. */
import { checkCommand } from './check.js';
import type { Command } from './command.js';
import { reportFailureCommand } from './report-failure.js';
import { statusCommand } from './status.js';

export const commands: Command[] = [statusCommand, checkCommand, reportFailureCommand];
