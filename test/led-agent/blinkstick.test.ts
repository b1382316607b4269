import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../bridge/log.js';
import {
  featureReport,
  limitChannel,
  openBlinkStick,
  REOPEN_MS,
} from '../../led-agent/drivers/blinkstick.js';
import { parseColor } from '../../led-agent/drivers/driver.js';
import { collectLog, FakeBlinkStick, ManualClock } from './fixtures.js';

function stick(opts: { index?: number; channel?: number; brightness?: number; serial?: string } = {}) {
  const hid = new FakeBlinkStick();
  const clock = new ManualClock();
  const log = collectLog();
  const driver = openBlinkStick({
    index: opts.index ?? 0,
    channel: opts.channel ?? 0,
    brightness: opts.brightness ?? 100,
    ...(opts.serial ? { serial: opts.serial } : {}),
    transport: hid,
    clock,
    log: createLogger({ write: log.write }),
  });
  return { hid, clock, driver, log };
}

describe('blinkstick driver: the feature reports on the wire', () => {
  it('LED 0 on channel 0 is report 1: [1, R, G, B]', async () => {
    const { hid, driver } = stick();
    await driver.set(parseColor('#33c280'));
    assert.deepEqual(hid.reports, [[1, 0x33, 0xc2, 0x80]]);
    assert.deepEqual(hid.opens, [{ vendorId: 0x20a0, productId: 0x41e5 }]);
  });

  it('any other LED is report 5: [5, channel, index, R, G, B]', async () => {
    const a = stick({ index: 1 });
    await a.driver.set([10, 20, 30]);
    assert.deepEqual(a.hid.reports, [[5, 0, 1, 10, 20, 30]]);
    const b = stick({ index: 5, channel: 2 });
    await b.driver.set([10, 20, 30]);
    assert.deepEqual(b.hid.reports, [[5, 2, 5, 10, 20, 30]]);
    const c = stick({ index: 0, channel: 1 });
    await c.driver.set([10, 20, 30]);
    assert.deepEqual(c.hid.reports, [[5, 1, 0, 10, 20, 30]]);
  });

  it('keeps the colour order red, green, blue', async () => {
    const { hid, driver } = stick({ index: 1 });
    for (const hex of ['#ff0000', '#00ff00', '#0000ff']) await driver.set(parseColor(hex));
    assert.deepEqual(hid.reports, [
      [5, 0, 1, 255, 0, 0],
      [5, 0, 1, 0, 255, 0],
      [5, 0, 1, 0, 0, 255],
    ]);
  });

  it('caps brightness like the BlinkStick CLI --limit 10 (the original service)', async () => {
    const { hid, driver } = stick({ index: 1, brightness: 10 });
    await driver.set(parseColor('#33c280')); // blinkstick --index 1 --limit 10 --set-color 33c280
    await driver.set(parseColor('#00ff00')); // ... --set-color green
    assert.deepEqual(hid.reports, [
      [5, 0, 1, 5, 19, 12],
      [5, 0, 1, 0, 25, 0],
    ]);
  });

  it('maps each channel onto 0..trunc(255*N/100), truncating', () => {
    // reference values computed by hand from the CLI's formula int(value / 255 * int(255 * N / 100))
    assert.deepEqual(
      [0, 1, 10, 11, 127, 128, 254, 255].map((v) => limitChannel(v, 10)),
      [0, 0, 0, 1, 12, 12, 24, 25],
    );
    assert.deepEqual(
      [0, 128, 255].map((v) => limitChannel(v, 50)),
      [0, 63, 127],
    );
    assert.deepEqual(
      [0, 77, 255].map((v) => limitChannel(v, 100)),
      [0, 77, 255],
    );
    assert.deepEqual(featureReport([1, 2, 3], 63, 0), [5, 0, 63, 1, 2, 3]);
  });

  it('opens the BlinkStick with the configured serial number', async () => {
    const { hid, driver } = stick({ serial: 'BS012345-3.0' });
    await driver.set([1, 2, 3]);
    assert.deepEqual(hid.opens, [{ vendorId: 0x20a0, productId: 0x41e5, serial: 'BS012345-3.0' }]);
    assert.deepEqual(hid.reports, [[1, 1, 2, 3]]);
  });

  it('reopens the device after it is unplugged and plugged back, and shows the latest colour', async () => {
    const { hid, driver, clock, log } = stick({ index: 1 });
    await driver.set([0, 255, 0]);
    hid.unplug();
    await driver.set([255, 0, 0]); // does not throw: an unplugged stick is a normal state
    await driver.set([0, 0, 255]);
    assert.deepEqual(hid.reports, [[5, 0, 1, 0, 255, 0]]);
    assert.equal(
      log.lines.filter((l) => /cannot reach the BlinkStick/.test(l)).length,
      1,
      log.lines.join('\n'),
    );
    await clock.advance(REOPEN_MS * 3); // still unplugged: it keeps trying, quietly
    assert.equal(hid.reports.length, 1);
    hid.plug();
    await clock.advance(REOPEN_MS);
    assert.deepEqual(hid.last, [5, 0, 1, 0, 0, 255]);
    assert.ok(log.lines.some((l) => /BlinkStick is back/.test(l)));
    assert.equal(clock.pending, 0, 'no retry left once it is back');
  });

  it('a stale handle after a quick replug is reopened at once', async () => {
    const { hid, driver, clock } = stick();
    await driver.set([1, 1, 1]);
    hid.unplug();
    hid.plug();
    await driver.set([2, 2, 2]);
    assert.deepEqual(hid.reports, [
      [1, 1, 1, 1],
      [1, 2, 2, 2],
    ]);
    assert.equal(hid.opens.length, 2);
    assert.equal(clock.pending, 0);
  });

  it('starts without the stick and lights it when it is plugged in', async () => {
    const { hid, driver, clock } = stick();
    hid.unplug();
    await driver.set([9, 9, 9]);
    assert.equal(hid.reports.length, 0);
    hid.plug();
    await clock.advance(REOPEN_MS);
    assert.deepEqual(hid.reports, [[1, 9, 9, 9]]);
  });

  it('close releases the device and stops retrying', async () => {
    const { hid, driver, clock } = stick();
    await driver.set([1, 2, 3]);
    await driver.close();
    assert.equal(hid.closes, 1);
    const unplugged = stick();
    unplugged.hid.unplug();
    await unplugged.driver.set([1, 2, 3]);
    assert.equal(unplugged.clock.pending, 1);
    await unplugged.driver.close();
    assert.equal(unplugged.clock.pending, 0);
    assert.equal(clock.pending, 0);
  });
});
