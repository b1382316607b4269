/**
 * Unmounting and closing, shared by the unmount/close steps, the undo walk,
 * the clearing of stale state at the start of a run and `offsite cleanup`
 * (the ExecStopPost= safety net). All of it is idempotent.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemdEscape } from '../../units/escape.js';
import { run } from '../exec.js';
import { mapperPath, mountAt } from '../mounts.js';
import { StepError } from './step.js';

export function cryptsetupUnit(mapper: string): string {
  return `systemd-cryptsetup@${systemdEscape(mapper)}.service`;
}

export async function waitUntil(pred: () => boolean, timeoutMs: number, stepMs = 100): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > until) return false;
    await sleep(stepMs);
  }
  return true;
}

/**
 * Unmount whatever is mounted at `mountPoint`. `lazy`: when a plain unmount
 * keeps failing (a pulled drive, a busy shell), detach it lazily rather than
 * leave a stale mount that breaks the next plug.
 */
export async function unmountAll(
  mountPoint: string,
  opts: { lazy: boolean; tries?: number },
): Promise<boolean> {
  if (!mountAt(mountPoint)) return false;
  const tries = opts.tries ?? 3;
  let lastError = '';
  for (let i = 0; i < tries && mountAt(mountPoint); i++) {
    try {
      await run('umount', [mountPoint], { timeoutMs: 60_000 });
    } catch (e) {
      lastError = (e as Error).message;
      await sleep(500 * (i + 1));
    }
  }
  if (mountAt(mountPoint) && opts.lazy) await run('umount', ['-l', mountPoint], { okCodes: [0, 32] });
  if (mountAt(mountPoint))
    throw new StepError(`${mountPoint} is still mounted: ${lastError || 'umount did not detach it'}`);
  return true;
}

/**
 * Close the LUKS mapping: stop the cryptsetup unit (systemd's own teardown),
 * then check that /dev/mapper/<name> is really gone; `cryptsetup close` as a
 * fallback (e.g. a mapping opened outside systemd). Checked, not assumed.
 */
export async function closeMapping(mapper: string): Promise<boolean> {
  const dev = mapperPath(mapper);
  if (!existsSync(dev)) return false;
  const problems: string[] = [];
  try {
    // --no-block: this may run inside the backup unit's own stop (undo, ExecStopPost), and a
    // stop job that waited for that would wait for itself; the mapping is checked below instead
    await run('systemctl', ['stop', '--no-block', cryptsetupUnit(mapper)], { timeoutMs: 30_000 });
  } catch (e) {
    problems.push((e as Error).message);
  }
  if (!(await waitUntil(() => !existsSync(dev), 30_000))) {
    try {
      await run('cryptsetup', ['close', mapper], { timeoutMs: 60_000 });
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (existsSync(dev))
    throw new StepError(
      `the LUKS mapping ${dev} is still open: ${problems.join('; ') || 'it did not go away'}`,
    );
  return true;
}
