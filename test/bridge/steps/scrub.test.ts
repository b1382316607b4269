/**
 * The whole-drive scrub (`offsite scrub`'s step): every file of the current
 * copy read back and compared with the source where the source still has it;
 * a Borg repository checked by the real borg on a throwaway view; nothing in
 * the copy changes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Ledger } from '../../../bridge/ledger.js';
import { mountAt } from '../../../bridge/mounts.js';
import { runSteps } from '../../../bridge/run/runner.js';
import { scrub } from '../../../bridge/steps/scrub.js';
import { sync } from '../../../bridge/steps/sync.js';
import { verify } from '../../../bridge/steps/verify.js';
import { makeExt4 } from '../../helpers/loop.js';
import { testRun } from '../../helpers/run-context.js';
import { awkwardTree, tempDir } from '../../helpers/trees.js';
import { offsiteHere } from '../../units/cli.js';

const cleanup: (() => void)[] = [];

/** a run's sync and verify */
async function backup(raw: Record<string, unknown>) {
  const t = testRun(raw);
  return runSteps([sync, verify], t.ctx, t.bus);
}
after(() => {
  for (const c of cleanup) c();
});

/** a source copied once onto a directory drive */
async function copied(fill: (src: string) => void, verifyConfig: Record<string, unknown> = {}) {
  const dir = tempDir('offsite-scrub-step-');
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const src = join(dir, 'src');
  mkdirSync(src);
  fill(src);
  const target = join(dir, 'drive');
  mkdirSync(target);
  const raw = {
    state_dir: join(dir, 'state'),
    source: { path: src },
    drives: [{ name: 'alpha', directory: target }],
    verify: verifyConfig,
  };
  const first = await backup(raw);
  assert.equal(first.result, 'success', first.message);
  const scrubbing = async () => {
    const t = testRun(raw);
    const outcome = await runSteps([scrub], t.ctx, t.bus);
    return { outcome, log: t.log.tail().join('\n'), progress: t.progress };
  };
  return { dir, src, target, raw, current: join(target, 'current'), scrubbing };
}

/** every file's path, size, time and contents under `root` */
function fingerprint(root: string): string {
  return execFileSync(
    'sh',
    ['-c', 'find . -type f -printf "%p %s %T@\\n" | sort; find . -type f -exec cat {} + | sha256sum'],
    {
      cwd: root,
      encoding: 'utf8',
    },
  );
}

describe('offsite scrub (the step)', () => {
  it('reads every file back, records a full pass, reports progress, and changes nothing', async () => {
    const { current, scrubbing, dir } = await copied(awkwardTree);
    const before = fingerprint(current);
    const { outcome, log, progress } = await scrubbing();
    assert.equal(outcome.result, 'success', outcome.message);
    assert.match(
      log,
      /scrub: read 8 files \(70087 bytes\) back from the drive: 8 compared with the source, 0 changed there since and only read; borg check skipped \(the copy is not a Borg repository\)/,
    );
    assert.equal(progress.at(-1)?.p.percent, 100);
    assert.equal(fingerprint(current), before);
    const record = new Ledger(join(dir, 'state')).scrub('alpha')!;
    assert.equal(record.position_bytes, 0);
    assert.equal(record.copy_bytes, 70087);
    assert.ok(record.last_full_pass);
  });

  it('a file that rotted on the drive fails the scrub, is named, and the next copy copies it again', async () => {
    const { src, current, raw, scrubbing } = await copied(awkwardTree);
    const rotten = join(current, 'data', 'nested', 'b.bin');
    const body = readFileSync(rotten);
    body[500] = body[500]! ^ 1;
    writeFileSync(rotten, body);
    // the time to the nanosecond, as rot keeps it
    execFileSync('touch', ['-m', '-r', join(src, 'data', 'nested', 'b.bin'), rotten]);
    // a file the source has changed since the copy is only read from the drive
    writeFileSync(join(src, 'run.sh'), '#!/bin/sh\necho changed\n');
    const { outcome } = await scrubbing();
    assert.equal(outcome.result, 'failed');
    assert.equal(
      outcome.message,
      'the scrub found 1 file on the drive that did not match the source or could not be read: data/nested/b.bin (differs from the source from byte 500); the next copy compares their contents',
    );
    const next = await backup(raw);
    assert.equal(next.result, 'success', next.message);
    assert.deepEqual(
      readFileSync(join(raw.drives[0]!.directory, 'current', 'data', 'nested', 'b.bin')),
      Buffer.alloc(70_000, 7),
    );
  });

  it('a Borg repository is checked by borg on a throwaway view: the copy keeps its config untouched', async () => {
    const env = { ...process.env, BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes' };
    let repo = '';
    const { target, current, scrubbing } = await copied((src) => {
      repo = src;
      rmSync(src, { recursive: true });
      const data = `${src}.data`;
      mkdirSync(data);
      writeFileSync(join(data, 'a'), Buffer.alloc(200_000, 5));
      execFileSync('borg', ['init', '--encryption=none', src], { env, stdio: 'pipe' });
      execFileSync('borg', ['create', `${src}::one`, data], { env, stdio: 'pipe' });
    });
    const before = fingerprint(current);
    const ok = await scrubbing();
    assert.equal(ok.outcome.result, 'success', ok.outcome.message);
    assert.match(ok.log, /borg check --repository-only passed/);
    assert.equal(fingerprint(current), before, 'nothing in the copy changed, its config included');
    assert.deepEqual(
      readdirSync(join(target, 'snapshots')).filter((n) => n.startsWith('.')),
      [],
    );

    // a segment damaged on both sides alike: only borg can tell
    const segments = join('data', '0');
    const segment = readdirSync(join(repo, segments))
      .filter((n) => /^\d+$/.test(n))
      .map((n) => join(segments, n))
      .sort((a, b) => statSync(join(repo, b)).size - statSync(join(repo, a)).size)[0]!;
    const reference = join(target, 'segment-time');
    execFileSync('touch', ['-r', join(repo, segment), reference]);
    for (const root of [repo, current]) {
      const file = join(root, segment);
      const body = readFileSync(file);
      body[100] = body[100]! ^ 0xff;
      writeFileSync(file, body);
      execFileSync('touch', ['-m', '-r', reference, file]);
    }
    const bad = await scrubbing();
    assert.equal(bad.outcome.result, 'failed');
    assert.match(bad.outcome.message, /^borg check --repository-only failed on the copy/);
    assert.equal(existsSync(join(target, 'snapshots', '.borg-view')), false, 'the view is gone');
  });

  it('offsite scrub on a mounted drive: mount, scrub, unmount by the same steps; not a backup in the ledger', async () => {
    const dir = tempDir('offsite-scrub-cli-');
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const img = makeExt4(32);
    cleanup.push(() => img.detach());
    const src = join(dir, 'src');
    awkwardTree(src);
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    const file = join(dir, 'config.yaml');
    writeFileSync(
      file,
      JSON.stringify({
        state_dir: join(dir, 'state'),
        source: { path: src },
        drives: [{ name: 'alpha', uuid: img.uuid, mount_point: mnt }],
      }),
    );
    const cli = (...args: string[]) => offsiteHere([...args, '--config', file]);
    assert.equal((await cli('enrol', 'alpha')).exitCode, 0);
    const backup = await cli('run', 'alpha');
    assert.equal(backup.exitCode, 0, backup.stderr + backup.stdout);
    const ledger = new Ledger(join(dir, 'state'));
    const after = ledger.drive('alpha');

    const r = await cli('scrub', 'alpha');
    assert.equal(r.exitCode, 0, r.stderr + r.stdout);
    const said = r.stdout + r.stderr;
    for (const step of ['identify', 'mount', 'scrub', 'unmount'])
      assert.match(said, new RegExp(`alpha: ${step}: `));
    assert.doesNotMatch(said, /alpha: (sync|verify): /);
    assert.match(said, /read 8 files \(70087 bytes\) back from the drive: 8 compared with the source/);
    assert.equal(mountAt(mnt), null, 'unmounted again');
    assert.deepEqual(ledger.drive('alpha').last_success, after.last_success, 'a scrub is not a backup');
    assert.equal(ledger.history().length, 1);
    assert.ok(ledger.scrub('alpha')?.last_full_pass);

    const help = await offsiteHere(['scrub', '--help']);
    assert.equal(help.exitCode, 0);
    assert.match(help.stdout, /throwaway view/);
    const unknown = await cli('scrub', 'nosuch');
    assert.equal(unknown.exitCode, 2);
    assert.match(unknown.stderr, /no drive named "nosuch" in .*config\.yaml \(drives: alpha\)/);
    assert.match((await cli('scrub')).stderr, /which drive\? e\.g\. offsite scrub alpha/);
  });
});
