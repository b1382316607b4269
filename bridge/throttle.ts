/**
 * "At most N messages a second whatever the file count" (docs/design.md §6), without
 * losing the end: rsync may report progress thousands of times a second; we
 * send the first, hold the latest, and send that when the interval is over.
 * A state change (`now`) always goes out at once and replaces what was held.
 */
export class Throttle<T> {
  private readonly intervalMs: number;
  private readonly send: (value: T) => void;
  private readonly clock: () => number;
  private lastSent = Number.NEGATIVE_INFINITY;
  private held: { value: T } | null = null;
  private timer: NodeJS.Timeout | undefined;

  /** `clock`: milliseconds, monotonic; the default has sub-millisecond resolution, so "500 ms apart" is exact */
  constructor(intervalMs: number, send: (value: T) => void, clock: () => number = () => performance.now()) {
    this.intervalMs = intervalMs;
    this.send = send;
    this.clock = clock;
  }

  /** A value that may wait: sent now if the interval is over, else the latest is held. */
  offer(value: T): void {
    const wait = this.lastSent + this.intervalMs - this.clock();
    if (wait <= 0 && !this.timer) {
      this.emit(value);
      return;
    }
    this.held = { value };
    if (!this.timer) this.timer = setTimeout(() => this.release(), Math.max(0, wait));
  }

  /** A value that must not wait (a step change, the end of a run): sent now; anything held is dropped. */
  now(value: T): void {
    this.cancel();
    this.emit(value);
  }

  /** Drop what is held (it is out of date). */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.held = null;
  }

  private release(): void {
    this.timer = undefined;
    // timers may fire a fraction of a millisecond early
    const wait = this.lastSent + this.intervalMs - this.clock();
    if (wait > 0 && this.held) {
      this.timer = setTimeout(() => this.release(), wait);
      return;
    }
    const held = this.held;
    this.held = null;
    if (held) this.emit(held.value);
  }

  private emit(value: T): void {
    this.send(value);
    // timed from when the message left, so that building it never eats into the interval
    this.lastSent = this.clock();
  }
}
