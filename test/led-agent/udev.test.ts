import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ledClassDir } from '../../harness/led-agent.js';
import { blinkstickUdevRule, LED_GROUP, sysfsLedUdevRule } from '../../led-agent/udev.js';

/** The key/operator/value triples of the rule lines (comments and blanks dropped). */
function rules(text: string): Array<Array<[string, string, string]>> {
  return text
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) =>
      [...l.matchAll(/([A-Z_]+(?:\{[^}]+\})?)(==|!=|\+=|:=|=)"((?:[^"\\]|\\.)*)"/g)].map((m) => [
        m[1]!,
        m[2]!,
        m[3]!,
      ]),
    );
}

describe('udev rules for an unprivileged LED agent', () => {
  it('BlinkStick: its hidraw node, by vendor and product, read/write for the agent group', () => {
    const text = blinkstickUdevRule();
    const [rule, ...more] = rules(text);
    assert.equal(more.length, 0);
    assert.deepEqual(rule, [
      ['SUBSYSTEM', '==', 'hidraw'],
      ['ATTRS{idVendor}', '==', '20a0'],
      ['ATTRS{idProduct}', '==', '41e5'],
      ['MODE', '=', '0660'],
      ['GROUP', '=', LED_GROUP],
      ['TAG', '+=', 'uaccess'],
    ]);
    assert.ok(text.endsWith('\n'));
    assert.match(blinkstickUdevRule('plugdev'), /GROUP="plugdev"/);
    assert.throws(() => blinkstickUdevRule('x", RUN+="/bin/evil'), /not a valid group name/);
  });

  it('sysfs LED: its RUN script gives the group write access to the files the driver writes', () => {
    const text = sysfsLedUdevRule('nas:rgb:status', 'daemon');
    const [rule] = rules(text);
    assert.deepEqual(rule!.slice(0, 3), [
      ['ACTION', '==', 'add'],
      ['SUBSYSTEM', '==', 'leds'],
      ['KERNEL', '==', 'nas:rgb:status'],
    ]);
    const run = rule![3]!;
    assert.equal(run[0], 'RUN');
    // what udev would run for this device: %p is the devpath, $$ a literal $
    const dir = ledClassDir({ multiIndex: 'red green blue' });
    writeFileSync(join(dir, 'max_brightness'), '255\n');
    const command = run[2]
      .replace(/^\/bin\/sh -c '(.*)'$/, '$1')
      .replaceAll('/sys%p', dir)
      .replaceAll('$$', '$');
    execFileSync('/bin/sh', ['-c', command]);
    const daemonGid = Number(execFileSync('getent', ['group', 'daemon']).toString().split(':')[2]);
    for (const f of ['brightness', 'multi_intensity', 'trigger']) {
      const st = statSync(join(dir, f));
      assert.equal(st.gid, daemonGid, f);
      assert.ok(st.mode & 0o020, `${f} group-writable`);
    }
    assert.notEqual(statSync(join(dir, 'max_brightness')).gid, daemonGid);
    // a single-colour LED has no multi_intensity: the script still succeeds
    const single = ledClassDir({});
    execFileSync('/bin/sh', [
      '-c',
      run[2]
        .replace(/^\/bin\/sh -c '(.*)'$/, '$1')
        .replaceAll('/sys%p', single)
        .replaceAll('$$', '$'),
    ]);
    assert.equal(statSync(join(single, 'brightness')).gid, daemonGid);
    assert.throws(() => sysfsLedUdevRule('a"b'), /not an LED class name/);
  });
});
