/**
 * Read files of the copy back from the drive and compare them with the
 * source, byte for byte. The copy's side is opened with O_DIRECT: the bytes
 * come from the drive, not from the page cache they were just written
 * through, so a copy error or a bad sector shows now rather than at restore
 * time. (Dirty pages of a file are written back by the kernel before a direct
 * read of it.) Where the filesystem refuses O_DIRECT (tmpfs before Linux 6.6),
 * the copy is read through the cache and the result says so.
 *
 * A range may start inside a file (the rolling scrub continues where the last
 * run stopped); it is widened to the block size O_DIRECT needs.
 */
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';

export interface ReadRange {
  /** relative to both roots */
  file: string;
  /** first byte to compare */
  start: number;
  /** bytes to compare from `start`; the rest of the file when omitted */
  length?: number;
}

export interface ReadProblem {
  file: string;
  why: string;
}

export interface ReadBackResult {
  /** bytes read from the copy */
  bytes: number;
  files: number;
  problems: ReadProblem[];
  /** files gone from, or changed in, the source since they were listed: not compared */
  sourceChanged: string[];
  /** false when the filesystem refused O_DIRECT and the copy was read through the page cache */
  direct: boolean;
}

export interface ReadBackOptions {
  signal?: AbortSignal;
  /** bytes read so far (called once per chunk) */
  onBytes?(bytes: number): void;
  /**
   * a source file changed at or after this time (ms since the epoch) that does not
   * match is reported in `sourceChanged`, not as a problem: it was written after it was listed
   */
  changedSince?: number;
}

const CHUNK = 1 << 20;
/** the largest logical block size O_DIRECT may ask alignment to */
const MAX_ALIGN = 4096;
/** files compared at once: small files are dominated by open and seek, not by reading */
const CONCURRENCY = 2;

const { O_RDONLY, O_DIRECT, O_NOFOLLOW, O_NONBLOCK } = constants;
// never follow a link planted in the copy; never block on a FIFO put where a file was
const BASE_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;

/**
 * A chunk buffer whose start meets O_DIRECT's alignment. JavaScript cannot
 * see a buffer's address, so direct reads try each offset into an
 * over-sized buffer until the kernel accepts one; the buffer never moves. The
 * offset is kept only once a read proved that the kernel checks alignment (the
 * next offset fails): for a file smaller than a block, ext4 may serve a direct
 * read whatever the alignment.
 */
class DirectBuffer {
  private readonly raw = Buffer.allocUnsafeSlow(CHUNK + MAX_ALIGN);
  private offset: number | null = null;

  /** reads `length` (a multiple of the block size) at `position`; null when no alignment works */
  async read(fh: FileHandle, position: number, length: number): Promise<Buffer | null> {
    if (this.offset !== null) return this.at(fh, this.offset, length, position);
    for (let o = 0; o < MAX_ALIGN; o += STEP) {
      try {
        await this.at(fh, o, length, position);
      } catch (e) {
        if (isEinval(e)) continue;
        throw e;
      }
      const checked = await this.at(fh, o + STEP, MAX_ALIGN, position).then(
        () => false,
        (e) => isEinval(e),
      );
      if (checked) this.offset = o;
      // read again: the check wrote over the bytes just read
      return this.at(fh, o, length, position);
    }
    return null;
  }

  private async at(fh: FileHandle, o: number, length: number, position: number): Promise<Buffer> {
    const { bytesRead } = await fh.read(this.raw, o, length, position);
    return this.raw.subarray(o, o + bytesRead);
  }
}

/** malloc's alignment: every offset worth trying */
const STEP = 8;

function isEinval(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'EINVAL';
}

class Reader {
  private readonly copyBuf = new DirectBuffer();
  private readonly plainBuf = Buffer.allocUnsafeSlow(CHUNK);
  private readonly sourceBuf = Buffer.allocUnsafeSlow(CHUNK);
  private readonly source: string;
  private readonly copy: string;
  private readonly opts: ReadBackOptions;
  private readonly tally: (n: number) => void;
  direct = true;

  constructor(source: string, copy: string, opts: ReadBackOptions, tally: (n: number) => void) {
    this.source = source;
    this.copy = copy;
    this.opts = opts;
    this.tally = tally;
  }

  /** null: equal; SOURCE_CHANGED: not comparable; otherwise what differs */
  async compare(r: ReadRange): Promise<string | null> {
    let src: FileHandle;
    try {
      src = await open(join(this.source, r.file), BASE_FLAGS);
    } catch {
      return SOURCE_CHANGED;
    }
    try {
      for (;;) {
        const why = await this.compareWith(r, src);
        if (why !== NO_DIRECT) return why === null || !(await this.sourceChanged(src)) ? why : SOURCE_CHANGED;
        // this filesystem refuses O_DIRECT: read the copy through the cache
        this.direct = false;
      }
    } finally {
      await src.close();
    }
  }

  private async sourceChanged(src: FileHandle): Promise<boolean> {
    const since = this.opts.changedSince;
    if (since === undefined) return false;
    const st = await src.stat();
    return st.ctimeMs >= since || st.mtimeMs >= since;
  }

  private async compareWith(r: ReadRange, src: FileHandle): Promise<string | null> {
    const direct = this.direct;
    let cp: FileHandle;
    try {
      cp = await open(join(this.copy, r.file), BASE_FLAGS | (direct ? O_DIRECT : 0));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EINVAL' && direct) return NO_DIRECT;
      return `cannot be opened on the drive (${code})`;
    }
    try {
      const [ss, cs] = await Promise.all([src.stat(), cp.stat()]);
      if (!ss.isFile()) return SOURCE_CHANGED;
      if (!cs.isFile()) return 'is not a regular file on the drive';
      if (ss.size !== cs.size) return `size ${ss.size} in the source, ${cs.size} on the drive`;
      const end = Math.min(cs.size, r.length === undefined ? cs.size : r.start + r.length);
      // O_DIRECT reads whole blocks: start at a block boundary
      let pos = direct ? r.start - (r.start % MAX_ALIGN) : r.start;
      while (pos < end) {
        if (this.opts.signal?.aborted) throw this.opts.signal.reason;
        const want = direct ? Math.min(CHUNK, roundUp(end - pos)) : Math.min(CHUNK, end - pos);
        const expected = Math.min(want, cs.size - pos);
        const [copyRead, sourceRead] = await Promise.allSettled([
          direct ? this.copyBuf.read(cp, pos, want) : readInto(cp, this.plainBuf, pos, want),
          readExactly(src, this.sourceBuf, pos, expected),
        ]);
        if (copyRead.status === 'rejected')
          return `cannot be read from the drive at byte ${pos} (${errorCode(copyRead.reason)})`;
        if (sourceRead.status === 'rejected')
          return `cannot be read in the source at byte ${pos} (${errorCode(sourceRead.reason)})`;
        const theirs = copyRead.value;
        const ours = sourceRead.value;
        if (theirs === null) return NO_DIRECT;
        if (ours === null) return SOURCE_CHANGED;
        if (theirs.length < expected)
          return `ends at byte ${pos + theirs.length} on the drive, ${cs.size} expected`;
        const mine = theirs.subarray(0, expected);
        if (!mine.equals(ours))
          return `differs from the source from byte ${pos + firstDifference(mine, ours)}`;
        pos += expected;
        this.tally(expected);
      }
      return null;
    } finally {
      await cp.close();
    }
  }
}

async function readInto(fh: FileHandle, buf: Buffer, pos: number, length: number): Promise<Buffer> {
  const { bytesRead } = await fh.read(buf, 0, length, pos);
  return buf.subarray(0, bytesRead);
}

/** exactly `length` bytes at `pos`, or null when the file is shorter now */
async function readExactly(fh: FileHandle, buf: Buffer, pos: number, length: number): Promise<Buffer | null> {
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, pos + got);
    if (bytesRead === 0) return null;
    got += bytesRead;
  }
  return buf.subarray(0, length);
}

const SOURCE_CHANGED = 'source changed';
const NO_DIRECT = 'no O_DIRECT';

function firstDifference(a: Buffer, b: Buffer): number {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return i;
}

function errorCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

function roundUp(n: number): number {
  return Math.ceil(n / MAX_ALIGN) * MAX_ALIGN;
}

/** Compares each range of the copy with the source; the problems come in the ranges' order. */
export async function readBack(
  source: string,
  copy: string,
  ranges: readonly ReadRange[],
  opts: ReadBackOptions = {},
): Promise<ReadBackResult> {
  const found: (ReadProblem | 'changed' | null)[] = new Array(ranges.length).fill(null);
  let total = 0;
  const tally = (n: number) => {
    total += n;
    opts.onBytes?.(total);
  };
  const readers = Array.from(
    { length: Math.min(CONCURRENCY, ranges.length) },
    () => new Reader(source, copy, opts, tally),
  );
  let next = 0;
  await Promise.all(
    readers.map(async (reader) => {
      while (next < ranges.length) {
        const i = next++;
        const r = ranges[i]!;
        const why = await reader.compare(r);
        if (why === SOURCE_CHANGED) found[i] = 'changed';
        else if (why !== null) found[i] = { file: r.file, why };
      }
    }),
  );
  const problems = found.filter((f): f is ReadProblem => f !== null && f !== 'changed');
  const sourceChanged = ranges.filter((_, i) => found[i] === 'changed').map((r) => r.file);
  return {
    bytes: total,
    files: ranges.length,
    problems,
    sourceChanged,
    direct: readers.every((r) => r.direct),
  };
}
