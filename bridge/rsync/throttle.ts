/**
 * At most one progress report per interval (docs/design.md §6: 2 messages a second
 * whatever the file count). The latest value is held back, not dropped, and
 * `flush` sends it at the end, so the last report is always the final state.
 */
export class Throttle<T> {
  private last = Number.NEGATIVE_INFINITY;
  private held: T | null = null;
  private readonly send: (value: T) => void;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(send: (value: T) => void, intervalMs = 500, now: () => number = () => performance.now()) {
    this.send = send;
    this.intervalMs = intervalMs;
    this.now = now;
  }

  push(value: T): void {
    const t = this.now();
    if (t - this.last >= this.intervalMs) {
      this.last = t;
      this.held = null;
      this.send(value);
    } else {
      this.held = value;
    }
  }

  /** send the held value now, if any (or `final`, which replaces it) */
  flush(final?: T): void {
    const value = final ?? this.held;
    this.held = null;
    if (value !== null && value !== undefined) {
      this.last = this.now();
      this.send(value);
    }
  }
}
