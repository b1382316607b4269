/**
 * The whole `offsite run` (the built CLI in its own process: start-up, config,
 * ledger, steps, reporters) against bare `rsync -a --delete` on the same
 * generated tree, alternating runs, fresh target and unchanged second run.
 * MQTT and email are off: their cost is measured in bench/mqtt-messages.ts.
 *
 *   npm run build && node --import tsx bench/offsite-run.ts [--files 10000] [--rounds 7]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { generateTree, median } from './run-overhead.js';

const CLI = new URL('../dist/bridge/cli.js', import.meta.url).pathname;

function timed(f: () => void): number {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
}

export async function benchOffsiteRun(files = 10_000, rounds = 7, log = (l: string) => console.error(l)) {
  const base = mkdtempSync(join(tmpdir(), 'offsite-bench-run-'));
  try {
    const src = join(base, 'src');
    const bytes = generateTree(src, files);
    const bare = join(base, 'bare');
    const ours = join(base, 'ours');
    const config = join(base, 'config.yaml');
    writeFileSync(
      config,
      stringify({
        node_id: 'bench',
        state_dir: join(base, 'state'),
        source: { path: src },
        drives: [{ name: 'bench', directory: ours }],
      }),
    );
    const r = {
      fresh: { bare: [] as number[], ours: [] as number[] },
      unchanged: { bare: [] as number[], ours: [] as number[] },
    };
    for (let round = 0; round < rounds; round++) {
      const arms = round % 2 ? (['ours', 'bare'] as const) : (['bare', 'ours'] as const);
      for (const kase of ['fresh', 'unchanged'] as const) {
        for (const arm of arms) {
          if (arm === 'bare') {
            if (kase === 'fresh') rmSync(bare, { recursive: true, force: true });
            r[kase].bare.push(timed(() => execFileSync('rsync', ['-a', '--delete', `${src}/`, `${bare}/`])));
          } else {
            if (kase === 'fresh') rmSync(ours, { recursive: true, force: true });
            mkdirSync(ours, { recursive: true });
            // a new directory drive is enrolled first, as on a NAS (not timed: once per drive)
            if (kase === 'fresh')
              execFileSync(process.execPath, [CLI, 'enrol', 'bench', '--config', config], {
                stdio: 'ignore',
              });
            r[kase].ours.push(
              timed(() =>
                execFileSync(process.execPath, [CLI, 'run', 'bench', '--config', config], {
                  stdio: 'ignore',
                }),
              ),
            );
          }
        }
      }
      log(`round ${round + 1}/${rounds}`);
    }
    const sum = (k: 'fresh' | 'unchanged') => {
      const b = median(r[k].bare);
      const o = median(r[k].ours);
      return { bareMs: b, offsiteMs: o, extraMs: o - b, ratio: o / b };
    };
    return { files, bytes, rounds, fresh: sum('fresh'), unchanged: sum('unchanged') };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { files: { type: 'string' }, rounds: { type: 'string' } } });
  const res = await benchOffsiteRun(Number(values.files ?? 10_000), Number(values.rounds ?? 7));
  const s = (ms: number) => `${(ms / 1000).toFixed(3)} s`;
  console.log(
    `offsite run vs rsync -a --delete, ${res.files} files (${(res.bytes / 1e6).toFixed(1)} MB), median of ${res.rounds}`,
  );
  console.log('| case | bare rsync -a --delete | offsite run | extra | ratio |');
  console.log('|---|---|---|---|---|');
  for (const k of ['fresh', 'unchanged'] as const) {
    const f = res[k];
    console.log(`| ${k} | ${s(f.bareMs)} | ${s(f.offsiteMs)} | ${s(f.extraMs)} | ${f.ratio.toFixed(2)} |`);
  }
}
