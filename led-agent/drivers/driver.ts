/**
 * What every LED driver is: something that can show one colour, and be closed.
 * Patterns (blink, pulse) are played on top by led-agent/player.ts, so a new
 * driver only has to know how to put a colour on its hardware.
 */
import type { LedConfig } from '../../bridge/config.js';
import type { Logger } from '../../bridge/log.js';
import type { Clock } from '../clock.js';
import type { Light } from '../light.js';

/** red, green, blue, 0..255 each, before the brightness cap */
export type Rgb = readonly [number, number, number];
export const BLACK: Rgb = [0, 0, 0];

export interface Driver {
  readonly name: string;
  /**
   * The richest pattern this hardware can play frame by frame: `pulse` needs
   * levels of brightness, `blink` only on and off; `steady` drivers are shown
   * the pattern by name (announce) and get one colour per light.
   */
  readonly motion: 'pulse' | 'blink' | 'steady';
  /** show this colour; the driver applies the brightness cap */
  set(rgb: Rgb): Promise<void>;
  /** told of each new light before its first frame (the console prints the word) */
  announce?(light: Light): void;
  /** release the hardware; the player has already turned the light off */
  close(): Promise<void>;
}

export interface DriverContext {
  /** the configuration file, for errors that name it */
  file: string;
  log: Logger;
  clock: Clock;
}

/** Makes a driver from the `led:` section; may throw ConfigError when the section cannot work. */
export type DriverFactory = (led: LedConfig, ctx: DriverContext) => Promise<Driver>;

export function parseColor(hex: string): Rgb {
  const n = Number.parseInt(hex.replace(/^#/, ''), 16);
  return [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

export function isBlack(rgb: Rgb): boolean {
  return rgb[0] === 0 && rgb[1] === 0 && rgb[2] === 0;
}
