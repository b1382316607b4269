import { existsSync } from 'node:fs';
import { mapperPath } from '../mounts.js';
import { type Step, StepError } from './step.js';
import { closeMapping } from './teardown.js';

/** Stopping the cryptsetup unit is what closes the mapping (StopWhenUnneeded never does: docs/design.md §1). */
export const close: Step = {
  name: 'close',
  title: 'closing the LUKS mapping, and checking that it is gone',
  async run(ctx) {
    const { drive } = ctx;
    if (drive.kind !== 'luks') return;
    await closeMapping(drive.mapper);
    if (existsSync(mapperPath(drive.mapper)))
      throw new StepError(`${mapperPath(drive.mapper)} is still open`);
    return `${mapperPath(drive.mapper)} is gone`;
  },
};
