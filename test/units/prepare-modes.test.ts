import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createKeyFile } from '../../units/prepare/luks.js';

const mode = (p: string) => statSync(p).mode & 0o777;

describe('enrolment keeps what the LED agent reads readable', () => {
  it('makes the key directory private but not the directories above it', () => {
    const root = mkdtempSync(join(tmpdir(), 'offsite-modes-'));
    const key = join(root, 'etc', 'offsite', 'keys', 'alpha.key');
    createKeyFile(key);
    assert.equal(mode(join(root, 'etc', 'offsite', 'keys')), 0o700);
    assert.equal(mode(join(root, 'etc', 'offsite')), 0o755, 'config.yaml must stay readable for offsite-led');
    assert.equal(mode(key), 0o400);
    assert.equal(statSync(key).size, 4096);
  });
});
