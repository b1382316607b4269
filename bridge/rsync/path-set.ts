/**
 * A set of relative paths held compactly: what a copy wrote, for verify to
 * read back. A first copy of a million small files writes a million names;
 * as JavaScript strings in a Set (and a Map of sizes, and an object each for
 * the reader) they cost about half a KiB of memory each. Here they are the
 * names' bytes (byte strings, byte-path.ts: one character a byte) in one buffer, with typed arrays beside it: where each name starts,
 * the size the verify walk saw, and an open-addressing hash table of indexes
 * for `has`. A name costs its bytes plus a few dozen (docs/benchmarks.md,
 * "offsite run memory"); `heldBytes()` says how much the whole set holds.
 *
 * Names come from rsync's output over a drive's and the source's contents:
 * they are only stored, compared and given back, never interpreted here.
 */

/** FNV-1a over `bytes[0, length)` */
function hash(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

export class PathSet {
  /** the names' bytes, one after the other */
  private data = Buffer.allocUnsafeSlow(4096);
  private used = 0;
  /** where name i starts in `data`; it ends where name i + 1 starts */
  private starts = new Float64Array(65);
  /** the size seen of name i (NaN: not seen) */
  private sizes = new Float64Array(64);
  /** index + 1 of a name, at its hash's slot or a later one (0: empty); never more than half full */
  private table = new Int32Array(128);
  private n = 0;
  private scratch = Buffer.allocUnsafeSlow(4096);

  constructor(paths: Iterable<string> = []) {
    this.sizes.fill(Number.NaN);
    for (const p of paths) this.add(p);
  }

  /** how many names */
  get count(): number {
    return this.n;
  }

  /** adds `path` (once: a name added again is ignored); its index */
  add(path: string): number {
    const found = this.index(path);
    if (found >= 0) return found;
    const length = this.encode(path);
    if (this.used + length > this.data.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(this.data.length * 2, this.used + length));
      this.data.copy(grown, 0, 0, this.used);
      this.data = grown;
    }
    this.scratch.copy(this.data, this.used, 0, length);
    if (this.n + 1 >= this.sizes.length) this.growEntries();
    const i = this.n++;
    this.starts[i] = this.used;
    this.used += length;
    this.starts[i + 1] = this.used;
    if (this.n * 2 > this.table.length) this.rehash(this.table.length * 2);
    else this.place(i);
    return i;
  }

  /** the index of `path`, or -1 */
  index(path: string): number {
    if (this.n === 0) return -1;
    const length = this.encode(path);
    const mask = this.table.length - 1;
    for (let slot = hash(this.scratch, 0, length) & mask; ; slot = (slot + 1) & mask) {
      const entry = this.table[slot]!;
      if (entry === 0) return -1;
      const i = entry - 1;
      const start = this.starts[i]!;
      if (
        this.starts[i + 1]! - start === length &&
        this.scratch.compare(this.data, start, start + length, 0, length) === 0
      )
        return i;
    }
  }

  has(path: string): boolean {
    return this.index(path) >= 0;
  }

  /** name `i` (0 <= i < count) */
  path(i: number): string {
    return this.data.toString('latin1', this.starts[i]!, this.starts[i + 1]!);
  }

  /** notes the size seen of name `i` */
  setSize(i: number, size: number): void {
    this.sizes[i] = size;
  }

  /** the size noted for name `i`, if any */
  size(i: number): number | undefined {
    const s = this.sizes[i]!;
    return Number.isNaN(s) ? undefined : s;
  }

  /** the bytes the set's buffers hold (what `count` names cost) */
  heldBytes(): number {
    return (
      this.data.length +
      this.starts.byteLength +
      this.sizes.byteLength +
      this.table.byteLength +
      this.scratch.length
    );
  }

  /** `path` (a byte string) into `scratch`; its length in bytes */
  private encode(path: string): number {
    if (path.length > this.scratch.length) this.scratch = Buffer.allocUnsafeSlow(path.length);
    return this.scratch.write(path, 0, 'latin1');
  }

  private growEntries(): void {
    const sizes = new Float64Array(this.sizes.length * 2).fill(Number.NaN);
    sizes.set(this.sizes);
    this.sizes = sizes;
    const starts = new Float64Array(sizes.length + 1);
    starts.set(this.starts);
    this.starts = starts;
  }

  private place(i: number): void {
    const mask = this.table.length - 1;
    let slot = hash(this.data, this.starts[i]!, this.starts[i + 1]!) & mask;
    while (this.table[slot] !== 0) slot = (slot + 1) & mask;
    this.table[slot] = i + 1;
  }

  private rehash(slots: number): void {
    this.table = new Int32Array(slots);
    for (let i = 0; i < this.n; i++) this.place(i);
  }
}
