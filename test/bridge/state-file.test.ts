/**
 * writeJsonAtomic also writes the marker at the root of a drive, whose
 * contents are untrusted: a name planted at its temporary file is replaced,
 * never written through.
 */
import assert from 'node:assert/strict';
import { lstatSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { writeJsonAtomic } from '../../bridge/state-file.js';
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
