/**
 * What the MQTT and Home Assistant tests share: a mosquitto on a port of the
 * test's choosing (so it can come up after a client has started trying, and
 * can demand a password), a configuration with two directory drives, and a
 * logger that remembers what it said.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Config, parseConfig } from '../../../bridge/config.js';
import { createLogger, type Logger } from '../../../bridge/log.js';

export const MOSQUITTO =
  ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p)) ?? 'mosquitto';

export interface Mosquitto {
  url: string;
  port: number;
  stop(): Promise<void>;
}

async function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * mosquitto on 127.0.0.1:`port`; with `users`, anonymous clients are refused;
 * with `tls` (PEM files mosquitto can read), it speaks only TLS (mqtts://); with `acl`, the
 * text of its ACL file (lines before any `user` line are what anonymous clients may do).
 */
export async function spawnMosquitto(
  port: number,
  users?: Record<string, string>,
  tls?: { cert: string; key: string },
  acl?: string,
): Promise<Mosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'offsite-mosq-'));
  let conf = `listener ${port} 127.0.0.1\npersistence false\nlog_dest none\n`;
  if (tls) conf += `certfile ${tls.cert}\nkeyfile ${tls.key}\n`;
  if (acl !== undefined) {
    writeFileSync(join(dir, 'acl'), acl, { mode: 0o644 });
    chmodSync(dir, 0o755);
    conf += `acl_file ${join(dir, 'acl')}\n`;
  }
  if (users) {
    const file = join(dir, 'passwd');
    writeFileSync(file, '');
    for (const [user, password] of Object.entries(users))
      execFileSync('mosquitto_passwd', ['-b', file, user, password]);
    // mosquitto started as root reads its files as the `mosquitto` user
    chmodSync(dir, 0o755);
    chmodSync(file, 0o644);
    conf += `allow_anonymous false\npassword_file ${file}\n`;
  } else conf += 'allow_anonymous true\n';
  writeFileSync(join(dir, 'mosquitto.conf'), conf);
  const child: ChildProcess = spawn(MOSQUITTO, ['-c', join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
  for (let i = 0; !(await listening(port)); i++) {
    if (i > 200 || child.exitCode !== null) throw new Error(`mosquitto did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url: `${tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    port,
    stop: async () => {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

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
