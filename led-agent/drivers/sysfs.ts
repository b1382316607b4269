/**
 * A Linux LED class device (/sys/class/leds/<name>). A single-colour LED gets
 * `brightness` only; a multicolour LED (`multi_index` present) gets the colour
 * as `multi_intensity`, in the order `multi_index` lists its channels, and the
 * brightness cap as `brightness`.
 */
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../../bridge/config/config-error.js';
import { errorMessage } from '../../bridge/error-message.js';
import type { Driver, DriverFactory, Rgb } from './driver.js';

export interface SysfsOptions {
  /** the LED's class directory */
  path: string;
  /** percent cap of max_brightness */
  brightness: number;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

async function readInt(file: string): Promise<number> {
  const n = Number.parseInt((await readFile(file, 'utf8')).trim(), 10);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${file} does not hold a positive number`);
  return n;
}

/** Where each colour of ours goes in a `multi_index` list; other colours (white, amber...) stay dark. */
function channelOf(color: string): 0 | 1 | 2 | null {
  return color === 'red' ? 0 : color === 'green' ? 1 : color === 'blue' ? 2 : null;
}

class SysfsLed implements Driver {
  readonly name = 'sysfs';
  readonly motion: Driver['motion'];
  readonly #path: string;
  readonly #max: number;
  readonly #cap: number;
  readonly #channels: Array<0 | 1 | 2 | null> | null;
  /** what each file holds, so unchanged files are not written again */
  readonly #written = new Map<string, string>();

  constructor(path: string, max: number, percent: number, channels: Array<0 | 1 | 2 | null> | null) {
    this.#path = path;
    this.#max = max;
    // at least 1: a low cap on a LED with few levels must still light it
    this.#cap = Math.max(1, Math.round((max * percent) / 100));
    this.#channels = channels;
    this.motion = channels || max > 1 ? 'pulse' : 'blink';
  }

  async set(rgb: Rgb): Promise<void> {
    const lit = rgb.some((c) => c > 0);
    if (this.#channels) {
      const intensities = this.#channels.map((ch) =>
        ch === null ? 0 : Math.round((rgb[ch] * this.#max) / 255),
      );
      await this.#put('multi_intensity', intensities.join(' '));
      await this.#put('brightness', String(lit ? this.#cap : 0));
      return;
    }
    const level = Math.max(...rgb);
    await this.#put('brightness', String(lit ? Math.max(1, Math.round((level * this.#cap) / 255)) : 0));
  }

  async close(): Promise<void> {}

  async #put(file: string, value: string): Promise<void> {
    if (this.#written.get(file) === value) return;
    await writeFile(join(this.#path, file), `${value}\n`);
    this.#written.set(file, value);
  }
}

export async function openSysfsLed({ path, brightness }: SysfsOptions): Promise<Driver> {
  if (!(await exists(join(path, 'brightness'))))
    throw new Error(`${path} is not an LED class directory (no brightness file)`);
  const max = await readInt(join(path, 'max_brightness'));
  const indexFile = join(path, 'multi_index');
  const channels = (await exists(indexFile))
    ? (await readFile(indexFile, 'utf8')).trim().split(/\s+/).map(channelOf)
    : null;
  // the agent owns the LED from now on: a kernel trigger (heartbeat, disk activity) would fight it
  const trigger = join(path, 'trigger');
  if (await exists(trigger)) await writeFile(trigger, 'none\n');
  return new SysfsLed(path, max, brightness, channels);
}

export const sysfs: DriverFactory = async (led, ctx) => {
  try {
    return await openSysfsLed({ path: led.path!, brightness: led.brightness });
  } catch (e) {
    throw new ConfigError(ctx.file, 'led.path', errorMessage(e));
  }
};
