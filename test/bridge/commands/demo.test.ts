/** `offsite demo`: the README's first command, as a user runs it (no root needed, nothing left behind). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';

const CLI = new URL('../../../bridge/cli.ts', import.meta.url).pathname;

describe('offsite demo', () => {
  it('backs up onto two drives through the embedded broker, shows the LED and Home Assistant, and cleans up', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'demo', '--files', '30'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const out = r.stdout;
    const dir = /^offsite demo in (\S+)$/m.exec(out)?.[1];
    assert.ok(dir, out);
    for (const drive of ['alpha', 'bravo']) {
      assert.match(out, new RegExp(`^${drive}: done in .*: safe to remove$`, 'm'));
      assert.match(out, new RegExp(`^LED running \\(#33c280\\): demo: ${drive} running$`, 'm'));
      assert.match(out, new RegExp(`^LED success \\(#00ff00\\): demo: ${drive} success$`, 'm'));
      assert.match(out, new RegExp(`^HA   status success · ${drive}`, 'm'));
      assert.match(
        out,
        new RegExp(
          `^${drive}\\s+\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}\\s+under a day\\s+no\\s+yes\\s+.*\\s+success$`,
          'm',
        ),
      );
    }
    assert.match(out, /^HA {3}discovered device "offsite demo": \d+ sensor, \d+ binary_sensor, 1 event$/m);
    // the overdue reminder is told before the first backup starts, not in the middle of it
    const overdue = out.search(/^LED overdue \(#ffbf00, pulse\): demo: every drive overdue/m);
    assert.ok(overdue > 0 && overdue < out.indexOf('Plug in drive alpha:'), out);
    // what the demo says it changed is what it changed: an existing document, edited
    assert.match(
      out,
      /^A week later: a document was edited \(a recipe added to "recettes de grand-mère\.txt"\)\.$/m,
    );
    assert.equal(existsSync(dir!), false, 'the temporary directory is removed');
  });

  it('--help tells the story the demo runs: bravo is a drive of its own and gets a whole copy', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, 'demo', '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const help = r.stdout.replace(/\s+/g, ' ');
    assert.match(help, /backs up onto bravo \(a drive of its own, so it gets a whole copy too;/);
    assert.doesNotMatch(help, /so the second copy is quick/);
  });
});
