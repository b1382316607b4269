/**
 * The rolling scrub's plan for one run: which bytes of the copy to read back,
 * given where the last run on this drive stopped and a budget. Fed the
 * regular files in the order verify's walk meets them; it keeps only the
 * slice it will read (memory follows the budget, not the tree). The files
 * this run wrote are read back anyway: they count towards the position in
 * the pass, but not towards the budget.
 *
 * When the walk ends before the budget is spent, the pass is complete and the
 * slice continues from the first file: every byte of the copy is read once
 * per pass, whatever the budget.
 */
import type { ReadRange } from './read-back.js';

/** the next byte a scrub reads: `offset` into the file at `path` (relative to the copy) */
export interface ScrubCursor {
  path: string;
  offset: number;
}

export interface ScrubPlan {
  ranges: ReadRange[];
  /** bytes the ranges cover */
  bytes: number;
  /** bytes of the files read back anyway (this run wrote them) */
  readAnyway: number;
  /** where the next run starts; null: at the beginning */
  next: ScrubCursor | null;
  /** the slice reached the end of the copy: a pass completed in this run */
  passCompleted: boolean;
  /** bytes of the copy before `next`: how far the current pass is */
  position: number;
  /** bytes of all regular files in the copy */
  total: number;
}

/**
 * Verify's walk order: in each directory, the entries that are not
 * directories (by name), then each subdirectory's contents (by name).
 * Names compare as JavaScript's default sort does.
 */
export function walkOrder(a: string, b: string): number {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] === y[i]) continue;
    const xDir = i < x.length - 1;
    const yDir = i < y.length - 1;
    if (xDir !== yDir) return xDir ? 1 : -1;
    return x[i]! < y[i]! ? -1 : 1;
  }
  return x.length - y.length;
}

/** a range with the position of its file's first byte in the whole copy */
type Placed = ReadRange & { length: number; at: number };

interface Stop {
  cursor: ScrubCursor;
  position: number;
}

class Side {
  ranges: Placed[] = [];
  bytes = 0;
  /** where the budget ran out */
  stop: Stop | null = null;
}

export class ScrubPlanner {
  private readonly cursor: ScrubCursor | null;
  private readonly budget: number;
  /** files before the cursor, from the first, while the budget lasts: where a completed pass goes on */
  private readonly head = new Side();
  /** from the cursor on */
  private readonly tail = new Side();
  private total = 0;
  private readAnyway = 0;
  private cursorPosition = 0;

  constructor(cursor: ScrubCursor | null, budget: number) {
    this.cursor = cursor;
    this.budget = Math.max(0, Math.floor(budget));
  }

  /** a regular file of the copy, in walk order; `readAnyway`: this run wrote it (not scrubbed) */
  offer(path: string, size: number, readAnyway = false): void {
    const at = this.total;
    this.total += size;
    if (readAnyway) this.readAnyway += size;
    const c = this.cursor;
    const inHead = c !== null && walkOrder(path, c.path) < 0;
    if (inHead) this.cursorPosition = at + size;
    const from = c && path === c.path ? Math.min(c.offset, size) : 0;
    if (c && path === c.path) this.cursorPosition = at + from;
    const side = inHead ? this.head : this.tail;
    if (side.stop || readAnyway || from >= size) return;
    const left = this.budget - side.bytes;
    if (left <= 0) {
      side.stop = { cursor: { path, offset: from }, position: at + from };
      return;
    }
    const length = Math.min(size - from, left);
    side.ranges.push({ file: path, start: from, length, at });
    side.bytes += length;
    if (side.bytes >= this.budget)
      side.stop = { cursor: { path, offset: from + length }, position: at + from + length };
  }

  plan(): ScrubPlan {
    const { tail, head } = this;
    const done = (ranges: Placed[], next: Stop | null, passCompleted: boolean): ScrubPlan => ({
      ranges: ranges.map(({ file, start, length }) => ({ file, start, length })),
      bytes: ranges.reduce((n, r) => n + r.length, 0),
      readAnyway: this.readAnyway,
      next: next?.cursor ?? null,
      passCompleted,
      position: next?.position ?? 0,
      total: this.total,
    });
    if (this.budget === 0)
      return done([], this.cursor ? { cursor: this.cursor, position: this.cursorPosition } : null, false);
    if (tail.stop) return done(tail.ranges, tail.stop, false);
    // the end of the copy was reached: the pass is complete, and the slice goes on from the first file
    let left = this.budget - tail.bytes;
    const ranges = [...tail.ranges];
    for (const r of head.ranges) {
      const length = Math.min(r.length, left);
      if (length > 0) ranges.push({ ...r, length });
      left -= length;
      if (length < r.length || left === 0) {
        const offset = r.start + length;
        return done(ranges, { cursor: { path: r.file, offset }, position: r.at + offset }, true);
      }
    }
    // everything before the old cursor was read too: the next pass starts at the beginning
    return done(ranges, null, true);
  }
}

/** Where the rolling scrub of a drive stands (kept in the ledger). */
export interface ScrubRecord {
  /** where the next slice starts; null: at the beginning of the copy */
  next: ScrubCursor | null;
  /** bytes of the copy before `next`, and the copy's size, when last measured */
  position_bytes: number;
  copy_bytes: number;
  /** when the pass under way began, and when the last complete pass ended */
  pass_started: string | null;
  last_full_pass: string | null;
  /** bytes a second the drive read back at, last measured (a time budget is turned into bytes with it) */
  read_rate?: number | null;
}

/** a read-back shorter than this says more about latency than about the drive's speed: not measured */
export const RATE_MIN_BYTES = 64 << 20;

/** the drive's read rate after reading `bytes` in `seconds`: measured when there was enough, else the last one */
export function readRate(bytes: number, seconds: number, before: ScrubRecord | null): number | null {
  if (bytes >= RATE_MIN_BYTES && seconds > 0) return Math.round(bytes / seconds);
  return before?.read_rate ?? null;
}

/** The record after a run read `plan`'s slice (`now`: an ISO time; `rate`: what readRate says). */
export function scrubRecordAfter(
  before: ScrubRecord | null,
  plan: ScrubPlan,
  now: string,
  rate: number | null,
): ScrubRecord {
  return {
    next: plan.next,
    position_bytes: plan.position,
    copy_bytes: plan.total,
    pass_started: plan.passCompleted ? now : (before?.pass_started ?? now),
    last_full_pass: plan.passCompleted ? now : (before?.last_full_pass ?? null),
    read_rate: rate,
  };
}

/** How far the pass under way is, in percent (one decimal), or null when nothing is known. */
export function scrubPercent(r: Pick<ScrubRecord, 'position_bytes' | 'copy_bytes'> | null): number | null {
  if (!r) return null;
  if (r.copy_bytes <= 0) return 0;
  return Math.min(100, Math.round((r.position_bytes / r.copy_bytes) * 1000) / 10);
}
