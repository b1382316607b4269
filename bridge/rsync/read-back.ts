/**
 * Read files of the copy back from the drive and compare them with the
 * source, byte for byte. The copy's side is opened with O_DIRECT: the bytes
 * come from the drive, not from the page cache they were just written
 * through, so a copy error or a bad sector shows now rather than at restore
 * time. (Dirty pages of a file are written back by the kernel before a direct
 * read of it; flushing the filesystem first makes that one batch.) Where the
 * filesystem refuses O_DIRECT (tmpfs before Linux 6.6), the copy is read
 * through the cache and the result says so.
 *
 * Small files are read eight at a time: each costs one request to the drive,
 * and a drive answers several queued requests faster than the same requests
 * one by one (measured: 10,000 files of 4 kB in about half the time). Their
 * other calls (open, fstat, the source's read, which the page cache answers)
 * are synchronous: the thread pool's round trips would cost more. Big files
 * are read one at a time, a MiB at a time, the source's and the copy's chunk
 * together: a disk reads one stream faster than several interleaved.
 *
 * A range may start inside a file (the rolling scrub continues where the last
 * run stopped); it is widened to the block size O_DIRECT needs.
 */
import { closeSync, constants, fstatSync, openSync, read as readAsync, readSync, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import { errorMessage } from '../error-message.js';
import { type BytePath, under } from './byte-path.js';

export interface ReadRange {
  /** relative to both roots, as bytes (byte-path.ts) */
  file: BytePath;
  /** first byte to compare */
  start: number;
  /** bytes to compare from `start`; the rest of the file when omitted */
  length?: number;
  /** the file's size as last seen (verify's walk): sorts it to the small or the big readers */
  size?: number;
  /** only read the copy (the source has another version now): proves the drive can read it */
  copyOnly?: boolean;
}

export interface ReadProblem {
  /** as bytes: `shown()` it */
  file: BytePath;
  why: string;
}

export interface ReadBackResult {
  /** bytes read from the copy */
  bytes: number;
  files: number;
  problems: ReadProblem[];
  /** files gone from, or changed in, the source since they were listed: not compared (bytes) */
  sourceChanged: BytePath[];
  /** false when the filesystem refused O_DIRECT and the copy was read through the page cache */
  direct: boolean;
}

export interface ReadBackOptions {
  signal?: AbortSignal;
  /** bytes read so far (called once per file or chunk) */
  onBytes?(bytes: number): void;
  /**
   * a source file changed at or after this time (ms since the epoch) that does not
   * match is reported in `sourceChanged`, not as a problem: it was written after it was listed
   */
  changedSince?: number;
}

/** a big file is read this much at a time */
const CHUNK = 1 << 20;
/** up to this, a file is read in one request, by one of the small-file readers */
const SMALL = 256 << 10;
/** small files read at once */
const SMALL_READERS = 8;
/** the largest logical block size O_DIRECT may ask alignment to */
const MAX_ALIGN = 4096;
/** malloc's alignment: every buffer offset worth trying */
const STEP = 8;

const { O_RDONLY, O_DIRECT, O_NOFOLLOW, O_NONBLOCK } = constants;
// never follow a link planted in the copy; never block on a FIFO put where a file was
const BASE_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;

const readPromise = promisify(readAsync);
async function readAt(
  fd: number,
  buf: Buffer,
  offset: number,
  length: number,
  position: number,
): Promise<number> {
  return (await readPromise(fd, buf, offset, length, position)).bytesRead;
}

const SOURCE_CHANGED = Symbol('source changed');
const NO_DIRECT = Symbol('no O_DIRECT');
type Verdict = string | null | typeof SOURCE_CHANGED | typeof NO_DIRECT;

function errorCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? errorMessage(e);
}

function isEinval(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'EINVAL';
}

function roundUp(n: number): number {
  return Math.ceil(n / MAX_ALIGN) * MAX_ALIGN;
}

function firstDifference(a: Buffer, b: Buffer): number {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return i;
}

/**
 * A buffer whose start meets O_DIRECT's alignment. JavaScript cannot see a
 * buffer's address, so direct reads try each offset into an over-sized buffer
 * until the kernel accepts one; the buffer never moves. The offset is kept
 * only once a read proved that the kernel checks alignment (the next offset
 * fails): for a file smaller than a block, ext4 may serve a direct read
 * whatever the alignment.
 */
class DirectBuffer {
  private readonly raw: Buffer;
  private offset: number | null = null;

  constructor(size: number) {
    this.raw = Buffer.allocUnsafeSlow(size + MAX_ALIGN);
  }

  /** reads `length` (a multiple of the block size) at `position`; null when no alignment works */
  async read(fd: number, position: number, length: number): Promise<Buffer | null> {
    if (this.offset !== null) return this.at(fd, this.offset, length, position);
    for (let o = 0; o < MAX_ALIGN; o += STEP) {
      try {
        await this.at(fd, o, length, position);
      } catch (e) {
        if (isEinval(e)) continue;
        throw e;
      }
      let checked = false;
      try {
        await this.at(fd, o + STEP, MAX_ALIGN, position);
      } catch (e) {
        checked = isEinval(e);
      }
      if (checked) this.offset = o;
      // read again: the check wrote over the bytes just read
      return this.at(fd, o, length, position);
    }
    return null;
  }

  private async at(fd: number, o: number, length: number, position: number): Promise<Buffer> {
    const n = await readAt(fd, this.raw, o, length, position);
    return this.raw.subarray(o, o + n);
  }
}

/** What the readers share: the roots, the options, the running total, and whether O_DIRECT works here. */
interface Shared {
  source: string;
  copy: string;
  opts: ReadBackOptions;
  bytes: number;
  direct: boolean;
}

/** One reader: its own buffers; `size` is how much it reads per request. */
class Reader {
  private readonly copyBuf: DirectBuffer;
  private readonly plainBuf: Buffer;
  private readonly sourceBuf: Buffer;
  private readonly size: number;
  private readonly shared: Shared;

  constructor(shared: Shared, size: number) {
    this.shared = shared;
    this.size = size;
    this.copyBuf = new DirectBuffer(size);
    this.plainBuf = Buffer.allocUnsafeSlow(size);
    this.sourceBuf = Buffer.allocUnsafeSlow(size);
  }

  async compare(r: ReadRange): Promise<Verdict> {
    if (r.copyOnly) {
      for (;;) {
        const why = await this.compareWith(r, null);
        if (why !== NO_DIRECT) return why;
        this.shared.direct = false;
      }
    }
    let src: number;
    try {
      src = openSync(under(this.shared.source, r.file), BASE_FLAGS);
    } catch {
      return SOURCE_CHANGED;
    }
    try {
      for (;;) {
        const why = await this.compareWith(r, src);
        if (why !== NO_DIRECT)
          return typeof why === 'string' && this.sourceChanged(src) ? SOURCE_CHANGED : why;
        // this filesystem refuses O_DIRECT: read the copy through the cache
        this.shared.direct = false;
      }
    } finally {
      closeSync(src);
    }
  }

  private sourceChanged(src: number): boolean {
    const since = this.shared.opts.changedSince;
    if (since === undefined) return false;
    const st = fstatSync(src);
    return st.ctimeMs >= since || st.mtimeMs >= since;
  }

  /** `src` null: the copy alone is read */
  private async compareWith(r: ReadRange, src: number | null): Promise<Verdict> {
    const direct = this.shared.direct;
    let cp: number;
    try {
      cp = openSync(under(this.shared.copy, r.file), BASE_FLAGS | (direct ? O_DIRECT : 0));
    } catch (e) {
      if (direct && isEinval(e)) return NO_DIRECT;
      return `cannot be opened on the drive (${errorCode(e)})`;
    }
    try {
      const cs = fstatSync(cp);
      if (!cs.isFile()) return 'is not a regular file on the drive';
      if (src !== null) {
        const ss = fstatSync(src);
        if (!ss.isFile()) return SOURCE_CHANGED;
        if (ss.size !== cs.size) return `size ${ss.size} in the source, ${cs.size} on the drive`;
      }
      return await this.compareBytes(r, src, cp, cs, direct);
    } finally {
      closeSync(cp);
    }
  }

  private async compareBytes(
    r: ReadRange,
    src: number | null,
    cp: number,
    cs: Stats,
    direct: boolean,
  ): Promise<Verdict> {
    const end = Math.min(cs.size, r.length === undefined ? cs.size : r.start + r.length);
    // O_DIRECT reads whole blocks: start at a block boundary
    let pos = direct ? r.start - (r.start % MAX_ALIGN) : r.start;
    // one request: the source's side from the page cache, synchronously; several: both sides at once
    const oneRequest = end - pos <= this.size;
    while (pos < end) {
      const signal = this.shared.opts.signal;
      if (signal?.aborted) throw signal.reason;
      const want = direct ? Math.min(this.size, roundUp(end - pos)) : Math.min(this.size, end - pos);
      const expected = Math.min(want, cs.size - pos);
      const [copyRead, sourceRead] = await Promise.allSettled([
        direct ? this.copyBuf.read(cp, pos, want) : this.plain(cp, pos, want),
        src === null
          ? null
          : oneRequest
            ? this.exactlySync(src, pos, expected)
            : this.exactly(src, pos, expected),
      ]);
      if (copyRead.status === 'rejected')
        return `cannot be read from the drive at byte ${pos} (${errorCode(copyRead.reason)})`;
      if (sourceRead.status === 'rejected')
        return `cannot be read in the source at byte ${pos} (${errorCode(sourceRead.reason)})`;
      const theirs = copyRead.value;
      const ours = sourceRead.value;
      if (theirs === null) return NO_DIRECT;
      if (theirs.length < expected)
        return `ends at byte ${pos + theirs.length} on the drive, ${cs.size} expected`;
      if (src !== null) {
        if (ours === null) return SOURCE_CHANGED;
        const mine = theirs.subarray(0, expected);
        if (!mine.equals(ours))
          return `differs from the source from byte ${pos + firstDifference(mine, ours)}`;
      }
      pos += expected;
      this.shared.bytes += expected;
      this.shared.opts.onBytes?.(this.shared.bytes);
    }
    return null;
  }

  private async plain(fd: number, pos: number, length: number): Promise<Buffer> {
    const n = await readAt(fd, this.plainBuf, 0, length, pos);
    return this.plainBuf.subarray(0, n);
  }

  /** exactly `length` bytes at `pos`, or null when the file is shorter now */
  private async exactly(fd: number, pos: number, length: number): Promise<Buffer | null> {
    let got = 0;
    while (got < length) {
      const n = await readAt(fd, this.sourceBuf, got, length - got, pos + got);
      if (n === 0) return null;
      got += n;
    }
    return this.sourceBuf.subarray(0, length);
  }

  private async exactlySync(fd: number, pos: number, length: number): Promise<Buffer | null> {
    let got = 0;
    while (got < length) {
      const n = readSync(fd, this.sourceBuf, got, length - got, pos + got);
      if (n === 0) return null;
      got += n;
    }
    return this.sourceBuf.subarray(0, length);
  }
}

/**
 * The ranges to read: an array, or anything that hands them out by index (verify's list of what the
 * run wrote makes each range when it is asked for, so a million of them need not be held at once).
 */
export interface RangeList {
  readonly length: number;
  at(index: number): ReadRange | undefined;
}

/** Compares each range of the copy with the source; the problems come in the ranges' order. */
export async function readBack(
  source: string,
  copy: string,
  ranges: RangeList,
  opts: ReadBackOptions = {},
): Promise<ReadBackResult> {
  const shared: Shared = { source, copy, opts, bytes: 0, direct: true };
  // only what is not a match: one per file would grow with the files read
  const verdicts = new Map<number, Verdict>();
  const isBig = (r: ReadRange) => (r.length ?? (r.size ?? 0) - r.start) > SMALL;
  // the small ranges' indexes from the front, the big ones' from the back
  const order = new Uint32Array(ranges.length);
  let smalls = 0;
  let bigs = 0;
  for (let i = 0; i < ranges.length; i++) {
    if (isBig(ranges.at(i)!)) order[order.length - ++bigs] = i;
    else order[smalls++] = i;
  }
  const queue = (from: number, to: number) => ({ next: from, to });
  const work = async (reader: Reader, q: ReturnType<typeof queue>) => {
    while (q.next < q.to) {
      const i = order[q.next++]!;
      const v = await reader.compare(ranges.at(i)!);
      if (v !== null) verdicts.set(i, v);
    }
  };
  // the big ones went in from the back: turn them round, into the ranges' order
  order.subarray(smalls).reverse();
  const readers = Array.from({ length: Math.min(SMALL_READERS, smalls) }, () => new Reader(shared, SMALL));
  const small = queue(0, smalls);
  await Promise.all([
    bigs ? work(new Reader(shared, CHUNK), queue(smalls, order.length)) : null,
    ...readers.map((reader) => work(reader, small)),
  ]);
  const problems: ReadProblem[] = [];
  const sourceChanged: BytePath[] = [];
  for (const i of [...verdicts.keys()].sort((a, b) => a - b)) {
    const v = verdicts.get(i);
    const file = ranges.at(i)!.file;
    if (v === SOURCE_CHANGED) sourceChanged.push(file);
    else if (typeof v === 'string') problems.push({ file, why: v });
  }
  return { bytes: shared.bytes, files: ranges.length, problems, sourceChanged, direct: shared.direct };
}
