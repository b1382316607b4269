import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { rsyncArgs } from '../../../bridge/rsync/args.js';
import { classifyExit, exitMeaning } from '../../../bridge/rsync/exit-codes.js';
import { problemFiles, warningFileList } from '../../../bridge/rsync/file-list.js';
import { LineSplitter, parseProgressLine, toCheck } from '../../../bridge/rsync/progress.js';
import { runRsync } from '../../../bridge/rsync/run-rsync.js';
import { Throttle } from '../../../bridge/throttle.js';
import { tempDir } from '../../helpers/trees.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function sourceOf(files: number, size: number): { dir: string; src: string; total: number } {
  const dir = tempDir('offsite-progress-');
  dirs.push(dir);
  const src = join(dir, 'src');
  mkdirSync(join(src, 'sub'), { recursive: true });
  for (let i = 0; i < files; i++) writeFileSync(join(src, 'sub', `f${i}`), Buffer.alloc(size, i % 251));
  return { dir, src, total: files * size };
}

describe('rsync --info=progress2 parsing', () => {
  it('reads every progress line of a real rsync run: bytes rise to the total, to-chk falls to 0', () => {
    const { dir, src, total } = sourceOf(200, 50_000);
    const out = execFileSync(
      'rsync',
      ['-a', '--no-inc-recursive', '--info=progress2', `${src}/`, join(dir, 'dst/')],
      {
        env: { ...process.env, LC_ALL: 'C.UTF-8' },
      },
    );
    const splitter = new LineSplitter();
    // feed it in awkward chunks, as a pipe would
    const lines: string[] = [];
    for (let i = 0; i < out.length; i += 7) lines.push(...splitter.push(out.subarray(i, i + 7)));
    lines.push(...splitter.end());
    const parsed = lines.map(parseProgressLine).filter((p) => p !== null);
    assert.equal(parsed.length, lines.length, `every line parses: ${JSON.stringify(lines.slice(0, 3))}`);
    assert.ok(parsed.length >= 200);
    for (let i = 1; i < parsed.length; i++)
      assert.ok(parsed[i]!.bytes >= parsed[i - 1]!.bytes, 'bytes never go back');
    const last = parsed.at(-1)!;
    assert.equal(last.bytes, total);
    assert.ok(last.percent >= 99);
    assert.deepEqual(toCheck(lines.at(-1)!), { left: 0, total: 202 });
  });

  it('understands rates in kB/MB/GB, hours in the ETA, other thousands separators and an unknown ETA', () => {
    assert.deepEqual(
      parseProgressLine('     29,900,007  99%  222.77MB/s    0:00:00 (xfr#300, to-chk=1/304)'),
      {
        bytes: 29_900_007,
        percent: 99,
        rate: Math.round(222.77 * 1024 * 1024),
        etaSeconds: 0,
      },
    );
    assert.deepEqual(parseProgressLine('              7   0%    0.00kB/s    0:00:00  '), {
      bytes: 7,
      percent: 0,
      rate: 0,
      etaSeconds: 0,
    });
    assert.deepEqual(
      parseProgressLine('  1.234.567.890  45%    1,50GB/s   12:03:04 (xfr#12, ir-chk=34/567)'),
      {
        bytes: 1_234_567_890,
        percent: 45,
        rate: Math.round(1.5 * 1024 ** 3),
        etaSeconds: 12 * 3600 + 3 * 60 + 4,
      },
    );
    assert.equal(parseProgressLine('  1,000  10%  1.00kB/s    ??:??:??')?.etaSeconds, null);
    assert.equal(parseProgressLine('sending incremental file list'), null);
    assert.equal(parseProgressLine(''), null);
  });

  it('splits on carriage returns and newlines across chunks, and UTF-8 split mid-character', () => {
    const s = new LineSplitter();
    const bytes = Buffer.from('one\rtw😀o\r\nthree\npartial');
    const got: string[] = [];
    for (const b of bytes) got.push(...s.push(Uint8Array.of(b)));
    got.push(...s.end());
    assert.deepEqual(got, ['one', 'tw😀o', 'three', 'partial']);
  });
});

describe('the progress throttle', () => {
  it('sends at most one value per interval, holds the latest, and flush sends the final one', () => {
    let now = 0;
    const sent: number[] = [];
    const t = new Throttle<number>(
      500,
      (v) => sent.push(v),
      () => now,
    );
    for (let i = 0; i < 100; i++) {
      t.push(i);
      now += 10; // 100 values over one second
    }
    assert.deepEqual(sent, [0, 50]);
    t.flush();
    assert.deepEqual(sent, [0, 50, 99]);
    t.flush(); // nothing held: nothing sent
    assert.deepEqual(sent, [0, 50, 99]);
    t.flush(100);
    assert.deepEqual(sent.at(-1), 100);
  });
});

describe('rsync exit codes and the files it names', () => {
  it('classifies ok, partial (23/24), target full and other errors', () => {
    assert.equal(classifyExit(0, '').kind, 'ok');
    assert.equal(
      classifyExit(23, 'rsync: [sender] send_files failed to open "/x": Permission denied (13)').kind,
      'partial',
    );
    assert.equal(classifyExit(24, 'file has vanished: "/x"').kind, 'partial');
    assert.equal(
      classifyExit(11, 'rsync: [receiver] write failed on "/t/f": No space left on device (28)').kind,
      'full',
    );
    assert.equal(
      classifyExit(12, 'rsync: [receiver] write failed on "/t/f": No space left on device (28)').kind,
      'full',
    );
    assert.equal(
      classifyExit(11, 'rsync: [receiver] write failed on "/t/f": Input/output error (5)').kind,
      'error',
    );
    assert.equal(classifyExit(20, '').kind, 'error');
    assert.equal(classifyExit(30, '').kind, 'error');
    assert.equal(exitMeaning(30), 'timeout in data send/receive');
    assert.equal(exitMeaning(99), 'unknown exit code');
  });

  it('lists the files of a real exit 23, relative to the source', () => {
    const { dir, src } = sourceOf(3, 10);
    // a dangling path given to --files-from is reported per file, like an unreadable one
    writeFileSync(join(dir, 'list'), 'sub/f0\nsub/ghost ünï\nsub/f2\n');
    const r = spawnSync(
      'rsync',
      ['-a', '-8', `--files-from=${join(dir, 'list')}`, `${src}/`, join(dir, 'dst/')],
      {
        encoding: 'utf8',
        env: { ...process.env, LC_ALL: 'C.UTF-8' },
      },
    );
    assert.equal(r.status, 23, r.stderr);
    const problems = problemFiles(r.stderr, [src]);
    assert.deepEqual(problems, [{ file: 'sub/ghost ünï', reason: 'No such file or directory (2)' }]);
  });

  it('reads the lines rsync prints for unreadable, vanished, unescapes \\#ooo, and caps the list', () => {
    const stderr = [
      'rsync: [sender] send_files failed to open "/srv/backup/data/1": Permission denied (13)',
      'file has vanished: "/srv/backup/data/2"',
      'rsync: [sender] opendir "/srv/backup/locked" failed: Permission denied (13)',
      'rsync: [receiver] rsync_xal_set: lsetxattr(""/t/snapshots/.partial/x"","user.a") failed: Operation not supported (95)',
      'rsync: [sender] readlink_stat("/srv/backup/bad\\#012name") failed: Input/output error (5)',
      'IO error encountered -- skipping file deletion',
      'rsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1338) [sender=3.5.0]',
    ].join('\n');
    const p = problemFiles(stderr, ['/srv/backup', '/t/snapshots/.partial']);
    assert.deepEqual(
      p.map((x) => x.file),
      ['data/1', 'data/2', 'locked', 'x', 'bad\nname'],
    );
    assert.equal(p[3]!.reason, 'Operation not supported (95)');
    assert.equal(p[1]!.reason, 'vanished during the copy');
    assert.equal(p[2]!.reason, 'Permission denied (13)');
    const many = Array.from({ length: 60 }, (_, i) => ({ file: `f${i}`, reason: 'r' }));
    const list = warningFileList(many);
    assert.equal(list.length, 51);
    assert.equal(list.at(-1), '... and 10 more');
  });
});

describe('running rsync', () => {
  it('builds the command line: trailing slashes, link-dest, excludes after the options', () => {
    assert.deepEqual(
      rsyncArgs({
        source: '/srv/backup',
        staging: '/mnt/a/snapshots/.partial',
        linkDest: '/mnt/a/snapshots/1',
        exclude: ['*.tmp'],
      }).slice(-6),
      [
        '-8',
        '--link-dest=/mnt/a/snapshots/1',
        '--exclude=*.tmp',
        '--',
        '/srv/backup/',
        '/mnt/a/snapshots/.partial/',
      ],
    );
  });

  it('reports a program that is not there, and kills the whole process group on abort', async () => {
    const missing = await runRsync(['/nonexistent/borg', 'with-lock', 'rsync']);
    assert.equal(missing.spawnError?.message.includes('ENOENT'), true);

    const ac = new AbortController();
    const { dir } = sourceOf(0, 0);
    const pidFile = join(dir, 'child.pid');
    // the prefix starts a grandchild that would outlive a kill of only the direct child
    const pending = runRsync(
      ['sh', '-c', `sleep 60 & echo $! > ${pidFile}; echo "  1,000  10%  1.00kB/s    0:00:09"; wait`],
      {
        signal: ac.signal,
        onProgress: () => ac.abort('test'),
      },
    );
    const r = await pending;
    assert.equal(r.code, null);
    assert.equal(r.signal, 'SIGTERM');
    assert.equal(r.last?.bytes, 1000);
    const pid = Number(execFileSync('cat', [pidFile], { encoding: 'utf8' }));
    // gone, or a zombie waiting for init to reap it
    const running = () => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
      } catch {
        return false;
      }
    };
    let alive = running();
    for (let i = 0; i < 50 && alive; i++) {
      await new Promise((res) => setTimeout(res, 20));
      alive = running();
    }
    assert.equal(alive, false, 'the grandchild is gone too');
  });
});
