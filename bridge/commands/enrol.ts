import { enrolDrive } from '../../units/prepare/enrol.js';
import { Refused } from '../../units/prepare/safety.js';
import { loadConfig } from '../config.js';
import { errorMessage } from '../error-message.js';
import { EXIT } from '../exit.js';
import { childLogger } from '../log.js';
import { tokenFile } from '../steps/marker.js';
import { type Command, driveNamed, UsageError } from './command.js';

export const enrolCommand: Command = {
  name: 'enrol',
  usage: '<drive> [--force]',
  summary:
    'enrol a drive that is already in the configuration and formatted (writes its marker, keeps its data)',
  options: {
    force: { type: 'boolean' },
  },
  help: `
Makes the plugged-in disk (or the directory) of a configured drive the one
that runs accept, without formatting it: writes .offsite-drive.json at its
root, naming the drive and holding a new random enrolment token, and keeps
the token's copy in <state_dir>/drives/<drive>.token (root only). A run
refuses a drive whose marker is missing, names another drive, or carries
another token, and writes nothing to it: no drive is ever enrolled by a run.

  uuid: drive       mounted by enrol itself on its mount_point (unmount it
                    first if something else mounted it), then unmounted
  directory: drive  the directory must exist
  luks_uuid: drive  opened with its key_file, mounted, closed again: how a
                    drive prepared before enrolment tokens is enrolled again

New disks are better made with \`offsite prepare-drive\` (LUKS, or --plain),
which enrols them as it formats them.

Refuses, writing nothing, a drive whose marker names another drive, cannot be
read as a marker (a symbolic link, not JSON, too big), or carries a token
this NAS does not hold (a copied marker, a drive enrolled on another NAS, or
a state_dir that was lost) unless --force: enrolling it as this drive makes
whatever it was enrolled as before refuse it. A marker that names this drive
without a token (written before tokens) needs no --force. A drive already
enrolled here is left as it is.

Options:
  --force   enrol it even though its marker belongs to something else

Exit codes: 0 enrolled (or already), 1 refused or failed, 2 usage or
configuration error.

Examples:
  offsite enrol bravo
  offsite enrol bravo --force
`,
  async run(ctx) {
    const [name, ...extra] = ctx.positionals;
    if (!name) throw new UsageError('which drive? e.g. offsite enrol alpha');
    if (extra.length) throw new UsageError(`one drive at a time (got ${ctx.positionals.join(', ')})`);
    const config = loadConfig(ctx.configFile);
    const drive = driveNamed(
      config,
      name,
      ': add it there first (or make a new disk with offsite prepare-drive)',
    );
    const log = childLogger(ctx.log, `enrol ${name}`);
    try {
      const done = await enrolDrive(config, drive, { force: ctx.values.force === true });
      log.info(
        done === 'enrolled'
          ? `enrolled (marker written, token in ${tokenFile(config.state_dir, name)})`
          : 'already enrolled on this NAS; nothing changed',
      );
      return EXIT.ok;
    } catch (e) {
      if (e instanceof Refused) {
        for (const r of e.reasons) log.error(`refusing: ${r}`);
        return EXIT.failed;
      }
      log.error(errorMessage(e));
      return EXIT.failed;
    }
  },
};
