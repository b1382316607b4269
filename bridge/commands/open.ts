import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { placeProblems } from '../config/places.js';
import type { Config, Drive } from '../config.js';
import { EXIT } from '../exit.js';
import { openDrive } from '../open/flow.js';
import { publishOpenState } from '../open/publish.js';
import { type OpenRecord, openDir } from '../open-record.js';
import { oneDrive, parseDuration } from './arguments.js';
import { type Command, UsageError } from './command.js';
import { whileSignalled } from './signals.js';

export const openCommand: Command = {
  name: 'open',
  usage: '<drive> [--at DIR] [--idle DURATION]',
  summary: 'unlock and mount a drive read-only, to browse it or restore from it (until offsite close)',
  options: {
    at: { type: 'string' },
    idle: { type: 'string' },
  },
  help: `
Opens a plugged-in drive for reading: the same first steps as a run, and
nothing written to the drive.

  identify  the drive is registered and plugged in, and not open already
  unlock    systemd-cryptsetup@<mapper>.service opens it with its key file
  mount     its filesystem is mounted read-only (nodev, nosuid), and its
            marker and enrolment token must prove it is the drive

Then it prints where \`current\` is (the complete copy to restore from) and
which run made it, when. docs/restore.md shows how to restore one file or the
whole Borg repository from there.

While it is open the drive is not safe to remove: the status says \`open\`,
the LED blinks blue instead of green, offsite status shows it, and a run of
the drive refuses it (so does the ExecStopPost= cleanup). Close it with
\`offsite close <drive>\`: unmounted, closed and (power_off) powered off.

Refused, with nothing changed: a drive not in the configuration (exit 2),
not plugged in (75), already open (75), while a run of it is in progress
(75), or whose marker does not prove it (1). When a LUKS drive cannot be
found or unlocked, it says whether the header backup that prepare-drive
made (<state_dir>/headers/<drive>.luksheader) is there to restore.

Options:
  --at DIR         mount it on DIR instead of its mount_point (created if
                   missing; not the source, state_dir, another drive's place
                   or a system directory)
  --idle DURATION  close it by itself after DURATION without use, e.g. 30m,
                   2h (a process with a file, its working directory or a
                   mapped file under the drive uses it); what it does is
                   logged in <state_dir>/open/<drive>.log

Exit codes: 0 open, 1 it could not be opened, 2 usage or configuration
error, 75 not plugged in, already open, or a run holds it.

Examples:
  offsite open alpha
  offsite open alpha --at /mnt/restore --idle 30m
`,
  async run(ctx) {
    const { config, drive } = oneDrive(ctx, 'open');
    const at = typeof ctx.values.at === 'string' ? placeAt(config, drive, ctx.values.at) : undefined;
    const idleSeconds =
      typeof ctx.values.idle === 'string' ? parseDuration(ctx.values.idle, '--idle') : undefined;
    const configFile = resolve(ctx.configFile);
    const outcome = await whileSignalled(ctx.log, (signal) =>
      openDrive(
        config,
        drive,
        { at, idleSeconds, startWatcher: (record) => startWatcher(config, record, configFile, ctx.env) },
        { log: ctx.log, signal },
      ),
    );
    if (outcome.exitCode !== EXIT.ok) {
      for (const line of outcome.lines) ctx.log.error(line);
      return outcome.exitCode;
    }
    for (const line of outcome.lines) ctx.stdout.write(`${line}\n`);
    await publishOpenState(
      config,
      drive,
      { open: true, message: `${outcome.lines[0]}: not safe to remove (offsite close ${drive.name})` },
      { log: ctx.log, env: ctx.env },
    );
    return EXIT.ok;
  },
};

/** --at, checked like a mount point in the configuration (bridge/config/places.ts). */
function placeAt(config: Config, drive: Drive, given: string): string {
  if (drive.kind === 'directory')
    throw new UsageError(`"${drive.name}" is a directory drive: there is nothing to mount, so no --at`);
  const at = resolve(given);
  const others = config.drives
    .filter((d) => d.name !== drive.name)
    .map((d, i) => ({ key: ['drives', i], path: d.kind === 'directory' ? d.directory : d.mountPoint }));
  const fixed = [
    { key: ['source', 'path'], path: config.source.path },
    { key: ['state_dir'], path: config.state_dir },
    ...others,
  ];
  const problem = placeProblems([{ key: ['--at'], path: at }], fixed)[0];
  if (problem) throw new UsageError(`--at ${at}: ${problem.message}`);
  return at;
}

/**
 * `offsite close <drive> --when-idle <seconds>s`, detached from the terminal
 * (its own session: a closed shell does not stop it), writing to
 * <state_dir>/open/<drive>.log. The same program as this one: the built
 * cli.js, or cli.ts through tsx when run from the sources.
 */
function startWatcher(
  config: Config,
  record: OpenRecord,
  configFile: string,
  env: NodeJS.ProcessEnv,
): number | null {
  const here = fileURLToPath(import.meta.url);
  const cli = join(dirname(dirname(here)), `cli${extname(here)}`);
  const loader = extname(here) === '.ts' ? ['--import', 'tsx'] : [];
  mkdirSync(openDir(config.state_dir), { recursive: true });
  const log = openSync(join(openDir(config.state_dir), `${record.drive}.log`), 'w', 0o644);
  try {
    const child = spawn(
      process.execPath,
      [
        ...loader,
        cli,
        'close',
        record.drive,
        '--when-idle',
        `${record.idle_seconds}s`,
        '--config',
        configFile,
      ],
      {
        detached: true,
        stdio: ['ignore', log, log],
        // tsx is found from the package, whatever the caller's directory
        cwd: dirname(dirname(dirname(here))),
        env: { ...env, JOURNAL_STREAM: '' },
      },
    );
    child.unref();
    return child.pid ?? null;
  } finally {
    closeSync(log);
  }
}
