/**
 * Work the long-running agent hands to a short-lived child (led-agent/helper.ts):
 * reading the configuration, and Home Assistant's republishing. The child loads
 * zod, yaml, the ledger and the rest, and gives that memory back when it exits;
 * the agent itself stays under 50 MiB resident (docs/benchmarks.md, LED agent).
 * The child runs the same Node with the same flags (process.execArgv).
 */
import { spawn } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../bridge/config/config-error.js';
import type { Config } from '../bridge/config.js';
import type { Republish } from '../bridge/homeassistant/keeper.js';
import type { MqttLink } from '../bridge/mqtt/link.js';
import type { ConfigAnswer } from './helper.js';

/** helper.ts beside this file, compiled or not (tests run the sources under tsx) */
const HELPER = fileURLToPath(new URL(`./helper${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

function runHelper(
  args: string[],
  stdout: 'pipe' | 'inherit',
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, HELPER, ...args], {
      stdio: ['ignore', stdout, 'inherit'],
    });
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out }));
  });
}

/** The configuration (`--config` FILE, else where `offsite` finds it), read and checked by the child. */
export async function readConfig(flag: string | undefined): Promise<Config> {
  const { code, out } = await runHelper(['config', ...(flag === undefined ? [] : [flag])], 'pipe');
  let answer: ConfigAnswer;
  try {
    answer = JSON.parse(out) as ConfigAnswer;
  } catch {
    throw new Error(`reading the configuration failed (helper exit ${code})`);
  }
  if (!answer.ok) throw new ConfigError(answer.file, answer.problems);
  return answer.config;
}

/**
 * The keeper's publishing, in a child with a connection of its own. Only while
 * `link` (the keeper's) is connected: otherwise once it connects again, one
 * child for however many asked meanwhile. Its lines go to the agent's stdout and stderr.
 */
export function republishInChild(config: Config, link: MqttLink): Republish {
  let waiting: Promise<boolean> | null = null;
  let latest: { what: 'all' | 'drives'; lastPresent: ReadonlyMap<string, boolean> } | null = null;
  const run = async (what: 'all' | 'drives', lastPresent: ReadonlyMap<string, boolean>) => {
    const present = JSON.stringify(Object.fromEntries(lastPresent));
    const { code } = await runHelper(['republish', config.file, what, present], 'inherit');
    return code === 0;
  };
  return (what, lastPresent) => {
    if (link.connected) return run(what, lastPresent);
    // a full republish asked while away wins over a drives-only one
    if (latest?.what !== 'all') latest = { what, lastPresent };
    waiting ??= new Promise<boolean>((resolve) => {
      const off = link.onChange((up) => {
        if (!up) return;
        off();
        const asked = latest!;
        waiting = null;
        latest = null;
        resolve(run(asked.what, asked.lastPresent));
      });
    });
    return waiting;
  };
}
