/**
 * The Home Assistant files in docs/ are what users paste: they must parse, and
 * name only entities and event fields that discovery and the bridge create.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { parseConfig } from '../../../bridge/config.js';
import { components, entityIds } from '../../../bridge/homeassistant/discovery.js';
import { DRIVE_KEYS, driveComponentKey } from '../../../bridge/homeassistant/drive-components.js';
import { EVENT_TYPES, eventSchema } from '../../../bridge/protocol.js';
import { ENTITY_ID } from './ha-rules.js';

const docs = new URL('../../../docs/homeassistant/', import.meta.url);
/** the configuration the docs are written for: node "nas", drives "alpha" and "bravo" */
const example = parseConfig({
  node_id: 'nas',
  source: { path: '/srv/backup' },
  drives: [
    { name: 'alpha', directory: '/mnt/alpha' },
    { name: 'bravo', directory: '/mnt/bravo' },
  ],
});
const created = new Set(entityIds(example));

/** `!input name` as Home Assistant's blueprint loader reads it */
const inputTag = { tag: '!input', resolve: (name: string) => ({ input: name }) };

function read(name: string, customTags: (typeof inputTag)[] = []): unknown {
  return parse(readFileSync(new URL(name, docs), 'utf8'), { customTags, strict: true });
}

/** every string in a parsed YAML document that looks like an entity id */
function entityRefs(node: unknown, out: string[] = []): string[] {
  if (typeof node === 'string' && /^(sensor|binary_sensor|event)\./.test(node)) out.push(node);
  else if (Array.isArray(node)) for (const n of node) entityRefs(n, out);
  else if (node && typeof node === 'object') for (const v of Object.values(node)) entityRefs(v, out);
  return out;
}

describe('docs/homeassistant', () => {
  it('the dashboard card parses and names only entities discovery creates', () => {
    const card = read('offsite-card.yaml') as { type: string; cards: unknown[] };
    assert.equal(card.type, 'vertical-stack');
    const refs = entityRefs(card);
    assert.ok(refs.length > 10);
    for (const id of refs) {
      assert.match(id, ENTITY_ID);
      assert.ok(created.has(id), `${id} is not created by discovery`);
    }
    // both drives side by side, each with where it is, its age and its last result (and the rest)
    const grid = card.cards.find((c) => (c as { type: string }).type === 'grid') as {
      columns: number;
      cards: unknown[];
    };
    assert.equal(grid.columns, 2);
    const all = components(example);
    grid.cards.forEach((column, i) => {
      const drive = example.drives[i]!.name;
      const ids = new Set(entityRefs(column));
      for (const key of DRIVE_KEYS)
        assert.ok(ids.has(all[driveComponentKey(drive, key)]!.default_entity_id), `${drive} ${key}`);
    });
    // the live run
    for (const key of ['state', 'progress', 'step', 'eta'])
      assert.ok(refs.includes(all[key]!.default_entity_id), `the run's ${key}`);
  });

  it('the blueprint parses, takes the event entity, and uses only event types and fields the bridge sends', () => {
    const text = readFileSync(new URL('offsite-notify.blueprint.yaml', docs), 'utf8');
    const bp = read('offsite-notify.blueprint.yaml', [inputTag]) as {
      blueprint: {
        domain: string;
        input: Record<string, { selector: Record<string, { filter: unknown[] }> }>;
      };
      triggers: { trigger: string; entity_id: { input: string } }[];
      actions: { domain: string; type: string; device_id: { input: string }; data: { tag: string } }[];
    };
    assert.equal(bp.blueprint.domain, 'automation');
    const inputs = bp.blueprint.input;
    // every !input names a declared input
    for (const m of text.matchAll(/!input (\w+)/g)) assert.ok(m[1]! in inputs, `input ${m[1]}`);

    const trigger = bp.triggers[0]!;
    assert.equal(trigger.trigger, 'state');
    const eventInput = inputs[trigger.entity_id.input]!;
    assert.deepEqual(eventInput.selector.entity!.filter, [{ integration: 'mqtt', domain: 'event' }]);
    // the entity that selector finds: discovery's event entity
    const events = Object.values(components(example)).filter((c) => c.p === 'event');
    assert.deepEqual(
      events.map((c) => c.default_entity_id),
      ['event.offsite_nas_event'],
    );

    for (const m of text.matchAll(/kind (?:==|in) \[?([^\]}]+)/g))
      for (const q of m[1]!.matchAll(/'(\w+)'/g))
        assert.ok((EVENT_TYPES as readonly string[]).includes(q[1]!), `event type ${q[1]}`);
    const fields = Object.keys(eventSchema.shape);
    for (const m of text.matchAll(/attributes\.(\w+)/g))
      assert.ok(fields.includes(m[1]!), `event field ${m[1]}`);

    const notify = bp.actions[0]!;
    assert.deepEqual([notify.domain, notify.type], ['mobile_app', 'notify']);
    assert.deepEqual(inputs[notify.device_id.input]!.selector.device!.filter, [
      { integration: 'mobile_app' },
    ]);
    assert.match(
      notify.data.tag,
      /\{\{ drive \}\}/,
      'one tag per drive: a new notification replaces the old',
    );
    assert.ok(entityRefs(bp).every((id) => created.has(id)));
  });
});
