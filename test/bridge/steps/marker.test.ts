/** The marker is the drive's, so whatever stands at its name is untrusted input: never followed, never hung on, parsed by a schema. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  BadMarker,
  checkEnrolled,
  MARKER_FILE,
  newToken,
  readMarker,
  stageToken,
} from '../../../bridge/steps/marker.js';
import { StepError } from '../../../bridge/steps/step.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A drive root whose marker is what `plant` puts there. */
function root(plant?: (file: string) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'offsite-marker-'));
  dirs.push(dir);
  plant?.(join(dir, MARKER_FILE));
  return dir;
}

describe('reading a marker', () => {
  it('none there is null, not an error', () => {
    assert.equal(readMarker(root()), null);
  });

  it('keeps the fields it knows and drops the rest', () => {
    const token = newToken();
    const r = root((f) =>
      writeFileSync(f, JSON.stringify({ drive: 'alpha', token, extra: 'x'.repeat(100) })),
    );
    assert.deepEqual(readMarker(r), { drive: 'alpha', token });
  });

  const refused: Array<[string, (file: string) => void, RegExp]> = [
    ['a fifo (the read would hang)', (f) => execFileSync('mkfifo', [f]), /is not a regular file/],
    ['a directory', (f) => mkdirSync(f), /is not a regular file/],
    ['a symbolic link', (f) => symlinkSync('/etc/hostname', f), /is a symbolic link \(not followed\)/],
    [
      'over 4 KiB',
      (f) => writeFileSync(f, `{"drive":"alpha","pad":"${'x'.repeat(5000)}"}`),
      /is \d+ bytes \(at most 4096\)/,
    ],
    ['not JSON', (f) => writeFileSync(f, '{"drive": "alpha"'), /is not JSON/],
    ['JSON that is not an object', (f) => writeFileSync(f, '"alpha"'), /is not one: \(top\)/],
    [
      'a drive name with a path in it',
      (f) => writeFileSync(f, '{"drive":"../etc"}'),
      /is not one: drive: a drive name/,
    ],
    [
      'a token that is not 64 hex digits',
      (f) => writeFileSync(f, '{"drive":"alpha","token":"guess"}'),
      /is not one: token: 64 hex digits/,
    ],
  ];
  for (const [what, plant, reason] of refused)
    it(`refuses ${what}`, () =>
      assert.throws(
        () => readMarker(root(plant)),
        (e) => e instanceof BadMarker && reason.test(e.message),
      ));
});

describe('checking a drive against this NAS', () => {
  it('passes the enrolled drive, and refuses every other case with the command that enrols it', () => {
    const state = mkdtempSync(join(tmpdir(), 'offsite-state-'));
    dirs.push(state);
    const token = newToken();
    stageToken(state, 'alpha', token).commit();
    const marker = (m: object) => root((f) => writeFileSync(f, JSON.stringify(m)));
    checkEnrolled(marker({ drive: 'alpha', token }), state, 'alpha');
    const cases: Array<[string, string, RegExp]> = [
      ['no marker', root(), /^not enrolled: .*offsite enrol alpha$/],
      [
        'another drive',
        marker({ drive: 'bravo', token }),
        /^wrong drive: .*"bravo".*offsite enrol alpha --force$/,
      ],
      [
        'another token',
        marker({ drive: 'alpha', token: newToken() }),
        /^wrong drive: .*enrolment token .*offsite enrol alpha --force$/,
      ],
      ['no token', marker({ drive: 'alpha' }), /^not enrolled: .*no enrolment token.*offsite enrol alpha$/],
    ];
    for (const [what, r, reason] of cases)
      assert.throws(
        () => checkEnrolled(r, state, 'alpha'),
        (e) => e instanceof StepError && reason.test(e.message),
        what,
      );
    assert.throws(
      () => checkEnrolled(marker({ drive: 'bravo', token }), state, 'bravo'),
      /not enrolled: this NAS holds no enrolment token for "bravo"/,
    );
  });
});
