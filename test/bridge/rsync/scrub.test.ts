/**
 * The rolling scrub: each run reads a bounded slice of the copy it did not
 * write, from where the last run on that drive stopped, so that every few
 * rotations the whole drive has been read; the ledger says how far it is.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ASSUMED_RATE, budgetBytes } from '../../../bridge/config/budget.js';
import { parseConfig } from '../../../bridge/config.js';
import { Ledger } from '../../../bridge/ledger.js';
import {
  RATE_MIN_BYTES,
  readRate,
  ScrubPlanner,
  scrubPercent,
  walkOrder,
} from '../../../bridge/rsync/scrub-plan.js';
import { runSteps } from '../../../bridge/run/runner.js';
import { sync } from '../../../bridge/steps/sync.js';
import { verify } from '../../../bridge/steps/verify.js';
import { testRun } from '../../helpers/run-context.js';
import { tempDir } from '../../helpers/trees.js';

const cleanup: (() => void)[] = [];
after(() => {
  for (const c of cleanup) c();
});

/** a plan for files of 100 bytes named in `names` (walk order), from `cursor` */
function plan(
  names: string[],
  cursor: { path: string; offset: number } | null,
  budget: number,
  written = '',
) {
  const p = new ScrubPlanner(cursor, budget);
  for (const n of names) p.offer(n, 100, written.split(',').includes(n));
  return p.plan();
}

describe('the scrub plan', () => {
  it("walks as verify does: a directory's files first, then its subdirectories, each by name", () => {
    const paths = ['b/x', 'z', 'a/c/d', 'a', 'a/b', 'b/a/q', 'B'].filter((p) => p !== 'a');
    assert.deepEqual([...paths].sort(walkOrder), ['B', 'z', 'a/b', 'a/c/d', 'b/x', 'b/a/q']);
  });

  it('reads a slice of the budget from where the last run stopped, and says where the next starts', () => {
    const files = ['a', 'b', 'c'];
    const one = plan(files, null, 150);
    assert.deepEqual(one.ranges, [
      { file: 'a', start: 0, length: 100 },
      { file: 'b', start: 0, length: 50 },
    ]);
    assert.deepEqual(one.next, { path: 'b', offset: 50 });
    assert.equal(one.position, 150);
    assert.equal(one.total, 300);
    assert.equal(one.passCompleted, false);

    const two = plan(files, one.next, 150);
    assert.deepEqual(two.ranges, [
      { file: 'b', start: 50, length: 50 },
      { file: 'c', start: 0, length: 100 },
    ]);
    assert.deepEqual(two.next, { path: 'c', offset: 100 });
    assert.equal(two.passCompleted, false);

    // the end of the copy: the pass is complete and the slice goes on from the first file
    const three = plan(files, two.next, 150);
    assert.deepEqual(three.ranges, [
      { file: 'a', start: 0, length: 100 },
      { file: 'b', start: 0, length: 50 },
    ]);
    assert.equal(three.passCompleted, true);
    assert.deepEqual(three.next, { path: 'b', offset: 50 });
    assert.equal(three.position, 150);
  });

  it('files this run wrote are not read again, but count in the position', () => {
    const p = plan(['a', 'b', 'c'], null, 150, 'b');
    assert.deepEqual(p.ranges, [
      { file: 'a', start: 0, length: 100 },
      { file: 'c', start: 0, length: 50 },
    ]);
    assert.equal(p.readAnyway, 100);
    assert.equal(p.position, 250);
  });

  it('a budget larger than the copy reads it all once; a removed file at the cursor is passed over', () => {
    const all = plan(['a', 'b'], null, 10_000);
    assert.equal(all.bytes, 200);
    assert.equal(all.passCompleted, true);
    assert.equal(all.next, null);
    const gone = plan(['a', 'c'], { path: 'b', offset: 30 }, 50);
    assert.deepEqual(gone.ranges, [{ file: 'c', start: 0, length: 50 }]);
  });

  it('a budget of 0 reads nothing and keeps the position', () => {
    const p = plan(['a', 'b', 'c'], { path: 'b', offset: 40 }, 0);
    assert.deepEqual(p.ranges, []);
    assert.deepEqual(p.next, { path: 'b', offset: 40 });
    assert.equal(p.position, 140);
    assert.equal(scrubPercent({ position_bytes: p.position, copy_bytes: p.total }), 46.7);
  });
});

describe('verify.scrub in the configuration', () => {
  const scrub = (value: unknown) =>
    parseConfig({ source: { path: '/srv/backup' }, verify: { scrub: value } }).verify.scrub;
  it('takes a share of the copy, a size with a unit, a number of bytes or a time', () => {
    assert.deepEqual(parseConfig({ source: { path: '/srv/backup' } }).verify.scrub, { percent: 2 });
    assert.deepEqual(scrub('5%'), { percent: 5 });
    assert.deepEqual(scrub('20GB'), { bytes: 20e9 });
    assert.deepEqual(scrub('512 MiB'), { bytes: 512 * 1024 * 1024 });
    assert.deepEqual(scrub(0), { bytes: 0 });
    assert.deepEqual(scrub('90s'), { seconds: 90 });
    assert.deepEqual(scrub('1.5 min'), { seconds: 90 });
    assert.deepEqual(scrub('1h'), { seconds: 3600 });
    for (const bad of ['lots', '120%', -1, '5 parsecs', '5 minutes', 's'])
      assert.throws(() => scrub(bad), /verify\.scrub: a share of the copy like "2%"/);
  });
});

describe('a time budget', () => {
  it('is the time at the rate the drive last read back at, or at 100 MB/s before it has one', () => {
    assert.equal(budgetBytes({ seconds: 2 }, 1e12, 50e6), 100e6);
    assert.equal(budgetBytes({ seconds: 2 }, 1e12, null), 2 * ASSUMED_RATE);
    assert.equal(budgetBytes({ percent: 2 }, 1e12, 50e6), 20e9, 'a share ignores the rate');
    assert.equal(budgetBytes({ bytes: 7 }, 1e12, 50e6), 7);
  });

  it('the rate is measured on a read of at least 64 MiB; a shorter one keeps the last', () => {
    const before = { next: null, position_bytes: 0, copy_bytes: 0, pass_started: null, last_full_pass: null };
    assert.equal(readRate(RATE_MIN_BYTES, 2, null), RATE_MIN_BYTES / 2);
    assert.equal(readRate(RATE_MIN_BYTES - 1, 2, { ...before, read_rate: 123 }), 123);
    assert.equal(readRate(1000, 0.001, before), null, 'nothing measured yet');
  });
});

describe('the rolling scrub in a run', () => {
  /** four files of 10,000 bytes, a directory drive, `scrub` as the budget; `run()` copies and verifies */
  function fourFiles(scrub: string) {
    const dir = tempDir('offsite-scrub-');
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const src = join(dir, 'src');
    mkdirSync(src);
    for (const n of ['a', 'b', 'c', 'd']) writeFileSync(join(src, n), Buffer.alloc(10_000, n.charCodeAt(0)));
    const target = join(dir, 'drive');
    mkdirSync(target);
    const raw = {
      state_dir: join(dir, 'state'),
      source: { path: src },
      drives: [{ name: 'alpha', directory: target }],
      verify: { scrub },
    };
    const ledger = new Ledger(join(dir, 'state'));
    const run = async () => {
      const t = testRun(raw);
      const outcome = await runSteps([sync, verify], t.ctx, t.bus);
      assert.equal(outcome.result, 'success', outcome.message);
      return { log: t.log.tail().join('\n'), scrub: ledger.scrub('alpha')! };
    };
    return { ledger, run };
  }

  it('each unchanged run reads the next slice; a whole pass is recorded in the ledger', async () => {
    const { run } = fourFiles('15000B');

    // the first copy reads everything back: that is a whole pass
    const first = await run();
    assert.ok(first.scrub.last_full_pass, 'a full pass is recorded');
    assert.deepEqual(first.scrub.next, null);

    const second = await run();
    assert.match(second.log, /a scrub slice of 15000 bytes from the drive \(the pass is at 37\.5%\)/);
    assert.deepEqual(second.scrub.next, { path: 'b', offset: 5000 });
    assert.equal(second.scrub.last_full_pass, first.scrub.last_full_pass);

    const third = await run();
    assert.match(third.log, /the pass is at 75%/);
    const fourth = await run();
    assert.match(
      fourth.log,
      /a scrub slice of 15000 bytes from the drive \(a pass of the whole copy completed\)/,
    );
    // c's end and d, then 5,000 bytes from the start of the copy again
    assert.deepEqual(fourth.scrub.next, { path: 'a', offset: 5000 });
    assert.notEqual(fourth.scrub.last_full_pass, null);
    assert.equal(fourth.scrub.copy_bytes, 40_000);
  });

  it('a time budget reads, each run, the time at the rate the ledger keeps for the drive', async () => {
    const { ledger, run } = fourFiles('3s');
    await run();
    // 40,000 bytes read back: too little to measure a drive by, so no rate yet
    assert.equal(ledger.scrub('alpha')!.read_rate, null);
    // as a slow drive would have measured: 5,000 bytes a second, so 3 s is 15,000 bytes
    await ledger.recordScrub('alpha', { ...ledger.scrub('alpha')!, read_rate: 5000 });
    assert.match((await run()).log, /a scrub slice of 15000 bytes from the drive \(the pass is at 37\.5%\)/);
    assert.equal(ledger.scrub('alpha')!.read_rate, 5000, 'kept: the slice was too short to measure');
  });

  it('a scrub mismatch fails the run, names the file, and the next copy copies it again', async () => {
    const dir = tempDir('offsite-scrub-');
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const src = join(dir, 'src');
    mkdirSync(src);
    for (const n of ['a', 'b']) writeFileSync(join(src, n), Buffer.alloc(10_000, n.charCodeAt(0)));
    const target = join(dir, 'drive');
    mkdirSync(target);
    const raw = {
      state_dir: join(dir, 'state'),
      source: { path: src },
      drives: [{ name: 'alpha', directory: target }],
      verify: { scrub: '100%' },
    };
    const first = testRun(raw);
    assert.equal((await runSteps([sync, verify], first.ctx, first.bus)).result, 'success');
    // the copy rots on the drive: same size and time, other bytes
    const rotten = join(target, 'current', 'b');
    writeFileSync(rotten, Buffer.alloc(10_000, 0));
    execFileSync('touch', ['-m', '-r', join(src, 'b'), rotten]);

    const second = testRun(raw);
    const failed = await runSteps([sync, verify], second.ctx, second.bus);
    assert.equal(failed.result, 'failed');
    assert.equal(
      failed.message,
      'the rolling scrub found 1 file on the drive that did not match the source: b (differs from the source from byte 0); the next copy compares their contents',
    );
    const third = testRun(raw);
    const again = await runSteps([sync, verify], third.ctx, third.bus);
    assert.equal(again.result, 'success', again.message);
    assert.deepEqual(readFileSync(join(target, 'current', 'b')), Buffer.alloc(10_000, 98));
  });
});
