/**
 * Verify reads back what the run wrote, from the drive: a bad block under a
 * file whose good bytes are still in the page cache fails the run, and only
 * the files rsync wrote are read (an unchanged file costs nothing).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readBack } from '../../../bridge/rsync/read-back.js';
import { writtenFile } from '../../../bridge/rsync/run-rsync.js';
import { layout } from '../../../bridge/rsync/snapshots.js';
import { runSteps } from '../../../bridge/run/runner.js';
import type { Step } from '../../../bridge/steps/step.js';
import { sync } from '../../../bridge/steps/sync.js';
import { verify } from '../../../bridge/steps/verify.js';
import { makeExt4 } from '../../helpers/loop.js';
import { testRun } from '../../helpers/run-context.js';
import { awkwardTree, manyFiles, tempDir } from '../../helpers/trees.js';

const cleanup: (() => void)[] = [];
after(() => {
  for (const c of cleanup.reverse()) c();
});

function setup() {
  const dir = tempDir('offsite-read-back-');
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'src');
  awkwardTree(src);
  const target = join(dir, 'drive');
  mkdirSync(target);
  const raw = {
    state_dir: join(dir, 'state'),
    source: { path: src },
    drives: [{ name: 'alpha', directory: target }],
    verify: { scrub: 0 },
  };
  return { dir, src, target, raw };
}

describe('verify reads back what the run wrote', () => {
  it('a bad block under a file whose good bytes are still in the page cache fails verify, and it is not switched in', async () => {
    const { dir, src, raw } = setup();
    const body = randomBytes(256 * 1024);
    writeFileSync(join(src, 'segment'), body);
    const img = makeExt4(32);
    cleanup.push(() => img.detach());
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    execFileSync('mount', [img.device, mnt]);
    cleanup.push(() => execFileSync('umount', ['-l', mnt]));
    const target = join(mnt, 'copies');
    mkdirSync(target);
    const drive = { ...raw, drives: [{ name: 'alpha', directory: target }] };

    // after rsync wrote it: flush, then change the bytes on the "disk" (the image file behind the loop
    // device) without going through the mounted filesystem, whose page cache keeps the good bytes
    const badBlock: Step = {
      name: 'bad-block',
      title: 'a block of the new copy goes bad on the disk',
      async run() {
        const copied = join(layout(target).staging, 'segment');
        execFileSync('sync', ['-f', copied]);
        const image = readFileSync(img.image);
        const at = image.indexOf(body.subarray(0, 4096));
        assert.ok(at > 0, 'the file is on the image');
        const fd = openSync(img.image, 'r+');
        writeSync(fd, Buffer.from(body.subarray(8192, 8192 + 512).map((b) => b ^ 0xff)), 0, 512, at + 8192);
        closeSync(fd);
        assert.deepEqual(readFileSync(copied), body, 'the page cache still holds the good bytes');
      },
    };
    const t = testRun(drive);
    const outcome = await runSteps([sync, badBlock, verify], t.ctx, t.bus);
    assert.equal(outcome.result, 'failed');
    assert.equal(outcome.step, 'verify');
    assert.match(
      outcome.message,
      /^read back from the drive, 1 file this run wrote did not match the source: segment \(differs from the source from byte 8192\); the next copy compares their contents$/,
    );
    assert.equal(readFileSync(layout(target).compareContents, 'utf8'), 'segment\n');
  });

  it('among 2,000 written files, a small, a big and an awkwardly named one changed on the drive are each named', async () => {
    const { src, target, raw } = setup();
    manyFiles(join(src, 'many'), 2_000);
    const big = randomBytes(600 * 1024);
    writeFileSync(join(src, 'big.seg'), big);
    writeFileSync(join(src, 'new\nline ✓'), 'awkward\n');
    // after rsync wrote them: one byte of each changed in the new copy, its times put back (to the
    // nanosecond, from the source) so the walk's size/time manifest still matches: only reading shows it
    const corrupt: Step = {
      name: 'corrupt',
      title: 'three written files change on the drive',
      async run() {
        for (const [file, at] of [
          ['many/d7/f742', 10],
          ['big.seg', 400_000],
          ['new\nline ✓', 3],
        ] as const) {
          const copied = join(layout(target).staging, file);
          const fd = openSync(copied, 'r+');
          const b = Buffer.alloc(1);
          readSync(fd, b, 0, 1, at);
          writeSync(fd, Buffer.from([b[0]! ^ 0x20]), 0, 1, at);
          closeSync(fd);
          execFileSync('touch', ['-h', '-r', join(src, file), copied]);
        }
      },
    };
    const t = testRun(raw);
    const outcome = await runSteps([sync, corrupt, verify], t.ctx, t.bus);
    assert.equal(outcome.result, 'failed');
    assert.equal(outcome.step, 'verify');
    assert.match(
      outcome.message,
      /^read back from the drive, 3 files this run wrote did not match the source: /,
    );
    for (const named of [
      'many/d7/f742 (differs from the source from byte 10)',
      'big.seg (differs from the source from byte 400000)',
      // named readably: the newline as rsync writes it
      'new\\#012line ✓ (differs from the source from byte 3)',
    ])
      assert.ok(outcome.message.includes(named), `${named} in: ${outcome.message}`);
    const listed = readFileSync(layout(target).compareContents, 'utf8').split('\n');
    for (const file of ['many/d7/f742', 'big.seg'])
      assert.ok(listed.includes(file), `${file} is compared next time`);
  });

  it('reads back only the files rsync wrote: one changed file of eight on the second run', async () => {
    const { src, raw } = setup();
    const first = testRun(raw);
    assert.equal((await runSteps([sync, verify], first.ctx, first.bus)).result, 'success');
    assert.match(
      first.log.tail().join('\n'),
      /read back 7 written files \(70066 bytes\) and a scrub slice of 0 bytes/,
    );
    writeFileSync(join(src, 'data', 'a.txt'), 'changed\n');
    const second = testRun(raw);
    assert.equal((await runSteps([sync, verify], second.ctx, second.bus)).result, 'success');
    assert.match(
      second.log.tail().join('\n'),
      /read back 1 written file \(8 bytes\) and a scrub slice of 0 bytes/,
    );
  });

  it('a range starting inside a file is compared from there (widened to the block), bytes counted', async () => {
    const { dir } = setup();
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    mkdirSync(a);
    mkdirSync(b);
    const body = randomBytes(3 * 1024 * 1024 + 123);
    writeFileSync(join(a, 'f'), body);
    body[2_000_000] = body[2_000_000]! ^ 1;
    writeFileSync(join(b, 'f'), body);
    // read by a small-file reader (no size given) and by the big-file reader
    for (const size of [undefined, body.length]) {
      const whole = await readBack(a, b, [{ file: 'f', start: 0, size }]);
      assert.deepEqual(whole.problems, [{ file: 'f', why: 'differs from the source from byte 2000000' }]);
    }
    const tail = await readBack(a, b, [{ file: 'f', start: 2_500_000 }]);
    assert.deepEqual(tail.problems, []);
    assert.equal(tail.bytes, body.length - (2_500_000 - (2_500_000 % 4096)));
    const gone = await readBack(join(dir, 'nowhere'), b, [{ file: 'f', start: 0 }]);
    assert.deepEqual(gone.sourceChanged, ['f']);
  });

  it('takes a list that makes each range when asked (no array of them all), problems in its order', async () => {
    const { dir } = setup();
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    manyFiles(a, 1_000);
    manyFiles(b, 1_000);
    writeFileSync(join(a, 'big'), randomBytes(300 * 1024));
    writeFileSync(join(b, 'big'), Buffer.alloc(300 * 1024));
    for (const i of [901, 17])
      writeFileSync(join(b, `d${Math.floor(i / 100)}`, `f${i}`), Buffer.alloc(64, 2));
    let made = 0;
    const list = {
      length: 1_001,
      at(k: number) {
        made++;
        if (k === 500) return { file: 'big', start: 0, size: 300 * 1024 };
        const i = k < 500 ? k : k - 1;
        return { file: `d${Math.floor(i / 100)}/f${i}`, start: 0, size: 64 };
      },
    };
    const r = await readBack(a, b, list);
    assert.equal(r.files, 1_001);
    assert.deepEqual(
      r.problems.map((p) => p.file),
      ['d0/f17', 'big', 'd9/f901'],
    );
    // once to sort it to a reader, once to read it, once more for each problem's name
    assert.equal(made, 2 * 1_001 + 3);
  });

  it("rsync's itemized lines: data written (>f, cf) counts; links, attributes and directories do not", () => {
    assert.equal(writtenFile('>f+++++++++ data/new'), 'data/new');
    assert.equal(writtenFile('>f.st...... a b'), 'a b');
    assert.equal(writtenFile('cf...p..... d/b'), 'd/b');
    assert.equal(writtenFile('>f+++++++++ new\\#012line'), 'new\nline');
    assert.equal(writtenFile('hf+++++++++ hl'), null);
    assert.equal(writtenFile('.f...p..... x'), null);
    assert.equal(writtenFile('cd+++++++++ dir/'), null);
    assert.equal(writtenFile('cL+++++++++ sym'), null);
    assert.equal(writtenFile('*deleting   gone'), null);
    assert.equal(writtenFile('     12,345  45%  1.00MB/s    0:00:01 (xfr#1, to-chk=1/3)'), null);
  });
});
