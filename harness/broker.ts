/**
 * A real MQTT broker, for the tests and the benchmarks: Debian's mosquitto on
 * 127.0.0.1 (or the embedded aedes broker where mosquitto is not installed),
 * and a subscriber that records what it hears.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';

const INSTALLED = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto'].find((p) =>
  existsSync(p),
);

/** the mosquitto binary (its name alone, for $PATH, where it is in none of the usual places) */
export const MOSQUITTO = INSTALLED ?? 'mosquitto';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
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

export interface Mosquitto {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * mosquitto on 127.0.0.1:`port` (of the caller's choosing, so that it can come
 * up after a client has started trying); with `users`, anonymous clients are
 * refused; with `tls` (PEM files mosquitto can read), it speaks only TLS
 * (mqtts://); with `acl`, the text of its ACL file (lines before any `user`
 * line are what anonymous clients may do).
 */
export async function spawnMosquitto(
  port: number,
  users?: Record<string, string>,
  tls?: { cert: string; key: string },
  acl?: string,
): Promise<Mosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'offsite-mosq-'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
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
      process.off('exit', removeDir);
      removeDir();
    },
  };
}

export interface TestBroker {
  url: string;
  port: number;
  kind: 'mosquitto' | 'aedes';
  stop(): Promise<void>;
  /** stop accepting connections (the process goes away); start() brings it back on the same port */
  start(): Promise<void>;
}

/** An anonymous broker on a free port: mosquitto where it is installed, else aedes. */
export async function startBroker(opts: { kind?: 'mosquitto' | 'aedes' } = {}): Promise<TestBroker> {
  const port = await freePort();
  const url = `mqtt://127.0.0.1:${port}`;
  const kind = opts.kind ?? (INSTALLED ? 'mosquitto' : 'aedes');
  if (kind === 'mosquitto' && INSTALLED) {
    let running: Mosquitto | null = await spawnMosquitto(port);
    return {
      url,
      port,
      kind,
      start: async () => {
        running = await spawnMosquitto(port);
      },
      stop: async () => {
        const m = running;
        running = null;
        await m?.stop();
      },
    };
  }
  const { startEmbeddedBroker } = await import('../bridge/embedded-broker.js');
  let broker = await startEmbeddedBroker(port);
  return {
    url,
    port,
    kind: 'aedes',
    start: async () => {
      broker = await startEmbeddedBroker(port);
    },
    stop: () => broker.close(),
  };
}

export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
  json(): unknown;
}

/** A subscriber that records every message, for assertions. */
export async function recorder(
  url: string,
  topicsToWatch: string[],
): Promise<{
  messages: Received[];
  client: MqttClient;
  waitFor(pred: (m: Received) => boolean, timeoutMs?: number): Promise<Received>;
  close(): Promise<void>;
}> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  const messages: Received[] = [];
  const waiters: Array<{ pred: (m: Received) => boolean; resolve: (m: Received) => void }> = [];
  client.on('message', (topic, payload, packet) => {
    const m: Received = {
      topic,
      payload: payload.toString(),
      retain: packet.retain,
      json: () => JSON.parse(payload.toString()),
    };
    messages.push(m);
    for (const w of [...waiters]) {
      if (w.pred(m)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  await client.subscribeAsync(topicsToWatch, { qos: 1 });
  return {
    messages,
    client,
    waitFor(pred, timeoutMs = 10_000) {
      const found = messages.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const t = setTimeout(
          () => reject(new Error(`no matching MQTT message within ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiters.push({
          pred,
          resolve: (m) => {
            clearTimeout(t);
            resolve(m);
          },
        });
      });
    },
    close: () => client.endAsync(true),
  };
}
