import { mountAt } from '../mounts.js';
import { type Step, StepError } from './step.js';
import { unmountDrive } from './teardown.js';

/** A clean unmount (never lazy here: "safe to remove" must be true). */
export const unmount: Step = {
  name: 'unmount',
  title: 'writing out and unmounting the filesystem',
  async run(ctx) {
    const { drive } = ctx;
    if (drive.kind === 'directory') return;
    const device = drive.kind === 'luks' ? ctx.facts.mapperDevice : ctx.facts.device;
    await unmountDrive(drive.mountPoint, device ? [device] : [], { lazy: false, tries: 5 });
    if (mountAt(drive.mountPoint)) throw new StepError(`${drive.mountPoint} is still mounted`);
    return `${drive.mountPoint} is unmounted`;
  },
};
