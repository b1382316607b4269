/**
 * How much of a copy a run reads back beyond what it wrote (`verify.scrub`):
 * a share of the copy ("2%") or a size ("20GB", "512MiB", or a number of
 * bytes). 0 turns the rolling scrub off.
 */
import { z } from 'zod';

export type ScrubBudget = { percent: number } | { bytes: number };

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

const EXPECTED = 'a share of the copy like "2%", a size like "20GB" or "512MiB", or 0';

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
  const size = /^\s*(\d+(?:\.\d+)?)\s*([kKMGT]i?B|B)?\s*$/.exec(v);
  const unit = size ? UNITS[size[2] ?? ''] : undefined;
  if (!size || unit === undefined) return fail();
  return { bytes: Math.round(Number(size[1]) * unit) };
});

/** The budget in bytes for a copy of `copyBytes`. */
export function budgetBytes(budget: ScrubBudget, copyBytes: number): number {
  return 'bytes' in budget ? budget.bytes : Math.ceil((copyBytes * budget.percent) / 100);
}

/** For logs and `offsite status`: "2%" or "20 GB". */
export function budgetText(budget: ScrubBudget): string {
  return 'percent' in budget ? `${budget.percent}%` : `${budget.bytes} bytes`;
}
