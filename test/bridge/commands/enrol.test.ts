/**
 * No drive is enrolled by a run (docs/architecture.md, "Enrolment"). An
 * impostor behind an enrolled drive's UUID (readable in config.yaml and
 * fstab) is refused at mount with not a byte written, whatever its marker
 * says; `offsite enrol` is the only way in. The real CLI in a subprocess,
 * real ext4 images on loop devices.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { acquireLock } from '../../../bridge/lockfile.js';
import { mountAt } from '../../../bridge/mounts.js';
import { driveLockFile } from '../../../bridge/run/run-drive.js';
import { MARKER_FILE, readToken, tokenFile } from '../../../bridge/steps/marker.js';
import { type LoopImage, makeExt4 } from '../../helpers/loop.js';
import { awkwardTree, diffTrees } from '../../helpers/trees.js';
import { offsite } from '../../units/cli.js';

const sh = (file: string, args: string[]) => execFileSync(file, args, { encoding: 'utf8' }).trim();
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('enrolment of a plain ext4 drive, and impostors behind its UUID', () => {
  let real: LoopImage;
  let dir: string;
  let config: string;
  let mnt: string;
  let state: string;
  /** alpha's marker as enrol wrote it */
  let genuine: { drive: string; token: string };

  /** the image's filesystem mounted on a scratch directory for `fn` */
  function inside<T>(device: string, fn: (root: string) => T): T {
    const at = mkdtempSync(join(tmpdir(), 'offsite-look-'));
    execFileSync('mount', [device, at]);
    try {
      return fn(at);
    } finally {
      execFileSync('umount', [at]);
      rmSync(at, { recursive: true });
    }
  }

  /** A blank ext4 formatted with alpha's UUID (as anyone who read config.yaml can), `plant`ed, attached instead of alpha. */
  function impostor(plant: (root: string) => void): { image: string; device: string; remove(): void } {
    const image = join(dir, `impostor-${randomBytes(4).toString('hex')}.img`);
    sh('truncate', ['-s', '16M', image]);
    sh('mkfs.ext4', ['-q', '-F', '-m', '0', '-U', real.uuid, image]);
    const device = sh('losetup', ['--find', '--show', image]);
    inside(device, plant);
    return {
      image,
      device,
      remove() {
        sh('losetup', ['-d', device]);
        rmSync(image);
      },
    };
  }

  async function refusedWithNothingWritten(planted: (root: string) => void, reason: RegExp): Promise<void> {
    const fake = impostor(planted);
    try {
      const before = sha256(fake.image);
      const ran = await offsite(['run', 'alpha', '--config', config]);
      assert.equal(ran.exitCode, 1, ran.stdout + ran.stderr);
      assert.match(ran.stderr, reason);
      assert.equal(mountAt(mnt), null);
      assert.equal(sha256(fake.image), before, 'the impostor is byte for byte what it was');
    } finally {
      fake.remove();
    }
  }

  before(() => {
    real = makeExt4(16);
    dir = mkdtempSync(join(tmpdir(), 'offsite-enrol-'));
    mnt = join(dir, 'mnt', 'alpha');
    state = join(dir, 'state');
    awkwardTree(join(dir, 'source'));
    config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      stringify({
        state_dir: state,
        source: { path: join(dir, 'source') },
        drives: [{ name: 'alpha', uuid: real.uuid, mount_point: mnt }],
      }),
    );
  });
  after(() => {
    // re-attached below: detach() would name the first loop device
    sh('losetup', ['-d', real.device]);
    rmSync(real.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('offsite enrol, then offsite run: the marker and state_dir hold the same token, root-only on the NAS', async () => {
    const enrolled = await offsite(['enrol', 'alpha', '--config', config]);
    assert.equal(enrolled.exitCode, 0, enrolled.stderr);
    const token = readToken(state, 'alpha');
    assert.match(token ?? '', /^[0-9a-f]{64}$/);
    assert.equal(statSync(tokenFile(state, 'alpha')).mode & 0o777, 0o600);
    assert.equal(statSync(join(state, 'drives')).mode & 0o777, 0o700);
    genuine = inside(real.device, (root) => {
      assert.equal(statSync(join(root, MARKER_FILE)).mode & 0o777, 0o600);
      return JSON.parse(readFileSync(join(root, MARKER_FILE), 'utf8'));
    });
    assert.equal(genuine.drive, 'alpha');
    assert.equal(genuine.token, token);

    const ran = await offsite(['run', 'alpha', '--config', config]);
    assert.equal(ran.exitCode, 0, ran.stdout + ran.stderr);
    inside(real.device, (root) => assert.equal(diffTrees(join(dir, 'source'), join(root, 'current')), ''));

    const again = await offsite(['enrol', 'alpha', '--config', config]);
    assert.equal(again.exitCode, 0, again.stderr);
    assert.match(again.stdout + again.stderr, /already enrolled on this NAS; nothing changed/);
    assert.equal(readToken(state, 'alpha'), token);
  });

  it('enrol refuses the drive while something else has it mounted, and mounts nothing', async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'offsite-elsewhere-'));
    execFileSync('mount', [real.device, elsewhere]);
    try {
      const r = await offsite(['enrol', 'alpha', '--force', '--config', config]);
      assert.equal(r.exitCode, 1);
      assert.match(
        r.stderr,
        new RegExp(`refusing: ${real.device} is mounted at ${elsewhere}: unmount it first`),
      );
      assert.equal(mountAt(mnt), null);
    } finally {
      execFileSync('umount', [elsewhere]);
      rmSync(elsewhere, { recursive: true });
    }
  });

  describe('with alpha unplugged and an impostor formatted with its UUID', () => {
    before(() => sh('losetup', ['-d', real.device]));
    after(() => {
      real.device = sh('losetup', ['--find', '--show', real.image]);
    });

    it('a blank ext4 (no marker) is refused at mount, says how to enrol it, and gets not a byte', () =>
      refusedWithNothingWritten(
        () => {},
        /FAILED at mount: not enrolled: there is no marker .*; nothing was written\. If it should be "alpha": offsite enrol alpha/,
      ));

    it("a copy of alpha's marker with another token is refused as the wrong drive", () =>
      refusedWithNothingWritten(
        (root) =>
          writeFileSync(
            join(root, MARKER_FILE),
            JSON.stringify({ ...genuine, token: randomBytes(32).toString('hex') }),
          ),
        /FAILED at mount: wrong drive: its marker names "alpha" but its enrolment token is not the one this NAS holds/,
      ));

    it("a marker that is a symbolic link (to alpha's genuine marker) is refused, not followed", () => {
      const lure = join(dir, 'genuine-marker.json');
      writeFileSync(lure, JSON.stringify(genuine));
      return refusedWithNothingWritten(
        (root) => symlinkSync(lure, join(root, MARKER_FILE)),
        /FAILED at mount: wrong drive: the marker .* is a symbolic link \(not followed\); nothing was written/,
      );
    });

    it('a marker from before enrolment tokens is refused until enrolled again', () =>
      refusedWithNothingWritten(
        (root) => writeFileSync(join(root, MARKER_FILE), JSON.stringify({ drive: 'alpha' })),
        /not enrolled: its marker names "alpha" but carries no enrolment token .*Re-enrol it once: offsite enrol alpha$/m,
      ));
  });

  it('alpha itself is still accepted after the impostors', async () => {
    const ran = await offsite(['run', 'alpha', '--config', config]);
    assert.equal(ran.exitCode, 0, ran.stdout + ran.stderr);
  });
});

describe('enrolling a directory drive', () => {
  let dir: string;
  let drive: string;
  let config: string;
  let state: string;
  const marker = () => join(drive, MARKER_FILE);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'offsite-enrol-dir-'));
    drive = join(dir, 'alpha');
    state = join(dir, 'state');
    mkdirSync(drive);
    awkwardTree(join(dir, 'source'));
    config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      stringify({
        state_dir: state,
        source: { path: join(dir, 'source') },
        drives: [{ name: 'alpha', directory: drive }],
      }),
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a marker naming another drive: run refused at identify, enrol refused without --force, both write nothing', async () => {
    const foreign = JSON.stringify({ drive: 'bravo', token: randomBytes(32).toString('hex') });
    writeFileSync(marker(), foreign);
    const ran = await offsite(['run', 'alpha', '--config', config]);
    assert.equal(ran.exitCode, 1);
    assert.match(ran.stderr, /FAILED at identify: wrong drive: its marker names drive "bravo", not "alpha"/);
    const enrol = await offsite(['enrol', 'alpha', '--config', config]);
    assert.equal(enrol.exitCode, 1);
    assert.match(enrol.stderr, /refusing: wrong drive: .*offsite enrol alpha --force/);
    assert.equal(readFileSync(marker(), 'utf8'), foreign);
    assert.equal(existsSync(tokenFile(state, 'alpha')), false);

    const forced = await offsite(['enrol', 'alpha', '--force', '--config', config]);
    assert.equal(forced.exitCode, 0, forced.stderr);
    assert.equal(JSON.parse(readFileSync(marker(), 'utf8')).token, readToken(state, 'alpha'));
    const now = await offsite(['run', 'alpha', '--config', config]);
    assert.equal(now.exitCode, 0, now.stdout + now.stderr);
  });

  it('a lost state_dir token: refused, and enrolled again only with --force', async () => {
    rmSync(tokenFile(state, 'alpha'));
    const ran = await offsite(['run', 'alpha', '--config', config]);
    assert.equal(ran.exitCode, 1);
    assert.match(
      ran.stderr,
      /not enrolled: this NAS holds no enrolment token for "alpha" .*offsite enrol alpha --force/,
    );
    assert.equal((await offsite(['enrol', 'alpha', '--config', config])).exitCode, 1);
    assert.equal((await offsite(['enrol', 'alpha', '--force', '--config', config])).exitCode, 0);
    assert.equal((await offsite(['run', 'alpha', '--config', config])).exitCode, 0);
  });

  it('enrol --force over a marker planted as a symbolic link replaces the link and leaves its target alone', async () => {
    const target = join(dir, 'not-the-drive.json');
    writeFileSync(target, 'precious\n');
    rmSync(marker());
    symlinkSync(target, marker());
    assert.equal((await offsite(['enrol', 'alpha', '--config', config])).exitCode, 1);
    assert.equal(readlinkSync(marker()), target, 'refused: the link is still there');
    const forced = await offsite(['enrol', 'alpha', '--force', '--config', config]);
    assert.equal(forced.exitCode, 0, forced.stderr);
    assert.equal(readFileSync(target, 'utf8'), 'precious\n');
    assert.ok(lstatSync(marker()).isFile());
    assert.equal(JSON.parse(readFileSync(marker(), 'utf8')).token, readToken(state, 'alpha'));
  });

  it("refuses while a run holds the drive's lock, and writes nothing", async () => {
    const before = readFileSync(marker(), 'utf8');
    const run = await acquireLock(driveLockFile(state, 'alpha'), { label: 'offsite run alpha' });
    try {
      const r = await offsite(['enrol', 'alpha', '--force', '--config', config]);
      assert.equal(r.exitCode, 1);
      assert.match(
        r.stderr,
        new RegExp(
          `refusing: drive "alpha" is busy \\(pid ${process.pid} \\(offsite run alpha\\) since .*\\): enrol it after the run`,
        ),
      );
    } finally {
      run.release();
    }
    assert.equal(readFileSync(marker(), 'utf8'), before);
  });

  it('--help teaches the command', async () => {
    const r = await offsite(['enrol', '--help']);
    assert.equal(r.exitCode, 0);
    assert.match(r.stdout, /offsite enrol <drive> \[--force\]/);
    assert.match(r.stdout, /no drive is ever enrolled by a run/);
  });
});
