import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  byUuidDeviceUnit,
  cryptsetupUnit,
  systemdEscape as escapeName,
  escapePath,
  instance,
  mountUnit,
  systemdUnescape as unescapeName,
  unescapePath,
} from '../../bridge/systemd.js';

/**
 * The real systemd-escape, many arguments per call: it prints the results on
 * one line separated by spaces, so inputs whose result could hold a space or
 * a newline (unescaping) are checked one call each instead (realOne).
 */
function real(flags: string[], inputs: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < inputs.length; i += 500) {
    const batch = inputs.slice(i, i + 500);
    const text = execFileSync('systemd-escape', [...flags, '--', ...batch], { encoding: 'utf8' });
    out.push(...text.replace(/\n$/, '').split(' '));
  }
  return out;
}

/** Compare element by element and report only the first difference (the inputs can be long). */
function sameAll(inputs: string[], actual: (s: string) => string, expected: string[]): void {
  assert.equal(expected.length, inputs.length, 'systemd-escape printed one line per input');
  const i = inputs.findIndex((s, k) => actual(s) !== expected[k]);
  if (i >= 0)
    assert.fail(
      `input ${JSON.stringify(inputs[i])}: ours ${JSON.stringify(actual(inputs[i]!))}, systemd ${JSON.stringify(expected[i])}`,
    );
}

/** Whether systemd-escape accepts the input, and its single output when it does. */
function realOne(flags: string[], input: string): { ok: boolean; out: string } {
  const r = spawnSync('systemd-escape', [...flags, '--', input], { encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout.replace(/\n$/, '') };
}

// Text without NUL (argv cannot carry it), mixing ASCII punctuation, the
// characters systemd treats specially and multi-byte UTF-8.
const special = fc.constantFrom(
  '-',
  '/',
  '\\',
  '.',
  ' ',
  'x',
  '\\x2d',
  ':',
  '_',
  'é',
  '日本',
  '🙂',
  '\t',
  '%',
  '$',
  '"',
  "'",
);
const text = fc
  .array(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 6 }), special), { maxLength: 12 })
  .map((parts) => parts.join('').replace(/\0/g, ''));
const component = text
  .map((t) => t.replace(/\//g, ''))
  .filter((c) => c.length > 0 && c.length < 60 && c !== '..');
const absolutePath = fc
  .array(fc.oneof(component, fc.constantFrom('.', '', 'a')), { minLength: 0, maxLength: 6 })
  .chain((parts) => fc.boolean().map((trailing) => `/${parts.join('/')}${trailing ? '/' : ''}`))
  .filter((p) => Buffer.byteLength(p) < 1000);

const AWKWARD = [
  '',
  '.',
  '..',
  '.hidden',
  '-',
  '--',
  'a-b',
  '\\',
  '\\x2d',
  'a b',
  'é',
  '0b1c2d3e-0000-1111-2222-333344445555',
  '/dev/disk/by-uuid/0b1c2d3e-0000-1111-2222-333344445555',
  'offsite_alpha',
  '%i',
  '$HOME',
  'a:b_c.d',
  '🙂',
  '\n',
  'trailing/',
  '/leading',
];
const AWKWARD_PATHS = [
  '/',
  '//',
  '/.',
  '/./',
  '/a/./b',
  '//a//b//',
  '/.a',
  '/a/.b',
  '/mnt/offsite/alpha',
  '/mnt/my drive/é',
  '/a-b/c\\d',
  '/-',
  '/x/-/y',
];

describe('systemd escaping', () => {
  it('escapes strings like systemd-escape (awkward inputs)', () => {
    assert.deepEqual(AWKWARD.map(escapeName), real([], AWKWARD));
  });

  it('escapes thousands of random strings like systemd-escape', () => {
    const inputs = fc.sample(text, { numRuns: 4000, seed: 42 });
    const expected = real([], inputs);
    sameAll(inputs, escapeName, expected);
  });

  it('escapes paths like systemd-escape --path (awkward and random)', () => {
    const inputs = [...AWKWARD_PATHS, ...fc.sample(absolutePath, { numRuns: 3000, seed: 7 })];
    const expected = real(['--path'], inputs);
    sameAll(inputs, escapePath, expected);
  });

  it('refuses paths systemd refuses: relative, and ".." components', () => {
    for (const p of ['/a/../b', '/..', 'a/b', '']) assert.throws(() => escapePath(p), /absolute|normalized/);
    assert.equal(realOne(['--path'], '/a/../b').ok, false);
  });

  it('unescapes what it escaped, and agrees with systemd-escape --unescape', () => {
    const all = fc.sample(text, { numRuns: 2000, seed: 3 }).filter((s) => s !== '');
    const inputs = all.filter((s) => !/[ \n]/.test(s));
    for (const s of all.filter((x) => /[ \n]/.test(x)).slice(0, 200))
      assert.equal(unescapeName(escapeName(s)), realOne(['--unescape'], escapeName(s)).out);
    const escaped = inputs.map(escapeName);
    sameAll(escaped, unescapeName, real(['--unescape'], escaped));
    // "/" and "-" both escape to "-": the round trip is exact only without "/"
    const noSlash = inputs.filter((s) => !s.includes('/'));
    sameAll(noSlash, (s) => unescapeName(escapeName(s)), noSlash);
  });

  it('round-trips random absolute paths through --path, like systemd', () => {
    const paths = fc.sample(absolutePath, { numRuns: 2000, seed: 11 }).filter((p) => !/[ \n]/.test(p));
    const escaped = paths.map(escapePath);
    sameAll(escaped, unescapePath, real(['--unescape', '--path'], escaped));
    sameAll(escaped, (e) => escapePath(unescapePath(e)), escaped);
  });

  it('rejects malformed escapes exactly where systemd-escape does', () => {
    const bad = ['a\\y', 'a\\x2', 'a\\xZZ', '\\', 'x\\x'];
    for (const s of bad) {
      assert.equal(realOne(['--unescape'], s).ok, false, s);
      assert.throws(() => unescapeName(s));
    }
    for (const s of ['-a', 'a-', 'a--b', '\\x2e', '']) {
      assert.equal(realOne(['--unescape', '--path'], s).ok, false, s);
      assert.throws(() => unescapePath(s), s);
    }
    assert.equal(unescapePath('-'), '/');
    assert.equal(unescapeName('A\\x2DB'), realOne(['--unescape'], 'A\\x2DB').out);
  });

  it('builds the unit names offsite needs', () => {
    assert.equal(
      byUuidDeviceUnit('0b1c2d3e-0000-1111-2222-333344445555'),
      'dev-disk-by\\x2duuid-0b1c2d3e\\x2d0000\\x2d1111\\x2d2222\\x2d333344445555.device',
    );
    assert.equal(mountUnit('/mnt/offsite/alpha'), 'mnt-offsite-alpha.mount');
    assert.equal(
      instance('systemd-cryptsetup@.service', 'offsite-x'),
      'systemd-cryptsetup@offsite\\x2dx.service',
    );
    assert.equal(cryptsetupUnit('offsite-x'), 'systemd-cryptsetup@offsite\\x2dx.service');
    assert.equal(
      instance('offsite-backup@.service', 'a b'),
      realOne(['--template=offsite-backup@.service'], 'a b').out,
    );
  });
});
