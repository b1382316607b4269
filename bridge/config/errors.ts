/**
 * What a configuration problem says: the file, the key path and what was
 * expected, for every problem at once (one line each), a missing key called
 * "required" and an unknown one given the key it was probably meant to be.
 */
import type { z } from 'zod';
import { nearest } from '../nearest.js';
import type { Problem } from './config-error.js';
import { describeKey, keysAt } from './walk.js';

export { ConfigError, type Problem } from './config-error.js';

export type KeyPath = ReadonlyArray<PropertyKey>;

/** ["drives", 1, "mount_point"] is "drives[1].mount_point". */
export function keyPath(path: KeyPath): string {
  return path.reduce<string>(
    (acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k)),
    '',
  );
}

function valueAt(raw: unknown, path: KeyPath): unknown {
  let v = raw;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a text value',
  number: 'a number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a section of keys',
};

function bound(origin: string, limit: number | bigint, side: 'least' | 'most', exclusive: boolean): string {
  if (origin === 'array') return `at ${side} ${limit} item(s)`;
  if (origin === 'string') return `at ${side} ${limit} character(s)`;
  return exclusive ? `${side === 'least' ? 'more' : 'less'} than ${limit}` : `at ${side} ${limit}`;
}

/** zod's own wording ("Too small: expected number to be >=1"), in ours */
function reword(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${TYPE_WORDS[issue.expected] ?? issue.expected}`;
    case 'invalid_value':
      return `one of ${issue.values.map(String).join(', ')}`;
    case 'too_small':
      return issue.message.startsWith('Too small')
        ? bound(issue.origin, issue.minimum, 'least', issue.inclusive === false)
        : issue.message;
    case 'too_big':
      return issue.message.startsWith('Too big')
        ? bound(issue.origin, issue.maximum, 'most', issue.inclusive === false)
        : issue.message;
    case 'invalid_union': {
      const each = issue.errors.map((branch) => (branch[0] ? reword(branch[0]) : '')).filter(Boolean);
      return [...new Set(each)].join(', or ') || issue.message;
    }
    default:
      return issue.message;
  }
}

/** Every problem zod found in `raw`, worded for a person. */
export function problemsOf(issues: readonly z.core.$ZodIssue[], raw: unknown, schema: z.ZodType): Problem[] {
  const out: Problem[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = keysAt(schema, issue.path);
      for (const key of issue.keys) {
        const near = nearest(key, known);
        out.push({
          keyPath: keyPath([...issue.path, key]),
          expected: near
            ? `unknown key (did you mean ${near}?)`
            : `unknown key (known here: ${known.join(', ')})`,
        });
      }
    } else if (issue.code === 'invalid_type' && valueAt(raw, issue.path) === undefined) {
      const what = describeKey(schema, keyPath(issue.path));
      out.push({ keyPath: keyPath(issue.path), expected: what ? `required: ${what}` : 'required' });
    } else out.push({ keyPath: keyPath(issue.path), expected: reword(issue) });
  }
  return out.filter(
    (p, i) => out.findIndex((q) => q.keyPath === p.keyPath && q.expected === p.expected) === i,
  );
}
