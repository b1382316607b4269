/**
 * Plays a light's pattern on a driver: steady, blink, pulse or off. Writes are
 * serialized and coalesced (latest colour wins), so a burst of messages never
 * queues writes to slow hardware, and the rate stays at most 1000/PULSE_STEP_MS
 * writes per second while pulsing.
 */
import type { Logger } from '../bridge/log.js';
import type { Clock, Timer } from './clock.js';
import { BLACK, type Driver, isBlack, parseColor, type Rgb } from './drivers/driver.js';
import type { Light, Pattern } from './light.js';

/** blink: on this long, then off this long (a slow, calm reminder rather than an alarm) */
export const BLINK_MS = 1000;
/** pulse: one breath from full to dim and back */
export const PULSE_PERIOD_MS = 3000;
/** pulse: one frame every 100 ms = 10 writes per second */
export const PULSE_STEP_MS = 100;
/** pulse never goes fully dark, so it does not read as a blink */
const PULSE_FLOOR = 0.15;

/** What a driver can play of a pattern: pulse falls back to blink, blink to steady. */
export function playable(pattern: Pattern, motion: Driver['motion']): Pattern {
  if (pattern === 'pulse' && motion !== 'pulse') return motion === 'blink' ? 'blink' : 'steady';
  if (pattern === 'blink' && motion === 'steady') return 'steady';
  return pattern;
}

/** Brightness of a pulse at time t into the pattern: full at t = 0, so a change shows at once. */
export function pulseLevel(t: number): number {
  return PULSE_FLOOR + ((1 - PULSE_FLOOR) * (1 + Math.cos((2 * Math.PI * t) / PULSE_PERIOD_MS))) / 2;
}

function scale(rgb: Rgb, level: number): Rgb {
  return [Math.round(rgb[0] * level), Math.round(rgb[1] * level), Math.round(rgb[2] * level)];
}

export class PatternPlayer {
  readonly #driver: Driver;
  readonly #clock: Clock;
  readonly #log: Logger;
  #timer: Timer | null = null;
  #writing = false;
  #pending: Rgb | null = null;
  #last: Rgb | null = null;
  #failing = false;
  #waiters: Array<() => void> = [];
  /** frames handed to the driver (after coalescing), for tests and the benchmark */
  writes = 0;

  constructor(driver: Driver, clock: Clock, log: Logger) {
    this.#driver = driver;
    this.#clock = clock;
    this.#log = log;
  }

  show(light: Light): void {
    this.#timer?.cancel();
    this.#timer = null;
    this.#driver.announce?.(light);
    const rgb = parseColor(light.color);
    const pattern = isBlack(rgb) ? 'off' : playable(light.pattern, this.#driver.motion);
    if (pattern === 'off' || pattern === 'steady') {
      this.#write(pattern === 'off' ? BLACK : rgb);
      return;
    }
    const step = pattern === 'blink' ? BLINK_MS : PULSE_STEP_MS;
    const frame = (k: number): Rgb =>
      pattern === 'blink' ? (k % 2 === 0 ? rgb : BLACK) : scale(rgb, pulseLevel(k * PULSE_STEP_MS));
    const start = this.#clock.now();
    let k = 0;
    const tick = () => {
      this.#write(frame(k));
      k += 1;
      // scheduled against the start, so frames do not drift with timer lateness
      this.#timer = this.#clock.setTimeout(tick, Math.max(0, start + k * step - this.#clock.now()));
    };
    tick();
  }

  /** Stop the pattern and turn the light off; resolves once the driver has it. */
  async stop(): Promise<void> {
    this.#timer?.cancel();
    this.#timer = null;
    this.#write(BLACK);
    await this.flushed();
  }

  /** Resolves when every frame asked for so far has reached the driver. */
  flushed(): Promise<void> {
    if (!this.#writing) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #write(rgb: Rgb): void {
    if (this.#writing) {
      this.#pending = rgb;
      return;
    }
    const last = this.#last;
    if (last && last[0] === rgb[0] && last[1] === rgb[1] && last[2] === rgb[2]) return;
    this.#writing = true;
    this.#last = rgb;
    this.writes += 1;
    this.#driver.set(rgb).then(
      () => {
        if (this.#failing) this.#log.info('writing works again');
        this.#failing = false;
        this.#done();
      },
      (e: unknown) => {
        // logged once per outage: a pulsing light would otherwise log ten lines a second
        if (!this.#failing) this.#log.error(`cannot set the colour: ${String(e)}`);
        this.#failing = true;
        this.#last = null;
        this.#done();
      },
    );
  }

  #done(): void {
    this.#writing = false;
    const next = this.#pending;
    this.#pending = null;
    if (next) this.#write(next);
    if (this.#writing) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
