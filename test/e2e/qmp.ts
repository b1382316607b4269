/**
 * Two small JSON-over-unix-socket clients: QMP (QEMU's monitor: hot-plug, snapshots)
 * and the QEMU guest agent (runs commands in the guest over virtio-serial, no network).
 */
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };

/** Connects to a unix socket that QEMU creates shortly after it starts. */
async function connectWhenReady(path: string, timeoutMs: number): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const socket = connect(path);
        socket.once('connect', () => resolve(socket));
        socket.once('error', reject);
      });
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`cannot connect to ${path}: ${(error as Error).message}`);
      await sleep(100);
    }
  }
}

export class Qmp {
  readonly events: QmpEvent[] = [];
  private readonly pending = new Map<number, Pending & { command: string }>();
  private readonly waiters = new Set<() => void>();
  private nextId = 1;
  private buffer = '';

  private readonly socket: Socket;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('close', () => {
      for (const p of this.pending.values()) p.reject(new Error(`QMP closed during ${p.command}`));
      this.pending.clear();
      for (const wake of this.waiters) wake();
    });
  }

  static async connect(path: string, timeoutMs = 10_000): Promise<Qmp> {
    const qmp = new Qmp(await connectWhenReady(path, timeoutMs));
    await qmp.execute('qmp_capabilities');
    return qmp;
  }

  get closed(): boolean {
    return this.socket.destroyed;
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (!line) continue;
      const message = JSON.parse(line) as Record<string, unknown>;
      if ('event' in message) {
        this.events.push(message as unknown as QmpEvent);
        for (const wake of this.waiters) wake();
      } else if ('id' in message) {
        const p = this.pending.get(message.id as number);
        if (!p) continue;
        this.pending.delete(message.id as number);
        if ('error' in message) {
          const e = message.error as { class: string; desc: string };
          p.reject(new Error(`QMP ${p.command}: ${e.class}: ${e.desc}`));
        } else {
          p.resolve(message.return);
        }
      }
      // The greeting ({"QMP": ...}) needs no answer.
    }
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, command });
      this.socket.write(
        `${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`,
      );
    });
  }

  /** HMP through QMP; HMP reports errors as text, so any output of savevm/loadvm is an error. */
  async human(commandLine: string): Promise<string> {
    return this.execute<string>('human-monitor-command', { 'command-line': commandLine });
  }

  /** A position in the event log: events after it count for `waitEvent`. Take it before the command. */
  mark(): number {
    return this.events.length;
  }

  async waitEvent(
    name: string,
    match: (data: Record<string, unknown>) => boolean,
    timeoutMs: number,
    since = 0,
  ): Promise<QmpEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.slice(since).find((e) => e.event === name && match(e.data ?? {}));
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0 || this.closed) throw new Error(`no QMP event ${name} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        const waiters = this.waiters;
        function done() {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * The guest agent answers one request at a time and has no request ids, so requests are
 * queued. A request that timed out may still be answered later: the next request first
 * resynchronises with guest-sync-delimited (the agent's answer to it starts with 0xFF).
 */
export class GuestAgent {
  private queue: Promise<unknown> = Promise.resolve();
  private buffer = Buffer.alloc(0);
  private current: (Pending & { sync?: number; delimiter: boolean }) | undefined;
  private needSync = true;

  private readonly socket: Socket;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('close', () => this.current?.reject(new Error('guest agent socket closed')));
  }

  static async connect(path: string, timeoutMs = 10_000): Promise<GuestAgent> {
    return new GuestAgent(await connectWhenReady(path, timeoutMs));
  }

  private receive(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const p = this.current;
      if (p?.delimiter) {
        const ff = this.buffer.indexOf(0xff);
        if (ff < 0) {
          this.buffer = Buffer.alloc(0);
          return;
        }
        this.buffer = this.buffer.subarray(ff + 1);
        p.delimiter = false;
      }
      const nl = this.buffer.indexOf(0x0a);
      if (nl < 0) return;
      // Answers to earlier syncs start with 0xFF too; it is never part of the JSON.
      const line = Buffer.from(this.buffer.subarray(0, nl).filter((b) => b !== 0xff))
        .toString('utf8')
        .trim();
      this.buffer = this.buffer.subarray(nl + 1);
      if (!line || !p) continue; // a late answer to a request that timed out
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(line);
      } catch {
        continue; // garbage from before a resync
      }
      if (p.sync !== undefined) {
        if (message.return !== p.sync) continue;
      }
      this.current = undefined;
      if ('error' in message) {
        const e = message.error as { class: string; desc: string };
        p.reject(new Error(`guest agent: ${e.class}: ${e.desc}`));
      } else {
        p.resolve(message.return);
      }
    }
  }

  private send(
    command: string,
    args: Record<string, unknown> | undefined,
    timeoutMs: number,
    sync?: number,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.current = undefined;
        this.needSync = true;
        reject(new Error(`guest agent: ${command} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.current = {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
        delimiter: sync !== undefined,
        ...(sync !== undefined ? { sync } : {}),
      };
      // 0xFF first makes the agent drop any half-read request before the sync.
      const prefix = sync !== undefined ? Buffer.from([0xff]) : Buffer.alloc(0);
      const body = Buffer.from(
        `${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) })}\n`,
      );
      this.socket.write(Buffer.concat([prefix, body]));
    });
  }

  /** Waits until the agent in the guest answers (it starts late in boot). */
  async sync(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const id = Math.floor(Math.random() * 2 ** 31);
      try {
        await this.enqueue(() => this.send('guest-sync-delimited', { id }, 2_000, id));
        this.needSync = false;
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new Error(`guest agent not answering after ${timeoutMs} ms: ${(error as Error).message}`);
        }
        await sleep(500);
      }
    }
  }

  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job, job);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async execute<T = unknown>(
    command: string,
    args?: Record<string, unknown>,
    timeoutMs = 30_000,
  ): Promise<T> {
    if (this.needSync) await this.sync(timeoutMs);
    return this.enqueue(() => this.send(command, args, timeoutMs)) as Promise<T>;
  }

  /** For commands the agent never answers (guest-shutdown kills the agent with the guest). */
  fire(command: string, args?: Record<string, unknown>): void {
    this.socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) })}\n`);
  }

  /** After a snapshot is loaded, the agent's state is from another time: resync before use. */
  invalidate(): void {
    this.needSync = true;
    this.buffer = Buffer.alloc(0);
  }

  close(): void {
    this.socket.destroy();
  }
}
