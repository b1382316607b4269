/**
 * Names a filesystem allows that are not UTF-8 text (a share written by an
 * old client, an archive from another locale) or that hold a newline or a
 * control character: copied, checked, read back and named readably, like
 * any other. Node reads a name as UTF-8 unless told otherwise; before this,
 * one such name made every run fail at verify, and the staging copy it left
 * made every later run fail at sync.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bytePath, shown, under } from '../../../bridge/rsync/byte-path.js';
import { excludeMatcher } from '../../../bridge/rsync/exclude.js';
import { problemFiles, unescapeRsync, warningFileList } from '../../../bridge/rsync/file-list.js';
import { layout } from '../../../bridge/rsync/snapshots.js';
import { runSteps } from '../../../bridge/run/runner.js';
import type { Step } from '../../../bridge/steps/step.js';
import { sync } from '../../../bridge/steps/sync.js';
import { verify } from '../../../bridge/steps/verify.js';
import { testRun } from '../../helpers/run-context.js';
import { diffTrees, tempDir } from '../../helpers/trees.js';

const cleanup: (() => void)[] = [];
after(() => {
  for (const c of cleanup.reverse()) c();
});

/** latin-1 "café", a directory named by the byte 0xff, a control character, a newline */
const CAFE = 'caf\xe9.txt';
const DIR = 'd\xff';
const CONTROL = `${DIR}/x\x01y`;
const NEWLINE = `${DIR}/a\nb.txt`;

/** `rel` (a byte string) below `root`, as the bytes a system call takes */
const at = under;

function setup(verifyConfig: Record<string, unknown> = {}) {
  const dir = tempDir();
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'src');
  const target = join(dir, 'drive');
  mkdirSync(src);
  mkdirSync(target);
  writeFileSync(join(src, 'plain.txt'), 'plain\n');
  writeFileSync(at(src, CAFE), 'latin-1 name\n');
  mkdirSync(at(src, DIR));
  writeFileSync(at(src, CONTROL), 'a control character in the name\n');
  writeFileSync(at(src, NEWLINE), 'a newline in the name\n');
  writeFileSync(at(src, `${DIR}/big\xe9`), Buffer.alloc(300_000, 3));
  symlinkSync(Buffer.from(CAFE, 'latin1'), at(src, 'link\xfe'));
  const raw = {
    state_dir: join(dir, 'state'),
    source: { path: src },
    drives: [{ name: 'alpha', directory: target }],
    verify: { borg_check: 'never', ...verifyConfig },
  };
  return { src, target, raw };
}

async function copy(raw: Record<string, unknown>) {
  const t = testRun(raw);
  const outcome = await runSteps([sync, verify], t.ctx, t.bus);
  return { ...t, outcome };
}

describe('names that are not UTF-8 text', () => {
  it('are copied, compared and read back like any other', async () => {
    const { src, target, raw } = setup();
    const { outcome, log } = await copy(raw);
    assert.equal(outcome.result, 'success', outcome.message);
    assert.match(log.tail().join('\n'), /7 entries match \(5 files,.*read back 5 written files/);
    const current = join(target, 'current');
    assert.equal(diffTrees(src, current), '');
    assert.equal(readFileSync(at(current, CAFE), 'utf8'), 'latin-1 name\n');
    assert.equal(readFileSync(at(current, NEWLINE), 'utf8'), 'a newline in the name\n');
    assert.equal(readlinkSync(at(current, 'link\xfe'), { encoding: 'latin1' }), CAFE);

    const again = await copy(raw);
    assert.equal(again.outcome.result, 'success', again.outcome.message);
    assert.match(again.log.tail().join('\n'), /current is unchanged/);
  });

  it('a byte flipped in the copy of one is found, named readably, and the next run copies it again', async () => {
    const { src, target, raw } = setup({ scrub: '100%' });
    assert.equal((await copy(raw)).outcome.result, 'success');
    const rotten = at(join(target, 'current'), `${DIR}/big\xe9`);
    const body = readFileSync(rotten);
    body[1000] = body[1000]! ^ 0xff;
    writeFileSync(rotten, body);
    // the time back to the nanosecond (rsync's quick check must still call it unchanged); the
    // name reaches touch(1) through a glob, as an argument cannot carry bytes that are not UTF-8
    execFileSync('sh', ['-c', 'touch -m -r "$0"/d?/big? "$1"/d?/big?', src, join(target, 'current')], {
      env: { ...process.env, LC_ALL: 'C' },
    });
    assert.equal(
      statSync(rotten, { bigint: true }).mtimeNs,
      statSync(at(src, `${DIR}/big\xe9`), { bigint: true }).mtimeNs,
    );

    const failed = await copy(raw);
    assert.equal(failed.outcome.result, 'failed');
    assert.equal(failed.outcome.step, 'verify');
    assert.match(
      failed.outcome.message,
      /the rolling scrub found 1 file on the drive that did not match the source: d\\#377\/big\\#351 \(differs from the source from byte 1000\)/,
    );
    const mark = readFileSync(join(target, 'snapshots', '.compare-contents'), 'utf8');
    assert.equal(mark, 'd\\#377/big\\#351\n', 'the mark names it readably, on one line');

    const next = await copy(raw);
    assert.equal(next.outcome.result, 'success', next.outcome.message);
    assert.equal(diffTrees(src, join(target, 'current')), '');
  });

  it('a written one that reads back wrong is named, dropped from the new copy, and never switched in', async () => {
    const { src, target, raw } = setup();
    const staging = layout(target).staging;
    // after rsync wrote it: one byte changed on the drive, its time put back to the nanosecond
    const corrupt: Step = {
      name: 'corrupt',
      title: 'a written file changes on the drive',
      async run() {
        const copied = at(staging, NEWLINE);
        const body = readFileSync(copied);
        body[2] = body[2]! ^ 0x20;
        writeFileSync(copied, body);
        execFileSync('sh', ['-c', 'touch -m -r "$0"/d?/a?b.txt "$1"/d?/a?b.txt', src, staging], {
          env: { ...process.env, LC_ALL: 'C' },
        });
      },
    };
    const t = testRun(raw);
    const outcome = await runSteps([sync, corrupt, verify], t.ctx, t.bus);
    assert.equal(outcome.result, 'failed');
    assert.equal(outcome.step, 'verify');
    assert.match(
      outcome.message,
      /1 file this run wrote did not match the source: d\\#377\/a\\#012b\.txt \(differs from the source from byte 2\)/,
    );
    assert.equal(existsSync(at(staging, NEWLINE)), false, 'dropped from the staging copy');
    assert.equal(existsSync(at(staging, CAFE)), true, 'the rest of the staging copy is kept');
    assert.equal(existsSync(join(target, 'current')), false, 'nothing switched in');

    const next = await copy(raw);
    assert.equal(next.outcome.result, 'success', next.outcome.message);
    assert.equal(diffTrees(src, join(target, 'current')), '');
  });

  it('a staging copy left holding them is resumed: hard links to the previous copy are dropped first', async () => {
    const { src, target, raw } = setup();
    assert.equal((await copy(raw)).outcome.result, 'success');
    const current = join(target, 'current');
    const before = readFileSync(at(current, CAFE));
    // what an interrupted run leaves: a staging copy whose files are links into the previous copy
    const staging = join(target, 'snapshots', '.partial');
    mkdirSync(at(staging, DIR), { recursive: true });
    linkSync(at(current, CAFE), at(staging, CAFE));
    linkSync(at(current, `${DIR}/big\xe9`), at(staging, `${DIR}/big\xe9`));
    writeFileSync(at(src, CAFE), 'changed since\n');

    const next = await copy(raw);
    assert.equal(next.outcome.result, 'success', next.outcome.message);
    assert.equal(diffTrees(src, join(target, 'current')), '');
    assert.equal(readFileSync(at(join(target, 'current'), CAFE), 'utf8'), 'changed since\n');
    assert.deepEqual(before, Buffer.from('latin-1 name\n'), 'the previous copy was not written through');
    assert.equal(lstatSync(join(target, 'snapshots')).isDirectory(), true);
  });

  it('one planted in snapshots/ is removed like any other leftover, what it links to untouched', async () => {
    const { src, target, raw } = setup();
    assert.equal((await copy(raw)).outcome.result, 'success');
    const planted = at(join(target, 'snapshots'), 'junk\xff');
    mkdirSync(planted);
    symlinkSync(src, Buffer.concat([Buffer.from(planted), Buffer.from('/to-the-source')]));
    writeFileSync(at(src, CAFE), 'changed\n');

    const next = await copy(raw);
    assert.equal(next.outcome.result, 'success', next.outcome.message);
    assert.equal(existsSync(planted), false, 'removed');
    assert.match(next.log.tail().join('\n'), /removed .*snapshots\/junk\\#377 \(left by an earlier run\)/);
    assert.equal(readFileSync(at(src, CAFE), 'utf8'), 'changed\n', 'the source is untouched');
    assert.equal(diffTrees(src, join(target, 'current')), '');
  });
});

describe('byte strings', () => {
  it('are shown as UTF-8 where they are, \\#ooo where they are not or are control characters', () => {
    assert.equal(shown(bytePath('Grüße – 日本語 ✓.txt')), 'Grüße – 日本語 ✓.txt');
    assert.equal(shown(CAFE), 'caf\\#351.txt');
    assert.equal(shown(NEWLINE), 'd\\#377/a\\#012b.txt');
    assert.equal(shown('\xe6\x97'), '\\#346\\#227', 'a sequence cut short');
    assert.equal(shown(''), '');
  });

  it("rsync's escapes become the name's bytes; a file it could not copy is listed readably", () => {
    assert.equal(unescapeRsync('d\\#377/a\\#012b.txt'), NEWLINE);
    // rsync -8 writes the name's bytes raw on stderr; read as bytes, each is one character
    const stderr = `rsync: [sender] send_files failed to open "/srv/src/${CAFE}": Permission denied (13)\nrsync error: some files/attrs were not transferred (code 23)`;
    const problems = problemFiles(stderr, ['/srv/src']);
    assert.deepEqual(problems, [{ file: CAFE, reason: 'Permission denied (13)' }]);
    assert.deepEqual(warningFileList(problems), ['caf\\#351.txt (Permission denied (13))']);
  });

  it('exclude patterns match the bytes of a name, as rsync does', () => {
    const match = excludeMatcher(['caf*', '/Grüße/']);
    assert.equal(match(CAFE, false), true);
    assert.equal(match(bytePath('Grüße'), true), true);
    assert.equal(match(bytePath('Grüße'), false), false);
    assert.equal(match(`${DIR}/x`, false), false);
  });
});
