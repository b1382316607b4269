/**
 * What only the LED agent's tests use: a base topic per test, a clock the test
 * moves, a BlinkStick at the HID byte level. What the benchmarks feed the agent
 * too (configuration, payloads, a sysfs LED) is in harness/led-agent.ts.
 */
import type { LedAgent } from '../../led-agent/agent.js';
import type { Clock, Timer } from '../../led-agent/clock.js';
import type { HidDevice, HidTransport } from '../../led-agent/drivers/blinkstick.js';
import type { Light } from '../../led-agent/light.js';

let counter = 0;
/** A base topic of its own for each test, so retained messages of one test never reach another. */
export function freshBase(): string {
  counter += 1;
  return `offsite-t${process.pid}-${counter}`;
}

/** A clock that only moves when the test says so; timers fire in order as it moves. */
export class ManualClock implements Clock {
  #now = 0;
  #timers: Array<{ at: number; seq: number; fn: () => void }> = [];
  #seq = 0;

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn };
    this.#timers.push(timer);
    return {
      cancel: () => {
        const i = this.#timers.indexOf(timer);
        if (i >= 0) this.#timers.splice(i, 1);
      },
    };
  }

  get pending(): number {
    return this.#timers.length;
  }

  /** Move time forward, firing each due timer and letting its promises settle. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      await settle();
      const due = this.#timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.#timers.splice(this.#timers.indexOf(due), 1);
      this.#now = due.at;
      due.fn();
    }
    this.#now = end;
    await settle();
  }
}

/** Let pending promise callbacks and I/O callbacks run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The BlinkStick as hidraw sees it: open by vendor/product (and serial), then
 * feature reports. Unplugging makes every open handle fail, as a vanished
 * /dev/hidraw node does; plugging back needs a new open.
 */
export class FakeBlinkStick implements HidTransport {
  readonly reports: number[][] = [];
  readonly opens: Array<{ vendorId: number; productId: number; serial?: string }> = [];
  closes = 0;
  serial = 'BS012345-3.0';
  #plugged = true;
  #generation = 0;

  async open(match: { vendorId: number; productId: number; serial?: string }): Promise<HidDevice> {
    this.opens.push(match);
    if (!this.#plugged || match.vendorId !== 0x20a0 || match.productId !== 0x41e5)
      throw new Error('cannot open device with vendor id 0x20a0 and product id 0x41e5');
    if (match.serial !== undefined && match.serial !== this.serial)
      throw new Error(`no BlinkStick with serial ${match.serial}`);
    const generation = this.#generation;
    return {
      sendFeatureReport: async (data) => {
        if (!this.#plugged || generation !== this.#generation)
          throw new Error('could not send feature report to device');
        this.reports.push([...data]);
        return data.length;
      },
      close: async () => {
        this.closes += 1;
      },
    };
  }

  unplug(): void {
    this.#plugged = false;
    this.#generation += 1;
  }

  plug(): void {
    this.#plugged = true;
  }

  get last(): number[] | undefined {
    return this.reports.at(-1);
  }
}

/** The next light the agent shows that satisfies pred (or the current one if it already does). */
export function waitForLight(
  agent: LedAgent,
  pred: (l: Light) => boolean,
  timeoutMs = 10_000,
): Promise<Light> {
  if (pred(agent.light)) return Promise.resolve(agent.light);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`the light stayed ${agent.light.state} (${agent.light.because})`));
    }, timeoutMs);
    const off = agent.onLight((light) => {
      if (!pred(light)) return;
      clearTimeout(timer);
      off();
      resolve(light);
    });
  });
}

export function collectLog(): { lines: string[]; write: (level: string, line: string) => void } {
  const lines: string[] = [];
  return { lines, write: (_level, line) => lines.push(line) };
}
