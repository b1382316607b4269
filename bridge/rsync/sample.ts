/**
 * A deterministic random sample: keep the `size` items whose hash (seeded by
 * the run) is smallest. Every run checks different files, and a run's choice
 * can be reproduced from its id.
 */
import { createHash } from 'node:crypto';

export class Sample {
  private kept: { key: string; item: string }[] = [];
  private readonly size: number;
  private readonly seed: string;

  constructor(size: number, seed: string) {
    this.size = size;
    this.seed = seed;
  }

  offer(item: string): void {
    if (this.size <= 0) return;
    const key = createHash('sha1').update(this.seed).update('\0').update(item).digest('hex');
    if (this.kept.length >= this.size && key >= this.kept[this.kept.length - 1]!.key) return;
    // binary insertion keeps the list sorted; the list is small (the sample size)
    let lo = 0;
    let hi = this.kept.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.kept[mid]!.key < key) lo = mid + 1;
      else hi = mid;
    }
    this.kept.splice(lo, 0, { key, item });
    if (this.kept.length > this.size) this.kept.pop();
  }

  picked(): string[] {
    return this.kept.map((k) => k.item).sort();
  }
}
