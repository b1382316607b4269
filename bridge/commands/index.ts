/** Every `offsite` subcommand, in the order `offsite --help` lists them. */
import { checkCommand } from './check.js';
import { cleanupCommand } from './cleanup.js';
import type { Command } from './command.js';
import { demoCommand } from './demo.js';
import { doctorCommand } from './doctor.js';
import { installCommand } from './install.js';
import { prepareDriveCommand } from './prepare-drive.js';
import { reportFailureCommand } from './report-failure.js';
import { runCommand } from './run.js';
import { statusCommand } from './status.js';
import { uninstallCommand } from './uninstall.js';
import { unitsCommand } from './units.js';

export const commands: Command[] = [
  runCommand,
  statusCommand,
  checkCommand,
  reportFailureCommand,
  installCommand,
  uninstallCommand,
  unitsCommand,
  prepareDriveCommand,
  cleanupCommand,
  doctorCommand,
  demoCommand,
];
