/**
 * What `offsite run` loads: a run without MQTT or email configured loads
 * neither mqtt.js nor nodemailer (together ~0.2 s of a run's start-up,
 * docs/benchmarks.md). A resolve hook records every package the process
 * resolves; nothing here is timed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { tempDir } from '../../helpers/trees.js';

const CLI = new URL('../../../bridge/cli.ts', import.meta.url).pathname;
const dir = tempDir('offsite-startup-');
after(() => rmSync(dir, { recursive: true, force: true }));

/** the packages (node_modules/<name>) a command resolves */
function packagesLoaded(args: string[]): Set<string> {
  const log = join(dir, `loaded-${Math.random().toString(16).slice(2)}`);
  writeFileSync(log, '');
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.LOADED_LOG, r.url + '\\n');
  return r;
}
`,
  );
  const register = join(dir, 'register.mjs');
  writeFileSync(
    register,
    `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hooks}`)});\n`,
  );
  const r = spawnSync(process.execPath, ['--import', register, '--import', 'tsx', CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, LOADED_LOG: log },
  });
  assert.equal(r.status, 0, r.stderr);
  const names = readFileSync(log, 'utf8')
    .split('\n')
    .map((url) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1])
    .filter((n): n is string => Boolean(n));
  return new Set(names);
}

describe('what a run loads', () => {
  it('without MQTT or email configured: neither mqtt.js nor nodemailer', () => {
    const source = join(dir, 'source');
    mkdirSync(source);
    writeFileSync(join(source, 'f'), 'x');
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      stringify({
        state_dir: join(dir, 'state'),
        source: { path: source },
        drives: [{ name: 'alpha', directory: join(dir, 'drive') }],
      }),
    );
    mkdirSync(join(dir, 'drive'));
    const enrol = packagesLoaded(['enrol', 'alpha', '--config', config]);
    assert.ok(enrol.has('zod'), 'the hook sees packages');
    const loaded = packagesLoaded(['run', 'alpha', '--config', config]);
    assert.ok(loaded.has('zod') && loaded.has('yaml'), [...loaded].join(', '));
    for (const heavy of ['mqtt', 'nodemailer', 'aedes'])
      assert.equal(loaded.has(heavy), false, `${heavy} was loaded: ${[...loaded].join(', ')}`);
  });
});
