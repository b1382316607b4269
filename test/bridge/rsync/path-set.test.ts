/**
 * The set of what a copy wrote, held compactly for verify's read-back: it
 * answers like a Set of strings (awkward names included), and what it holds
 * is bounded per name by the name's bytes plus a few dozen, not by the
 * half KiB per name the strings, Set, Map and range objects cost before.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bytePath } from '../../../bridge/rsync/byte-path.js';
import { PathSet } from '../../../bridge/rsync/path-set.js';

// names are byte strings (bridge/rsync/byte-path.ts), as rsync's output and verify's walk give them
const AWKWARD = [
  'a',
  'dir/b c',
  'new\nline',
  'ünïcödé/名前',
  'emoji 🦀',
  '-leading-dash',
  ' ',
  'x'.repeat(5000),
]
  .map(bytePath)
  // the byte 0xe9 alone: latin-1, not UTF-8
  .concat('caf\xe9');

describe('PathSet', () => {
  it('answers like a Set: each name once, with its index, its size and its name back', () => {
    const s = new PathSet(AWKWARD);
    assert.equal(s.count, AWKWARD.length);
    for (const [i, p] of AWKWARD.entries()) {
      assert.equal(s.index(p), i);
      assert.equal(s.path(i), p);
      assert.equal(s.size(i), undefined);
    }
    assert.equal(s.add('dir/b c'), 1, 'added again: the same index');
    assert.equal(s.count, AWKWARD.length);
    for (const absent of ['', 'dir/b', 'dir/b c ', 'A', 'new', 'x'.repeat(4999)])
      assert.equal(s.has(absent), false);
    s.setSize(2, 0);
    s.setSize(3, 123_456_789_012);
    assert.equal(s.size(2), 0);
    assert.equal(s.size(3), 123_456_789_012);
  });

  it('keeps answering as it grows (the buffers and the table grow many times)', () => {
    const s = new PathSet();
    const n = 50_000;
    for (let i = 0; i < n; i++) assert.equal(s.add(`d${i % 97}/f${i}`), i);
    assert.equal(s.count, n);
    for (let i = 0; i < n; i += 7) {
      assert.equal(s.index(`d${i % 97}/f${i}`), i);
      assert.equal(s.path(i), `d${i % 97}/f${i}`);
    }
    assert.equal(s.has(`d0/f${n}`), false);
  });

  it('holds at most twice the names bytes plus 48 bytes a name (and its fixed buffers)', () => {
    const s = new PathSet();
    let nameBytes = 0;
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      const p = `d${Math.floor(i / 100)}/f${i}`;
      nameBytes += Buffer.byteLength(p);
      s.add(p);
    }
    const fixed = 16 * 1024;
    assert.ok(
      s.heldBytes() <= 2 * nameBytes + 48 * n + fixed,
      `${s.heldBytes()} bytes held for ${n} names of ${nameBytes} bytes`,
    );
    // about 50 bytes a name here; the strings, Set, Map and ranges of before cost ~0.5 KiB a name in all
    assert.ok(s.heldBytes() / n < 64, `${(s.heldBytes() / n).toFixed(1)} bytes a name`);
  });
});
