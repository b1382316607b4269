import { existsSync } from 'node:fs';
import { errorMessage } from '../error-message.js';
import { run } from '../exec.js';
import { mapperPath } from '../mounts.js';
import { cryptsetupUnit } from '../systemd.js';
import { type Step, StepError } from './step.js';
import { closeMapping, waitUntil } from './teardown.js';

/**
 * Unlock through systemd-cryptsetup@<mapper>.service (from the crypttab line
 * that `offsite install` manages), so systemd knows about the mapping and its
 * key file handling is the one the system already trusts.
 */
export const unlock: Step = {
  name: 'unlock',
  title: 'opening the LUKS container with its key file',
  async run(ctx) {
    const { drive } = ctx;
    if (drive.kind !== 'luks') return;
    if (!existsSync(drive.keyFile)) throw new StepError(`the key file ${drive.keyFile} does not exist`);
    const unit = cryptsetupUnit(drive.mapper);
    try {
      await run('systemctl', ['start', '--', unit], { timeoutMs: 120_000, signal: ctx.signal });
    } catch (e) {
      throw new StepError(`could not unlock: ${errorMessage(e)} (see journalctl -u '${unit}')`, {
        cause: e,
      });
    }
    const dev = mapperPath(drive.mapper);
    if (!(await waitUntil(() => existsSync(dev), 10_000)))
      throw new StepError(`${unit} started but ${dev} did not appear (wrong key file?)`);
    ctx.facts.mapperDevice = dev;
    return `opened as ${dev}`;
  },
  async undo(ctx) {
    if (ctx.drive.kind === 'luks') await closeMapping(ctx.drive.mapper);
  },
};
