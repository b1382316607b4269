/**
 * "At most N messages a second whatever the file count" (docs/design.md §6), without
 * losing the end: rsync may report progress thousands of times a second; we
 * send the first, hold the latest, and send it later. The one throttle of the
 * bridge, with two ways of holding:
 *
 * - `offer` (a reporter, e.g. MQTT): what is held goes out by itself when the
 *   interval is over.
 * - `push` (a step, e.g. sync): what is held waits for the next push or for
 *   `flush`, so nothing of it outlives the step (no timer).
 *
 * A value that must not wait (`now`: a state change, the end) goes out at once
 * and replaces what was held.
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

  /** A value that may wait: sent now if the interval is over, else the latest is held and sent when it is. */
  offer(value: T): void {
    const wait = this.lastSent + this.intervalMs - this.clock();
    if (wait <= 0 && !this.timer) {
      this.emit(value);
      return;
    }
    this.held = { value };
    if (!this.timer) this.timer = setTimeout(() => this.release(), Math.max(0, wait));
  }

  /** A value that may wait: sent now if the interval is over, else the latest is held until the next push or flush. */
  push(value: T): void {
    if (this.clock() - this.lastSent >= this.intervalMs) {
      this.held = null;
      this.emit(value);
    } else {
      this.held = { value };
    }
  }

  /** A value that must not wait (a step change, the end of a run): sent now; anything held is dropped. */
  now(value: T): void {
    this.cancel();
    this.emit(value);
  }

  /** Send what is held now, if anything (or `final`, which replaces it). */
  flush(final?: T): void {
    const value = final !== undefined ? { value: final } : this.held;
    this.cancel();
    if (value) this.emit(value.value);
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
