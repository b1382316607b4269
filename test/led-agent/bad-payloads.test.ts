import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLogger } from '../../bridge/log.js';
import { BAD_PAYLOAD_WINDOW_MS, BadPayloadLog } from '../../led-agent/bad-payloads.js';
import { collectLog, ManualClock } from './fixtures.js';

describe('logging of ignored payloads', () => {
  it('logs the first at once, then one summary per window with the count', async () => {
    const clock = new ManualClock();
    const log = collectLog();
    const bad = new BadPayloadLog(createLogger({ write: log.write }), clock);
    for (let i = 0; i < 500; i++) bad.report('offsite/nas/status', `problem ${i}`);
    assert.deepEqual(log.lines, ['warn: ignored a bad payload on offsite/nas/status: problem 0']);
    await clock.advance(BAD_PAYLOAD_WINDOW_MS);
    assert.equal(log.lines.length, 2);
    assert.match(
      log.lines[1]!,
      /ignored 499 more bad payload\(s\) in the last 10 s \(latest on offsite\/nas\/status: problem 499\)/,
    );
    // the next window: still at most one line for the whole burst
    for (let i = 0; i < 500; i++) bad.report('offsite/nas/status', 'again');
    assert.equal(log.lines.length, 2);
    await clock.advance(BAD_PAYLOAD_WINDOW_MS);
    assert.equal(log.lines.length, 3);
    assert.match(log.lines[2]!, /ignored 500 more/);
    // a quiet window later, a single bad payload is logged at once again
    await clock.advance(BAD_PAYLOAD_WINDOW_MS * 2);
    bad.report('offsite/nas/drive/alpha', 'payload is not JSON');
    assert.equal(log.lines.length, 4);
    assert.equal(clock.pending, 0);
  });

  it('keeps each line printable and short, whatever the topic holds', () => {
    const clock = new ManualClock();
    const log = collectLog();
    const bad = new BadPayloadLog(createLogger({ write: log.write }), clock);
    bad.report(`offsite/nas/drive/\n<3>forged\x1b[31m${'x'.repeat(1000)}`, 'r');
    assert.equal(log.lines.length, 1);
    assert.ok(!/[\n\x1b]/.test(log.lines[0]!));
    assert.ok(log.lines[0]!.length < 300);
  });

  it('says how many were left unlogged when it stops', () => {
    const clock = new ManualClock();
    const log = collectLog();
    const bad = new BadPayloadLog(createLogger({ write: log.write }), clock);
    bad.report('t', 'a');
    bad.report('t', 'b');
    bad.stop();
    assert.equal(log.lines.length, 2);
    assert.match(log.lines[1]!, /ignored 1 more/);
    assert.equal(clock.pending, 0);
  });
});
