/**
 * rsync `--info=progress2` lines: the whole transfer's bytes, percent, rate and
 * ETA, e.g. `     29,900,007  99%  222.77MB/s    0:00:00 (xfr#300, to-chk=1/304)`.
 * rsync rewrites the line in place with `\r`, so the stream is split on both
 * `\r` and `\n`.
 */
import { TextDecoder } from 'node:util';
import type { SyncProgress } from '../events.js';

// rsync's rate units are powers of 1024, spelt kB/MB/GB/TB (progress.c)
const UNIT: Record<string, number> = {
  B: 1,
  kB: 1024,
  KB: 1024,
  MB: 1024 ** 2,
  GB: 1024 ** 3,
  TB: 1024 ** 4,
  PB: 1024 ** 5,
};

// the byte count may carry thousands separators (',' '.' or "'" depending on the locale)
const LINE =
  /^\s*([\d,.']+)\s+(\d{1,3})%\s+([\d.,]+)([kKMGTP]?B)\/s\s+(?:(\d+):(\d\d):(\d\d)|[?:-]+)(?:\s+\((.*)\))?\s*$/;

export function parseProgressLine(line: string): SyncProgress | null {
  const m = LINE.exec(line);
  if (!m) return null;
  const bytes = Number(m[1]!.replace(/[,.']/g, ''));
  const percent = Number(m[2]);
  const rateNumber = Number(m[3]!.replace(',', '.'));
  const unit = UNIT[m[4]!] ?? 1;
  const etaSeconds = m[5] === undefined ? null : Number(m[5]) * 3600 + Number(m[6]) * 60 + Number(m[7]);
  if (!Number.isFinite(bytes) || !Number.isFinite(rateNumber)) return null;
  return { percent: Math.min(100, percent), bytes, rate: Math.round(rateNumber * unit), etaSeconds };
}

/** The `to-chk=A/B` counter (files still to check / total), when the line has one. */
export function toCheck(line: string): { left: number; total: number } | null {
  const m = /(?:to|ir)-chk=(\d+)\/(\d+)/.exec(line);
  return m ? { left: Number(m[1]), total: Number(m[2]) } : null;
}

/**
 * Splits a byte stream into lines on `\r` and `\n`, across chunk boundaries.
 * `bytes`: each line a byte string (bridge/rsync/byte-path.ts), for output
 * that names files; otherwise UTF-8 text.
 */
export class LineSplitter {
  private rest = '';
  private decoder: TextDecoder | null;

  constructor(encoding: 'utf8' | 'bytes' = 'utf8') {
    this.decoder = encoding === 'utf8' ? new TextDecoder('utf-8') : null;
  }

  push(chunk: Uint8Array | string): string[] {
    const text = this.rest + (typeof chunk === 'string' ? chunk : this.decode(chunk));
    const parts = text.split(/\r\n|\r|\n/);
    this.rest = parts.pop() ?? '';
    return parts.filter((l) => l.length > 0);
  }

  end(): string[] {
    const last = this.rest + (this.decoder?.decode() ?? '');
    this.rest = '';
    return last.length ? [last] : [];
  }

  private decode(chunk: Uint8Array): string {
    // latin1 has no multi-byte sequences: a chunk can end anywhere
    if (!this.decoder)
      return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('latin1');
    return this.decoder.decode(chunk, { stream: true });
  }
}
