/**
 * How much of a copy a run reads back beyond what it wrote (`verify.scrub`):
 * a share of the copy ("2%"), a size ("20GB", "512MiB", or a number of
 * bytes) or a time ("90s", "5min", "1h"). 0 turns the rolling scrub off.
 *
 * A time is turned into bytes before the run reads anything (the slice is
 * planned during verify's walk): at the rate this drive read back at in its
 * last run, or at ASSUMED_RATE before it has one.
 */
import { z } from 'zod';

export type ScrubBudget = { percent: number } | { bytes: number } | { seconds: number };

/** bytes a second a drive is taken to read at before it was measured: a USB hard disk's, low side */
export const ASSUMED_RATE = 100e6;

const UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  kB: 1e3,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
};

const EXPECTED =
  'a share of the copy like "2%", a size like "20GB" or "512MiB", a time like "90s" or "5min", or 0';

const SECONDS: Record<string, number> = { s: 1, sec: 1, min: 60, h: 3600 };

export const scrubBudget = z.union([z.number(), z.string()]).transform((v, ctx): ScrubBudget => {
  const fail = () => {
    ctx.addIssue({ code: 'custom', message: EXPECTED });
    return z.NEVER;
  };
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? { bytes: v } : fail();
  const percent = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(v);
  if (percent) {
    const p = Number(percent[1]);
    return p <= 100 ? { percent: p } : fail();
  }
  const time = /^\s*(\d+(?:\.\d+)?)\s*(s|sec|min|h)\s*$/.exec(v);
  if (time) return { seconds: Number(time[1]) * SECONDS[time[2]!]! };
  const size = /^\s*(\d+(?:\.\d+)?)\s*([kKMGT]i?B|B)?\s*$/.exec(v);
  const unit = size ? UNITS[size[2] ?? ''] : undefined;
  if (!size || unit === undefined) return fail();
  return { bytes: Math.round(Number(size[1]) * unit) };
});

/** The budget in bytes for a copy of `copyBytes` on a drive that last read back at `rate` bytes a second. */
export function budgetBytes(budget: ScrubBudget, copyBytes: number, rate: number | null = null): number {
  if ('bytes' in budget) return budget.bytes;
  if ('seconds' in budget) return Math.floor(budget.seconds * (rate && rate > 0 ? rate : ASSUMED_RATE));
  return Math.ceil((copyBytes * budget.percent) / 100);
}

/** For logs and `offsite status`: "2%", "20 GB" or "90 s". */
export function budgetText(budget: ScrubBudget): string {
  if ('seconds' in budget) return `${budget.seconds} s`;
  return 'percent' in budget ? `${budget.percent}%` : `${budget.bytes} bytes`;
}
