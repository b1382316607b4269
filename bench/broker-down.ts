/**
 * What a stopped broker costs a run: the whole `offsite run` (built CLI, its
 * own process) on an unchanged small tree, with MQTT pointed at a live
 * mosquitto, at a 127.0.0.1 port where nothing listens, and with no MQTT at
 * all; arms alternating, medians.
 *
 *   npm run build && node --import tsx bench/broker-down.ts [--rounds 7]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { freePort, spawnMosquitto } from '../harness/broker.js';
import { generateTree, median } from './run-overhead.js';

const CLI = new URL('../dist/bridge/cli.js', import.meta.url).pathname;

const { values } = parseArgs({ options: { rounds: { type: 'string' } } });
const rounds = Number(values.rounds ?? 7);

const base = mkdtempSync(join(tmpdir(), 'offsite-bench-broker-'));
const broker = await spawnMosquitto(await freePort());
try {
  const src = join(base, 'src');
  generateTree(src, 200);
  const arms = {
    'broker up': { url: broker.url } as Record<string, string> | null,
    'nothing listening': { url: `mqtt://127.0.0.1:${await freePort()}` },
    'no MQTT': null,
  };
  const configs: Record<string, string> = {};
  for (const [arm, mqtt] of Object.entries(arms)) {
    const dir = join(base, arm.replace(/ /g, '-'));
    mkdirSync(join(dir, 'drive'), { recursive: true });
    const file = join(dir, 'config.yaml');
    writeFileSync(
      file,
      stringify({
        node_id: 'bench',
        state_dir: join(dir, 'state'),
        source: { path: src },
        drives: [{ name: 'bench', directory: join(dir, 'drive') }],
        ...(mqtt ? { mqtt } : {}),
      }),
    );
    execFileSync(process.execPath, [CLI, 'enrol', 'bench', '--config', file], { stdio: 'ignore' });
    execFileSync(process.execPath, [CLI, 'run', 'bench', '--config', file], { stdio: 'ignore' });
    configs[arm] = file;
  }
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(arms).map((a) => [a, []]));
  for (let round = 0; round < rounds; round++) {
    const order = Object.keys(arms);
    if (round % 2) order.reverse();
    for (const arm of order) {
      const t0 = performance.now();
      execFileSync(process.execPath, [CLI, 'run', 'bench', '--config', configs[arm]!], { stdio: 'ignore' });
      times[arm]!.push(performance.now() - t0);
    }
    console.error(`round ${round + 1}/${rounds}`);
  }
  const up = median(times['broker up']!);
  console.log(`offsite run, unchanged 200-file tree, median of ${rounds}`);
  console.log('| mqtt | offsite run | against a live broker |');
  console.log('|---|---|---|');
  for (const arm of Object.keys(arms)) {
    const m = median(times[arm]!);
    console.log(`| ${arm} | ${(m / 1000).toFixed(2)} s | ${((m - up) / 1000).toFixed(2)} s |`);
  }
} finally {
  await broker.stop();
  rmSync(base, { recursive: true, force: true });
}
