/**
 * What the MQTT and Home Assistant tests share: a configuration with two
 * directory drives, and a logger that remembers what it said. (The broker they
 * run against is harness/broker.ts.)
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Config, parseConfig } from '../../../bridge/config.js';
import { createLogger, type Logger } from '../../../bridge/log.js';

export interface Fixture {
  dir: string;
  config: Config;
  cleanup(): void;
}

/** node `nas`, drives `alpha` and `beta` (plain directories), state in a temporary state_dir */
export function fixture(mqtt: Record<string, unknown>, extra: Record<string, unknown> = {}): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'offsite-mqtt-'));
  for (const d of ['source', 'alpha', 'beta', 'state']) mkdirSync(join(dir, d));
  const config = parseConfig({
    node_id: 'nas',
    state_dir: join(dir, 'state'),
    source: { path: join(dir, 'source') },
    drives: [
      { name: 'alpha', directory: join(dir, 'alpha') },
      { name: 'beta', directory: join(dir, 'beta') },
    ],
    mqtt,
    led: { driver: 'console' },
    ...extra,
  });
  return { dir, config, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface MemoryLog extends Logger {
  lines: string[];
  /** lines containing `text` (a string) or matching it (a regular expression) */
  count(text: string | RegExp): number;
}

export function memoryLog(): MemoryLog {
  const lines: string[] = [];
  const log = createLogger({ write: (_level, line) => lines.push(line), verbose: true, journal: false });
  return Object.assign(log, {
    lines,
    count: (text: string | RegExp) =>
      lines.filter((l) => (typeof text === 'string' ? l.includes(text) : text.test(l))).length,
  });
}
