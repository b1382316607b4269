/**
 * Whatever the file holds, loading it gives a configuration or a
 * configuration error that names the key (or the YAML line, or the top
 * level), and the command exits 2: never a stack trace. Random text, YAML
 * token soup, anchors and tags, and valid configurations with a value
 * replaced, a key added or one taken away (fast-check).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { ConfigError, loadConfig } from '../../bridge/config.js';
import { offsiteHere } from '../units/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'offsite-fuzz-'));
let n = 0;
function file(text: string): string {
  const f = join(dir, `${n++}.yaml`);
  writeFileSync(f, text);
  return f;
}

const VALID = {
  node_id: 'nas',
  state_dir: '/var/lib/offsite',
  source: { path: '/srv/backup', lock: ['borg', 'with-lock', '/srv/backup'], exclude: ['*.tmp'] },
  overdue_after_days: 35,
  drives: [
    {
      name: 'alpha',
      luks_uuid: '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0',
      key_file: '/etc/offsite/keys/alpha.key',
      mount_point: '/mnt/offsite/alpha',
    },
    { name: 'bravo', uuid: '1c2d3e4f-5061-7283-94a5-b6c7d8e9f0a1', mount_point: '/mnt/offsite/bravo' },
    { name: 'scratch', directory: '/tmp/offsite-target' },
  ],
  verify: { borg_check: 'auto' },
  mqtt: {
    url: 'mqtt://127.0.0.1:1883',
    base_topic: 'offsite',
    username: 'offsite',
    password_file: 'mqtt.password',
  },
  email: { smtp: { host: '127.0.0.1', port: 25 }, from: 'nas@example.org', to: ['me@example.org'] },
  led: {
    driver: 'sysfs',
    path: '/sys/class/leds/nas:rgb:status',
    states: { failed: { color: '#ff0000', pattern: 'blink' } },
  },
};

/** every path to a value in VALID, e.g. ["drives", 1, "mount_point"] */
function paths(v: unknown, at: Array<string | number> = []): Array<Array<string | number>> {
  if (Array.isArray(v)) return [at, ...v.flatMap((x, i) => paths(x, [...at, i]))];
  if (v && typeof v === 'object') return [at, ...Object.entries(v).flatMap(([k, x]) => paths(x, [...at, k]))];
  return [at];
}
const PATHS = paths(VALID).filter((p) => p.length > 0);

type Mutation =
  | { kind: 'set'; path: Array<string | number>; value: unknown }
  | { kind: 'delete' | 'add'; path: Array<string | number>; key: string };

function mutate(base: unknown, m: Mutation): unknown {
  const copy = structuredClone(base) as Record<string | number, unknown>;
  let parent: Record<string | number, unknown> = copy;
  for (const k of m.path.slice(0, -1)) {
    const next = parent[k];
    // an earlier mutation replaced a section with something else: this one has nothing to change
    if (!next || typeof next !== 'object') return copy;
    parent = next as Record<string | number, unknown>;
  }
  const last = m.path[m.path.length - 1]!;
  if (m.kind === 'set') parent[last] = m.value;
  else if (m.kind === 'delete') {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  } else if (parent[last] && typeof parent[last] === 'object' && !Array.isArray(parent[last]))
    (parent[last] as Record<string, unknown>)[m.key] = 1;
  return copy;
}

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant('set' as const),
    path: fc.constantFrom(...PATHS),
    value: fc.oneof(
      fc.anything(),
      fc.string(),
      fc.constantFrom('', '-x', '/', '../..', 'a\nb', null, [], {}),
    ),
  }),
  fc.record({
    kind: fc.constantFrom('delete' as const, 'add' as const),
    path: fc.constantFrom(...PATHS),
    key: fc.string({ minLength: 1, maxLength: 8 }),
  }),
);

const mutated = fc
  .array(mutation, { minLength: 1, maxLength: 4 })
  .map((ms) => stringify(ms.reduce(mutate, VALID)));

const TOKENS = [
  'a',
  'source',
  'path',
  'drives',
  ':',
  ': ',
  '- ',
  '\n',
  '  ',
  '\t',
  '[',
  ']',
  '{',
  '}',
  ',',
  '"',
  "'",
  '&x ',
  '*x',
  '*y',
  '!!binary ',
  '!!str ',
  '!!map',
  '!!set',
  '!custom ',
  '<<: ',
  '? ',
  '|',
  '>',
  '#',
  '---',
  '...',
  '%YAML 1.1',
  '@',
  '`',
  '0x1F',
  '1e400',
  '~',
  'null',
  '\u0000',
  '\uFEFF',
];
const soup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 40 }).map((t) => t.join(''));

const anyText = fc.oneof(
  { weight: 4, arbitrary: mutated },
  { weight: 2, arbitrary: soup },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  { weight: 1, arbitrary: fc.anything().map((v) => stringify(v) ?? '') },
);

/** true when the message says where: a key, a line of the YAML, the file, or the top level */
function saysWhere(e: ConfigError): boolean {
  return e.keyPath !== '' || /^(invalid YAML|the top level|no such file|cannot read)/.test(e.expected);
}

describe('loading any file', () => {
  it('gives a configuration or a ConfigError that says where, never anything else', () => {
    let loaded = 0;
    let refused = 0;
    fc.assert(
      fc.property(anyText, (text) => {
        try {
          loadConfig(file(text));
          loaded++;
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          assert.ok(saysWhere(e), e.message);
          assert.doesNotMatch(e.message, /\n\s+at /);
          refused++;
        }
      }),
      { numRuns: 1000 },
    );
    assert.ok(loaded > 20 && refused > 500, `${loaded} loaded, ${refused} refused`);
  });

  it('an alias without its anchor, or an alias bomb, is a YAML error (it was a ReferenceError)', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (const l of 'bcdefghi')
      bomb.push(
        `${l}: &${l} [${Array(10)
          .fill(`*${String.fromCharCode(l.charCodeAt(0) - 1)}`)
          .join(', ')}]`,
      );
    for (const text of ['source: *nowhere\n', `${bomb.join('\n')}\n`]) {
      try {
        loadConfig(file(text));
        assert.fail('loaded');
      } catch (e) {
        assert.ok(e instanceof ConfigError, String(e));
        assert.match(e.expected, /^invalid YAML: /);
      }
    }
  });

  it('the command exits 2 with one message, never a stack trace', async () => {
    await fc.assert(
      fc.asyncProperty(anyText, async (text) => {
        const f = file(text);
        let config: unknown = null;
        try {
          config = loadConfig(f);
        } catch {}
        // cleanup of a drive no configuration has: exit 2 either way, and nothing is touched
        const r = await offsiteHere(['cleanup', 'no_such_drive', '--config', f]);
        assert.equal(r.exitCode, 2, r.stderr);
        assert.doesNotMatch(r.stderr, /\n\s+at |Error:/, r.stderr);
        if (!config) assert.match(r.stderr, /configuration error: /);
      }),
      { numRuns: 150 },
    );
  });
});
