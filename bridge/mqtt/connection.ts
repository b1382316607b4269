/**
 * How every MQTT client of offsite connects (a run's reporter, the discovery
 * keeper, the one-shot commands, the LED agent): options from the config, the
 * password from a file or a systemd credential, the CA for mqtts://, a last
 * will where the client has one, the pause between attempts, and what a
 * connection failure is called in the log.
 */
import { readFileSync } from 'node:fs';
import type { IClientOptions } from 'mqtt';
import type { MqttConfig } from '../config.js';
import { errorMessage } from '../error-message.js';
import { readSecret } from '../secret.js';

export interface ConnectionSettings {
  /** why the client is connecting, for the client id: the broker's log then says who it was */
  role: string;
  connectTimeoutMs: number;
  /** mqtt.js's fixed pause between attempts (0: the caller reconnects itself, as MqttLink does) */
  reconnectMs: number;
  env?: NodeJS.ProcessEnv;
  /** published (QoS 1, retained) by the broker when the client goes away without saying so */
  will?: { topic: string; payload: string };
}

/**
 * The client options, or throws (with the file named) when the password or CA
 * file cannot be read. Each client gets its own id: two runs (two drives
 * plugged in) with the same id would keep disconnecting each other.
 */
export function clientOptions(cfg: MqttConfig, s: ConnectionSettings): IClientOptions {
  const suffix = `${s.role}-${process.pid}-${Math.random().toString(16).slice(2, 6)}`;
  const opts: IClientOptions = {
    clientId: `${cfg.client_id ?? 'offsite'}-${suffix}`,
    connectTimeout: s.connectTimeoutMs,
    reconnectPeriod: s.reconnectMs,
    // a wrong password stays wrong: retrying only fills the broker's log
    reconnectOnConnackError: false,
    clean: true,
    keepalive: 30,
    // subscriptions are renewed by MqttLink on every connect
    resubscribe: false,
    // mqtt.js would otherwise make 65,536 two-byte Buffers for packet ids: 6 MiB for nothing
    writeCache: false,
  };
  if (s.will) opts.will = { topic: s.will.topic, payload: Buffer.from(s.will.payload), qos: 1, retain: true };
  if (cfg.username) opts.username = cfg.username;
  if (cfg.password_file) {
    try {
      opts.password = readSecret(cfg.password_file, s.env);
    } catch (e) {
      throw new Error(
        `cannot read the MQTT password (mqtt.password_file ${cfg.password_file}): ${codeOf(e)}`,
      );
    }
  }
  if (cfg.ca_file) {
    try {
      opts.ca = readFileSync(cfg.ca_file);
    } catch (e) {
      throw new Error(`cannot read the broker's CA certificate (mqtt.ca_file ${cfg.ca_file}): ${codeOf(e)}`);
    }
  }
  return opts;
}

/** The pause before each attempt: firstMs, doubled after each failure up to maxMs, firstMs again once connected. */
export class Backoff {
  readonly #range: { firstMs: number; maxMs: number };
  #next: number;

  constructor(range: { firstMs: number; maxMs: number }) {
    this.#range = range;
    this.#next = range.firstMs;
  }

  next(): number {
    const pause = this.#next;
    this.#next = Math.min(pause * 2, this.#range.maxMs);
    return pause;
  }

  reset(): void {
    this.#next = this.#range.firstMs;
  }
}

function codeOf(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? errorMessage(e);
}

/** Kinds of trouble, each logged once per connection (a broker down for an hour is one line, not 1,800). */
export type FailureKind = 'unreachable' | 'login refused' | 'tls' | 'publish' | 'config';

const TLS_CODES =
  /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL|EPROTO|DEPTH_ZERO|ALTNAME|UNABLE_TO_GET_ISSUER/;

/** Sort an error from mqtt.js into a failure kind. */
export function failureKind(e: unknown): FailureKind {
  const err = e as Error & { code?: string | number };
  // CONNACK return codes: 4 bad user name or password, 5 not authorized (MQTT 3.1.1); 134/135 in MQTT 5
  if (typeof err.code === 'number' && [4, 5, 134, 135].includes(err.code)) return 'login refused';
  if (/not authori[sz]ed|bad user ?name or password/i.test(err.message ?? '')) return 'login refused';
  if (typeof err.code === 'string' && TLS_CODES.test(err.code)) return 'tls';
  return 'unreachable';
}

/** what the broker being away means for a run */
const RUN_GOES_ON = 'the backup goes on, status follows when it is back';

/** The line a failure kind is logged with (by the link's "mqtt" logger). */
export function failureText(kind: FailureKind, url: string, detail: string, whileAway = RUN_GOES_ON): string {
  switch (kind) {
    case 'login refused':
      return `${url} refused the login (${detail}); check mqtt.username and mqtt.password_file`;
    case 'tls':
      return `${url}: TLS failed (${detail}); check mqtt.ca_file`;
    case 'config':
      return `${detail}`;
    case 'publish':
      return `${url}: publishing failed (${detail})`;
    default:
      return `broker ${url} unreachable (${detail}); ${whileAway}`;
  }
}
