/**
 * docs/config.example.yaml says "every key, set to its default": this keeps
 * it true. The file is what the schema renders (so a new key, default or
 * description shows up in it), every key of the schema is in it with its
 * description, loading it gives exactly the defaults, and the sections shown
 * commented out load once uncommented.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { renderExample, undescribedKeys } from '../../bridge/config/example.js';
import { schema } from '../../bridge/config/schema.js';
import { allKeys } from '../../bridge/config/walk.js';
import { parseConfig } from '../../bridge/config.js';
import { addDrive } from '../../units/prepare/config-edit.js';

const FILE = new URL('../../docs/config.example.yaml', import.meta.url).pathname;
const text = readFileSync(FILE, 'utf8');

/** The block that starts with `# <name>:` at the start of a line, uncommented, up to the next blank line. */
function uncommented(name: string): unknown {
  const lines = text.split('\n');
  const start = lines.indexOf(`# ${name}:`);
  assert.ok(start >= 0, `# ${name}: is in the file`);
  const end = lines.indexOf('', start);
  return parse(
    lines
      .slice(start, end < 0 ? undefined : end)
      .map((l) => l.slice(2))
      .join('\n'),
  );
}

describe('docs/config.example.yaml', () => {
  it('is what the schema renders (npm run docs:config writes it)', () => {
    assert.equal(text, renderExample(), 'run npm run docs:config');
  });

  it('has every key of the schema, each with its description', () => {
    assert.deepEqual(undescribedKeys(), []);
    const prose = text.replace(/^[ #]*/gm, '').replace(/\s+/g, ' ');
    for (const k of allKeys(schema)) {
      const name = k.path.at(-1)!;
      assert.match(text, new RegExp(`^[# ]*(- )?${name}:`, 'm'), k.path.join('.'));
      assert.ok(prose.includes(k.meta!.description), `${k.path.join('.')}: its description`);
    }
  });

  it('loads, and gives exactly the defaults', () => {
    const example = parseConfig(parse(text), FILE);
    const defaults = parseConfig({ source: { path: example.source.path } }, FILE);
    assert.deepEqual(example, defaults);
  });

  it('every value it sets is the default of its key', () => {
    const set = parse(text) as Record<string, unknown>;
    for (const k of allKeys(schema)) {
      if (k.path.includes('*')) continue;
      let v: unknown = set;
      for (const p of k.path) v = (v as Record<string, unknown> | undefined)?.[p];
      if (v === undefined || k.section) continue;
      if ('default' in k) assert.deepEqual(v, k.default, k.path.join('.'));
      else assert.ok(k.required, `${k.path.join('.')} is set without a default: it must be required`);
    }
  });

  it('what it shows commented out loads once uncommented: mqtt, email, drives', () => {
    const source = { path: '/srv/backup' };
    const mqtt = uncommented('mqtt') as { mqtt: unknown };
    assert.deepEqual(parseConfig({ source, ...mqtt }).mqtt, parseConfig({ source, mqtt: {} }).mqtt);
    const email = uncommented('email') as { email: { from: string; to: string[] } };
    assert.deepEqual(
      parseConfig({ source, ...email }).email,
      parseConfig({ source, email: { from: email.email.from, to: email.email.to } }).email,
    );
    const drives = parseConfig({ source, ...(uncommented('drives') as object) }).drives;
    assert.deepEqual(
      drives.map((d) => d.kind),
      ['luks', 'filesystem', 'directory'],
    );
  });

  it('prepare-drive adds drives to it as a list, one key a line', () => {
    const out = addDrive(text, {
      name: 'alpha',
      luks_uuid: '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0',
      key_file: '/etc/offsite/keys/alpha.key',
      mount_point: '/mnt/offsite/alpha',
    });
    assert.match(out, /^drives:\n {2}- name: alpha\n {4}luks_uuid: 0b1c2d3e/m);
    assert.deepEqual(
      parseConfig(parse(out)).drives.map((d) => d.name),
      ['alpha'],
    );
  });
});
