import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { acquireLock } from '../../bridge/lockfile.js';
import { mountAt } from '../../bridge/mounts.js';
import { driveLockFile } from '../../bridge/run/run-drive.js';
import { fullDisk } from '../helpers/full-disk.js';
import { makeExt4 } from '../helpers/loop.js';
import { ALPHA_UUID, configFile, offsiteHere } from './cli.js';

describe('offsite cleanup (the ExecStopPost= safety net)', () => {
  it('unmounts a drive left mounted, lazily when it is busy, and is quiet the second time', async () => {
    const img = makeExt4(16);
    const mountPoint = mkdtempSync(join(tmpdir(), 'offsite-stale-'));
    try {
      const { file } = configFile(`source: {path: /srv/backup}
drives:
  - {name: plain, uuid: ${img.uuid}, mount_point: ${mountPoint}}
  - {name: alpha, luks_uuid: ${ALPHA_UUID}, key_file: /etc/offsite/keys/alpha.key, mount_point: /mnt/offsite/never}
`);
      execFileSync('mount', [img.device, mountPoint]);
      writeFileSync(join(mountPoint, 'open.txt'), 'x');
      // an open file keeps the filesystem busy, as a half-finished rsync would
      const fd = openSync(join(mountPoint, 'open.txt'), 'r');
      try {
        const r = await offsiteHere(['cleanup', 'plain', '--config', file]);
        assert.equal(r.exitCode, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`cleanup plain: unmounted ${mountPoint}`));
        assert.equal(mountAt(mountPoint), null);
      } finally {
        closeSync(fd);
      }
      const again = await offsiteHere(['cleanup', 'plain', '--config', file]);
      assert.equal(again.exitCode, 0);
      assert.equal(again.stdout, '');
      // a LUKS drive with nothing open: nothing to do, nothing said
      const luks = await offsiteHere(['cleanup', 'alpha', '--config', file]);
      assert.equal(luks.exitCode, 0, luks.stderr);
      assert.equal(`${luks.stdout}${luks.stderr}`, '');
    } finally {
      img.detach(); // unmounts it first
      rmSync(mountPoint, { recursive: true, force: true });
    }
  });

  it('leaves the drive alone while a live run holds its lock, and says so', async () => {
    const img = makeExt4(16);
    const mountPoint = mkdtempSync(join(tmpdir(), 'offsite-live-'));
    try {
      const { dir, file } = configFile(`source: {path: /srv/backup}
state_dir: ${join(mkdtempSync(join(tmpdir(), 'offsite-state-')), 'state')}
drives:
  - {name: plain, uuid: ${img.uuid}, mount_point: ${mountPoint}}
`);
      const stateDir = readFileSync(file, 'utf8').match(/state_dir: (.*)/)![1]!;
      execFileSync('mount', [img.device, mountPoint]);
      // the run: this test process, alive, holding the drive's lock as `offsite run plain` does
      const run = await acquireLock(driveLockFile(stateDir, 'plain'), { label: 'offsite run plain' });
      try {
        const r = await offsiteHere(['cleanup', 'plain', '--config', file]);
        assert.equal(r.exitCode, 0, r.stderr);
        assert.match(
          r.stdout,
          new RegExp(
            `cleanup plain: a run of drive "plain" is in progress \\(pid ${process.pid} \\(offsite run plain\\) since [^)]*\\): nothing done\\n`,
          ),
        );
        assert.notEqual(mountAt(mountPoint), null, 'still mounted under the live run');
      } finally {
        run.release();
      }
      // the run ended (or was killed with all it started): the lock is free, and cleanup does its job
      const after = await offsiteHere(['cleanup', 'plain', '--config', file]);
      assert.equal(after.exitCode, 0, after.stderr);
      assert.match(after.stdout, new RegExp(`cleanup plain: unmounted ${mountPoint}`));
      assert.equal(mountAt(mountPoint), null);
      assert.equal(existsSync(driveLockFile(stateDir, 'plain')), false, 'cleanup released its lock');
      rmSync(dir, { recursive: true, force: true });
      rmSync(join(stateDir, '..'), { recursive: true, force: true });
    } finally {
      img.detach();
      rmSync(mountPoint, { recursive: true, force: true });
    }
  });

  it("after a run killed with everything it started (the unit's ExecStopPost=): the stale lock does not stop it", async () => {
    const img = makeExt4(16);
    const mountPoint = mkdtempSync(join(tmpdir(), 'offsite-killed-'));
    const stateDir = mkdtempSync(join(tmpdir(), 'offsite-state-'));
    try {
      const { file } = configFile(`source: {path: /srv/backup}
state_dir: ${stateDir}
drives:
  - {name: plain, uuid: ${img.uuid}, mount_point: ${mountPoint}}
`);
      execFileSync('mount', [img.device, mountPoint]);
      const dead = Number(execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());
      mkdirSync(join(stateDir, 'locks'));
      writeFileSync(
        driveLockFile(stateDir, 'plain'),
        JSON.stringify({ pid: dead, start: '1', time: new Date().toISOString(), label: 'offsite run plain' }),
      );
      const r = await offsiteHere(['cleanup', 'plain', '--config', file]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`cleanup plain: unmounted ${mountPoint}`));
      assert.equal(mountAt(mountPoint), null);
    } finally {
      img.detach();
      rmSync(stateDir, { recursive: true, force: true });
      rmSync(mountPoint, { recursive: true, force: true });
    }
  });

  it('with no space left in state_dir for its lock, it says so and still cleans up when no run is alive', async () => {
    const img = makeExt4(16);
    const mountPoint = mkdtempSync(join(tmpdir(), 'offsite-full-mnt-'));
    const disk = fullDisk();
    try {
      const { file } = configFile(`source: {path: /srv/backup}
state_dir: ${disk.dir}
drives:
  - {name: plain, uuid: ${img.uuid}, mount_point: ${mountPoint}}
`);
      execFileSync('mount', [img.device, mountPoint]);
      mkdirSync(join(disk.dir, 'locks'));
      disk.fill();
      const r = await offsiteHere(['cleanup', 'plain', '--config', file]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `warn: cleanup plain: no space left on ${disk.dir}/locks: cannot write the lock drive-plain\\.lock; no run is alive: cleaning up anyway`,
        ),
      );
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.equal(mountAt(mountPoint), null);
    } finally {
      img.detach();
      disk.unmount();
      rmSync(mountPoint, { recursive: true, force: true });
    }
  });
});
