/** No LED: the agent still follows the state and reports its availability (useful to test a setup). */
import type { Driver, DriverFactory } from './driver.js';

export function openNoLed(): Driver {
  return { name: 'none', motion: 'steady', set: async () => {}, close: async () => {} };
}

export const none: DriverFactory = async () => openNoLed();
