import { loadConfig } from '../config.js';
import { errorMessage } from '../error-message.js';
import { EXIT } from '../exit.js';
import { describeBusy, tryLock, whoHolds } from '../lockfile.js';
import { childLogger } from '../log.js';
import { describeOpen, openState, removeOpenRecord } from '../open-record.js';
import { driveLockFile } from '../run/run-drive.js';
import { clearDrive } from '../steps/teardown.js';
import { type Command, driveNamed, UsageError } from './command.js';

export const cleanupCommand: Command = {
  name: 'cleanup',
  usage: '<drive>',
  summary: "unmount and close a drive left open (the backup unit's ExecStopPost= safety net)",
  help: `
Unmounts the drive from its mount point (lazily when a plain unmount keeps
failing, e.g. after the drive was pulled; anything else mounted there is left
alone, with a warning) and stops its cryptsetup unit, checking that
/dev/mapper/<mapper> is gone. Does nothing, quietly, when nothing is open.

A drive opened by \`offsite open\` is left mounted (it is someone's until
\`offsite close\`); what an opening left behind once its mount has gone
(the drive was pulled) is cleared like the rest.

It takes the drive's lock first, without waiting: while a run of the drive
is alive (or programs of a run that was killed, e.g. its rsync, still run)
it touches nothing, says so, and exits 0. When systemd runs it after the run
has ended (or was killed with everything it started), the lock is free or
stale, and cleanup goes ahead.

systemd runs this after every offsite-backup@<drive>.service, whether the run
succeeded, failed or was killed: after a failed ExecStart systemd runs no
ExecStop=, and a stale mount or mapping would break every later plug.

Exit codes: 0 nothing left open, or a live run holds the drive (nothing
done); 1 something could not be closed; 2 usage or configuration error.

Example:
  offsite cleanup alpha
`,
  async run(ctx) {
    const [name] = ctx.positionals;
    if (!name) throw new UsageError('which drive? e.g. offsite cleanup alpha');
    const config = loadConfig(ctx.configFile);
    const drive = driveNamed(config, name);
    if (drive.kind === 'directory') return EXIT.ok;
    const file = driveLockFile(config.state_dir, name);
    let taken: ReturnType<typeof tryLock>;
    try {
      taken = tryLock(file, `offsite cleanup ${name}`);
    } catch (e) {
      // a full state_dir: no run could start either, so the safety net still works when none is alive
      const busy = whoHolds(file);
      taken = busy ? { lock: null, busy } : { lock: { file, release() {} }, busy: null };
      ctx.log.warn(
        `cleanup ${name}: ${errorMessage(e)}${busy ? '' : '; no run is alive: cleaning up anyway'}`,
      );
    }
    const { lock, busy } = taken;
    if (!lock) {
      ctx.log.info(
        `cleanup ${name}: a run of drive "${name}" is in progress (${describeBusy(busy)}): nothing done`,
      );
      return EXIT.ok;
    }
    try {
      // opened by `offsite open`: someone is reading it, until `offsite close`
      const open = openState(config.state_dir, drive);
      if (open.is === 'open') {
        ctx.log.info(
          `cleanup ${name}: the drive is open (offsite open, ${describeOpen(open.record)}): left as it is`,
        );
        return EXIT.ok;
      }
      const at = open.is === 'stale' ? [open.record.at] : [];
      const ok = await clearDrive(drive, childLogger(ctx.log, `cleanup ${name}`), at);
      if (ok && open.is === 'stale') removeOpenRecord(config.state_dir, name);
      return ok ? EXIT.ok : EXIT.failed;
    } finally {
      lock.release();
    }
  },
};
