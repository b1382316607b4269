/**
 * The whole `offsite run` (the built CLI in its own process: start-up, config,
 * ledger, steps, reporters) against bare `rsync -a --delete` on the same
 * generated tree, alternating runs, fresh target and unchanged second run.
 * MQTT and email are off: their cost is measured in bench/mqtt-messages.ts.
 *
 *   npm run build && node --import tsx bench/offsite-run.ts [--files 10000] [--rounds 7] [--log FILE]
 *
 * Each run's output (with OFFSITE_DEBUG=1: rsync's command lines and the
 * parts of verify) goes to --log (default /var/tmp/offsite-bench/offsite-run.log),
 * each line stamped with the seconds since its start; the second table is
 * where offsite's time went, from those stamps.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { generateTree, median } from './run-overhead.js';
import { load, phases, stampedRun } from './stamped.js';

const CLI = new URL('../dist/bridge/cli.js', import.meta.url).pathname;
const CASES = ['fresh', 'unchanged'] as const;
type Case = (typeof CASES)[number];
/** the parts of a run, from its stamped output (bench/stamped.ts) */
const PARTS = [
  'start-up',
  'sync',
  'sync: dry run',
  'verify',
  'verify: walk',
  'verify: flush',
  'verify: read back',
  'verify: switch',
  'end',
];

export async function benchOffsiteRun(
  files = 10_000,
  rounds = 7,
  runLog = '/var/tmp/offsite-bench/offsite-run.log',
  log = (l: string) => console.error(l),
) {
  mkdirSync('/var/tmp/offsite-bench', { recursive: true });
  const base = mkdtempSync('/var/tmp/offsite-bench/run-');
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
    const r = Object.fromEntries(
      CASES.map((k) => [
        k,
        { bare: [] as number[], ours: [] as number[], parts: [] as Record<string, number>[] },
      ]),
    ) as Record<Case, { bare: number[]; ours: number[]; parts: Record<string, number>[] }>;
    const loads: string[] = [];
    const env = { ...process.env, OFFSITE_DEBUG: '1' };
    for (let round = 0; round < rounds; round++) {
      const arms = round % 2 ? (['ours', 'bare'] as const) : (['bare', 'ours'] as const);
      for (const kase of CASES) {
        for (const arm of arms) {
          if (arm === 'bare') {
            if (kase === 'fresh') rmSync(bare, { recursive: true, force: true });
            const run = await stampedRun(
              ['rsync', '-a', '--delete', `${src}/`, `${bare}/`],
              runLog,
              `${kase}, bare`,
            );
            r[kase].bare.push(run.seconds);
          } else {
            if (kase === 'fresh') rmSync(ours, { recursive: true, force: true });
            mkdirSync(ours, { recursive: true });
            // a new directory drive is enrolled first, as on a NAS (not timed: once per drive)
            if (kase === 'fresh')
              execFileSync(process.execPath, [CLI, 'enrol', 'bench', '--config', config], {
                stdio: 'ignore',
              });
            const argv = [process.execPath, CLI, 'run', 'bench', '--config', config];
            const run = await stampedRun(argv, runLog, `${kase}, offsite`, env);
            r[kase].ours.push(run.seconds);
            r[kase].parts.push(phases(run, 'bench'));
          }
        }
      }
      loads.push(load());
      log(`round ${round + 1}/${rounds} (load ${load()})`);
    }
    const sum = (k: Case) => {
      const b = median(r[k].bare) * 1000;
      const o = median(r[k].ours) * 1000;
      const parts = Object.fromEntries(
        PARTS.map((p) => [p, median(r[k].parts.map((x) => x[p] ?? 0)) * 1000]),
      );
      return { bareMs: b, offsiteMs: o, extraMs: o - b, ratio: o / b, partsMs: parts };
    };
    return { files, bytes, rounds, loads, fresh: sum('fresh'), unchanged: sum('unchanged') };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { files: { type: 'string' }, rounds: { type: 'string' }, log: { type: 'string' } },
  });
  const res = await benchOffsiteRun(Number(values.files ?? 10_000), Number(values.rounds ?? 7), values.log);
  const s = (ms: number) => `${(ms / 1000).toFixed(3)} s`;
  console.log(
    `offsite run vs rsync -a --delete, ${res.files} files (${(res.bytes / 1e6).toFixed(1)} MB), median of ${res.rounds}`,
  );
  console.log('| case | bare rsync -a --delete | offsite run | extra | ratio |');
  console.log('|---|---|---|---|---|');
  for (const k of CASES) {
    const f = res[k];
    console.log(`| ${k} | ${s(f.bareMs)} | ${s(f.offsiteMs)} | ${s(f.extraMs)} | ${f.ratio.toFixed(2)} |`);
  }
  console.log(`\noffsite run, median of each part (load average after each round: ${res.loads.join('; ')})`);
  console.log(`| case | ${PARTS.join(' | ')} |`);
  console.log(`|---|${PARTS.map(() => '---|').join('')}`);
  for (const k of CASES) console.log(`| ${k} | ${PARTS.map((p) => s(res[k].partsMs[p]!)).join(' | ')} |`);
}
