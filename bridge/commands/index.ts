/** Every `offsite` subcommand, in the order `offsite --help` lists them. */
import { checkCommand } from './check.js';
import type { Command } from './command.js';
import { installCommand } from './install.js';
import { reportFailureCommand } from './report-failure.js';
import { statusCommand } from './status.js';
import { uninstallCommand } from './uninstall.js';
import { unitsCommand } from './units.js';

export const commands: Command[] = [
  statusCommand,
  checkCommand,
  reportFailureCommand,
  installCommand,
  uninstallCommand,
  unitsCommand,
];
