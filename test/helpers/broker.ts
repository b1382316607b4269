/**
 * A real MQTT broker for tests: Debian's mosquitto on a free 127.0.0.1 port,
 * or the embedded aedes broker where mosquitto is not installed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';

export interface TestBroker {
  url: string;
  port: number;
  kind: 'mosquitto' | 'aedes';
  stop(): Promise<void>;
  /** stop accepting connections (the process goes away); start() brings it back on the same port */
  start(): Promise<void>;
}

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

function findMosquitto(): string | null {
  return (
    ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto'].find((p) => existsSync(p)) ??
    null
  );
}

async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  const { connect } = await import('node:net');
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`broker did not listen on ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startBroker(opts: { kind?: 'mosquitto' | 'aedes' } = {}): Promise<TestBroker> {
  const port = await freePort();
  const bin = findMosquitto();
  const kind = opts.kind ?? (bin ? 'mosquitto' : 'aedes');
  if (kind === 'mosquitto' && bin) {
    const dir = mkdtempSync(join(tmpdir(), 'offsite-mosq-'));
    const conf = join(dir, 'mosquitto.conf');
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(
      conf,
      `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n`,
    );
    let child: ChildProcess | null = null;
    const start = async () => {
      child = spawn(bin, ['-c', conf], { stdio: 'ignore' });
      await waitForPort(port);
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
      url: `mqtt://127.0.0.1:${port}`,
      port,
      kind: 'mosquitto',
      start,
      stop,
    };
  }
  const { startEmbeddedBroker } = await import('../../bridge/embedded-broker.js');
  let broker = await startEmbeddedBroker(port);
  return {
    url: `mqtt://127.0.0.1:${port}`,
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
