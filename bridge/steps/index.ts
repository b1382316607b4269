/**
 * The steps of a run, in order, per kind of drive. Adding a step is one file
 * plus one entry here.
 */
import type { Drive } from '../config.js';
import { close } from './close.js';
import { identify } from './identify.js';
import { mount } from './mount.js';
import { scrub } from './scrub.js';
import type { Step } from './step.js';
import { sync } from './sync.js';
import { unlock } from './unlock.js';
import { unmount } from './unmount.js';
import { verify } from './verify.js';

const STEPS: Record<Drive['kind'], readonly Step[]> = {
  luks: [identify, unlock, mount, sync, verify, unmount, close],
  filesystem: [identify, mount, sync, verify, unmount],
  directory: [identify, sync, verify],
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
