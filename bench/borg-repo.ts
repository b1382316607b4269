/**
 * A real Borg repository, the source offsite exists for: the whole `offsite
 * run` (built CLI, default configuration, a `directory:` drive) against bare
 * `rsync -a --delete` on the same repository, cold page cache before every
 * timed command (`sync; echo 3 > /proc/sys/vm/drop_caches`, as root), arms
 * alternating. Three cases per round: a first copy, after `borg create`
 * added 50 MB, and nothing changed. After bare rsync, `sync -f` is timed
 * apart: writing out what rsync left in the page cache, which the original
 * setup's unmount waited for and offsite's verify does before it reads back.
 *
 *   npm run build && node --import tsx bench/borg-repo.ts --size 2G [--rounds 3] [--dir /var/tmp/offsite-bench/borg] [--log FILE] [--scrub 0]
 *
 * --scrub sets `verify.scrub` (default: the configuration's default). Each
 * timed command's output (offsite's with OFFSITE_DEBUG=1, which names the
 * parts of sync and verify) goes to --log (default
 * /var/tmp/offsite-bench/borg-<size>.log), each line stamped with the seconds
 * since its start, under the load average before it: where a run's time goes.
 *
 * Needs borg. The repository (incompressible data, `--encryption=none`) and
 * both copies live under --dir (about three times --size); removed at the end
 * unless --keep.
 */
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { median } from './run-overhead.js';
import { load, phases, type Stamped, stampedRun } from './stamped.js';

const CLI = new URL('../dist/bridge/cli.js', import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    size: { type: 'string' },
    rounds: { type: 'string' },
    dir: { type: 'string' },
    keep: { type: 'boolean' },
    log: { type: 'string' },
    scrub: { type: 'string' },
  },
});
const GIB = 1024 ** 3;
const size = Math.round(Number.parseFloat(values.size ?? '2') * GIB);
const rounds = Number(values.rounds ?? 3);
const dir = values.dir ?? '/var/tmp/offsite-bench/borg';
const env = { ...process.env, BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes' };

const repo = join(dir, 'repo');
const bare = join(dir, 'bare');
const drive = join(dir, 'drive');
const config = join(dir, 'config.yaml');

function dropCaches(): void {
  execFileSync('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3');
}

/** where each timed command's output goes, every line stamped with the seconds since its start */
const runLog = values.log ?? `/var/tmp/offsite-bench/borg-${values.size ?? '2'}.log`;

/** wall seconds of a command, cold cache */
async function timed(label: string, argv: string[], withEnv: NodeJS.ProcessEnv = env): Promise<Stamped> {
  dropCaches();
  return stampedRun(argv, runLog, label, withEnv);
}

/** `bytes` of random data in files of at most 256 MiB under `into` */
function randomData(into: string, bytes: number): void {
  mkdirSync(into, { recursive: true });
  const chunk = Buffer.allocUnsafe(4 << 20);
  for (let n = 0, left = bytes; left > 0; n++) {
    const fd = openSync(join(into, `part-${n}`), 'w');
    for (let inFile = 0; inFile < 256 << 20 && left > 0; ) {
      const len = Math.min(chunk.length, left);
      randomFillSync(chunk, 0, len);
      writeSync(fd, chunk, 0, len);
      inFile += len;
      left -= len;
    }
    closeSync(fd);
  }
}

function borgCreate(name: string, bytes: number): void {
  const data = join(dir, 'data', name);
  randomData(data, bytes);
  execFileSync('borg', ['create', `${repo}::${name}`, data], { env, stdio: 'ignore' });
  rmSync(data, { recursive: true, force: true });
}

function freshDrive(): void {
  rmSync(drive, { recursive: true, force: true });
  mkdirSync(drive);
  execFileSync(process.execPath, [CLI, 'enrol', 'bench', '--config', config], { stdio: 'ignore' });
}

rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
try {
  execFileSync('borg', ['init', '--encryption=none', repo], { env, stdio: 'ignore' });
  console.error(`borg create: ${(size / GIB).toFixed(1)} GiB`);
  borgCreate('base', size);
  writeFileSync(
    config,
    stringify({
      node_id: 'bench',
      state_dir: join(dir, 'state'),
      source: { path: repo },
      drives: [{ name: 'bench', directory: drive }],
      ...(values.scrub === undefined ? {} : { verify: { scrub: values.scrub } }),
    }),
  );
  const cases = ['first copy', 'after borg create added 50 MB', 'nothing changed'] as const;
  const r = Object.fromEntries(
    cases.map((c) => [c, { bare: [] as number[], flush: [] as number[], ours: [] as number[] }]),
  );
  // where each offsite run spent its time (start-up, steps, end), from its stamped output
  const parts = Object.fromEntries(cases.map((c) => [c, [] as Record<string, number>[]]));
  const loads: string[] = [];
  const arm = {
    bare: (c: string) => timed(`${c}, bare`, ['rsync', '-a', '--delete', `${repo}/`, `${bare}/`]),
    ours: (c: string) =>
      timed(`${c}, offsite`, [process.execPath, CLI, 'run', 'bench', '--config', config], {
        ...env,
        OFFSITE_DEBUG: '1',
      }),
  };
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 ? (['ours', 'bare'] as const) : (['bare', 'ours'] as const);
    rmSync(bare, { recursive: true, force: true });
    freshDrive();
    for (const c of cases) {
      if (c === 'after borg create added 50 MB') borgCreate(`added-${round}`, 50e6);
      for (const a of order) {
        const run = await arm[a](c);
        r[c]![a].push(run.seconds);
        // what rsync left in the page cache, written out (the original setup's unmount waits for it;
        // offsite flushes before it reads back): timed apart, right after rsync
        if (a === 'bare')
          r[c]!.flush.push((await stampedRun(['sync', '-f', bare], runLog, `${c}, flush`)).seconds);
        if (a === 'ours') parts[c]!.push(phases(run, 'bench'));
      }
    }
    loads.push(load());
    console.error(
      `round ${round + 1}/${rounds}: ${cases.map((c) => `${c} ${r[c]!.bare.at(-1)!.toFixed(2)}+${r[c]!.flush.at(-1)!.toFixed(2)}/${r[c]!.ours.at(-1)!.toFixed(2)} s`).join(', ')} (load ${load()})`,
    );
  }
  const du = execFileSync('du', ['-sb', repo], { encoding: 'utf8' }).split('\t')[0];
  console.log(
    `Borg repository of ${(Number(du) / 1e9).toFixed(2)} GB, verify.scrub ${values.scrub ?? 'default'}, cold cache, median of ${rounds} (bare rsync / offsite run)`,
  );
  console.log(
    '| run | rsync -a --delete | then sync -f | offsite run | extra | ratio | ratio to rsync + sync |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const c of cases) {
    const b = median(r[c]!.bare);
    const f = median(r[c]!.flush);
    const o = median(r[c]!.ours);
    console.log(
      `| ${c} | ${b.toFixed(2)} s | ${f.toFixed(2)} s | ${o.toFixed(2)} s | +${(o - b).toFixed(2)} s | ${(o / b).toFixed(2)}x | ${(o / (b + f)).toFixed(2)}x |`,
    );
  }
  const names = [
    'start-up',
    'sync',
    'sync: dry run',
    'verify',
    'verify: walk',
    'verify: flush',
    'verify: read back',
    'verify: switch',
    'verify: removal',
    'end',
  ];
  console.log(`\noffsite run, median of each part (load average after each round: ${loads.join('; ')})`);
  console.log(`| run | ${names.join(' | ')} |`);
  console.log(`|---|${names.map(() => '---|').join('')}`);
  for (const c of cases)
    console.log(
      `| ${c} | ${names.map((n) => `${median(parts[c]!.map((p) => p[n] ?? 0)).toFixed(2)} s`).join(' | ')} |`,
    );
} finally {
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
}
