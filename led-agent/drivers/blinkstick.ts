/**
 * BlinkStick (USB 20a0:41e5) through node-hid 3 feature reports. node-hid is
 * loaded only when this driver is chosen, so the agent runs without it, and
 * the HID transport is injectable so tests can record the exact bytes.
 */
import { ConfigError } from '../../bridge/config/config-error.js';
import { errorMessage } from '../../bridge/error-message.js';
import type { Logger } from '../../bridge/log.js';
import type { Clock, Timer } from '../clock.js';
import type { Driver, DriverFactory, Rgb } from './driver.js';

export const BLINKSTICK = { vendorId: 0x20a0, productId: 0x41e5 } as const;

/** How long to wait before trying again to open a BlinkStick that is unplugged (or not yet allowed). */
export const REOPEN_MS = 2000;

export interface HidDevice {
  sendFeatureReport(data: number[]): Promise<number>;
  close(): Promise<void>;
}

export interface HidTransport {
  open(match: { vendorId: number; productId: number; serial?: string }): Promise<HidDevice>;
}

/**
 * The BlinkStick CLI's `--limit N`: the channel maximum becomes trunc(255 * N / 100)
 * and each channel is mapped onto 0..maximum, truncating.
 */
export function limitChannel(value: number, percent: number): number {
  const max = Math.trunc((255 * percent) / 100);
  return Math.floor((value * max) / 255);
}

/** Report 1 `[1, R, G, B]` sets LED 0 of channel 0; report 5 `[5, channel, index, R, G, B]` any one LED. */
export function featureReport(rgb: Rgb, index: number, channel: number): number[] {
  const [r, g, b] = rgb;
  return index === 0 && channel === 0 ? [1, r, g, b] : [5, channel, index, r, g, b];
}

/** The real transport: node-hid's asynchronous API on hidraw. */
export async function nodeHidTransport(): Promise<HidTransport> {
  // a CommonJS module: its exports are the default export
  const hid = (await import('node-hid')).default;
  return {
    async open({ vendorId, productId, serial }) {
      if (serial === undefined) return hid.HIDAsync.open(vendorId, productId);
      const found = (await hid.devicesAsync(vendorId, productId)).find((d) => d.serialNumber === serial);
      if (!found?.path) throw new Error(`no BlinkStick with serial ${serial} is plugged in`);
      return hid.HIDAsync.open(found.path);
    },
  };
}

export interface BlinkStickOptions {
  index: number;
  channel: number;
  /** percent, like the CLI's --limit */
  brightness: number;
  serial?: string;
  transport: HidTransport;
  clock: Clock;
  log: Logger;
  reopenMs?: number;
}

class BlinkStick implements Driver {
  readonly name = 'blinkstick';
  readonly motion = 'pulse';
  readonly #o: BlinkStickOptions;
  #device: HidDevice | null = null;
  #wanted: Rgb = [0, 0, 0];
  #chain: Promise<void> = Promise.resolve();
  #retry: Timer | null = null;
  #missing = false;
  #closed = false;

  constructor(options: BlinkStickOptions) {
    this.#o = options;
  }

  /** Never rejects: an unplugged stick is a normal state, retried until it is back. */
  set(rgb: Rgb): Promise<void> {
    this.#wanted = rgb;
    return this.#enqueue();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#retry?.cancel();
    this.#retry = null;
    await this.#chain;
    await this.#drop();
  }

  #enqueue(): Promise<void> {
    this.#chain = this.#chain.then(() => this.#apply());
    return this.#chain;
  }

  async #apply(): Promise<void> {
    if (this.#closed) return;
    const { index, channel, brightness, serial } = this.#o;
    const [r, g, b] = this.#wanted;
    const report = featureReport(
      [limitChannel(r, brightness), limitChannel(g, brightness), limitChannel(b, brightness)],
      index,
      channel,
    );
    let cause: unknown;
    // a failed write means the handle is stale (unplugged, replugged): reopen once at once
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        this.#device ??= await this.#o.transport.open({ ...BLINKSTICK, ...(serial ? { serial } : {}) });
        await this.#device.sendFeatureReport(report);
        if (this.#missing) this.#o.log.info('the BlinkStick is back');
        this.#missing = false;
        return;
      } catch (e) {
        cause = e;
        await this.#drop();
      }
    }
    const every = this.#o.reopenMs ?? REOPEN_MS;
    if (!this.#missing)
      this.#o.log.warn(
        `cannot reach the BlinkStick (${errorMessage(cause)}); ` +
          `trying again every ${every / 1000} s (unplugged, or no access: see the udev rule in docs/led.md)`,
      );
    this.#missing = true;
    this.#retry ??= this.#o.clock.setTimeout(() => {
      this.#retry = null;
      void this.#enqueue();
    }, every);
  }

  async #drop(): Promise<void> {
    const device = this.#device;
    this.#device = null;
    await device?.close().catch(() => {});
  }
}

export function openBlinkStick(options: BlinkStickOptions): Driver {
  return new BlinkStick(options);
}

export const blinkstick: DriverFactory = async (led, ctx) => {
  let transport: HidTransport;
  try {
    transport = await nodeHidTransport();
  } catch (e) {
    throw new ConfigError(
      ctx.file,
      'led.driver',
      `the blinkstick driver needs node-hid 3, which could not be loaded (${errorMessage(e)}); install it or choose sysfs, console or none`,
    );
  }
  return openBlinkStick({
    index: led.index,
    channel: led.channel,
    brightness: led.brightness,
    ...(led.serial ? { serial: led.serial } : {}),
    transport,
    clock: ctx.clock,
    log: ctx.log,
  });
};
