/**
 * udev rules that let the unprivileged LED agent reach its light: the
 * BlinkStick's hidraw node, or a Linux LED class device's files. `offsite
 * install` writes them to /etc/udev/rules.d; the agent's unit runs with the
 * group named here (see docs/led.md).
 */
import { BLINKSTICK } from './drivers/blinkstick.js';

/** The group the LED agent runs in; owns the LED's device nodes. */
export const LED_GROUP = 'offsite-led';

/** Before 73-seat-late.rules, which turns the uaccess tag into an ACL for the desktop user. */
export const BLINKSTICK_RULE_FILE = '70-offsite-blinkstick.rules';
export const SYSFS_LED_RULE_FILE = '70-offsite-led.rules';

const hex4 = (n: number) => n.toString(16).padStart(4, '0');

function checkGroup(group: string): void {
  if (!/^[a-z_][a-z0-9_-]*$/.test(group)) throw new Error(`"${group}" is not a valid group name`);
}

/**
 * The BlinkStick's /dev/hidraw* node: group read/write for the agent's group
 * (a system user has no seat, so `uaccess` alone would not reach it; the tag
 * is kept so a person at the console can use the BlinkStick CLI too).
 */
export function blinkstickUdevRule(group: string = LED_GROUP): string {
  checkGroup(group);
  return [
    `# ${BLINKSTICK_RULE_FILE}: written by offsite install`,
    `# The offsite LED agent (group ${group}) sets a BlinkStick (USB ${hex4(BLINKSTICK.vendorId)}:${hex4(BLINKSTICK.productId)}) without root.`,
    `SUBSYSTEM=="hidraw", ATTRS{idVendor}=="${hex4(BLINKSTICK.vendorId)}", ATTRS{idProduct}=="${hex4(BLINKSTICK.productId)}", MODE="0660", GROUP="${group}", TAG+="uaccess"`,
    '',
  ].join('\n');
}

/**
 * A Linux LED class device: sysfs attributes cannot be given a group with
 * GROUP=, so the rule changes the files the sysfs driver writes when the LED
 * appears. `$$` is udev's escape for a literal `$`.
 */
export function sysfsLedUdevRule(ledName: string, group: string = LED_GROUP): string {
  checkGroup(group);
  if (!/^[A-Za-z0-9:_.-]+$/.test(ledName)) throw new Error(`"${ledName}" is not an LED class name`);
  const files = 'brightness multi_intensity trigger';
  const script = `for f in ${files}; do [ -e /sys%p/$$f ] && chgrp ${group} /sys%p/$$f && chmod g+w /sys%p/$$f; done; true`;
  return [
    `# ${SYSFS_LED_RULE_FILE}: written by offsite install`,
    `# The offsite LED agent (group ${group}) sets the LED ${ledName} without root.`,
    `ACTION=="add", SUBSYSTEM=="leds", KERNEL=="${ledName}", RUN+="/bin/sh -c '${script}'"`,
    '',
  ].join('\n');
}
