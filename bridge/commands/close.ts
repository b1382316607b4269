import { EXIT } from '../exit.js';
import { closeDrive } from '../open/flow.js';
import { closeWhenIdle } from '../open/idle.js';
import { publishOpenState } from '../open/publish.js';
import { SAFE_TO_REMOVE } from '../words.js';
import { oneDrive, parseDuration } from './arguments.js';
import type { Command } from './command.js';
import { whileSignalled } from './signals.js';

export const closeCommand: Command = {
  name: 'close',
  usage: '<drive> [--when-idle DURATION]',
  summary: 'unmount, close and power off a drive that offsite open opened',
  options: {
    'when-idle': { type: 'string' },
  },
  help: `
Ends what \`offsite open <drive>\` began, with the last steps of a run:

  unmount    the filesystem is unmounted (never lazily: if something still
             uses it, nothing is closed and the processes are named)
  close      the LUKS mapping is closed, and checked to be gone
  power-off  the disk is powered off where the hardware allows it, unless
             the drive says power_off: false (docs/restore.md)

Then the drive is safe to remove: the status says so, and the LED shows the
last run's colour again. A drive that is not open is left alone (exit 0, and
it says so). One left open but gone since (pulled, unmounted by hand) has
what is left cleared, as the ExecStopPost= cleanup would.

Options:
  --when-idle DURATION  wait until nothing has used the drive for DURATION
                        (e.g. 30m), then close it; what offsite open --idle
                        starts in the background. "Used": a process with a
                        file open, its working directory, its root or a
                        mapped file under the drive, looked at in /proc a few
                        times per DURATION (at least every 30 s)

Exit codes: 0 closed (or it was not open), 1 it could not be closed (still
in use, or the mapping stayed), 2 usage or configuration error, 75 a run of
the drive holds it.

Examples:
  offsite close alpha
  offsite close alpha --when-idle 30m
`,
  async run(ctx) {
    const { config, drive } = oneDrive(ctx, 'close');
    const when = ctx.values['when-idle'];
    const idleSeconds = typeof when === 'string' ? parseDuration(when, '--when-idle') : null;
    const outcome = await whileSignalled(ctx.log, (signal) =>
      idleSeconds === null
        ? closeDrive(config, drive, {}, { log: ctx.log, signal })
        : closeWhenIdle(config, drive, idleSeconds, { log: ctx.log, signal }),
    );
    if (outcome.exitCode !== EXIT.ok) {
      for (const line of outcome.lines) ctx.log.error(line);
      return outcome.exitCode;
    }
    for (const line of outcome.lines) ctx.stdout.write(`${line}\n`);
    if (outcome.changed)
      await publishOpenState(
        config,
        drive,
        { open: false, message: `${drive.name} is closed: ${SAFE_TO_REMOVE}` },
        { log: ctx.log, env: ctx.env },
      );
    return EXIT.ok;
  },
};
