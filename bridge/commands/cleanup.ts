import { findDrive, loadConfig } from '../config.js';
import {
  closeMapping,
  driveDevices,
  foreignMount,
  foreignMountMessage,
  unmountDrive,
} from '../steps/teardown.js';
import { type Command, EXIT, UsageError } from './command.js';

export const cleanupCommand: Command = {
  name: 'cleanup',
  usage: '<drive>',
  summary: "unmount and close a drive left open (the backup unit's ExecStopPost= safety net)",
  help: `
Unmounts the drive from its mount point (lazily when a plain unmount keeps
failing, e.g. after the drive was pulled; anything else mounted there is left
alone, with a warning) and stops its cryptsetup unit, checking that
/dev/mapper/<mapper> is gone. Does nothing, quietly, when nothing is open.

systemd runs this after every offsite-backup@<drive>.service, whether the run
succeeded, failed or was killed: after a failed ExecStart systemd runs no
ExecStop=, and a stale mount or mapping would break every later plug.

Exit codes: 0 nothing left open, 1 something could not be closed.

Example:
  offsite cleanup alpha
`,
  async run(ctx) {
    const [name] = ctx.positionals;
    if (!name) throw new UsageError('which drive? e.g. offsite cleanup alpha');
    const config = loadConfig(ctx.configFile);
    const drive = findDrive(config, name);
    if (!drive) throw new UsageError(`no drive named "${name}" in ${config.file}`);
    if (drive.kind === 'directory') return EXIT.ok;
    let ok = true;
    try {
      const devices = await driveDevices(drive);
      const foreign = foreignMount(drive.mountPoint, devices);
      if (foreign) ctx.log.warn(`cleanup ${name}: ${foreignMountMessage(foreign, drive.mountPoint, name)}`);
      else if (await unmountDrive(drive.mountPoint, devices, { lazy: true }))
        ctx.log.info(`cleanup ${name}: unmounted ${drive.mountPoint}`);
    } catch (e) {
      ctx.log.error(`cleanup ${name}: ${(e as Error).message}`);
      ok = false;
    }
    if (drive.kind === 'luks') {
      try {
        if (await closeMapping(drive.mapper))
          ctx.log.info(`cleanup ${name}: closed /dev/mapper/${drive.mapper}`);
      } catch (e) {
        ctx.log.error(`cleanup ${name}: ${(e as Error).message}`);
        ok = false;
      }
    }
    return ok ? EXIT.ok : EXIT.failed;
  },
};
