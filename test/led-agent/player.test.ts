import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../bridge/log.js';
import { openBlinkStick } from '../../led-agent/drivers/blinkstick.js';
import type { Driver } from '../../led-agent/drivers/driver.js';
import type { Light, Pattern } from '../../led-agent/light.js';
import { BLINK_MS, PatternPlayer, PULSE_PERIOD_MS, PULSE_STEP_MS, playable } from '../../led-agent/player.js';
import { FakeBlinkStick, ManualClock } from './fixtures.js';

function setup() {
  const hid = new FakeBlinkStick();
  const clock = new ManualClock();
  const log = silentLogger();
  const driver = openBlinkStick({ index: 0, channel: 0, brightness: 100, transport: hid, clock, log });
  return { hid, clock, player: new PatternPlayer(driver, clock, log) };
}

const light = (color: string, pattern: Pattern): Light => ({
  state: 'running',
  color,
  pattern,
  because: 'test',
});
const rgbOf = (reports: number[][]) => reports.map((r) => r.slice(1).join(','));

describe('pattern player', () => {
  it('steady: one write, nothing more', async () => {
    const { hid, clock, player } = setup();
    player.show(light('#33c280', 'steady'));
    await clock.advance(10_000);
    assert.deepEqual(rgbOf(hid.reports), ['51,194,128']);
    assert.equal(clock.pending, 0);
  });

  it('off and black both write black', async () => {
    const { hid, clock, player } = setup();
    player.show(light('#ff0000', 'off'));
    await clock.advance(1);
    player.show(light('#ff0000', 'steady'));
    await clock.advance(1);
    player.show(light('#000000', 'blink'));
    await clock.advance(5000);
    assert.deepEqual(rgbOf(hid.reports), ['0,0,0', '255,0,0', '0,0,0']);
  });

  it('blink: on for BLINK_MS, off for BLINK_MS, repeating', async () => {
    const { hid, clock, player } = setup();
    player.show(light('#ffbf00', 'blink'));
    await clock.advance(BLINK_MS * 4 + BLINK_MS / 2);
    assert.deepEqual(rgbOf(hid.reports), ['255,191,0', '0,0,0', '255,191,0', '0,0,0', '255,191,0']);
  });

  it('pulse: starts at full colour, breathes down and back, never dark, at most 1000/PULSE_STEP_MS writes/s', async () => {
    const { hid, clock, player } = setup();
    player.show(light('#ffbf00', 'pulse'));
    await clock.advance(PULSE_PERIOD_MS * 2 - 1);
    const reds = hid.reports.map((r) => r[1]!);
    assert.equal(reds[0], 255);
    assert.ok(reds.length <= (PULSE_PERIOD_MS * 2) / PULSE_STEP_MS, `${reds.length} writes`);
    assert.ok(reds.length >= PULSE_PERIOD_MS / PULSE_STEP_MS, `${reds.length} writes`);
    assert.ok(Math.min(...reds) > 0 && Math.min(...reds) < 64, `dimmest ${Math.min(...reds)}`);
    // colour kept: green follows red in the same proportion
    for (const r of hid.reports) assert.ok(Math.abs(r[2]! - (r[1]! * 191) / 255) <= 1, r.join(','));
    const lowest = reds.indexOf(Math.min(...reds));
    assert.ok(Math.abs(lowest * PULSE_STEP_MS - PULSE_PERIOD_MS / 2) <= PULSE_STEP_MS, 'dimmest half-way');
  });

  it('a new light stops the old pattern', async () => {
    const { hid, clock, player } = setup();
    player.show(light('#ffbf00', 'blink'));
    await clock.advance(1);
    player.show(light('#ff0000', 'steady'));
    await clock.advance(BLINK_MS * 5);
    assert.deepEqual(rgbOf(hid.reports), ['255,191,0', '255,0,0']);
    assert.equal(clock.pending, 0);
  });

  it('a burst of lights while a write is in flight reaches the LED as the last one only', async () => {
    const { hid, clock, player } = setup();
    for (let i = 0; i < 1000; i++) player.show(light(i % 2 ? '#ff0000' : '#00ff00', 'steady'));
    player.show(light('#0000ff', 'steady'));
    await player.flushed();
    await clock.advance(1);
    assert.deepEqual(rgbOf(hid.reports), ['0,255,0', '0,0,255']);
    assert.equal(player.writes, 2);
  });

  it('stop turns the light off and cancels the pattern', async () => {
    const { hid, clock, player } = setup();
    player.show(light('#ffbf00', 'pulse'));
    await clock.advance(350);
    await player.stop();
    const count = hid.reports.length;
    await clock.advance(10_000);
    assert.deepEqual(hid.last, [1, 0, 0, 0]);
    assert.equal(hid.reports.length, count);
  });

  it('plays what the driver can: pulse becomes blink on an on/off LED, steady on the console', () => {
    const motions: Driver['motion'][] = ['pulse', 'blink', 'steady'];
    assert.deepEqual(
      motions.map((m) => playable('pulse', m)),
      ['pulse', 'blink', 'steady'],
    );
    assert.deepEqual(
      motions.map((m) => playable('blink', m)),
      ['blink', 'blink', 'steady'],
    );
    assert.deepEqual(
      motions.map((m) => playable('off', m)),
      ['off', 'off', 'off'],
    );
  });
});
