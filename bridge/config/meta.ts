/**
 * What the schema says of each key besides its type: a description (the
 * documentation of the key), an example, a default in words.
 */

// a type, not an interface: zod's metadata takes any string key
export type KeyMeta = {
  description: string;
  /** an example value, for a key the file need not set */
  examples?: unknown[];
  /** the default in words, when it is not a fixed value (e.g. the host name) */
  defaultText?: string;
  /** the default as the file writes it, when the schema's default is already converted */
  fileDefault?: unknown;
};
export const about = (meta: KeyMeta) => meta;
