import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { acquireLock } from '../../../bridge/lockfile.js';
import { leftBehind, processStart } from '../../../bridge/processes.js';
import { runSteps } from '../../../bridge/run/runner.js';
import { MARKER_FILE } from '../../../bridge/steps/marker.js';
import { sourceLockFile, sync } from '../../../bridge/steps/sync.js';
import { verify } from '../../../bridge/steps/verify.js';
import { makeExt4 } from '../../helpers/loop.js';
import { testRun } from '../../helpers/run-context.js';
import { awkwardTree, diffTrees, listDir, manyFiles, tempDir } from '../../helpers/trees.js';

const cleanup: (() => void)[] = [];
after(() => {
  for (const c of cleanup.reverse()) c();
});

/** a source, a directory drive and a state dir; `extra` goes into the config */
function setup(extra: Record<string, unknown> = {}, source?: string) {
  const dir = tempDir();
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const src = source ?? join(dir, 'src');
  mkdirSync(src, { recursive: true });
  const target = join(dir, 'drive');
  mkdirSync(target);
  const raw = {
    state_dir: join(dir, 'state'),
    source: { path: src, ...((extra.source as object) ?? {}) },
    drives: [{ name: 'alpha', directory: target }],
    verify: { borg_check: 'auto', ...((extra.verify as object) ?? {}) },
  };
  return { dir, src, target, raw };
}

async function copy(raw: Record<string, unknown>, opts: Parameters<typeof testRun>[1] = {}) {
  const t = testRun(raw, opts);
  const outcome = await runSteps([sync, verify], t.ctx, t.bus);
  return { ...t, outcome };
}

/** a lock prefix that slows rsync down, so a test can act in the middle of a copy */
const SLOW = ['sh', '-c', 'exec "$0" --bwlimit=1000 "$@"'];
/** a lock prefix that ignores SIGTERM and, when its rsync fails (killed), goes on (sleeping, SIGTERM ignored still) */
const STUBBORN = ['sh', '-c', 'trap "" TERM; "$@" || sleep 600', 'sh'];

/** a copy under `raw`, cancelled (the drive pulled) at its first progress: it fails at sync, saying so */
async function cancelledMidCopy(raw: Record<string, unknown>) {
  let t: ReturnType<typeof testRun> | undefined;
  t = testRun(raw, { onProgress: () => t?.abort.abort('test: drive pulled') });
  const cancelled = await runSteps([sync, verify], t.ctx, t.bus);
  assert.equal(cancelled.result, 'failed');
  assert.equal(cancelled.step, 'sync');
  assert.match(cancelled.message, /cancelled during the copy/);
}

/** a copy under the lock `prefix`, then a change, then a copy that sees it (the check stopped at the change) */
async function changedUnder(prefix: string[], { src, target, raw }: ReturnType<typeof setup>) {
  writeFileSync(join(src, 'f'), 'x');
  const locked = { ...raw, source: { path: src, lock: prefix } };
  assert.equal((await copy(locked)).outcome.result, 'success');
  writeFileSync(join(src, 'g'), 'new');
  const next = await copy(locked);
  assert.equal(next.outcome.result, 'success', next.outcome.message);
  assert.match(next.log.tail().join('\n'), /the source changed/);
  assert.equal(readFileSync(join(target, 'current', 'g'), 'utf8'), 'new');
}

describe('sync and verify', () => {
  it('a good copy equals the source: symlinks, permissions, hard links, unicode names, empty dirs', async () => {
    const { src, target, raw } = setup();
    awkwardTree(src);
    const { outcome, ctx, progress } = await copy(raw);
    assert.equal(outcome.result, 'success', outcome.message);

    const current = join(target, 'current');
    assert.ok(lstatSync(current).isSymbolicLink(), 'current is a symlink');
    assert.equal(readlinkSync(current), join('snapshots', ctx.runId));
    assert.equal(diffTrees(src, current), '');
    assert.equal(readlinkSync(join(current, 'to-a')), 'data/a.txt');
    assert.equal(readlinkSync(join(current, 'dangling')), 'nowhere/at/all');
    assert.equal(statSync(join(current, 'run.sh')).mode & 0o7777, 0o755);
    assert.equal(statSync(join(current, 'private')).mode & 0o7777, 0o600);
    assert.equal(statSync(join(current, 'linked-1')).ino, statSync(join(current, 'data', 'linked-2')).ino);
    assert.equal(readFileSync(join(current, 'Grüße – 日本語 ✓.txt'), 'utf8'), 'unicode\n');
    assert.deepEqual(listDir(join(current, 'empty dir')), []);
    assert.equal(
      statSync(join(current, 'data', 'a.txt'), { bigint: true }).mtimeNs,
      statSync(join(src, 'data', 'a.txt'), { bigint: true }).mtimeNs,
    );
    // only the complete copy is left: no staging directory
    assert.deepEqual(listDir(join(target, 'snapshots')), [ctx.runId]);
    assert.ok(ctx.facts.sizeBytes! > 0 && ctx.facts.freeBytes! > 0);
    assert.equal(progress.at(-1)?.p.percent, 100);
    assert.ok(ctx.facts.bytes! >= 70_000);
  });

  it('a second run hard-links unchanged files and picks up changes and deletions', async () => {
    const { src, target, raw } = setup();
    awkwardTree(src);
    const first = await copy(raw);
    assert.equal(first.outcome.result, 'success', first.outcome.message);
    const unchangedIno = statSync(join(target, 'current', 'data', 'nested', 'b.bin')).ino;

    writeFileSync(join(src, 'data', 'a.txt'), 'alpha, changed\n');
    unlinkSync(join(src, 'data', 'nested', 'deeper', 'c.txt'));
    writeFileSync(join(src, 'new.txt'), 'new\n');
    const second = await copy(raw);
    assert.equal(second.outcome.result, 'success', second.outcome.message);

    const current = join(target, 'current');
    assert.equal(readlinkSync(current), join('snapshots', second.ctx.runId));
    assert.equal(
      statSync(join(current, 'data', 'nested', 'b.bin')).ino,
      unchangedIno,
      'unchanged file is the same inode',
    );
    assert.equal(readFileSync(join(current, 'data', 'a.txt'), 'utf8'), 'alpha, changed\n');
    assert.equal(existsSync(join(current, 'data', 'nested', 'deeper', 'c.txt')), false);
    assert.equal(readFileSync(join(current, 'new.txt'), 'utf8'), 'new\n');
    assert.equal(diffTrees(src, current), '');
    assert.deepEqual(listDir(join(target, 'snapshots')), [second.ctx.runId], 'the previous copy is removed');
  });

  it('an unchanged source makes no new snapshot and keeps current, still verified', async () => {
    const { src, target, raw } = setup();
    awkwardTree(src);
    const first = await copy(raw);
    assert.equal(first.outcome.result, 'success', first.outcome.message);
    const ino = statSync(join(target, 'current', 'data', 'a.txt')).ino;

    const second = await copy(raw);
    assert.equal(second.outcome.result, 'success', second.outcome.message);
    assert.equal(
      readlinkSync(join(target, 'current')),
      join('snapshots', first.ctx.runId),
      'current unchanged',
    );
    assert.deepEqual(
      listDir(join(target, 'snapshots')),
      [first.ctx.runId],
      'no new snapshot, no staging copy',
    );
    assert.equal(statSync(join(target, 'current', 'data', 'a.txt')).ino, ino, 'the same files');
    assert.match(second.log.tail().join('\n'), /nothing changed since/);
    assert.match(second.log.tail().join('\n'), /alpha: verify: \d+ entries match .* current is unchanged/);
    assert.equal(diffTrees(src, join(target, 'current')), '');
  });

  it('a change after an unchanged run is copied (content, a new exclude, a touch within the same second)', async () => {
    const { src, target, raw } = setup();
    awkwardTree(src);
    writeFileSync(join(src, 'cache.tmp'), 'scratch\n');
    assert.equal((await copy(raw)).outcome.result, 'success');
    const unchanged = await copy(raw);
    assert.equal(unchanged.outcome.result, 'success', unchanged.outcome.message);

    // same size, time moved by a microsecond: only a nanosecond-exact comparison sees it
    const a = join(src, 'data', 'a.txt');
    const st = statSync(a);
    writeFileSync(a, readFileSync(a, 'utf8').toUpperCase());
    execFileSync('touch', ['-m', '-d', `@${(st.mtimeMs / 1000 + 0.000001).toFixed(9)}`, a]);
    assert.equal(Math.floor(statSync(a).mtimeMs / 1000), Math.floor(st.mtimeMs / 1000), 'the same second');
    const changed = await copy(raw);
    assert.equal(changed.outcome.result, 'success', changed.outcome.message);
    assert.equal(readlinkSync(join(target, 'current')), join('snapshots', changed.ctx.runId), 'a new copy');
    assert.equal(readFileSync(join(target, 'current', 'data', 'a.txt'), 'utf8'), readFileSync(a, 'utf8'));
    assert.deepEqual(listDir(join(target, 'snapshots')), [changed.ctx.runId]);

    // a name the filters now leave out is dropped from the copy, as a full copy would
    const excluding = { ...raw, source: { ...raw.source, exclude: ['*.tmp'] } };
    const dropped = await copy(excluding);
    assert.equal(dropped.outcome.result, 'success', dropped.outcome.message);
    assert.equal(readlinkSync(join(target, 'current')), join('snapshots', dropped.ctx.runId));
    assert.equal(existsSync(join(target, 'current', 'cache.tmp')), false);
  });

  it('an unchanged run whose current fails the scrub fails, keeps current, and the next run builds a new copy', async () => {
    const { src, target, raw } = setup({ verify: { scrub: '100%' } });
    writeFileSync(join(src, 'a.txt'), 'alpha\n');
    assert.equal((await copy(raw)).outcome.result, 'success');
    const before = readlinkSync(join(target, 'current'));
    // the copy's contents rot, size and time kept: rsync's quick check still calls it unchanged
    const rotten = join(target, 'current', 'a.txt');
    writeFileSync(rotten, 'ALPHA\n');
    execFileSync('touch', ['-m', '-r', join(src, 'a.txt'), rotten]);

    const failed = await copy(raw);
    assert.equal(failed.outcome.result, 'failed');
    assert.match(
      failed.outcome.message,
      /the rolling scrub found 1 file on the drive that did not match the source: a\.txt \(differs from the source from byte 0\)/,
    );
    assert.equal(readlinkSync(join(target, 'current')), before, 'current is kept');

    const next = await copy(raw);
    assert.equal(next.outcome.result, 'success', next.outcome.message);
    assert.equal(readlinkSync(join(target, 'current')), join('snapshots', next.ctx.runId), 'a new copy');
    assert.doesNotMatch(next.log.tail().join('\n'), /nothing changed since/);
  });

  it('a copy cancelled mid-way leaves the previous current intact, and the next run resumes and succeeds', async () => {
    const { src, target, raw } = setup();
    writeFileSync(join(src, 'old.txt'), 'the first copy\n');
    const first = await copy(raw);
    assert.equal(first.outcome.result, 'success', first.outcome.message);
    const firstCopy = realpathSync(join(target, 'current'));

    writeFileSync(join(src, 'old.txt'), 'the second copy\n');
    for (let i = 0; i < 8; i++) writeFileSync(join(src, `big-${i}`), Buffer.alloc(256 * 1024, i));
    await cancelledMidCopy({ ...raw, source: { ...(raw.source as object), lock: SLOW } });
    assert.equal(realpathSync(join(target, 'current')), firstCopy, 'current still names the first copy');
    assert.equal(readFileSync(join(target, 'current', 'old.txt'), 'utf8'), 'the first copy\n');
    assert.equal(diffTrees(firstCopy, join(target, 'current')), '');
    assert.ok(existsSync(join(target, 'snapshots', '.partial')), 'the staging copy is kept for the next run');
    assert.equal(existsSync(sourceLockFile(raw.state_dir)), false, 'the source lock is released');

    const next = await copy(raw);
    assert.equal(next.outcome.result, 'success', next.outcome.message);
    assert.equal(diffTrees(src, join(target, 'current')), '');
    assert.deepEqual(listDir(join(target, 'snapshots')), [next.ctx.runId]);
  });

  it('a file root cannot read (rsync exit 23) is a warning that names it; the rest is switched in', async () => {
    const { src, target, raw } = setup();
    awkwardTree(src);
    writeFileSync(join(src, 'unreadable'), '');
    // a write-only sysctl: even root is refused read access
    execFileSync('mount', ['--bind', '/proc/sys/vm/drop_caches', join(src, 'unreadable')]);
    try {
      const { outcome, warnings } = await copy(raw);
      assert.equal(outcome.result, 'warning', outcome.message);
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!.message, /exit 23/);
      assert.deepEqual(warnings[0]!.files, ['unreadable (Permission denied (13))']);
      assert.equal(existsSync(join(target, 'current', 'unreadable')), false);
      assert.equal(readFileSync(join(target, 'current', 'data', 'a.txt'), 'utf8'), 'alpha\n');
    } finally {
      execFileSync('umount', [join(src, 'unreadable')]);
    }
  });

  it('a file that vanishes during the copy (rsync exit 24) is a warning that names it', async () => {
    const { src, target, raw } = setup({ source: { lock: SLOW } });
    // at 1 MB/s rsync opens zz-late about 2 s after it starts; the first progress comes within milliseconds
    writeFileSync(join(src, 'a-big'), Buffer.alloc(1_000_000, 1));
    writeFileSync(join(src, 'b-middle'), Buffer.alloc(1_000_000, 2));
    writeFileSync(join(src, 'zz-late'), 'gone soon\n');
    let removed = false;
    const { outcome, warnings } = await copy(raw, {
      onProgress: () => {
        if (!removed) unlinkSync(join(src, 'zz-late'));
        removed = true;
      },
    });
    assert.equal(outcome.result, 'warning', outcome.message);
    assert.deepEqual(warnings[0]!.files, ['zz-late (vanished during the copy)']);
    assert.match(warnings[0]!.message, /exit 24/);
    assert.equal(statSync(join(target, 'current', 'b-middle')).size, 1_000_000);
  });

  it('a file rewritten within the same second at the same size is copied again, not linked stale', async () => {
    const { src, target, raw } = setup();
    writeFileSync(join(src, 'nonce'), 'aaaa');
    execFileSync('touch', ['-d', '2024-01-01 00:00:00.100000000', join(src, 'nonce')]);
    assert.equal((await copy(raw)).outcome.result, 'success');
    writeFileSync(join(src, 'nonce'), 'bbbb');
    execFileSync('touch', ['-d', '2024-01-01 00:00:00.900000000', join(src, 'nonce')]);
    const second = await copy(raw);
    assert.equal(second.outcome.result, 'success', second.outcome.message);
    assert.equal(readFileSync(join(target, 'current', 'nonce'), 'utf8'), 'bbbb');
  });

  it('a drive directory reached through a symlink keeps its current copy across runs', async () => {
    const { dir, src, target, raw } = setup();
    writeFileSync(join(src, 'f'), 'one');
    const via = join(dir, 'via-link');
    symlinkSync(target, via);
    const viaRaw = { ...raw, drives: [{ name: 'alpha', directory: via }] };
    const first = await copy(viaRaw);
    assert.equal(first.outcome.result, 'success', first.outcome.message);
    writeFileSync(join(src, 'f'), 'two');
    const second = await copy(viaRaw);
    assert.equal(second.outcome.result, 'success', second.outcome.message);
    assert.equal(readFileSync(join(target, 'current', 'f'), 'utf8'), 'two');
    assert.deepEqual(listDir(join(target, 'snapshots')), [second.ctx.runId]);
  });

  it('waits for the source lock held by another run, then copies', async () => {
    const { src, target, raw } = setup();
    writeFileSync(join(src, 'f'), 'x');
    const other = await acquireLock(sourceLockFile(raw.state_dir), { label: 'drive beta' });
    const t = testRun(raw);
    const running = runSteps([sync, verify], t.ctx, t.bus);
    while (!t.log.tail().some((l) => l.includes('waiting for the source')))
      await new Promise((r) => setTimeout(r, 20));
    assert.match(t.log.tail().join('\n'), /drive beta holds it/);
    assert.equal(
      existsSync(join(target, 'current')),
      false,
      'nothing copied while the other run holds the source',
    );
    other.release();
    const outcome = await running;
    assert.equal(outcome.result, 'success', outcome.message);
    assert.equal(readFileSync(join(target, 'current', 'f'), 'utf8'), 'x');
  });

  it('runs rsync under the lock prefix and names the prefix when it fails', async () => {
    const { dir, src, raw } = setup();
    writeFileSync(join(src, 'f'), 'x');
    const seen = join(dir, 'prefix-saw');
    const ok = await copy({
      ...raw,
      source: { path: src, lock: ['sh', '-c', 'echo "$@" > "$0"; exec "$@"', seen] },
    });
    assert.equal(ok.outcome.result, 'success', ok.outcome.message);
    assert.match(
      readFileSync(seen, 'utf8'),
      /^rsync -a -H -A -X --numeric-ids --delete .* -- \S+\/src\/ \S+\/snapshots\/\.partial\/$/m,
    );

    const bad = await copy({
      ...raw,
      source: { path: src, lock: ['sh', '-c', 'echo "repository is locked" >&2; exit 2'] },
    });
    assert.equal(bad.outcome.result, 'failed');
    assert.equal(bad.outcome.step, 'sync');
    assert.match(
      bad.outcome.message,
      /sh -c .* rsync exited with code 2 \(protocol incompatibility\): repository is locked/,
    );
  });

  it('the check of a changed source stops rsync, not the lock prefix: the prefix ends by itself and frees its lock', async () => {
    const drive = setup();
    const lockFile = join(drive.dir, 'source.flock');
    const ended = join(drive.dir, 'prefix-ended');
    // flock holds a lock while rsync runs, then notes that it ended (it would not, killed)
    const prefix = ['sh', '-c', 'l="$0"; e="$1"; shift; flock "$l" "$@"; echo "$?" >> "$e"', lockFile, ended];
    await changedUnder(prefix, drive);
    // the first run's copy, the second run's stopped check, its copy: the prefix ended each time.
    // The check's rsync is killed (137) at its first line, unless a dry run of two files ended
    // first (0: seen on a loaded machine)
    const [copied, checked, again] = readFileSync(ended, 'utf8').trim().split('\n');
    assert.deepEqual([copied, again], ['0', '0']);
    assert.match(checked ?? '', /^(137|0)$/);
    execFileSync('flock', ['-n', lockFile, 'true']);
  });

  it('the check of a changed source under a prefix that goes on once its rsync is killed, ignoring SIGTERM: killed after the grace', {
    timeout: 60_000,
  }, async () => {
    await changedUnder(STUBBORN, setup());
    assert.deepEqual(leftBehind(process.pid, processStart(process.pid)), [], 'nothing of the prefix is left');
  });

  it('a copy cancelled under a prefix that ignores SIGTERM: the whole tree killed after the grace, the run ends', {
    timeout: 60_000,
  }, async () => {
    const { src, target, raw } = setup();
    for (let i = 0; i < 8; i++) writeFileSync(join(src, `big-${i}`), Buffer.alloc(256 * 1024, i));
    await cancelledMidCopy({ ...raw, source: { path: src, lock: [...STUBBORN, ...SLOW] } });
    assert.equal(existsSync(join(target, 'current')), false, 'no copy switched in');
    assert.deepEqual(leftBehind(process.pid, processStart(process.pid)), [], 'nothing of the prefix is left');
  });

  it('refuses an empty source and a target inside the source', async () => {
    const empty = setup();
    const r1 = await copy(empty.raw);
    assert.match(r1.outcome.message, /is empty \(is it mounted\?\)/);
    assert.deepEqual(listDir(empty.target), []);

    const { dir, src, raw } = setup();
    writeFileSync(join(src, 'f'), 'x');
    const inside = join(src, 'drive');
    mkdirSync(inside);
    // the configuration refuses a directory inside source.path; through a symlink it cannot tell
    symlinkSync(inside, join(dir, 'link'));
    const r2 = await copy({ ...raw, drives: [{ name: 'alpha', directory: join(dir, 'link') }] });
    assert.match(r2.outcome.message, /inside the source .*read-only to offsite/);
    assert.deepEqual(listDir(inside), []);
  });

  it('takes over a plain copy at the top of a drive (the original setup) without copying it again', async () => {
    const { src, target, raw } = setup();
    awkwardTree(src);
    execFileSync('rsync', ['-aH', `${src}/`, `${target}/`]);
    writeFileSync(join(target, MARKER_FILE), '{"drive":"alpha"}');
    const oldIno = statSync(join(target, 'data', 'nested', 'b.bin')).ino;
    const { outcome } = await copy(raw);
    assert.equal(outcome.result, 'success', outcome.message);
    assert.equal(
      statSync(join(target, 'current', 'data', 'nested', 'b.bin')).ino,
      oldIno,
      'hard-linked from the old copy',
    );
    assert.deepEqual(
      listDir(target),
      [MARKER_FILE, 'current', 'snapshots'],
      'the old top-level copy is removed',
    );
    assert.equal(diffTrees(src, join(target, 'current')), '');
  });

  it('takes over a `current` that is a plain directory', async () => {
    const { src, target, raw } = setup();
    awkwardTree(src);
    execFileSync('rsync', ['-aH', `${src}/`, `${target}/current/`]);
    const oldIno = statSync(join(target, 'current', 'private')).ino;
    const { outcome, ctx } = await copy(raw);
    assert.equal(outcome.result, 'success', outcome.message);
    assert.equal(readlinkSync(join(target, 'current')), join('snapshots', ctx.runId));
    assert.equal(statSync(join(target, 'current', 'private')).ino, oldIno);
    assert.deepEqual(listDir(join(target, 'snapshots')), [ctx.runId]);
  });

  it('sync reports progress at most twice a second on a 5,000-file copy, ending at 100%; so does verify', async () => {
    const { src, raw } = setup();
    manyFiles(src, 5_000, 2_000);
    const t0 = performance.now();
    const { outcome, progress: all } = await copy(raw);
    const elapsedS = (performance.now() - t0) / 1000;
    assert.equal(outcome.result, 'success', outcome.message);
    // sync's reports end at its 100 %; verify's own (reading the copy back) follow
    const progress = all.slice(0, all.findIndex((p) => p.p.percent === 100) + 1);
    assert.ok(progress.length >= 1);
    assert.ok(
      progress.length <= 2 * elapsedS + 2,
      `${progress.length} progress calls in ${elapsedS.toFixed(2)} s`,
    );
    for (const step of [progress, all.slice(progress.length)])
      for (let i = 1; i < step.length; i++)
        assert.ok(step[i]!.at - step[i - 1]!.at >= 499 || i === step.length - 1, 'spaced by half a second');
    assert.equal(progress.at(-1)!.p.percent, 100);
    assert.equal(all.at(-1)!.p.percent, 100);
  });
});

describe('sync onto a mounted drive', () => {
  function filesystemDrive(extra: Record<string, unknown> = {}) {
    const s = setup(extra);
    const mountPoint = join(s.dir, 'mnt');
    mkdirSync(mountPoint);
    const raw = {
      ...s.raw,
      drives: [{ name: 'alpha', uuid: '0b1c2d3e-0000-4000-8000-000000000001', mount_point: mountPoint }],
    };
    return { ...s, mountPoint, raw };
  }

  it('refuses a bare mount point, and copies once the drive is mounted there', async () => {
    const { src, mountPoint, raw } = filesystemDrive();
    writeFileSync(join(src, 'f'), 'x');
    const bare = await copy(raw);
    assert.equal(bare.outcome.result, 'failed');
    assert.equal(
      bare.outcome.message,
      `${mountPoint} is not mounted: refusing to write to the bare mount point`,
    );
    assert.deepEqual(listDir(mountPoint), [], 'nothing written to the bare directory');

    const img = makeExt4(16);
    cleanup.push(() => img.detach());
    execFileSync('mount', [img.device, mountPoint]);
    cleanup.push(() => execFileSync('umount', ['-l', mountPoint]));
    const mounted = await copy(raw);
    assert.equal(mounted.outcome.result, 'success', mounted.outcome.message);
    assert.equal(readFileSync(join(mountPoint, 'current', 'f'), 'utf8'), 'x');
  });

  it('a full drive fails with "target full", leaves current intact and frees the partial copy', async () => {
    const { src, mountPoint, raw } = filesystemDrive();
    const img = makeExt4(16);
    cleanup.push(() => img.detach());
    execFileSync('mount', [img.device, mountPoint]);
    cleanup.push(() => execFileSync('umount', ['-l', mountPoint]));
    writeFileSync(join(src, 'small'), 'fits\n');
    const first = await copy(raw);
    assert.equal(first.outcome.result, 'success', first.outcome.message);
    const firstCopy = realpathSync(join(mountPoint, 'current'));

    for (let i = 0; i < 6; i++) writeFileSync(join(src, `big-${i}`), Buffer.alloc(4 * 1024 * 1024, i + 1));
    const full = await copy(raw);
    assert.equal(full.outcome.result, 'failed');
    assert.equal(full.outcome.step, 'sync');
    assert.match(full.outcome.message, /^target full: .*exited with code 11 .*No space left on device/);
    assert.equal(realpathSync(join(mountPoint, 'current')), firstCopy);
    assert.equal(readFileSync(join(mountPoint, 'current', 'small'), 'utf8'), 'fits\n');
    assert.equal(existsSync(join(mountPoint, 'snapshots', '.partial')), false, 'the partial copy is removed');
  });
});
