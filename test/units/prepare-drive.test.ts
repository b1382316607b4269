import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig, parseConfig } from '../../bridge/config.js';
import { readMarker, readToken, tokenFile } from '../../bridge/steps/marker.js';
import { addDriveToFile } from '../../units/prepare/config-edit.js';
import { enrolAt } from '../../units/prepare/enrol.js';
import { ext4Label, makeFilesystem, onTempMount } from '../../units/prepare/filesystem.js';
import {
  addPassphrase,
  backupHeader,
  createKeyFile,
  deviceMapperAvailable,
  formatLuks,
  keyOpens,
  luksUuid,
} from '../../units/prepare/luks.js';
import { blockDevice, refusals } from '../../units/prepare/safety.js';
import { configFile, offsite } from './cli.js';

const sh = (file: string, args: string[]) => execFileSync(file, args, { encoding: 'utf8' }).trim();
const blkid = (dev: string, tag: string) => {
  try {
    return sh('blkid', ['-p', '-s', tag, '-o', 'value', dev]);
  } catch {
    return '';
  }
};

const cleanups: Array<() => void> = [];
after(() => {
  for (const c of cleanups.reverse())
    try {
      c();
    } catch {}
});

/** A loop device over a sparse image; with `partitions`, an MBR with two partitions (like a USB disk). */
function loopDisk(opts: { partitions?: boolean; sizeMiB?: number } = {}): {
  disk: string;
  parts: string[];
  dir: string;
} {
  const dir = mkdtempSync(join(tmpdir(), 'offsite-disk-'));
  const image = join(dir, 'disk.img');
  const sectors = (opts.sizeMiB ?? 64) * 2048;
  writeFileSync(image, '');
  execFileSync('truncate', ['-s', `${opts.sizeMiB ?? 64}M`, image]);
  if (opts.partitions) {
    const mbr = Buffer.alloc(512);
    const entry = (i: number, start: number, count: number) => {
      const o = 446 + 16 * i;
      mbr[o + 4] = 0x83;
      mbr.writeUInt32LE(start, o + 8);
      mbr.writeUInt32LE(count, o + 12);
    };
    entry(0, 2048, 20480);
    entry(1, 22528, sectors - 22528);
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    const fd = openSync(image, 'r+');
    writeSync(fd, mbr, 0, 512, 0);
    closeSync(fd);
  }
  const disk = sh('losetup', ['--find', '--show', ...(opts.partitions ? ['--partscan'] : []), image]);
  cleanups.push(() => {
    execFileSync('losetup', ['-d', disk]);
    rmSync(dir, { recursive: true, force: true });
  });
  const parts = opts.partitions ? [`${disk}p1`, `${disk}p2`] : [];
  // without udev (a container), the partition nodes may need asking for
  if (parts.some((p) => !existsSync(p))) execFileSync('partx', ['-a', disk], { stdio: 'ignore' });
  return { disk, parts, dir };
}

function mountTemp(dev: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'offsite-mnt-'));
  execFileSync('mount', [dev, dir]);
  cleanups.push(() => {
    execFileSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

function setup(): { file: string; dir: string; keysDir: string } {
  const { dir, file } = configFile(`# my NAS
source:
  path: /srv/backup   # the borg repository
state_dir: STATE
drives:
  # a first drive
  - name: scratch
    directory: /tmp/offsite-scratch
`);
  writeFileSync(file, readFileSync(file, 'utf8').replace('STATE', join(dir, 'state')));
  return { file, dir, keysDir: join(dir, 'keys') };
}

const prepare = (dev: string, cfg: ReturnType<typeof setup>, input: string, ...more: string[]) =>
  offsite(
    [
      'prepare-drive',
      dev,
      '--name',
      'alpha',
      '--config',
      cfg.file,
      '--keys-dir',
      cfg.keysDir,
      '--iter-time',
      '100',
      ...more,
    ],
    { input },
  );

describe('prepare-drive: LUKS on a loop device', () => {
  it('formats LUKS2 opened by a 0400 key file and a passphrase, and backs up a header that is a real LUKS header', async () => {
    const { disk, dir } = loopDisk();
    const key = join(dir, 'keys', 'alpha.key');
    createKeyFile(key);
    const st = statSync(key);
    assert.equal(st.size, 4096);
    assert.equal(st.mode & 0o777, 0o400);
    assert.equal(st.uid, 0);
    assert.throws(() => createKeyFile(key), /EEXIST/, 'an existing key is never overwritten');

    await formatLuks(disk, key, { label: 'offsite-alpha', iterTimeMs: 100 });
    await addPassphrase(disk, key, 'correct horse battery', 100);
    const header = join(dir, 'state', 'headers', 'alpha.luksheader');
    await backupHeader(disk, header);
    const uuid = await luksUuid(disk);

    assert.equal(blkid(disk, 'TYPE'), 'crypto_LUKS');
    assert.equal(blkid(disk, 'UUID'), uuid);
    assert.equal(blkid(disk, 'LABEL'), 'offsite-alpha');
    const dump = sh('cryptsetup', ['luksDump', disk]);
    assert.match(dump, /^Version:\s+2$/m);
    assert.equal((dump.match(/^\s+\d+: luks2$/gm) ?? []).length, 2, 'two key slots');
    assert.equal(await keyOpens(disk, { file: key }), true);
    assert.equal(await keyOpens(disk, { passphrase: 'correct horse battery' }), true);
    assert.equal(
      await keyOpens(disk, { passphrase: 'correct horse battery\n' }),
      false,
      'no stray newline in the slot',
    );
    assert.equal(await keyOpens(disk, { passphrase: 'wrong' }), false);
    assert.equal(statSync(header).mode & 0o777, 0o400);
    assert.match(sh('cryptsetup', ['luksDump', header]), new RegExp(`^UUID:\\s+${uuid}$`, 'm'));
  });

  it('makes the ext4 filesystem and enrols it: a marker with a token whose copy is in state_dir', async () => {
    // device-mapper is not there to open a container here: the filesystem part runs on a plain loop device
    const { disk, dir } = loopDisk({ sizeMiB: 32 });
    await makeFilesystem(disk, ext4Label('a_very_long_drive_name'));
    assert.equal(blkid(disk, 'TYPE'), 'ext4');
    assert.equal(blkid(disk, 'LABEL'), 'offsite-a_very_l');
    const config = parseConfig({ state_dir: join(dir, 'state'), source: { path: '/srv/backup' } });
    const marker = { luks_uuid: '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0' };
    assert.equal(
      await onTempMount(disk, (root) => enrolAt(root, { config, name: 'alpha', force: false, marker })),
      'enrolled',
    );
    const root = mountTemp(disk);
    const token = readToken(config.state_dir, 'alpha');
    assert.match(token ?? '', /^[0-9a-f]{64}$/);
    assert.deepEqual(
      { ...readMarker(root), created: 'x' },
      { drive: 'alpha', token, ...marker, created: 'x' },
    );
    assert.equal(statSync(tokenFile(config.state_dir, 'alpha')).mode & 0o777, 0o600);
    assert.equal(statSync(join(config.state_dir, 'drives')).mode & 0o777, 0o700);
    assert.equal(statSync(config.state_dir).mode & 0o777, 0o755, 'the LED agent reads the ledger there');
  });

  it('adds the drive to the configuration, keeping its comments', () => {
    const cfg = setup();
    addDriveToFile(cfg.file, {
      name: 'alpha',
      luks_uuid: '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0',
      key_file: '/etc/offsite/keys/alpha.key',
      mount_point: '/mnt/offsite/alpha',
    });
    const text = readFileSync(cfg.file, 'utf8');
    for (const comment of ['# my NAS', '# the borg repository', '# a first drive'])
      assert.ok(text.includes(comment), comment);
    const config = loadConfig(cfg.file);
    assert.deepEqual(
      config.drives.map((d) => d.name),
      ['scratch', 'alpha'],
    );
    assert.equal(config.drives[1]!.kind, 'luks');
    assert.throws(() =>
      addDriveToFile(cfg.file, { name: 'alpha', luks_uuid: 'x', key_file: '/k', mount_point: '/m' }),
    );
  });
});

describe('prepare-drive refuses', () => {
  it('a path that is not a block device (usage error, exit 2)', async () => {
    const cfg = setup();
    const r = await prepare(cfg.file, cfg, '');
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /is not a block device/);
  });

  it('a mounted device, and writes nothing to it', async () => {
    const cfg = setup();
    const { disk } = loopDisk({ sizeMiB: 32 });
    execFileSync('mkfs.ext4', ['-q', '-F', disk]);
    const mnt = mountTemp(disk);
    const r = await prepare(disk, cfg, `${disk}\n`);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, new RegExp(`refusing: ${disk} is mounted at ${mnt}`));
    assert.match(r.stderr, /nothing was changed/);
    assert.equal(blkid(disk, 'TYPE'), 'ext4');
    assert.equal(existsSync(join(cfg.keysDir, 'alpha.key')), false);
  });

  it('a disk with a partition in use', async () => {
    const cfg = setup();
    const { disk, parts } = loopDisk({ partitions: true });
    execFileSync('mkfs.ext4', ['-q', '-F', parts[0]!]);
    const mnt = mountTemp(parts[0]!);
    const r = await prepare(disk, cfg, `${disk}\n`);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, new RegExp(`its partition ${parts[0]} is in use: mounted at ${mnt}`));
  });

  it('a device something holds open exclusively (as device-mapper or RAID would)', async () => {
    const cfg = setup();
    const { disk } = loopDisk({ sizeMiB: 16 });
    const fd = openSync(disk, constants.O_RDONLY | constants.O_EXCL);
    try {
      const r = await prepare(disk, cfg, `${disk}\n`);
      assert.equal(r.exitCode, 1);
      assert.match(r.stderr, /is in use \(the kernel refuses an exclusive open\)/);
    } finally {
      closeSync(fd);
    }
  });

  it('the disk holding the system (or the backup source)', () => {
    const { disk, parts } = loopDisk({ partitions: true });
    execFileSync('mkfs.ext4', ['-q', '-F', parts[0]!]);
    const system = mountTemp(parts[0]!);
    // partition 2 is not mounted itself, but it is on the disk that holds `system`
    const reasons = refusals(blockDevice(parts[1]!), [system]);
    assert.deepEqual(reasons, [
      `${parts[1]} is on ${disk}, the disk that holds ${system}: refusing to touch the system disk`,
    ]);
    assert.deepEqual(refusals(blockDevice(parts[1]!), ['/nonexistent']), []);
  });

  it('a drive name already in the configuration', async () => {
    const cfg = setup();
    const { disk } = loopDisk({ sizeMiB: 16 });
    const r = await offsite(['prepare-drive', disk, '--name', 'scratch', '--config', cfg.file], {
      input: `${disk}\n`,
    });
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /already has a drive named "scratch"/);
  });

  it('anything not confirmed by typing the device path back', async () => {
    const cfg = setup();
    const { disk } = loopDisk({ sizeMiB: 32 });
    execFileSync('mkfs.ext4', ['-q', '-F', disk]);
    for (const typed of ['yes\n', '/dev/sda\n', '']) {
      const r = await prepare(disk, cfg, typed);
      assert.equal(r.exitCode, 1);
      assert.match(r.stderr, new RegExp(`ALL DATA ON ${disk} WILL BE DESTROYED`));
      assert.match(r.stderr, /not confirmed/);
    }
    const flag = await prepare(disk, cfg, '', `--yes-i-typed-it=${disk}x`);
    assert.match(flag.stderr, /not confirmed/);
    assert.equal(blkid(disk, 'TYPE'), 'ext4');
    assert.equal(existsSync(cfg.keysDir), false);
  });

  it('a kernel without device-mapper: says so, after confirmation, before writing anything', async (t) => {
    if (deviceMapperAvailable()) {
      // where device-mapper exists the whole enrolment runs (the VM end-to-end suite does that)
      t.diagnostic('device-mapper present: checking the full enrolment instead');
    }
    const cfg = setup();
    const { disk } = loopDisk({ sizeMiB: 32 });
    execFileSync('mkfs.ext4', ['-q', '-F', disk]);
    const r = await prepare(disk, cfg, `${disk}\n`);
    if (deviceMapperAvailable()) {
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(blkid(disk, 'TYPE'), 'crypto_LUKS');
      assert.match(r.stdout, /offsite_alpha UUID=/);
      return;
    }
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /refusing: device-mapper is not available in this kernel/);
    assert.match(r.stderr, /nothing was changed/);
    assert.equal(blkid(disk, 'TYPE'), 'ext4');
    assert.equal(existsSync(join(cfg.keysDir, 'alpha.key')), false);
    assert.equal(loadConfig(cfg.file).drives.length, 1);
    mkdirSync(cfg.keysDir, { recursive: true });
  });
});

describe('prepare-drive --plain', () => {
  it('makes ext4 on the device itself, enrols it and adds a uuid: drive; the first run then succeeds', async () => {
    const cfg = setup();
    const { disk } = loopDisk({ sizeMiB: 32 });
    const mountPoint = join(cfg.dir, 'mnt', 'alpha');
    const r = await offsite(
      [
        'prepare-drive',
        disk,
        '--name',
        'alpha',
        '--plain',
        '--mount-point',
        mountPoint,
        '--config',
        cfg.file,
        `--yes-i-typed-it=${disk}`,
      ],
      {},
    );
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stderr, /UNENCRYPTED: whoever holds it can read the backup/);
    const uuid = blkid(disk, 'UUID');
    assert.equal(blkid(disk, 'TYPE'), 'ext4');
    assert.match(r.stdout, new RegExp(`Drive alpha is ready \\(filesystem UUID ${uuid}, not encrypted\\)`));
    assert.doesNotMatch(r.stdout, /crypttab/);
    assert.equal(existsSync(cfg.keysDir), false, 'no key for a plain drive');
    const config = loadConfig(cfg.file);
    assert.deepEqual(config.drives[1], {
      kind: 'filesystem',
      name: 'alpha',
      uuid,
      mountPoint,
      mountOptions: 'noatime',
      powerOff: true,
    });
    const root = mountTemp(disk);
    const token = readToken(config.state_dir, 'alpha');
    assert.deepEqual({ ...readMarker(root), created: 'x' }, { drive: 'alpha', token, uuid, created: 'x' });
    execFileSync('umount', [root]);

    mkdirSync(join(cfg.dir, 'source'));
    writeFileSync(join(cfg.dir, 'source', 'photo.jpg'), 'not really');
    writeFileSync(cfg.file, readFileSync(cfg.file, 'utf8').replace('/srv/backup', join(cfg.dir, 'source')));
    const ran = await offsite(['run', 'alpha', '--config', cfg.file]);
    assert.equal(ran.exitCode, 0, ran.stdout + ran.stderr);
  });

  it('takes no LUKS option', async () => {
    const r = await offsite(['prepare-drive', '/dev/null', '--name', 'alpha', '--plain', '--passphrase']);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /--passphrase is for an encrypted drive; --plain makes no container/);
  });
});
