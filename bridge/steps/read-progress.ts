/**
 * What the steps that read a copy back (verify, scrub) share: progress in
 * sync's terms, and a first guess at a copy's size.
 */
import { statfsSync } from 'node:fs';
import type { SyncProgress } from '../events.js';
import { Throttle } from '../throttle.js';
import type { RunContext } from './step.js';

/**
 * Progress through what a step reads back, in sync's terms (bytes, percent,
 * rate, ETA): at most one report per half second, the first after half a
 * second (a short read-back says nothing), and `done()` reports the end.
 */
export function progressOf(ctx: RunContext, total: number): { onBytes(bytes: number): void; done(): void } {
  const throttle = new Throttle<SyncProgress>(500, (p) => ctx.progress(p));
  const t0 = performance.now();
  let last: SyncProgress | null = null;
  return {
    onBytes(bytes) {
      const seconds = (performance.now() - t0) / 1000;
      const rate = seconds > 0 ? bytes / seconds : 0;
      last = {
        percent: total > 0 ? Math.min(100, (bytes / total) * 100) : 100,
        bytes,
        rate: Math.round(rate),
        etaSeconds: rate > 0 ? Math.max(0, Math.round((total - bytes) / rate)) : null,
        total,
      };
      if (seconds >= 0.5) throttle.push(last);
    },
    done() {
      if (last) throttle.flush({ ...last, percent: 100, etaSeconds: 0 });
    },
  };
}

/** bytes in use on the drive's filesystem: the copy's size, before a run has measured it */
export function usedBytes(target: string): number {
  const fs = statfsSync(target);
  return (fs.blocks - fs.bfree) * fs.bsize;
}
