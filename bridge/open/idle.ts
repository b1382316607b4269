/**
 * Closing an open drive by itself once nobody has used it for a while
 * (`offsite open --idle`, which starts `offsite close --when-idle` in the
 * background; docs/restore.md, "Closing by itself"). "Used" is what /proc
 * shows (usage.ts): a process with a file open, its working directory, its
 * root or a mapped file under the drive. The watcher looks every so often,
 * counts idle time from the last time it saw a use (or from when it started),
 * and closes the drive through `offsite close` itself. It stops, doing
 * nothing, once the opening it watches is gone: closed by hand, or opened
 * again since (another opening, another id).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config, Drive } from '../config.js';
import { childLogger } from '../log.js';
import { realOrSelf } from '../mounts.js';
import { openState } from '../open-record.js';
import { closeDrive, type FlowDeps, formatSeconds, type Outcome } from './flow.js';
import { describeUsers, usersOf } from './usage.js';

/** How often to look: a few times per idle period, between half a second and half a minute. */
export function pollMs(idleSeconds: number): number {
  return Math.min(30_000, Math.max(500, (idleSeconds * 1000) / 4));
}

export async function closeWhenIdle(
  config: Config,
  drive: Drive,
  idleSeconds: number,
  deps: FlowDeps,
): Promise<Outcome> {
  const { log } = deps;
  const said = childLogger(log, drive.name);
  const first = openState(config.state_dir, drive);
  if (first.is === 'closed')
    return { exitCode: 0, lines: [`drive "${drive.name}" is not open: nothing to do`] };
  const id = first.record.id;
  const root = realOrSelf(first.record.at);
  said.info(`watching ${root}: closed once nothing has used it for ${formatSeconds(idleSeconds)}`);
  let lastUse = Date.now();
  let inUse = false;
  for (;;) {
    await sleep(pollMs(idleSeconds), undefined, { signal: deps.signal }).catch(() => null);
    if (deps.signal?.aborted) return { exitCode: 0, lines: [`${drive.name}: stopped watching it`] };
    const now = openState(config.state_dir, drive);
    if (now.is === 'closed' || now.record.id !== id)
      return { exitCode: 0, lines: [`${drive.name}: closed (or opened again) meanwhile: nothing to do`] };
    if (now.is === 'open') {
      const users = usersOf(root);
      if (users.length) {
        lastUse = Date.now();
        if (!inUse) said.info(`in use: ${describeUsers(users)}`);
        said.debug(`still in use (${users.length} process(es))`);
        inUse = true;
        continue;
      }
      if (inUse) said.info(`no longer in use`);
      inUse = false;
      const idle = (Date.now() - lastUse) / 1000;
      said.debug(`unused for ${formatSeconds(idle)}`);
      if (idle < idleSeconds) continue;
      said.info(`unused for ${formatSeconds(idleSeconds)}: closing it`);
    }
    const closed = await closeDrive(config, drive, { onlyId: id }, deps);
    // busy after all (someone started using it this instant) or locked: keep watching
    if (closed.exitCode === 0) return closed;
    for (const line of closed.lines) log.warn(line);
    lastUse = Date.now();
  }
}
