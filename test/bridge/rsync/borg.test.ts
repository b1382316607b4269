/**
 * A Borg repository as the source, with the real borg: a run never changes
 * the copy it checks (borg check rewrites a repository's `config`), so an
 * unchanged repository gives no new snapshot on the next run.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runSteps } from '../../../bridge/run/runner.js';
import { sync } from '../../../bridge/steps/sync.js';
import { verify } from '../../../bridge/steps/verify.js';
import { testRun } from '../../helpers/run-context.js';
import { diffTrees, tempDir } from '../../helpers/trees.js';

const cleanup: (() => void)[] = [];
after(() => {
  for (const c of cleanup) c();
});

const BORG_ENV = { ...process.env, BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes' };

/** a real Borg repository with one archive */
function borgRepository(dir: string): string {
  const repo = join(dir, 'repo');
  const data = join(dir, 'data');
  mkdirSync(data);
  writeFileSync(join(data, 'a'), Buffer.alloc(300_000, 3));
  execFileSync('borg', ['init', '--encryption=none', repo], { env: BORG_ENV, stdio: 'pipe' });
  execFileSync('borg', ['create', `${repo}::one`, data], { env: BORG_ENV, stdio: 'pipe' });
  return repo;
}

describe('a Borg repository as the source', () => {
  it('an unchanged repository gives no new snapshot on the second run, and the copy is left as it was', async () => {
    const dir = tempDir('offsite-borg-');
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const repo = borgRepository(dir);
    const target = join(dir, 'drive');
    mkdirSync(target);
    const raw = {
      state_dir: join(dir, 'state'),
      source: { path: repo },
      drives: [{ name: 'alpha', directory: target }],
      verify: { borg_check: 'auto' },
    };
    const first = testRun(raw);
    const one = await runSteps([sync, verify], first.ctx, first.bus);
    assert.equal(one.result, 'success', one.message);
    const snapshot = readlinkSync(join(target, 'current'));
    const config = statSync(join(target, 'current', 'config'), { bigint: true });

    const second = testRun(raw);
    const two = await runSteps([sync, verify], second.ctx, second.bus);
    assert.equal(two.result, 'success', two.message);
    assert.equal(readlinkSync(join(target, 'current')), snapshot, 'current still names the first copy');
    assert.match(second.log.tail().join('\n'), /nothing changed since .*: no new copy/);
    const after = statSync(join(target, 'current', 'config'), { bigint: true });
    assert.equal(after.mtimeNs, config.mtimeNs, "the copy's config was not rewritten");
    assert.equal(diffTrees(repo, join(target, 'current')), '');
  });
});
