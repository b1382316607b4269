/**
 * Every `offsite` subcommand, in the order `offsite --help` lists them.
 * Loaded on demand: `offsite run` should not pay for the modules `demo`,
 * `doctor` or `prepare-drive` pull in (an embedded broker, HID, ...), which
 * made start-up several tenths of a second slower (docs/benchmarks.md).
 */
import type { Command } from './command.js';

export interface CommandEntry {
  /** the name typed after `offsite` (the same as the command's own `name`) */
  name: string;
  load(): Promise<Command>;
}

export const commands: CommandEntry[] = [
  { name: 'run', load: async () => (await import('./run.js')).runCommand },
  { name: 'scrub', load: async () => (await import('./scrub.js')).scrubCommand },
  { name: 'status', load: async () => (await import('./status.js')).statusCommand },
  { name: 'check', load: async () => (await import('./check.js')).checkCommand },
  { name: 'open', load: async () => (await import('./open.js')).openCommand },
  { name: 'close', load: async () => (await import('./close.js')).closeCommand },
  { name: 'report-failure', load: async () => (await import('./report-failure.js')).reportFailureCommand },
  { name: 'install', load: async () => (await import('./install.js')).installCommand },
  { name: 'uninstall', load: async () => (await import('./uninstall.js')).uninstallCommand },
  { name: 'units', load: async () => (await import('./units.js')).unitsCommand },
  { name: 'prepare-drive', load: async () => (await import('./prepare-drive.js')).prepareDriveCommand },
  { name: 'enrol', load: async () => (await import('./enrol.js')).enrolCommand },
  { name: 'cleanup', load: async () => (await import('./cleanup.js')).cleanupCommand },
  { name: 'doctor', load: async () => (await import('./doctor.js')).doctorCommand },
  { name: 'demo', load: async () => (await import('./demo.js')).demoCommand },
];

/** every command, loaded (for `offsite --help`) */
export function loadCommands(): Promise<Command[]> {
  return Promise.all(commands.map((c) => c.load()));
}
