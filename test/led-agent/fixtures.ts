import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Config, parseConfig } from '../../bridge/config.js';
import { type DriveState, driveSchema, isoNow, type Status, statusSchema } from '../../bridge/protocol.js';
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

export function agentConfig(opts: {
  url: string;
  base: string;
  node?: string;
  nodes?: Array<string | { node: string; drives: string[] }>;
  led?: Record<string, unknown>;
}): Config {
  return parseConfig({
    node_id: opts.node ?? 'nas',
    source: { path: '/srv/backup' },
    drives: ['alpha', 'beta'].map((name) => ({ name, directory: `/tmp/offsite-${name}` })),
    mqtt: { url: opts.url, base_topic: opts.base },
    led: { driver: 'none', ...(opts.nodes ? { nodes: opts.nodes } : {}), ...opts.led },
  });
}

export function status(state: Status['state'], extra: Partial<Status> = {}): string {
  return JSON.stringify(
    statusSchema.parse({
      state,
      drive: state === 'idle' ? null : 'alpha',
      step: state === 'running' ? 'sync' : state === 'failed' ? 'mount' : null,
      progress: state === 'running' ? 40 : null,
      bytes: null,
      eta: null,
      message: state === 'failed' ? 'not a mount point' : null,
      updated: isoNow(),
      ...extra,
    }),
  );
}

export function drive(name: string, overdue: boolean, extra: Partial<DriveState> = {}): string {
  return JSON.stringify(
    driveSchema.parse({
      name,
      present: false,
      last_run: isoNow(),
      last_result: 'success',
      last_success: isoNow(),
      overdue,
      free_bytes: 1_000_000,
      size_bytes: 2_000_000,
      ...extra,
    }),
  );
}

/** A directory laid out like /sys/class/leds/<name>; multiIndex makes it a multicolour LED. */
export function ledClassDir(opts: { max?: number; multiIndex?: string; name?: string } = {}): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'offsite-leds-')), opts.name ?? 'nas:rgb:status');
  mkdirSync(dir);
  writeFileSync(join(dir, 'brightness'), '0\n');
  writeFileSync(join(dir, 'max_brightness'), `${opts.max ?? 255}\n`);
  writeFileSync(join(dir, 'trigger'), '[none] timer heartbeat default-on\n');
  if (opts.multiIndex) {
    writeFileSync(join(dir, 'multi_index'), `${opts.multiIndex}\n`);
    writeFileSync(
      join(dir, 'multi_intensity'),
      opts.multiIndex
        .split(' ')
        .map(() => '0')
        .join(' ') + '\n',
    );
  }
  return dir;
}

export function ledFile(dir: string, file: string): string {
  return readFileSync(join(dir, file), 'utf8').trim();
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
