/**
 * A drive that goes away mid-run is named as such, at whatever step: not
 * "verify: EIO: i/o error, read". Real steps on a directory drive whose
 * directory is taken away, and a failing step whose device node goes.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runSteps } from '../../../bridge/run/runner.js';
import { asDriveGone, errnoOf } from '../../../bridge/steps/gone.js';
import type { Step } from '../../../bridge/steps/step.js';
import { sync } from '../../../bridge/steps/sync.js';
import { verify } from '../../../bridge/steps/verify.js';
import { testRun } from '../../helpers/run-context.js';
import { awkwardTree, tempDir } from '../../helpers/trees.js';

const cleanup: Array<() => void> = [];
after(() => {
  for (const c of cleanup) c();
});

function setup() {
  const dir = tempDir('offsite-gone-');
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'src');
  const target = join(dir, 'drive');
  mkdirSync(src);
  mkdirSync(target);
  awkwardTree(src);
  return {
    dir,
    target,
    raw: {
      state_dir: join(dir, 'state'),
      source: { path: src },
      drives: [{ name: 'alpha', directory: target }],
    },
  };
}

/** an I/O error as fs gives it */
function ioError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: i/o error, read`), { code, errno: -5, syscall: 'read' });
}

describe('a drive that went away', () => {
  it('is named at the step it happened in, with the previous copy said to be intact', async () => {
    const { target, raw } = setup();
    const pull: Step = {
      name: 'pull',
      title: 'pulling the drive',
      run: async () => rmSync(target, { recursive: true, force: true }),
    };
    const { ctx, bus } = testRun(raw);
    const outcome = await runSteps([sync, pull, verify], ctx, bus);
    assert.equal(outcome.result, 'failed');
    assert.equal(outcome.step, 'verify');
    assert.equal(
      outcome.message,
      `the drive went away during verify (${target} disappeared): was it pulled? The previous copy is intact`,
    );
  });

  it('an I/O error from a device node that is then gone is the drive going away, not "EIO: i/o error"', async () => {
    const { dir, raw } = setup();
    const { ctx, bus } = testRun({
      ...raw,
      drives: [
        { name: 'alpha', uuid: '2d3e4f50-6172-8394-a5b6-c7d8e9f0a1b2', mount_point: join(dir, 'mnt') },
      ],
    });
    const node = join(dir, 'sdz1');
    writeFileSync(node, '');
    ctx.facts.device = node;
    const reading: Step = {
      name: 'verify',
      title: 'reading the copy',
      run: async () => {
        setTimeout(() => rmSync(node), 200); // the kernel takes the node away just after the error
        throw ioError('EIO');
      },
    };
    const outcome = await runSteps([reading], ctx, bus);
    assert.equal(
      outcome.message,
      `the drive went away during verify (EIO, then ${node} disappeared): was it pulled? The previous copy is intact`,
    );
  });

  it('an EIO from a drive that stays is a failing disk, and keeps its own words', async () => {
    const { dir, raw } = setup();
    const { ctx } = testRun({
      ...raw,
      drives: [
        { name: 'alpha', uuid: '2d3e4f50-6172-8394-a5b6-c7d8e9f0a1b2', mount_point: join(dir, 'mnt') },
      ],
    });
    ctx.facts.device = join(dir, 'src');
    const error = ioError('EIO');
    assert.equal(await asDriveGone(ctx, 'verify', error, ['identify'], 300), error);
    // ENODEV, ENXIO, ESTALE: a device that is not there any more, whatever the node says
    const gone = await asDriveGone(ctx, 'unmount', ioError('ENXIO'), ['identify', 'mount', 'sync', 'verify']);
    assert.equal(
      (gone as Error).message,
      'the drive went away during unmount (ENXIO from the drive): was it pulled? The new copy was complete and verified before it went',
    );
  });

  it('finds the error code in the error, its causes, or their words', () => {
    assert.equal(errnoOf(ioError('ESTALE')), 'ESTALE');
    assert.equal(errnoOf(new Error('could not read', { cause: ioError('ENODEV') })), 'ENODEV');
    assert.equal(errnoOf(new Error("mount: /mnt: can't read superblock on /dev/sdb1 (EIO)")), 'EIO');
    assert.equal(errnoOf(new Error('ENOENT: no such file or directory')), null);
  });
});
