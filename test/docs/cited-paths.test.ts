/**
 * The docs point at tests and source files as their proof ("which test shows
 * it"): a cited file that does not exist proves nothing. Every repository path
 * the docs and the README name must be there.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';

const REPO = new URL('../..', import.meta.url).pathname;

function markdown(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return markdown(p);
    return e.name.endsWith('.md') ? [p] : [];
  });
}

/** repository paths in `text`: test/..., bridge/..., and the other top-level folders; not /etc/... or a URL's path */
function citedPaths(text: string): string[] {
  const found = text.matchAll(/(?<![\w./:-])(?:test|bridge|units|led-agent|bench|docs)\/[\w./-]*\w/g);
  return [...new Set([...found].map((m) => m[0]))];
}

describe('paths cited in the docs', () => {
  it('finds paths the way a reader sees them, and leaves system paths and URLs alone', () => {
    assert.deepEqual(
      citedPaths(
        'Tests: `test/e2e/untrusted.test.ts`, bridge/steps/marker.ts. In /etc/offsite/docs/x, see https://example.org/docs/page and test/bridge/ (a folder).',
      ),
      ['test/e2e/untrusted.test.ts', 'bridge/steps/marker.ts', 'test/bridge'],
    );
  });

  it('every test and source file named in docs/ and README.md exists', () => {
    const files = [join(REPO, 'README.md'), ...markdown(join(REPO, 'docs'))];
    const missing: string[] = [];
    let cited = 0;
    for (const file of files) {
      for (const path of citedPaths(readFileSync(file, 'utf8'))) {
        cited++;
        if (!existsSync(join(REPO, path))) missing.push(`${relative(REPO, file)}: ${path}`);
      }
    }
    assert.ok(cited > 50, `only ${cited} cited paths found: is the pattern still right?`);
    assert.deepEqual(missing, []);
  });
});
