import { errorMessage } from '../error-message.js';
import { powerOffDisk } from '../power.js';
import type { Step } from './step.js';

/**
 * The last step after a good run (and of `offsite close`): the disk is powered
 * off where the hardware allows it, so that it can be pulled at once and does
 * not spin on a shelf (bridge/power.ts). Green comes after it. Nothing here
 * fails a run: the drive is already unmounted and closed, so safe to remove
 * whatever the power-off made of it; a problem is logged.
 */
export const powerOff: Step = {
  name: 'power-off',
  title: 'powering the drive off where the hardware allows it',
  async run(ctx) {
    const { drive, facts, log } = ctx;
    if (drive.kind === 'directory') return 'a directory drive: there is no disk to power off';
    if (!drive.powerOff) return 'power_off is false for this drive: it stays powered';
    if (!facts.device) return 'no device is known (identify did not run): left as it is';
    try {
      return await powerOffDisk(facts.device);
    } catch (e) {
      log.warn(`could not power ${facts.device} off: ${errorMessage(e)}`);
      return 'not powered off (see the warning above); it is unmounted and closed all the same';
    }
  },
};
