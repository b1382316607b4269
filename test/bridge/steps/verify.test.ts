import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { excludeMatcher } from '../../../bridge/rsync/exclude.js';
import { runSteps } from '../../../bridge/run/runner.js';
import type { Step } from '../../../bridge/steps/step.js';
import { sync } from '../../../bridge/steps/sync.js';
import { verify } from '../../../bridge/steps/verify.js';
import { testRun } from '../../helpers/run-context.js';
import { awkwardTree, listDir, tempDir } from '../../helpers/trees.js';

const cleanup: (() => void)[] = [];
after(() => {
  for (const c of cleanup) c();
});

function setup(extra: { exclude?: string[]; verify?: Record<string, unknown> } = {}) {
  const dir = tempDir('offsite-verify-');
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'src');
  const target = join(dir, 'drive');
  mkdirSync(src);
  mkdirSync(target);
  awkwardTree(src);
  const raw = {
    state_dir: join(dir, 'state'),
    source: { path: src, exclude: extra.exclude ?? [] },
    drives: [{ name: 'alpha', directory: target }],
    verify: { borg_check: 'auto', ...extra.verify },
  };
  return { src, target, raw, staging: join(target, 'snapshots', '.partial') };
}

/** sync, then `tamper` with the staging copy, then verify */
async function runWith(raw: Record<string, unknown>, tamper: (staging: string) => void) {
  const t = testRun(raw);
  const staging = join(t.ctx.facts.target!, 'snapshots', '.partial');
  const step: Step = { name: 'tamper', title: 'tamper', run: async () => tamper(staging) };
  const outcome = await runSteps([sync, step, verify], t.ctx, t.bus);
  return { ...t, outcome };
}

describe('verify', () => {
  it('passes an exact copy, records free and total space, and switches it in', async () => {
    const { target, raw } = setup();
    const { outcome, ctx, log } = await runWith(raw, () => {});
    assert.equal(outcome.result, 'success', outcome.message);
    const df = execFileSync('df', ['-B1', '--output=size,avail', target], { encoding: 'utf8' })
      .trim()
      .split('\n')[1]!
      .trim()
      .split(/\s+/)
      .map(Number);
    assert.equal(ctx.facts.sizeBytes, df[0]);
    // the disk is shared with the other test files running alongside (images of tens of MiB come and go)
    assert.ok(Math.abs(ctx.facts.freeBytes! - df[1]!) < 512 * 1024 * 1024, 'free space as df reports it');
    assert.match(
      log.tail().join('\n'),
      /alpha: verify: 14 entries match \(8 files, \d+ bytes\), read back 7 written files \(70066 bytes\) and a scrub slice of 21 bytes from the drive \(a pass of the whole copy completed\); current is now snapshots\//,
    );
  });

  it('a file whose size differs in the copy fails verify, and the copy is not switched in', async () => {
    const { target, raw } = setup();
    const { outcome } = await runWith(raw, (s) => appendFileSync(join(s, 'data', 'a.txt'), 'more'));
    assert.equal(outcome.result, 'failed');
    assert.equal(outcome.step, 'verify');
    assert.match(
      outcome.message,
      /differs from the source in 1 place: data\/a\.txt: size 6 in the source, 10 in the copy/,
    );
    assert.deepEqual(listDir(target).includes('current'), false);
  });

  it('a different modification time, permissions, symlink target, a missing and an extra file are all named', async () => {
    const { raw } = setup();
    const { outcome } = await runWith(raw, (s) => {
      utimesSync(join(s, 'run.sh'), new Date(0), new Date(0));
      execFileSync('chmod', ['640', join(s, 'private')]);
      unlinkSync(join(s, 'to-a'));
      symlinkSync('data/elsewhere', join(s, 'to-a'));
      unlinkSync(join(s, 'data', 'nested', 'deeper', 'c.txt'));
      writeFileSync(join(s, 'data', 'stray'), 'x');
    });
    assert.equal(outcome.result, 'failed');
    assert.match(outcome.message, /in 5 places/);
    assert.match(
      outcome.message,
      /run\.sh: modified \S+ in the source, 1970-01-01T00:00:00\.000000000Z in the copy/,
    );
    assert.match(outcome.message, /private: permissions 600 in the source, 640 in the copy/);
    assert.match(
      outcome.message,
      /to-a: a symlink to "data\/a\.txt" in the source, to "data\/elsewhere" in the copy/,
    );
    assert.match(outcome.message, /data\/nested\/deeper\/c\.txt: missing from the copy/);
    assert.match(outcome.message, /data\/stray: in the copy but not in the source/);
  });

  it('a hard link split in the copy is caught', async () => {
    const { raw } = setup();
    const { outcome } = await runWith(raw, (s) => {
      const body = readFileSync(join(s, 'data', 'linked-2'));
      const { mtime } = statSync(join(s, 'data', 'linked-2'));
      unlinkSync(join(s, 'data', 'linked-2'));
      writeFileSync(join(s, 'data', 'linked-2'), body);
      utimesSync(join(s, 'data', 'linked-2'), mtime, mtime);
    });
    assert.match(outcome.message, /linked-2: a hard link in the source, a separate file in the copy/);
  });

  it('the checksum sample catches a change that keeps size and modification time', async () => {
    const { target, raw } = setup();
    const { outcome } = await runWith(raw, (s) => {
      const f = join(s, 'data', 'nested', 'b.bin');
      const ref = `${f}.ref`;
      execFileSync('cp', ['-p', f, ref]);
      const body = readFileSync(f);
      body[1234] = 0;
      writeFileSync(f, body);
      // the same time to the nanosecond, so only the contents differ
      execFileSync('touch', ['-r', ref, f]);
      unlinkSync(ref);
    });
    assert.equal(outcome.result, 'failed');
    assert.equal(
      outcome.message,
      'read back from the drive, 1 file this run wrote did not match the source: data/nested/b.bin (differs from the source from byte 1234); the next copy compares their contents',
    );
    assert.equal(listDir(target).includes('current'), false);

    // the next run copies that file again (rsync's size+time check alone would keep it)
    const next = await runWith(raw, () => {});
    assert.equal(next.outcome.result, 'success', next.outcome.message);
    assert.equal(readFileSync(join(target, 'current', 'data', 'nested', 'b.bin'))[1234], 7);
  });

  it('excluded files are left out on both sides, as rsync left them out', async () => {
    const { src, target, raw } = setup({ exclude: ['*.bin', '/private', 'deeper/'] });
    const { outcome } = await runWith(raw, () => {});
    assert.equal(outcome.result, 'success', outcome.message);
    const copy = join(target, 'current');
    assert.equal(listDir(join(copy, 'data', 'nested')).length, 0);
    assert.equal(listDir(copy).includes('private'), false);
    assert.ok(statSync(join(src, 'private')).isFile());
  });
});

describe('exclude patterns', () => {
  it('leave out exactly what rsync leaves out', () => {
    const dir = tempDir('offsite-exclude-');
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const src = join(dir, 'src');
    const paths = [
      'a.log',
      'keep.txt',
      'cache/x',
      'cache/y/z.log',
      'sub/cache/q',
      'sub/keep/cache',
      'tmp/t',
      'sub/tmp/t',
      'lock.roster',
      'data/0/1',
      'data/0/2.tmp',
      'data/10/3',
      'x[1]',
      'odd name.bak',
      'deep/a/b/c.bak',
      'm?n',
    ];
    for (const p of paths) {
      mkdirSync(join(src, p, '..'), { recursive: true });
      writeFileSync(join(src, p), p);
    }
    const patterns = [
      '*.log',
      'cache/',
      '/tmp',
      'lock.*',
      'data/*/2.tmp',
      'x\\[1\\]',
      '**/c.bak',
      'odd*',
      'data/1?/***',
    ];
    const copy = join(dir, 'copy');
    execFileSync('rsync', ['-a', ...patterns.map((p) => `--exclude=${p}`), `${src}/`, `${copy}/`]);
    const copied = execFileSync('find', ['.', '-mindepth', '1'], { cwd: copy, encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((p) => p.slice(2))
      .sort();

    const match = excludeMatcher(patterns);
    const kept: string[] = [];
    const walk = (rel: string) => {
      const entries = execFileSync(
        'find',
        [rel ? join(src, rel) : src, '-mindepth', '1', '-maxdepth', '1', '-printf', '%y %f\\n'],
        { encoding: 'utf8' },
      )
        .trim()
        .split('\n')
        .filter(Boolean);
      for (const e of entries) {
        const [type, ...rest] = e.split(' ');
        const path = rel ? `${rel}/${rest.join(' ')}` : rest.join(' ');
        if (match(path, type === 'd')) continue;
        kept.push(path);
        if (type === 'd') walk(path);
      }
    };
    walk('');
    assert.deepEqual(kept.sort(), copied);
  });
});
