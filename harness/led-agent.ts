/**
 * What the LED agent is fed, for its tests and the benchmarks: a configuration,
 * status and drive payloads as the contract has them, and a directory laid out
 * like a sysfs LED.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Config, parseConfig } from '../bridge/config.js';
import { type DriveState, driveSchema, isoNow, type Status, statusSchema } from '../bridge/protocol.js';

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
