import { terminalReporter } from '../reporters/terminal.js';
import { DriveAbsentError, DriveBusyError, runDrive } from '../run/run-drive.js';
import { scrubStepsFor } from '../steps/index.js';
import { oneDrive } from './arguments.js';
import type { Command } from './command.js';

export const scrubCommand: Command = {
  name: 'scrub',
  usage: '<drive>',
  summary: 'read the whole copy on a drive back and compare it with the source',
  help: `
Reads every file of the drive's current copy back from the drive and
compares it with the source, byte for byte, where the source still has it as
it was copied (a file the source has changed or removed since is only read:
that proves the drive can still read it). Each run already reads back what
it wrote and a slice of the rest (verify.scrub, the rolling scrub); this
reads all of it now, e.g. before a drive goes off-site for a long time.

For a Borg repository it then runs borg check --repository-only, on a
throwaway view of hard links to the copy (snapshots/.borg-view, removed
afterwards), never on the copy itself: borg rewrites the config file of the
repository it checks. verify.borg_check: auto (when borg is installed),
always, or never.

The same steps as a run, with the scrub in place of sync and verify:

  identify  the drive is registered, plugged in, and is the one it claims
  unlock    (an encrypted drive) its LUKS container is opened
  mount     its filesystem is mounted and its marker checked
  scrub     every file read back and compared; then borg check
  unmount   the filesystem is unmounted
  close     the LUKS mapping is closed, and checked to be gone

Progress, rate and ETA are shown as for a run (a bar on a terminal). The
pass is recorded in the ledger (offsite status, SCRUB). Nothing in the copy
is changed; a file that does not match, or that the drive cannot read, is
named, and the next copy compares its contents. It sends no mail, publishes
no status and does not count as a backup. The source lock is not taken:
runs of other drives go on meanwhile.

Exit codes: 0 the whole copy read back and matched, 1 it did not (or a step
failed), 2 usage or configuration error, 75 the drive was not plugged in or
is in use by a run.

Example:
  offsite scrub alpha
`,
  async run(ctx) {
    const { config, drive } = oneDrive(ctx, 'scrub');
    try {
      // the terminal only: no mail, no status; the ledger gets the scrub's record, not a run's
      const terminal = terminalReporter(ctx.log, ctx.stdout);
      const outcome = await runDrive(config, drive, {
        log: terminal.log,
        reporters: [terminal],
        steps: scrubStepsFor(drive),
        recordRun: false,
      });
      return outcome.exitCode;
    } catch (e) {
      if (!(e instanceof DriveAbsentError) && !(e instanceof DriveBusyError)) throw e;
      ctx.log.warn(e.message);
      return e.exitCode;
    }
  },
};
