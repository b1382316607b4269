/**
 * Shared parts of the LED agent tests: a configuration, payloads as the bridge
 * publishes them, a directory laid out like /sys/class/leds/<name>, a clock the
 * test steps by hand, and a byte-level fake of the BlinkStick's HID transport
 * (the one hardware edge the tests cannot reach for real).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { type Config, parseConfig } from '../../bridge/config.js';
import { type DriveState, driveSchema, isoNow, type Status, statusSchema } from '../../bridge/protocol.js';
import type { LedAgent } from '../../led-agent/agent.js';
import type { Clock, Timer } from '../../led-agent/clock.js';
import type { HidDevice, HidTransport } from '../../led-agent/drivers/blinkstick.js';
import type { Light } from '../../led-agent/light.js';
import { freePort } from '../helpers/broker.js';

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
  nodes?: string[];
  led?: Record<string, unknown>;
}): Config {
  return parseConfig({
    node_id: opts.node ?? 'nas',
    source: { path: '/srv/backup' },
    drives: [{ name: 'alpha', directory: '/tmp/offsite-alpha' }],
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

/**
 * A mosquitto that can be stopped and started again on the same port, for the
 * outage tests (test/helpers/broker.ts's stop() also deletes its configuration,
 * so it cannot come back after stop()).
 */
export async function restartableMosquitto(): Promise<{
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'offsite-led-mosq-'));
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n`);
  let child: ChildProcess | null = null;
  const url = `mqtt://127.0.0.1:${port}`;
  const start = async () => {
    child = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: 'ignore' });
    for (let i = 0; ; i++) {
      const up = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 1000 }, false).then(
        (c) => c.endAsync(true).then(() => true),
        () => false,
      );
      if (up) return;
      if (i > 100) throw new Error(`mosquitto did not listen on ${port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async () => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
    });
  };
  await start();
  return {
    url,
    start,
    stop,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
