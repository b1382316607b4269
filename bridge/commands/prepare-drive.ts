import { execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { keyFileFor, preflight, prepareDrive } from '../../units/prepare/prepare.js';
import { blockDevice, NotABlockDevice, Refused } from '../../units/prepare/safety.js';
import { loadConfig } from '../config.js';
import { errorMessage } from '../error-message.js';
import { EXIT } from '../exit.js';
import { type Command, UsageError } from './command.js';

/** Lines typed on stdin, one at a time; echo off on a terminal when asked (passphrases). */
function lineReader(): { ask(prompt: string, hidden?: boolean): Promise<string | null>; close(): void } {
  let muted = false;
  const output = new Writable({
    write(chunk, _enc, cb) {
      if (!muted) process.stderr.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: Boolean(process.stdin.isTTY) });
  const lines: string[] = [];
  const waiting: Array<(l: string | null) => void> = [];
  let ended = false;
  rl.on('line', (l) => (waiting.length ? waiting.shift()!(l) : lines.push(l)));
  rl.on('close', () => {
    ended = true;
    for (const w of waiting.splice(0)) w(null);
  });
  return {
    ask(prompt, hidden = false) {
      process.stderr.write(prompt);
      muted = hidden && Boolean(process.stdin.isTTY);
      const next = lines.shift();
      if (next !== undefined) return Promise.resolve(next);
      if (ended) return Promise.resolve(null);
      return new Promise((resolve) =>
        waiting.push((l) => {
          if (muted) process.stderr.write('\n');
          muted = false;
          resolve(l);
        }),
      );
    },
    close: () => rl.close(),
  };
}

function describeDevice(path: string): string {
  try {
    return execFileSync('lsblk', ['-o', 'NAME,SIZE,TYPE,FSTYPE,LABEL,MODEL', path], { encoding: 'utf8' });
  } catch {
    return `${path}\n`;
  }
}

export const prepareDriveCommand: Command = {
  name: 'prepare-drive',
  usage: '<device> --name <drive> [--plain]',
  summary:
    'enrol a new disk: LUKS2 with a key file, header backup, ext4, marker, config entry (destroys its data)',
  options: {
    name: { type: 'string', short: 'n' },
    plain: { type: 'boolean' },
    passphrase: { type: 'boolean' },
    'keys-dir': { type: 'string' },
    'mount-point': { type: 'string' },
    'iter-time': { type: 'string' },
    'yes-i-typed-it': { type: 'string' },
  },
  help: `
Turns <device> (a whole disk or a partition, e.g. /dev/sdb1) into an offsite
drive. ALL DATA ON IT IS DESTROYED. In order:

  key         4096 random bytes in <keys-dir>/<drive>.key, mode 0400
  format      cryptsetup luksFormat --type luks2, opened by that key file
  passphrase  (--passphrase) a passphrase slot too, for when the NAS is gone
  header      cryptsetup luksHeaderBackup into <state_dir>/headers/<drive>.luksheader
  filesystem  ext4 labelled offsite-<drive>, inside the container
  marker      .offsite-drive.json naming the drive, with a random enrolment
              token whose copy stays in <state_dir>/drives/<drive>.token
              (root only); every run checks both
  config      the drive added to the configuration (comments kept)

then prints the crypttab and fstab lines that \`offsite install\` manages.

With --plain there is no encryption: no key, no container, no header. The
ext4 filesystem goes on <device> itself and the drive is configured by its
filesystem UUID (a 'uuid:' drive). Anyone who holds the drive can read the
backup. A disk that already has a filesystem you want to keep is enrolled
with \`offsite enrol\` instead.

Refuses, before writing anything: a device that is mounted or has a mounted
partition, the disk holding the system, the backup source or the state
directory, a device used by device-mapper, RAID or swap, a drive name already
in the configuration, an existing key file, and a kernel without
device-mapper. You confirm by typing the device path back.

Options:
  -n, --name DRIVE        the drive's name ([a-z0-9_]+), e.g. alpha
  --plain                 no encryption: ext4 on the device itself
  --passphrase            also add a passphrase (asked twice, not echoed)
  --keys-dir DIR          where key files go (default /etc/offsite/keys)
  --mount-point DIR       where runs mount it (default /mnt/offsite/<drive>)
  --iter-time MS          LUKS key derivation time per unlock (cryptsetup's
                          default 2000; the key file is random, so this only
                          protects the passphrase)
  --yes-i-typed-it=DEV    confirm without a prompt (scripts); DEV must be <device>

Examples:
  offsite prepare-drive /dev/disk/by-id/usb-WD_Elements_1234-0:0 --name alpha --passphrase
  offsite prepare-drive /dev/disk/by-id/usb-SanDisk_Ultra_5678-0:0 --name bravo --plain
`,
  async run(ctx) {
    const [given, ...extra] = ctx.positionals;
    if (!given) throw new UsageError('which device? e.g. offsite prepare-drive /dev/sdb --name alpha');
    if (extra.length) throw new UsageError(`one device at a time (got ${ctx.positionals.join(', ')})`);
    const name = ctx.values.name;
    if (typeof name !== 'string') throw new UsageError('name the drive: --name alpha');
    const iter = ctx.values['iter-time'];
    const iterTimeMs = typeof iter === 'string' ? Number(iter) : undefined;
    if (iterTimeMs !== undefined && !(Number.isInteger(iterTimeMs) && iterTimeMs > 0))
      throw new UsageError('--iter-time takes milliseconds, e.g. 2000');
    const plain = ctx.values.plain === true;
    if (plain)
      for (const luksOnly of ['passphrase', 'keys-dir', 'iter-time'])
        if (ctx.values[luksOnly] !== undefined)
          throw new UsageError(`--${luksOnly} is for an encrypted drive; --plain makes no container`);
    const config = loadConfig(ctx.configFile);
    let device: ReturnType<typeof blockDevice>;
    try {
      device = blockDevice(given);
    } catch (e) {
      if (e instanceof NotABlockDevice) throw new UsageError(e.message);
      throw e;
    }
    const keysDir = typeof ctx.values['keys-dir'] === 'string' ? ctx.values['keys-dir'] : '/etc/offsite/keys';
    const mountPoint =
      typeof ctx.values['mount-point'] === 'string' ? ctx.values['mount-point'] : `/mnt/offsite/${name}`;
    const plan = { config, device, name, keysDir, mountPoint, iterTimeMs, plain };

    const reasons = preflight(plan);
    if (reasons.length) {
      for (const r of reasons) ctx.log.error(`refusing: ${r}`);
      ctx.log.error('nothing was changed');
      return EXIT.failed;
    }

    const reader = lineReader();
    try {
      const typed = ctx.values['yes-i-typed-it'];
      ctx.stderr.write(`\n${describeDevice(device.path)}\nALL DATA ON ${given} WILL BE DESTROYED.\n`);
      ctx.stderr.write(
        plain
          ? `It becomes offsite drive "${name}", UNENCRYPTED: whoever holds it can read the backup.\n`
          : `It becomes offsite drive "${name}", opened by ${keyFileFor(plan)}.\n`,
      );
      const answer = typeof typed === 'string' ? typed : await reader.ask(`Type ${given} to go on: `);
      if (answer === null || (answer.trim() !== given && answer.trim() !== device.path)) {
        ctx.log.error(`not confirmed (expected ${given}): nothing was changed`);
        return EXIT.failed;
      }
      let passphrase: string | null = null;
      if (ctx.values.passphrase) {
        passphrase = await reader.ask('Passphrase: ', true);
        const again = await reader.ask('The same passphrase again: ', true);
        if (!passphrase || passphrase !== again) {
          ctx.log.error(
            passphrase
              ? 'the passphrases differ: nothing was changed'
              : 'no passphrase given: nothing was changed',
          );
          return EXIT.failed;
        }
      }
      reader.close();
      const done = await prepareDrive({ ...plan, passphrase, log: ctx.log });
      const lines = done.keyFile
        ? [
            `Drive ${name} is ready (LUKS UUID ${done.uuid}).`,
            `Keep a copy of ${done.keyFile} and ${done.headerFile} somewhere other than this NAS.`,
          ]
        : [`Drive ${name} is ready (filesystem UUID ${done.uuid}, not encrypted).`];
      ctx.stdout.write(
        [
          '',
          ...lines,
          `Its enrolment token is in ${done.tokenFile}: without it no run accepts the drive.`,
          '',
          '`offsite install` manages these lines:',
          ...(done.crypttab ? [`  /etc/crypttab: ${done.crypttab}`] : []),
          `  /etc/fstab:    ${done.fstab}`,
          '',
          'next: offsite install',
          '',
        ].join('\n'),
      );
      return EXIT.ok;
    } catch (e) {
      if (e instanceof Refused) {
        for (const r of e.reasons) ctx.log.error(`refusing: ${r}`);
        ctx.log.error('nothing was changed');
        return EXIT.failed;
      }
      ctx.log.error(errorMessage(e));
      return EXIT.failed;
    } finally {
      reader.close();
    }
  },
};
