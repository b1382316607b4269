import { findDrive, loadConfig } from '../config.js';
import { reportersFor } from '../run/reporters.js';
import { DriveBusyError, runDrive } from '../run/run-drive.js';
import { type Command, UsageError } from './command.js';

export const runCommand: Command = {
  name: 'run',
  usage: '<drive>',
  summary: 'back up onto one drive: unlock, mount, sync, verify, unmount, close',
  help: `
Runs the whole flow for one registered drive, one step at a time:

  identify  the drive is registered, plugged in, and a stale mount or mapping
            from an earlier run is cleared
  unlock    systemd-cryptsetup@<mapper>.service opens it with its key file
  mount     its filesystem is mounted read-only, its marker must name this
            drive and hold this NAS's enrolment token (no drive is enrolled
            by a run: see offsite enrol), then it is made writable
  sync      rsync copies source.path under the repository lock into a staging
            copy beside the previous one (unchanged files hard-linked)
  verify    sizes and times agree, and what this run wrote reads back
            from the drive equal to the source; then the new copy becomes
            <drive>/current in one atomic switch
  unmount   the filesystem is unmounted
  close     the LUKS mapping is closed, and checked to be gone

Each step is published over MQTT and shown on the LED. On a failure the steps
already taken are undone, the status says which step failed and why, an email
goes out, and the exit code is 1. The previous copy on the drive stays intact.
A 'directory:' drive only runs identify, sync and verify.

systemd runs this as offsite-backup@<drive>.service when the drive is plugged
in. Run it by hand to test a drive: progress is a bar on a terminal, plain
lines otherwise.

Exit codes: 0 done (safe to remove), 1 failed, 2 usage or configuration error,
75 the drive was not plugged in (nothing was started).

Example:
  offsite run alpha
`,
  async run(ctx) {
    const [name, ...extra] = ctx.positionals;
    if (!name) throw new UsageError('which drive? e.g. offsite run alpha');
    if (extra.length) throw new UsageError(`one drive at a time (got ${ctx.positionals.join(', ')})`);
    const config = loadConfig(ctx.configFile);
    const drive = findDrive(config, name);
    if (!drive)
      throw new UsageError(
        `no drive named "${name}" in ${config.file} (drives: ${config.drives.map((d) => d.name).join(', ')})`,
      );
    try {
      const outcome = await runDrive(config, drive, {
        log: ctx.log,
        out: ctx.stdout,
        reporters: await reportersFor(config, ctx.log),
      });
      return outcome.exitCode;
    } catch (e) {
      if (!(e instanceof DriveBusyError)) throw e;
      ctx.log.warn(e.message);
      return e.exitCode;
    }
  },
};
