/**
 * A drive is untrusted: whoever holds it may plant a symlink, a device node or
 * a fifo at any name offsite uses on it. Each test plants one at one layout
 * path, pointing at a "NAS" directory outside the drive (the victim), runs sync
 * and verify as root, and checks that the planted entry was either removed as
 * what it is (never followed) or refused with a failed status naming the path,
 * and that the victim and the previous copy are byte for byte what they were.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runSteps } from '../../../bridge/run/runner.js';
import type { Step } from '../../../bridge/steps/step.js';
import { sync } from '../../../bridge/steps/sync.js';
import { verify } from '../../../bridge/steps/verify.js';
import { makeExt4 } from '../../helpers/loop.js';
import { testRun } from '../../helpers/run-context.js';
import { awkwardTree, diffTrees, fingerprint, listDir, tempDir } from '../../helpers/trees.js';

const cleanup: (() => void)[] = [];
after(() => {
  for (const c of cleanup.reverse()) c();
});

/** a source, a directory drive, and a victim: a NAS directory outside both */
function setup() {
  const dir = tempDir('offsite-planted-');
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'src');
  const target = join(dir, 'drive');
  const victim = join(dir, 'nas');
  mkdirSync(src);
  mkdirSync(target);
  awkwardTree(src);
  mkdirSync(join(victim, 'etc'), { recursive: true });
  mkdirSync(join(victim, 'home', 'user'), { recursive: true });
  writeFileSync(join(victim, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
  writeFileSync(join(victim, 'home', 'user', 'notes.txt'), 'the only copy\n');
  writeFileSync(join(victim, 'keep.txt'), 'keep me\n');
  const raw = {
    state_dir: join(dir, 'state'),
    source: { path: src },
    drives: [{ name: 'alpha', directory: target }],
    verify: { scrub: '100%', borg_check: 'auto' },
  };
  return { dir, src, target, victim, raw, snapshots: join(target, 'snapshots') };
}

/** sync, then `between` (e.g. tamper with the staging copy), then verify */
async function copy(raw: Record<string, unknown>, between?: (staging: string) => void) {
  const t = testRun(raw);
  const staging = join(t.ctx.facts.target!, 'snapshots', '.partial');
  const steps: Step[] = [sync];
  if (between) steps.push({ name: 'between', title: 'between', run: async () => between(staging) });
  steps.push(verify);
  const outcome = await runSteps(steps, t.ctx, t.bus);
  return { ...t, outcome };
}

/** a good first copy; returns what a later run must leave alone */
async function firstCopy(raw: Record<string, unknown>, target: string) {
  const r = await copy(raw);
  assert.equal(r.outcome.result, 'success', r.outcome.message);
  const current = join(target, 'current');
  return { link: readlinkSync(current), tree: fingerprint(realpathSync(current)) };
}

/** same size and time to the nanosecond, other contents: only reading the contents can tell */
function corrupt(file: string): void {
  const body = readFileSync(file);
  body[0] = body[0]! ^ 0xff;
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, body);
  execFileSync('touch', ['-r', file, tmp]);
  renameSync(tmp, file);
}

/** verify found the corrupted file's contents differ (which makes it write .compare-contents) */
function contentsDiffered(outcome: { result: string; step: string | null; message: string }) {
  assert.equal(outcome.result, 'failed', outcome.message);
  assert.equal(outcome.step, 'verify', outcome.message);
  assert.match(outcome.message, /data\/nested\/b\.bin/);
}

function refused(
  outcome: { result: string; step: string | null; message: string },
  step: string,
  path: string,
) {
  assert.equal(outcome.result, 'failed', outcome.message);
  assert.equal(outcome.step, step, outcome.message);
  assert.ok(outcome.message.includes(path), `the message names ${path}: ${outcome.message}`);
}

describe('planted entries in the layout of a directory drive', () => {
  it('snapshots -> a NAS directory: refused, and the NAS and the previous copy are untouched', async () => {
    const { src, target, victim, raw, snapshots } = setup();
    // an older layout's `current` directory is the previous copy
    execFileSync('rsync', ['-aH', `${src}/`, `${target}/current/`]);
    symlinkSync(victim, snapshots);
    const nas = fingerprint(victim);
    const previous = fingerprint(join(target, 'current'));

    const { outcome } = await copy(raw);
    refused(outcome, 'sync', snapshots);
    assert.match(outcome.message, /symlink/);
    assert.equal(fingerprint(victim), nas);
    assert.equal(fingerprint(join(target, 'current')), previous);
    assert.equal(readlinkSync(snapshots), victim, 'the link is left for a person to look at');
  });

  it('snapshots/.partial -> a NAS directory: refused before rsync, NAS and previous copy untouched', async () => {
    const { src, target, victim, raw, snapshots } = setup();
    const before = await firstCopy(raw, target);
    symlinkSync(victim, join(snapshots, '.partial'));
    writeFileSync(join(src, 'new.txt'), 'changed\n');
    const nas = fingerprint(victim);

    const { outcome } = await copy(raw);
    refused(outcome, 'sync', join(snapshots, '.partial'));
    assert.equal(fingerprint(victim), nas);
    assert.equal(readlinkSync(join(target, 'current')), before.link);
    assert.equal(fingerprint(realpathSync(join(target, 'current'))), before.tree);
  });

  it('snapshots/.partial holding a hard link to a NAS file: rsync never changes the NAS inode', async () => {
    const { src, victim, raw, snapshots } = setup();
    // same size and time as the source's file, other permissions: rsync would only chmod it in place
    execFileSync('cp', ['-p', join(src, 'data', 'a.txt'), join(victim, 'a.txt')]);
    chmodSync(join(victim, 'a.txt'), 0o600);
    const nas = fingerprint(victim);
    mkdirSync(join(snapshots, '.partial', 'data'), { recursive: true });
    linkSync(join(victim, 'a.txt'), join(snapshots, '.partial', 'data', 'a.txt'));

    const { outcome } = await copy(raw);
    assert.equal(outcome.result, 'success', outcome.message);
    // the link in the staging copy was removed, not written through
    assert.equal(fingerprint(victim), nas);
    assert.equal(statSync(join(victim, 'a.txt')).mode & 0o777, 0o600);
  });

  it('a dangling snapshots/.compare-contents link and a copy whose contents differ: no file is created through it', async () => {
    const { target, victim, raw, snapshots } = setup();
    mkdirSync(snapshots);
    const created = join(victim, 'created-by-root');
    symlinkSync(created, join(snapshots, '.compare-contents'));
    const nas = fingerprint(victim);

    const { outcome } = await copy(raw, (staging) => corrupt(join(staging, 'data', 'nested', 'b.bin')));
    contentsDiffered(outcome);
    assert.equal(existsSync(created), false, 'nothing was created outside the drive');
    assert.equal(fingerprint(victim), nas);
    const mark = join(snapshots, '.compare-contents');
    assert.ok(lstatSync(mark).isFile(), 'the mark is a plain file on the drive');
    assert.equal(readFileSync(mark, 'utf8'), 'data/nested/b.bin\n');

    const next = await copy(raw);
    assert.equal(next.outcome.result, 'success', next.outcome.message);
    assert.equal(existsSync(mark), false);
    assert.equal(diffTrees(raw.source.path, join(target, 'current')), '');
  });

  it('snapshots/.compare-contents -> a NAS file and a copy whose contents differ: the NAS file is not overwritten', async () => {
    const { victim, raw, snapshots } = setup();
    mkdirSync(snapshots);
    symlinkSync(join(victim, 'keep.txt'), join(snapshots, '.compare-contents'));
    const nas = fingerprint(victim);

    const { outcome } = await copy(raw, (staging) => corrupt(join(staging, 'data', 'nested', 'b.bin')));
    contentsDiffered(outcome);
    assert.equal(fingerprint(victim), nas);
  });

  it('snapshots/.compare-contents as a device node of a NAS disk: the disk is never opened', async () => {
    const { victim, raw, snapshots } = setup();
    const disk = makeExt4(8, 'nasdisk');
    cleanup.push(() => disk.detach());
    const hash = () => createHash('sha256').update(readFileSync(disk.device)).digest('hex');
    const before = hash();
    const rdev = statSync(disk.device).rdev;
    mkdirSync(snapshots);
    const node = join(snapshots, '.compare-contents');
    const major = (rdev >> 8) & 0xfff;
    const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    execFileSync('mknod', [node, 'b', String(major), String(minor)]);
    assert.equal(statSync(node).rdev, rdev);
    const nas = fingerprint(victim);

    const { outcome } = await copy(raw, (staging) => corrupt(join(staging, 'data', 'nested', 'b.bin')));
    contentsDiffered(outcome);
    assert.equal(hash(), before, 'the disk behind the node is unchanged');
    assert.equal(fingerprint(victim), nas);
    assert.ok(lstatSync(node).isFile(), 'the node was replaced by a plain file');
  });

  it('current -> a NAS directory: not taken for a copy, replaced as a link, the NAS untouched', async () => {
    const { src, target, victim, raw } = setup();
    // the victim even looks like a copy of the source
    execFileSync('rsync', ['-aH', `${src}/`, `${victim}/copy/`]);
    symlinkSync(join(victim, 'copy'), join(target, 'current'));
    const nas = fingerprint(victim);

    const { outcome, ctx } = await copy(raw);
    assert.equal(outcome.result, 'success', outcome.message);
    assert.equal(readlinkSync(join(target, 'current')), join('snapshots', ctx.runId));
    assert.equal(fingerprint(victim), nas);
    assert.equal(diffTrees(src, join(target, 'current')), '');
  });

  it('current -> snapshots/<id> where that entry is a link to the NAS: not a copy, the link removed as a link', async () => {
    const { src, target, victim, raw, snapshots } = setup();
    execFileSync('rsync', ['-aH', `${src}/`, `${victim}/copy/`]);
    mkdirSync(snapshots);
    symlinkSync(join(victim, 'copy'), join(snapshots, '20250101T000000Z-planted'));
    symlinkSync('snapshots/20250101T000000Z-planted', join(target, 'current'));
    const nas = fingerprint(victim);

    const { outcome, ctx } = await copy(raw);
    assert.equal(outcome.result, 'success', outcome.message);
    assert.deepEqual(listDir(snapshots), [ctx.runId]);
    assert.equal(fingerprint(victim), nas);
  });

  it('current as a fifo: refused, naming it (offsite never makes one)', async () => {
    const { target, victim, raw } = setup();
    execFileSync('mkfifo', [join(target, 'current')]);
    const nas = fingerprint(victim);
    const { outcome } = await copy(raw);
    refused(outcome, 'sync', join(target, 'current'));
    assert.ok(lstatSync(join(target, 'current')).isFIFO());
    assert.equal(fingerprint(victim), nas);
  });

  it('current.new -> a NAS directory: removed as a link', async () => {
    const { target, victim, raw } = setup();
    const before = await firstCopy(raw, target);
    symlinkSync(victim, join(target, 'current.new'));
    const nas = fingerprint(victim);
    writeFileSync(join(raw.source.path, 'new.txt'), 'changed\n');

    const { outcome } = await copy(raw);
    assert.equal(outcome.result, 'success', outcome.message);
    assert.equal(existsSync(join(target, 'current.new')), false);
    assert.notEqual(readlinkSync(join(target, 'current')), before.link);
    assert.equal(fingerprint(victim), nas);
  });

  it('current.new as a directory: refused, naming it, and left as it is', async () => {
    const { target, victim, raw } = setup();
    const before = await firstCopy(raw, target);
    mkdirSync(join(target, 'current.new'));
    writeFileSync(join(target, 'current.new', 'mine'), 'not offsite\n');
    writeFileSync(join(raw.source.path, 'new.txt'), 'changed\n');
    const nas = fingerprint(victim);

    const { outcome } = await copy(raw);
    refused(outcome, 'sync', join(target, 'current.new'));
    assert.equal(readFileSync(join(target, 'current.new', 'mine'), 'utf8'), 'not offsite\n');
    assert.equal(readlinkSync(join(target, 'current')), before.link);
    assert.equal(fingerprint(victim), nas);
  });

  it('snapshots/.old-current -> a NAS directory beside an older-layout current: removed as a link', async () => {
    const { src, target, victim, raw, snapshots } = setup();
    execFileSync('rsync', ['-aH', `${src}/`, `${target}/current/`]);
    mkdirSync(snapshots);
    symlinkSync(victim, join(snapshots, '.old-current'));
    const nas = fingerprint(victim);

    const { outcome, ctx } = await copy(raw);
    assert.equal(outcome.result, 'success', outcome.message);
    assert.deepEqual(listDir(snapshots), [ctx.runId]);
    assert.equal(fingerprint(victim), nas);
  });

  it('a stale snapshots/<id> -> a NAS directory: removed as a link', async () => {
    const { target, victim, raw, snapshots } = setup();
    await firstCopy(raw, target);
    symlinkSync(victim, join(snapshots, '20200101T000000Z-stale'));
    writeFileSync(join(raw.source.path, 'new.txt'), 'changed\n');
    const nas = fingerprint(victim);

    const { outcome, ctx } = await copy(raw);
    assert.equal(outcome.result, 'success', outcome.message);
    assert.deepEqual(listDir(snapshots), [ctx.runId]);
    assert.equal(fingerprint(victim), nas);
  });

  it('a top-level name the source has as a directory, planted as a link to the NAS: not used as an old copy', async () => {
    const { src, target, victim, raw } = setup();
    // the NAS holds a file identical to one in the source: --link-dest through the link would hard-link it
    mkdirSync(join(victim, 'data'));
    execFileSync('cp', ['-p', join(src, 'data', 'a.txt'), join(victim, 'data', 'a.txt')]);
    symlinkSync(join(victim, 'data'), join(target, 'data'));
    const nas = fingerprint(victim);

    const { outcome } = await copy(raw);
    assert.equal(outcome.result, 'success', outcome.message);
    assert.equal(fingerprint(victim), nas, 'no NAS file gained a link');
    assert.equal(readlinkSync(join(target, 'data')), join(victim, 'data'), 'not ours: left alone');
  });

  it('the staging directory is checked again right before rsync starts', async () => {
    const { src, target, victim, raw, snapshots } = setup();
    const before = await firstCopy(raw, target);
    writeFileSync(join(src, 'new.txt'), 'changed\n');
    const nas = fingerprint(victim);
    // the lock prefix also runs the "would anything change?" dry run, which comes first:
    // there it plants the link, as if the drive's contents changed under the run
    const plant = `case "$*" in *--dry-run*) ln -s '${victim}' '${join(snapshots, '.partial')}';; esac; exec "$@"`;
    const { outcome } = await copy({ ...raw, source: { path: src, lock: ['sh', '-c', plant, 'lock'] } });
    refused(outcome, 'sync', join(snapshots, '.partial'));
    assert.equal(fingerprint(victim), nas);
    assert.equal(readlinkSync(join(target, 'current')), before.link);
    assert.equal(fingerprint(realpathSync(join(target, 'current'))), before.tree);
  });
});

describe('planted entries on a mounted drive (uuid:, loop-mounted ext4)', () => {
  function mounted() {
    const s = setup();
    const img = makeExt4(16);
    cleanup.push(() => img.detach());
    const mnt = join(s.dir, 'mnt');
    mkdirSync(mnt);
    execFileSync('mount', [img.device, mnt]);
    cleanup.push(() => execFileSync('umount', ['-l', mnt]));
    const raw = { ...s.raw, drives: [{ name: 'alpha', uuid: img.uuid, mount_point: mnt }] };
    return { ...s, mnt, raw, snapshots: join(mnt, 'snapshots') };
  }

  it('snapshots -> a NAS directory and current -> snapshots/etc: refused, the NAS untouched', async () => {
    const { mnt, victim, raw, snapshots } = mounted();
    symlinkSync(victim, snapshots);
    symlinkSync('snapshots/etc', join(mnt, 'current'));
    const nas = fingerprint(victim);
    const { outcome } = await copy(raw);
    refused(outcome, 'sync', snapshots);
    assert.equal(fingerprint(victim), nas);
  });

  it('snapshots as a directory of another filesystem (a bind mount over it): refused', async () => {
    const { mnt, victim, raw, snapshots } = mounted();
    await firstCopy(raw, mnt);
    execFileSync('mount', ['--bind', victim, snapshots]);
    cleanup.push(() => execFileSync('umount', ['-l', snapshots]));
    const nas = fingerprint(victim);
    writeFileSync(join(raw.source.path, 'new.txt'), 'changed\n');
    const { outcome } = await copy(raw);
    refused(outcome, 'sync', snapshots);
    assert.match(outcome.message, /another filesystem/);
    assert.equal(fingerprint(victim), nas);
  });

  it('snapshots/.partial -> a NAS directory: refused, the previous copy untouched', async () => {
    const { mnt, src, victim, raw, snapshots } = mounted();
    const before = await firstCopy(raw, mnt);
    symlinkSync(victim, join(snapshots, '.partial'));
    writeFileSync(join(src, 'new.txt'), 'changed\n');
    const nas = fingerprint(victim);
    const { outcome } = await copy(raw);
    refused(outcome, 'sync', join(snapshots, '.partial'));
    assert.equal(fingerprint(victim), nas);
    assert.equal(fingerprint(realpathSync(join(mnt, 'current'))), before.tree);
  });
});
