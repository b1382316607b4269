/**
 * What the long-running LED agent loads (docs/benchmarks.md, LED agent): not
 * zod, yaml, the configuration's schema, the ledger or the republishing, which
 * its short-lived child (led-agent/helper.ts) loads instead. Read from the
 * static imports of its sources: an import that is types only is erased.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, it } from 'node:test';

const REPO = join(import.meta.dirname, '..', '..');
const IMPORT = /^(?:import|export)\s+(type\s+)?(?:[^;]*?\s+from\s+)?'([^']+)';/gms;

/** Every module reachable from `entry` by imports that stay in the compiled JavaScript. */
function loaded(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    if (!file.endsWith('.ts')) return;
    for (const m of readFileSync(join(REPO, file), 'utf8').matchAll(IMPORT)) {
      const [, typeOnly, spec] = m as unknown as [string, string | undefined, string];
      if (typeOnly || spec.startsWith('node:')) continue;
      if (!spec.startsWith('.')) {
        visit(spec.split('/')[0]!);
        continue;
      }
      const ts = relative(REPO, join(REPO, dirname(file), spec)).replace(/\.js$/, '.ts');
      assert.ok(existsSync(join(REPO, ts)), `${file} imports ${spec}`);
      visit(ts);
    }
  };
  visit(entry);
  return seen;
}

describe('the long-running LED agent', () => {
  it('loads neither zod nor yaml nor the configuration, the ledger or the republishing', () => {
    const agent = new Set([...loaded('led-agent/cli.ts'), ...loaded('led-agent/main.ts')]);
    const kept = [
      'zod',
      'yaml',
      'bridge/config.ts',
      'bridge/protocol.ts',
      'bridge/ledger.ts',
      'bridge/homeassistant/republish.ts',
      'led-agent/helper.ts',
    ].filter((m) => agent.has(m));
    assert.deepEqual(kept, [], `the agent loads ${kept.join(', ')}`);
    assert.ok(agent.has('mqtt') && agent.has('bridge/payloads.ts'), [...agent].join(', '));
  });

  it('leaves them to its child, which reads the configuration and republishes', () => {
    const child = loaded('led-agent/helper.ts');
    for (const m of ['zod', 'yaml', 'bridge/config.ts', 'bridge/homeassistant/republish.ts'])
      assert.ok(child.has(m), m);
  });
});
