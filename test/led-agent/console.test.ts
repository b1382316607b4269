import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { consoleLine, openConsoleLed } from '../../led-agent/drivers/console.js';
import type { Light } from '../../led-agent/light.js';

const running: Light = {
  state: 'running',
  color: '#33c280',
  pattern: 'steady',
  because: 'nas: alpha running (sync)',
};
const overdue: Light = {
  state: 'overdue',
  color: '#ffbf00',
  pattern: 'pulse',
  because: 'nas: every drive overdue',
};

describe('console driver', () => {
  it('on a terminal: a swatch in the colour, the word, the pattern', () => {
    const line = consoleLine(overdue, true);
    assert.ok(line.startsWith('\x1b[48;2;255;191;0m'));
    assert.match(line, /overdue/);
    assert.match(line, /\(pulse\)/);
    assert.match(
      consoleLine({ ...running, state: 'off', color: '#000000', pattern: 'off' }, true),
      /\[ {4}\]/,
    );
  });

  it('not a terminal: plain words, no escape codes', () => {
    assert.equal(consoleLine(running, false), 'LED running (#33c280): nas: alpha running (sync)');
    assert.equal(consoleLine(overdue, false), 'LED overdue (#ffbf00, pulse): nas: every drive overdue');
  });

  it('prints one line per light it is told about', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d) => {
      text += d;
    });
    const led = openConsoleLed({ out });
    led.announce?.(running);
    await led.set([51, 194, 128]);
    led.announce?.(overdue);
    assert.equal(text, `${consoleLine(running, false)}\n${consoleLine(overdue, false)}\n`);
    assert.equal(led.motion, 'steady');
  });
});
