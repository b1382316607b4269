/** The words the user reads (bridge/words.ts): sizes said the same way on the terminal and in a mail. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatBytes } from '../../bridge/words.js';

describe('formatBytes', () => {
  it('says a size in binary units with one decimal, and a small one in whole bytes', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1023), '1023 B');
    assert.equal(formatBytes(1024), '1.0 KiB');
    assert.equal(formatBytes(3 * 1024 ** 3), '3.0 GiB');
    assert.equal(formatBytes(5 * 1024 ** 5), '5120.0 TiB');
  });

  it('a mail says "bytes" where the terminal says "B"', () => {
    assert.equal(formatBytes(512, 'bytes'), '512 bytes');
    assert.equal(formatBytes(1536, 'bytes'), '1.5 KiB');
  });
});
