/** What a configuration problem says: the file, the key path and what was expected. */

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly file: string;
  readonly keyPath: string;
  readonly expected: string;
  constructor(file: string, keyPath: string, expected: string) {
    super(`${file}: ${keyPath ? `${keyPath}: ` : ''}${expected}`);
    this.file = file;
    this.keyPath = keyPath;
    this.expected = expected;
  }
}

export type KeyPath = ReadonlyArray<PropertyKey>;

/** ["drives", 1, "mount_point"] is "drives[1].mount_point". */
export function keyPath(path: KeyPath): string {
  return path.reduce<string>(
    (acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k)),
    '',
  );
}
