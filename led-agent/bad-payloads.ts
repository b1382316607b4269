/**
 * Logging of ignored payloads, rate-limited: anyone who can publish to the
 * broker could otherwise fill the journal. The first bad payload in a window
 * is logged at once; the rest are counted and summed up in one line when the
 * window ends.
 */
import type { Logger } from '../bridge/log.js';
import type { Clock, Timer } from './clock.js';

export const BAD_PAYLOAD_WINDOW_MS = 10_000;

/** Topics and reasons come from the network: keep them to one short printable line. */
function printable(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 200 ? `${clean.slice(0, 200)}...` : clean;
}

export class BadPayloadLog {
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #windowMs: number;
  #windowStart = Number.NEGATIVE_INFINITY;
  #suppressed = 0;
  #latest = '';
  #timer: Timer | null = null;

  constructor(log: Logger, clock: Clock, windowMs = BAD_PAYLOAD_WINDOW_MS) {
    this.#log = log;
    this.#clock = clock;
    this.#windowMs = windowMs;
  }

  report(topic: string, reason: string): void {
    const line = `${printable(topic)}: ${printable(reason)}`;
    const now = this.#clock.now();
    if (now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now;
      this.#log.warn(`ignored a bad payload on ${line}`);
      return;
    }
    this.#suppressed += 1;
    this.#latest = line;
    this.#timer ??= this.#clock.setTimeout(() => this.#flush(), this.#windowStart + this.#windowMs - now);
  }

  /** Say how many were left unlogged; called at the end of each window and at shutdown. */
  stop(): void {
    this.#timer?.cancel();
    this.#flush();
  }

  #flush(): void {
    this.#timer = null;
    if (this.#suppressed === 0) return;
    this.#log.warn(
      `ignored ${this.#suppressed} more bad payload(s) in the last ${this.#windowMs / 1000} s (latest on ${this.#latest})`,
    );
    this.#suppressed = 0;
    this.#windowStart = this.#clock.now();
  }
}
