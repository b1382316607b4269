/**
 * Every LED driver, by the name used in `led.driver`. Adding a driver: one file
 * in this folder exporting a DriverFactory, one line here, and its name in the
 * `led.driver` enum of bridge/config.ts.
 */
import type { LedConfig } from '../../bridge/config.js';
import { blinkstick } from './blinkstick.js';
import { consoleDriver } from './console.js';
import type { DriverFactory } from './driver.js';
import { none } from './none.js';
import { sysfs } from './sysfs.js';

export const drivers: Record<LedConfig['driver'], DriverFactory> = {
  blinkstick,
  sysfs,
  console: consoleDriver,
  none,
};

export type { Driver, DriverContext, DriverFactory, Rgb } from './driver.js';
