/** The steps that work on the drive's filesystem refuse to start without one. */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runSteps } from '../../../bridge/run/runner.js';
import { scrub } from '../../../bridge/steps/scrub.js';
import { sync } from '../../../bridge/steps/sync.js';
import { verify } from '../../../bridge/steps/verify.js';
import { testRun } from '../../helpers/run-context.js';
import { tempDir } from '../../helpers/trees.js';

const dir = tempDir('offsite-step-');
after(() => rmSync(dir, { recursive: true, force: true }));

describe('a step without a target', () => {
  for (const step of [sync, verify, scrub])
    it(`${step.name} fails saying identify/mount did not run`, async () => {
      const t = testRun({
        state_dir: join(dir, 'state'),
        source: { path: join(dir, 'source') },
        drives: [{ name: 'alpha', directory: join(dir, 'alpha') }],
      });
      delete t.ctx.facts.target;
      const outcome = await runSteps([step], t.ctx, t.bus);
      assert.equal(outcome.result, 'failed');
      assert.equal(outcome.step, step.name);
      assert.equal(outcome.message, 'no target directory (identify/mount did not run)');
    });
});
