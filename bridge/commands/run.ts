import type { Config, Drive } from '../config.js';
import { Ledger } from '../ledger.js';
import type { Logger } from '../log.js';
import { latestSuccess, statusMessage, topicsFor } from '../mqtt/messages.js';
import { decode, isoNow, statusSchema } from '../protocol.js';
import { reportersFor } from '../reporters/index.js';
import { DriveAbsentError, DriveBusyError, runDrive } from '../run/run-drive.js';
import { stepsFor } from '../steps/index.js';
import { oneDrive } from './arguments.js';
import type { Command } from './command.js';

/**
 * A drive that is not plugged in is not a failure: the status says `idle` and
 * why (Home Assistant shows it; the LED keeps what it showed), and nothing
 * else changes. The status topic is shared by all drives, so another drive's
 * run in progress is left alone.
 */
async function sayAbsent(config: Config, drive: Drive, message: string, log: Logger): Promise<void> {
  if (!config.mqtt?.enabled) return;
  // mqtt.js only when there is a broker to talk to: it costs a run without one ~0.2 s to load
  const { publishOnce, readRetained } = await import('../mqtt/oneshot.js');
  const t = topicsFor(config);
  const raw = await readRetained(config.mqtt, t.status, { log, role: 'run' });
  const now = raw ? decode(statusSchema, raw) : null;
  if (now?.ok && now.value.state === 'running' && now.value.drive !== drive.name) return;
  const ledger = new Ledger(config.state_dir);
  const idle = statusSchema.parse({
    state: 'idle',
    drive: drive.name,
    step: null,
    progress: null,
    bytes: null,
    eta: null,
    message,
    last_success: latestSuccess(config.drives.map((d) => ledger.drive(d.name))),
    updated: isoNow(),
  });
  await publishOnce(config.mqtt, [statusMessage(config, idle)], { log, role: 'run' });
}

export const runCommand: Command = {
  name: 'run',
  usage: '<drive>',
  summary: 'back up onto one drive: unlock, mount, sync, verify, unmount, close, power off',
  help: `
Runs the whole flow for one registered drive, one step at a time:

  identify  the drive is plugged in and is the one it claims to be, and a
            stale mount or mapping from an earlier run is cleared
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
  power-off the disk is powered off where the hardware allows it (a USB
            or SATA disk; not a loop device), unless the drive says
            power_off: false; green comes after it (docs/restore.md)

Each step is published over MQTT and shown on the LED. On a failure the steps
already taken are undone, the status says which step failed and why, an email
goes out, and the exit code is 1. The previous copy on the drive stays intact.
A 'directory:' drive only runs identify, sync and verify.

systemd runs this as offsite-backup@<drive>.service when the drive is plugged
in. Run it by hand to test a drive: progress is a bar on a terminal, plain
lines otherwise.

A drive that is not plugged in is not a failure: nothing is started, no
event or mail goes out, the ledger and the LED stay as they were, and the
MQTT status says "idle" with a message naming the drive. Exit code 75.

A drive opened by \`offsite open\` is refused the same way, with nothing
published (exit 75): close it first with \`offsite close <drive>\`.

Exit codes: 0 done (safe to remove), 1 failed, 2 usage or configuration error,
75 the drive was not plugged in, another run of it is in progress, or it is
open (nothing was started).

Example:
  offsite run alpha
`,
  async run(ctx) {
    const { config, drive } = oneDrive(ctx, 'run');
    try {
      const outcome = await runDrive(config, drive, {
        ...(await reportersFor(config, ctx.log, ctx.stdout)),
        steps: stepsFor(drive),
      });
      return outcome.exitCode;
    } catch (e) {
      if (e instanceof DriveAbsentError) {
        ctx.log.warn(e.message);
        await sayAbsent(config, drive, e.message, ctx.log);
        return e.exitCode;
      }
      if (!(e instanceof DriveBusyError)) throw e;
      ctx.log.warn(e.message);
      return e.exitCode;
    }
  },
};
