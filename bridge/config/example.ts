/**
 * docs/config.example.yaml, written from the schema: every key with its
 * description, set to its default; a key without one commented out with an
 * example (a required one set to it). `npm run docs:config` writes the file;
 * test/bridge/config-example.test.ts checks it is what this gives.
 */
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { z } from 'zod';
import { schema } from './schema.js';
import { allKeys, type KeyInfo, metaOf, unwrap } from './walk.js';

const WIDTH = 100;

const HEADER = `# /etc/offsite/config.yaml: every key, set to its default, and what it is for. A key
# without a default is commented out with an example (a required one is set to it).
# Written from the configuration's schema (bridge/config/schema.ts) by \`npm run docs:config\`.
# \`offsite doctor\` checks that the system agrees with the file.
`;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return line ? [...lines, line] : lines;
}

/** A value on one line, as YAML's flow style writes it. */
function flow(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(flow).join(', ')}]`;
  if (v && typeof v === 'object')
    return `{ ${Object.entries(v)
      .map(([k, x]) => `${k}: ${flow(x)}`)
      .join(', ')} }`;
  return stringify(v, { lineWidth: 0 }).trimEnd();
}

/** A list whose items are sections (drives, led.nodes): described key by key. */
function itemKeys(info: KeyInfo): KeyInfo[] {
  const depth = info.path.length + 1;
  return allKeys(schema).filter(
    (k) => k.path.length === depth + 1 && k.path.slice(0, depth).join('.') === [...info.path, '*'].join('.'),
  );
}

function note(k: KeyInfo): string {
  if (k.meta?.defaultText) return ` (default: ${k.meta.defaultText})`;
  if ('default' in k) return ` (default: ${flow(k.default)})`;
  return k.required ? ' (required)' : '';
}

function comments(k: KeyInfo, said: Set<string>, width: number): string[] {
  const text = k.meta?.description ?? '';
  if (said.has(text)) return [];
  said.add(text);
  const lines = wrap(text, width);
  if (k.meta?.defaultText) lines.push(...wrap(`Default: ${k.meta.defaultText}.`, width));
  const items = itemKeys(k);
  if (items.length) {
    lines.push('Each has:');
    for (const item of items) {
      const [first = '', ...rest] = wrap(
        `${item.path.at(-1)}: ${item.meta?.description ?? ''}${note(item)}`,
        width - 2,
      );
      lines.push(`  ${first}`, ...rest.map((r) => `    ${r}`));
    }
  }
  return lines.map((l) => `# ${l}`);
}

/**
 * The keys of the section at `path`, rendered at `indent`. `given`: the
 * section's own default, which sets keys that have none of their own
 * (led.states.running.color).
 */
function section(
  path: string[],
  indent: string,
  said: Set<string>,
  given?: Record<string, unknown>,
  /** columns taken by the "# " of a commented-out section around this one */
  margin = 0,
): string[] {
  const width = WIDTH - margin - indent.length - 2;
  const keys = allKeys(schema).filter(
    (k) => k.path.length === path.length + 1 && k.path.slice(0, path.length).join('.') === path.join('.'),
  );
  return keys.flatMap((key, i) => {
    let k = key;
    const name = k.path.at(-1)!;
    const top = path.length === 0;
    const out: string[] = top && i > 0 ? [''] : [];
    out.push(...comments(k, said, width).map((l) => indent + l));
    const example = k.meta?.examples?.[0];
    if (given && name in given && !('default' in k)) k = { ...k, default: given[name] };
    if (k.section) {
      const own = 'default' in k ? (k.default as Record<string, unknown>) : undefined;
      // a section with no default that the file need not have (mqtt, email): shown, commented out
      const off = !k.required && !('default' in k);
      const inner = margin + indent.length + (off ? 2 : 0);
      const body = [`${name}:`, ...section(k.path, '  ', said, own, inner)];
      out.push(...body.map((l) => indent + (off ? `# ${l}` : l)));
    } else if ('default' in k) {
      out.push(`${indent}${name}: ${flow(k.default)}`);
      const isList = unwrap(k.schema) instanceof z.ZodArray;
      if (isList && example !== undefined)
        out.push(...block(name, example, width).map((l) => `${indent}# ${l}`));
    } else if (k.required) out.push(`${indent}${name}: ${flow(example)}`);
    else out.push(`${indent}# ${name}: ${flow(example)}`);
    return out;
  });
}

/** A list as a block to uncomment: one line per item, or one per key of an item too long for that. */
function block(name: string, items: unknown, width: number): string[] {
  return [
    `${name}:`,
    ...(items as unknown[]).flatMap((item) => {
      const line = `  - ${flow(item)}`;
      if (line.length <= width || !item || typeof item !== 'object') return [line];
      return Object.entries(item).map(([k, v], i) => `  ${i ? ' ' : '-'} ${k}: ${flow(v)}`);
    }),
  ];
}

export function renderExample(): string {
  const lines = section([], '', new Set());
  return `${HEADER}\n${lines.join('\n')}\n`;
}

/** Every key has a description: the example, doctor and error messages rely on it. */
export function undescribedKeys(): string[] {
  return allKeys(schema)
    .filter((k) => !metaOf(k.schema)?.description)
    .map((k) => k.path.join('.'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  process.stdout.write(renderExample());
