/**
 * MQTT for the short commands (`check`, `report-failure`): read a retained
 * message or publish a handful, then disconnect. Built on MqttLink, so a
 * broker that is down or refuses the login is one log line, never fatal
 * (docs/design.md §6): the retained state is put right by the next run or check.
 */
import type { MqttConfig } from '../config.js';
import type { Logger } from '../log.js';
import { MqttLink, type Outgoing } from './link.js';

export type { Outgoing };

export interface OneShotOptions {
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** who is connecting, for the client id (e.g. "check") */
  role: string;
  /** how long to try to reach the broker (default 3 s) */
  timeoutMs?: number;
}

/** A link for one short exchange, giving up on the broker after `timeout`. */
function shortLink(cfg: MqttConfig, opts: OneShotOptions, timeout: number): MqttLink {
  return new MqttLink({
    config: cfg,
    log: opts.log,
    role: opts.role,
    env: opts.env,
    connectTimeoutMs: timeout,
  });
}

/** Publish messages in order; true when the broker acknowledged them all. Never throws. */
export async function publishOnce(
  cfg: MqttConfig | undefined,
  messages: readonly Outgoing[],
  opts: OneShotOptions,
): Promise<boolean> {
  if (!cfg?.enabled || messages.length === 0) return false;
  const timeout = opts.timeoutMs ?? 3000;
  const link = shortLink(cfg, opts, timeout);
  link.start();
  const sent = Promise.all(messages.map((m) => link.publish(m)));
  const flushed = await link.stop(timeout);
  return flushed && (await sent).every(Boolean);
}

/**
 * The retained message on a topic, or null when there is none (or no broker).
 * A broker sends retained messages right after granting the subscription, so
 * a short wait once connected is enough.
 */
export async function readRetained(
  cfg: MqttConfig | undefined,
  topic: string,
  opts: OneShotOptions & { waitMs?: number },
): Promise<Buffer | null> {
  if (!cfg?.enabled) return null;
  const timeout = opts.timeoutMs ?? 3000;
  const link = shortLink(cfg, opts, timeout);
  let found: Buffer | null = null;
  link.subscribe(topic, (payload, retained) => {
    if (retained && payload.length) found ??= payload;
  });
  link.start();
  const deadline = Date.now() + timeout;
  let connectedAt: number | null = null;
  while (!found && Date.now() < deadline) {
    if (link.connected) connectedAt ??= Date.now();
    if (connectedAt !== null && Date.now() - connectedAt > (opts.waitMs ?? 500)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await link.stop(0);
  return found;
}
