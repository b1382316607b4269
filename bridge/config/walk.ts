/**
 * Reading the configuration's schema as data: which keys a section has, and
 * for each key its default and whether it is required. Error messages (the
 * key you probably meant), `doctor` and the example file's test use this, so
 * none of them keeps a second list of keys.
 */
import { z } from 'zod';
import type { KeyPath } from './errors.js';

/** The schema under wrappers that do not change which keys there are. */
function unwrap(s: z.ZodType): z.ZodType {
  for (;;) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodNullable || s instanceof z.ZodDefault)
      s = s.unwrap() as z.ZodType;
    else if (s instanceof z.ZodPipe) s = s.in as z.ZodType;
    else return s;
  }
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
}

function defaultOf(s: z.ZodType): { has: boolean; value?: unknown } {
  for (;;) {
    if (s instanceof z.ZodDefault) {
      const d = s._zod.def.defaultValue;
      return { has: true, value: typeof d === 'function' ? (d as () => unknown)() : d };
    }
    if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap() as z.ZodType;
    else if (s instanceof z.ZodPipe) s = s.in as z.ZodType;
    else return { has: false };
  }
}

function isOptional(s: z.ZodType): boolean {
  for (;;) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodDefault) return true;
    if (s instanceof z.ZodNullable) s = s.unwrap() as z.ZodType;
    else if (s instanceof z.ZodPipe) s = s.in as z.ZodType;
    else return false;
  }
}

/** Every key of the schema, depth first, sections before their keys. */
export function allKeys(schema: z.ZodType, at: string[] = []): KeyInfo[] {
  const s = unwrap(schema);
  const items = s instanceof z.ZodArray ? unwrap(s.element as z.ZodType) : null;
  if (items) return allKeys(items, [...at, '*']);
  if (!(s instanceof z.ZodObject)) return [];
  return Object.entries(s.shape).flatMap(([key, child]) => {
    const c = child as z.ZodType;
    const d = defaultOf(c);
    const inner = unwrap(c);
    const section =
      inner instanceof z.ZodObject ||
      (inner instanceof z.ZodArray && unwrap(inner.element as z.ZodType) instanceof z.ZodObject);
    const info: KeyInfo = {
      path: [...at, key],
      required: !isOptional(c),
      section,
      ...(d.has ? { default: d.value } : {}),
    };
    return [info, ...allKeys(c, [...at, key])];
  });
}
