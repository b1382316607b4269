import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../../bridge/config.js';
import { silentLogger } from '../../bridge/log.js';
import { agentConfig, ledClassDir, ledFile } from '../../harness/led-agent.js';
import { systemClock } from '../../led-agent/clock.js';
import { parseColor } from '../../led-agent/drivers/driver.js';
import { drivers } from '../../led-agent/drivers/index.js';
import { openSysfsLed } from '../../led-agent/drivers/sysfs.js';

describe('sysfs driver: a Linux LED class directory', () => {
  it('multicolour: the colour as multi_intensity in multi_index order, the cap as brightness', async () => {
    const dir = ledClassDir({ multiIndex: 'red green blue' });
    const led = await openSysfsLed({ path: dir, brightness: 10 });
    await led.set(parseColor('#33c280'));
    assert.equal(ledFile(dir, 'multi_intensity'), '51 194 128');
    assert.equal(ledFile(dir, 'brightness'), '26'); // round(255 * 10%)
    await led.set([0, 0, 0]);
    assert.equal(ledFile(dir, 'brightness'), '0');
    assert.equal(led.motion, 'pulse');
  });

  it('multicolour: follows whatever channel order multi_index lists', async () => {
    const dir = ledClassDir({ multiIndex: 'green blue red' });
    const led = await openSysfsLed({ path: dir, brightness: 100 });
    await led.set([1, 2, 3]);
    assert.equal(ledFile(dir, 'multi_intensity'), '2 3 1');
    assert.equal(ledFile(dir, 'brightness'), '255');
  });

  it('multicolour: scales intensities to max_brightness and leaves other channels dark', async () => {
    const dir = ledClassDir({ multiIndex: 'red green blue white', max: 100 });
    const led = await openSysfsLed({ path: dir, brightness: 50 });
    await led.set(parseColor('#ff8000'));
    assert.equal(ledFile(dir, 'multi_intensity'), '100 50 0 0');
    assert.equal(ledFile(dir, 'brightness'), '50');
  });

  it('single colour: brightness from the brightest channel, scaled to max_brightness and the cap', async () => {
    const dir = ledClassDir({ max: 255 });
    const led = await openSysfsLed({ path: dir, brightness: 100 });
    await led.set(parseColor('#33c280'));
    assert.equal(ledFile(dir, 'brightness'), '194');
    const capped = await openSysfsLed({ path: dir, brightness: 10 });
    await capped.set(parseColor('#00ff00'));
    assert.equal(ledFile(dir, 'brightness'), '26');
    await capped.set([1, 0, 0]); // a dim frame still lights a capped LED
    assert.equal(ledFile(dir, 'brightness'), '1');
    await capped.set([0, 0, 0]);
    assert.equal(ledFile(dir, 'brightness'), '0');
  });

  it('an on/off LED (max_brightness 1) is on for any colour and can blink but not pulse', async () => {
    const dir = ledClassDir({ max: 1 });
    const led = await openSysfsLed({ path: dir, brightness: 10 });
    assert.equal(led.motion, 'blink');
    await led.set(parseColor('#33c280'));
    assert.equal(ledFile(dir, 'brightness'), '1');
    await led.set([0, 0, 0]);
    assert.equal(ledFile(dir, 'brightness'), '0');
  });

  it('takes the LED from any kernel trigger', async () => {
    const dir = ledClassDir({});
    await openSysfsLed({ path: dir, brightness: 100 });
    assert.equal(ledFile(dir, 'trigger'), 'none');
  });

  it('refuses a directory that is not an LED, naming led.path', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'offsite-notled-'));
    const config = agentConfig({
      url: 'mqtt://127.0.0.1:1',
      base: 'offsite',
      led: { driver: 'sysfs', path: empty },
    });
    await assert.rejects(
      drivers.sysfs(config.led, {
        file: '/etc/offsite/config.yaml',
        log: silentLogger(),
        clock: systemClock,
      }),
      (e: unknown) =>
        e instanceof ConfigError && e.keyPath === 'led.path' && /not an LED class directory/.test(e.message),
    );
  });
});
