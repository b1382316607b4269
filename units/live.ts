/**
 * Telling the running system about what install/uninstall changed: only when
 * writing to the live root, and only what the change needs.
 */
import { existsSync } from 'node:fs';
import { errorMessage } from '../bridge/error-message.js';
import { run } from '../bridge/exec.js';
import type { Logger } from '../bridge/log.js';
import {
  BLINKSTICK_RULES_PATH,
  CHECK_TIMER,
  LED_SERVICE,
  SYSFS_LED_RULES_PATH,
  SYSUSERS_PATH,
} from './generate.js';
import type { Change } from './install.js';

/** systemd is PID 1 here (not a container or chroot without it). */
export function systemdRunning(): boolean {
  return existsSync('/run/systemd/system');
}

async function attempt(log: Logger, file: string, args: string[]): Promise<boolean> {
  try {
    await run(file, args, { timeoutMs: 120_000 });
    log.info(`ran: ${file} ${args.join(' ')}`);
    return true;
  } catch (e) {
    log.warn(`${errorMessage(e)}`);
    return false;
  }
}

const touched = (changes: Change[], path: string) => changes.some((c) => c.path === path);

export async function afterInstall(log: Logger, changes: Change[], ledInstalled: boolean): Promise<boolean> {
  let ok = true;
  if (touched(changes, SYSUSERS_PATH)) ok = (await attempt(log, 'systemd-sysusers', [SYSUSERS_PATH])) && ok;
  if (!systemdRunning()) {
    log.warn('systemd is not running here: run `systemctl daemon-reload` once it is');
    return ok;
  }
  ok = (await attempt(log, 'systemctl', ['daemon-reload'])) && ok;
  const blinkstick = touched(changes, BLINKSTICK_RULES_PATH);
  const sysfs = touched(changes, SYSFS_LED_RULES_PATH);
  if (blinkstick || sysfs) ok = (await attempt(log, 'udevadm', ['control', '--reload'])) && ok;
  // a light that is already there gets its group now, not at the next plug or boot
  if (blinkstick)
    ok = (await attempt(log, 'udevadm', ['trigger', '--subsystem-match=hidraw', '--action=change'])) && ok;
  if (sysfs)
    ok = (await attempt(log, 'udevadm', ['trigger', '--subsystem-match=leds', '--action=add'])) && ok;
  ok = (await attempt(log, 'systemctl', ['start', CHECK_TIMER])) && ok;
  if (ledInstalled) ok = (await attempt(log, 'systemctl', ['restart', LED_SERVICE])) && ok;
  return ok;
}

export async function beforeUninstall(log: Logger): Promise<void> {
  if (!systemdRunning()) return;
  await attempt(log, 'systemctl', ['stop', LED_SERVICE, CHECK_TIMER]);
}

export async function afterUninstall(log: Logger, changes: Change[]): Promise<boolean> {
  if (!systemdRunning()) return true;
  let ok = await attempt(log, 'systemctl', ['daemon-reload']);
  if (touched(changes, BLINKSTICK_RULES_PATH) || touched(changes, SYSFS_LED_RULES_PATH))
    ok = (await attempt(log, 'udevadm', ['control', '--reload'])) && ok;
  return ok;
}
