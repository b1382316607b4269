/** docs/design.md §4: two drives plugged at once serialize on the source; neither corrupts the other. */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../bridge/config.js';
import { createLogger } from '../../../bridge/log.js';
import { reportersFor } from '../../../bridge/reporters/index.js';
import { runDrive } from '../../../bridge/run/run-drive.js';
import { stepsFor } from '../../../bridge/steps/index.js';
import { enrolDrive } from '../../../units/prepare/enrol.js';
import { awkwardTree, diffTrees, manyFiles, tempDir } from '../../helpers/trees.js';

const out = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;

describe('two drives at once', () => {
  it('wait for each other on the source lock and both end with a complete copy', async () => {
    const dir = tempDir('offsite-two-');
    const source = join(dir, 'source');
    awkwardTree(source);
    manyFiles(join(source, 'many'), 2000, 512);
    for (const d of ['alpha', 'bravo']) mkdirSync(join(dir, d));
    const config = parseConfig({
      state_dir: join(dir, 'state'),
      // slow enough that the two runs overlap
      source: { path: source, rsync_args: ['--bwlimit=2000'] },
      drives: [
        { name: 'alpha', directory: join(dir, 'alpha') },
        { name: 'bravo', directory: join(dir, 'bravo') },
      ],
    });
    for (const drive of config.drives) await enrolDrive(config, drive, { force: false });
    const lines: string[] = [];
    const log = createLogger({ write: (_level, line) => lines.push(line) });
    const [a, b] = await Promise.all(
      config.drives.map(async (drive) =>
        runDrive(config, drive, { ...(await reportersFor(config, log, out)), steps: stepsFor(drive) }),
      ),
    );
    assert.equal(a!.result, 'success', a!.message);
    assert.equal(b!.result, 'success', b!.message);
    assert.ok(
      lines.some((l) =>
        /^(alpha|bravo): waiting for the source: drive (alpha|bravo), run .* holds it since/.test(l),
      ),
      lines.join('\n'),
    );
    assert.equal(diffTrees(source, join(dir, 'alpha', 'current')), '');
    assert.equal(diffTrees(source, join(dir, 'bravo', 'current')), '');
  });
});
