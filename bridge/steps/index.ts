/**
 * The steps of a run, in order, per kind of drive; and those of `offsite open`
 * and `offsite close`, made of the same steps. Adding a step is one file plus
 * one entry here.
 */
import type { Drive } from '../config.js';
import { close } from './close.js';
import { identify } from './identify.js';
import { mount, mountReadOnly } from './mount.js';
import { powerOff } from './power-off.js';
import { scrub } from './scrub.js';
import type { Step } from './step.js';
import { sync } from './sync.js';
import { unlock } from './unlock.js';
import { unmount } from './unmount.js';
import { verify } from './verify.js';

const STEPS: Record<Drive['kind'], readonly Step[]> = {
  luks: [identify, unlock, mount, sync, verify, unmount, close, powerOff],
  filesystem: [identify, mount, sync, verify, unmount, powerOff],
  directory: [identify, sync, verify],
};

/** `offsite open`: to browse or restore, read-only */
const OPEN: Record<Drive['kind'], readonly Step[]> = {
  luks: [identify, unlock, mountReadOnly],
  filesystem: [identify, mountReadOnly],
  directory: [identify],
};

/** `offsite close` */
const CLOSE: Record<Drive['kind'], readonly Step[]> = {
  luks: [unmount, close, powerOff],
  filesystem: [unmount, powerOff],
  directory: [],
};

export function stepsFor(drive: Drive): readonly Step[] {
  return STEPS[drive.kind];
}

/** `offsite scrub`: the same steps, with the whole-drive scrub in place of sync and verify */
export function scrubStepsFor(drive: Drive): readonly Step[] {
  const steps = [...STEPS[drive.kind]];
  steps.splice(
    steps.findIndex((s) => s.name === 'sync'),
    2,
    scrub,
  );
  return steps;
}

export function openStepsFor(drive: Drive): readonly Step[] {
  return OPEN[drive.kind];
}

export function closeStepsFor(drive: Drive): readonly Step[] {
  return CLOSE[drive.kind];
}
