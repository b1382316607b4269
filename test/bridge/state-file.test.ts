/**
 * writeJsonAtomic also writes the marker at the root of a drive, whose
 * contents are untrusted: a name planted at its temporary file is replaced,
 * never written through. createNewFile (the marker, the enrolment token, the
 * files offsite leaves on a drive) only ever makes a new plain file.
 */
import assert from 'node:assert/strict';
import { lstatSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createNewFile, writeJsonAtomic } from '../../bridge/state-file.js';
import { fullDisk } from '../helpers/full-disk.js';
import { tempDir } from '../helpers/trees.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('writeJsonAtomic', () => {
  it('a symlink planted at the temporary name is not written through', () => {
    const dir = tempDir('offsite-state-file-');
    dirs.push(dir);
    const drive = join(dir, 'drive');
    const victim = join(dir, 'nas-file');
    writeFileSync(victim, 'the only copy\n');
    const file = join(drive, 'marker.json');
    writeJsonAtomic(join(drive, 'first.json'), {}); // makes the directory
    symlinkSync(victim, `${file}.${process.pid}.tmp`);

    writeJsonAtomic(file, { drive: 'alpha' });
    assert.equal(readFileSync(victim, 'utf8'), 'the only copy\n');
    assert.ok(lstatSync(file).isFile());
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { drive: 'alpha' });
    assert.deepEqual(readdirSync(drive).sort(), ['first.json', 'marker.json']);
  });
});

describe('createNewFile', () => {
  it('refuses a name that is already taken (a planted link is not written through)', () => {
    const dir = tempDir('offsite-new-file-');
    dirs.push(dir);
    const victim = join(dir, 'nas-file');
    writeFileSync(victim, 'the only copy\n');
    symlinkSync(victim, join(dir, 'planted'));
    assert.throws(() => createNewFile(join(dir, 'planted'), 'x', 0o600), { code: 'EEXIST' });
    assert.equal(readFileSync(victim, 'utf8'), 'the only copy\n');
    createNewFile(join(dir, 'new'), 'hello\n', 0o600);
    assert.equal(readFileSync(join(dir, 'new'), 'utf8'), 'hello\n');
    assert.equal(lstatSync(join(dir, 'new')).mode & 0o777, 0o600);
  });

  it('a write that fails (a full disk) leaves no half-written file behind', () => {
    const disk = fullDisk();
    try {
      disk.fill();
      assert.throws(() => createNewFile(join(disk.dir, 'token.tmp'), 'x'.repeat(8192), 0o600), {
        code: 'ENOSPC',
      });
      assert.deepEqual(readdirSync(disk.dir), ['.filler']);
    } finally {
      disk.unmount();
    }
  });
});
