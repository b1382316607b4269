/**
 * The terminal reporter: on a TTY a live line for every step (a bar where the
 * step reports progress, else a spinner and the time so far); off a TTY, the
 * journal gets plain lines and no live line at all.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { RunEvents } from '../../../bridge/events.js';
import { createLogger } from '../../../bridge/log.js';
import { terminalReporter } from '../../../bridge/reporters/terminal.js';
import { Bus } from '../../../bridge/run/bus.js';

/** a terminal (or not) and a logger writing into one transcript, in order */
function screen(tty: boolean) {
  const written: string[] = [];
  const out = Object.assign(
    new Writable({
      write(chunk, _encoding, done) {
        written.push(String(chunk));
        done();
      },
    }),
    { isTTY: tty },
  ) as unknown as NodeJS.WriteStream;
  const base = createLogger({ write: (_level, line) => written.push(`${line}\n`), journal: false });
  const bus = new Bus<RunEvents>();
  let clock = 1_000_000;
  const terminal = terminalReporter(base, out, () => clock);
  terminal.attach(bus);
  const { log } = terminal;
  return {
    bus,
    log,
    written,
    text: () => written.join(''),
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

const at = { runId: 'r1', drive: 'alpha', time: new Date() };
const MiB = 1024 * 1024;

describe('the terminal', () => {
  it('shows a bar for verify with the bytes it has to read', () => {
    const s = screen(true);
    s.bus.emit('step:start', { ...at, step: 'verify' });
    s.bus.emit('progress', {
      ...at,
      step: 'verify',
      percent: 50,
      bytes: MiB,
      total: 2 * MiB,
      rate: MiB,
      etaSeconds: 1,
    });
    assert.match(
      s.text(),
      /\r\x1b\[2Kalpha: verify \[#{15}-{15}\] {2}50% 1\.0 MiB of 2\.0 MiB at 1\.0 MiB\/s, 1s left$/,
    );
  });

  it('shows a step without progress (unlock) with a spinner and the time so far, and clears it for the next line', async () => {
    const s = screen(true);
    s.bus.emit('step:start', { ...at, step: 'unlock' });
    s.log.info('alpha: unlock: opening the LUKS container with its key file');
    s.advance(3000);
    const timer = async () => {
      while (!s.text().includes('alpha: unlock ')) await new Promise((r) => setTimeout(r, 50));
    };
    await timer(); // the timer's first draw, a second after the step started
    assert.match(
      s.text(),
      /opening the LUKS container with its key file\n\r\x1b\[2Kalpha: unlock [|/\\-] 3s$/,
    );
    s.bus.emit('step:done', { ...at, step: 'unlock', ms: 3000 });
    s.log.info('alpha: unlock: opened as /dev/mapper/offsite_alpha (3.0 s)');
    assert.match(
      s.text(),
      / 3s\r\x1b\[2Kalpha: unlock: opened as \/dev\/mapper\/offsite_alpha \(3\.0 s\)\n$/,
    );
    const before = s.written.length;
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(s.written.length, before, 'the timer stopped with the step');
  });

  it('any line written during a step clears the live line first', () => {
    const s = screen(true);
    s.bus.emit('progress', { ...at, step: 'sync', percent: 10, bytes: MiB, rate: MiB, etaSeconds: 9 });
    s.log.warn('alpha: the source is busy');
    assert.match(s.text(), /9s left\r\x1b\[2Kwarn: alpha: the source is busy\n$/);
  });

  it('off a terminal (the journal) there is no live line: plain progress lines, at most one per 10 s', async () => {
    const s = screen(false);
    s.bus.emit('step:start', { ...at, step: 'unlock' });
    await new Promise((r) => setTimeout(r, 1200));
    s.bus.emit('step:done', { ...at, step: 'unlock', ms: 1200 });
    s.bus.emit('step:start', { ...at, step: 'sync' });
    for (const percent of [10, 20, 100]) {
      s.bus.emit('progress', {
        ...at,
        step: 'sync',
        percent,
        bytes: percent * MiB,
        rate: MiB,
        etaSeconds: 0,
      });
      s.advance(4000);
    }
    assert.doesNotMatch(s.text(), /\r|\x1b/);
    assert.equal(
      s.text(),
      'alpha: sync  10% 10.0 MiB at 1.0 MiB/s, 0s left\nalpha: sync 100% 100.0 MiB at 1.0 MiB/s, 0s left\n',
    );
  });
});
