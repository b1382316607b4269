/**
 * Reading the configuration's schema as data: which keys a section has, and
 * for each key its default and whether it is required. Error messages (the
 * key you probably meant), `doctor` and the example file's test use this, so
 * none of them keeps a second list of keys.
 */
import { z } from 'zod';
import type { KeyPath } from './errors.js';
import type { KeyMeta } from './meta.js';

/** One wrapper less (optional, default, a transform's input), or null for a bare schema. */
function inner(s: z.ZodType): z.ZodType | null {
  if (s instanceof z.ZodOptional || s instanceof z.ZodNullable || s instanceof z.ZodDefault)
    return s.unwrap() as z.ZodType;
  if (s instanceof z.ZodPipe) return s.in as z.ZodType;
  return null;
}

/** The schema under wrappers that do not change which keys there are. */
export function unwrap(s: z.ZodType): z.ZodType {
  for (let next = inner(s); next; next = inner(s)) s = next;
  return s;
}

/** The key's metadata (its description, ...), from whichever wrapper carries it. */
export function metaOf(s: z.ZodType): KeyMeta | undefined {
  for (let cur: z.ZodType | null = s; cur; cur = inner(cur)) {
    const m = z.globalRegistry.get(cur);
    if (m?.description) return m as KeyMeta;
  }
  return undefined;
}

/** The object schemas a value at `path` may be checked by (a union offers several). */
export function objectsAt(schema: z.ZodType, path: KeyPath): z.ZodObject[] {
  let here = [unwrap(schema)];
  for (const key of path) {
    here = here.flatMap((s) => {
      if (s instanceof z.ZodObject && typeof key === 'string' && key in s.shape)
        return [unwrap(s.shape[key] as z.ZodType)];
      if (s instanceof z.ZodArray && typeof key === 'number') return [unwrap(s.element as z.ZodType)];
      return [];
    });
    here = here.flatMap((s) =>
      s instanceof z.ZodUnion ? s.options.map((o) => unwrap(o as z.ZodType)) : [s],
    );
  }
  return here.filter((s): s is z.ZodObject => s instanceof z.ZodObject);
}

/** The keys a section at `path` may have. */
export function keysAt(schema: z.ZodType, path: KeyPath): string[] {
  return [...new Set(objectsAt(schema, path).flatMap((o) => Object.keys(o.shape)))];
}

export interface KeyInfo {
  /** e.g. ["drives", "*", "mount_point"]: "*" stands for any item of a list */
  path: string[];
  /** the default, when the key has one */
  default?: unknown;
  /** no default and not optional: the file must say it */
  required: boolean;
  /** a section (an object) rather than a value */
  section: boolean;
  meta?: KeyMeta;
  schema: z.ZodType;
}

/** The default as a file would write it (fileDefault when the schema holds it converted). */
function defaultOf(s: z.ZodType): { has: boolean; value?: unknown } {
  const meta = metaOf(s);
  if (meta && 'fileDefault' in meta) return { has: true, value: meta.fileDefault };
  for (let cur: z.ZodType | null = s; cur; cur = inner(cur))
    if (cur instanceof z.ZodDefault) {
      const d = cur._zod.def.defaultValue;
      return { has: true, value: typeof d === 'function' ? (d as () => unknown)() : d };
    }
  return { has: false };
}

function isOptional(s: z.ZodType): boolean {
  for (let cur: z.ZodType | null = s; cur; cur = inner(cur))
    if (cur instanceof z.ZodOptional || cur instanceof z.ZodDefault) return true;
  return false;
}

/** Every key of the schema, depth first, sections before their keys. */
export function allKeys(schema: z.ZodType, at: string[] = []): KeyInfo[] {
  const s = unwrap(schema);
  if (s instanceof z.ZodArray) return allKeys(s.element as z.ZodType, [...at, '*']);
  // a list item that may be a name or a section (led.nodes): the section's keys
  if (s instanceof z.ZodUnion) return s.options.flatMap((o) => allKeys(o as z.ZodType, at));
  if (!(s instanceof z.ZodObject)) return [];
  return Object.entries(s.shape).flatMap(([key, child]) => {
    const c = child as z.ZodType;
    const d = defaultOf(c);
    const meta = metaOf(c);
    const info: KeyInfo = {
      path: [...at, key],
      required: !isOptional(c),
      section: unwrap(c) instanceof z.ZodObject,
      schema: c,
      ...(meta ? { meta } : {}),
      // a default in words (node_id's host name) is no value a file would hold
      ...(d.has && !meta?.defaultText ? { default: d.value } : {}),
    };
    return [info, ...allKeys(c, [...at, key])];
  });
}

/** "drives[1].mount_point" as a path of the schema: ["drives", "*", "mount_point"] */
export function schemaPath(key: string): string[] {
  return key
    .replace(/\[\d+\]/g, '.*')
    .split('.')
    .filter(Boolean);
}

/** What a key is for, from the schema: "drives[0].mount_point" works as well as "drives.*.mount_point". */
export function describeKey(schema: z.ZodType, key: string): string | undefined {
  const want = schemaPath(key).join('.');
  return allKeys(schema).find((k) => k.path.join('.') === want)?.meta?.description;
}
