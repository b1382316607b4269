/**
 * Verify's walk at a million files: `compareTrees` (the manifest, feeding the
 * rolling scrub's planner as a run does) of a source and its copy, in its own
 * process, against rsync on the same trees: `rsync -a --link-dest` (the copy
 * a run makes) and `rsync -a --dry-run` (rsync's own comparison, writing
 * nothing). Cold cache before each (`sync; echo 3 > /proc/sys/vm/drop_caches`,
 * as root), arms alternating; wall time and peak RSS (GNU time's %M).
 *
 *   npm run build && node --import tsx bench/verify-walk.ts [--files 1000000] [--rounds 2] [--dir /var/tmp/offsite-bench/walk] [--only "verify walk"]
 *
 * The trees (1,000 directories of 1,000 files of 100 bytes, ~8 GB of blocks)
 * are made once under --dir and left there; delete them when done.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './run-overhead.js';
import { load } from './stamped.js';

const { values } = parseArgs({
  options: {
    files: { type: 'string' },
    rounds: { type: 'string' },
    dir: { type: 'string' },
    // measure only the arms whose name contains this (e.g. "verify walk": one disturbed by load, again)
    only: { type: 'string' },
  },
});

/** the walk a run's verify does, in its own process from the built code (npm run build) */
const WALK = `
import { compareTrees } from ${JSON.stringify(new URL('../dist/bridge/rsync/manifest.js', import.meta.url).pathname)};
import { excludeMatcher } from ${JSON.stringify(new URL('../dist/bridge/rsync/exclude.js', import.meta.url).pathname)};
import { ScrubPlanner } from ${JSON.stringify(new URL('../dist/bridge/rsync/scrub-plan.js', import.meta.url).pathname)};
const [source, copy] = process.argv.slice(-2);
// every entry compared, every file offered to the rolling scrub's planner (2 % of the copy, as by default)
const planner = new ScrubPlanner(null, 2e6);
const cmp = await compareTrees(source, copy, {
  exclude: excludeMatcher([]),
  skip: new Set(),
  owners: true,
  onFile: (path, size) => planner.offer(path, size),
});
if (cmp.differenceCount) throw new Error('differences: ' + cmp.differences.join('; '));
`;

const files = Number(values.files ?? 1_000_000);
const rounds = Number(values.rounds ?? 2);
const dir = values.dir ?? '/var/tmp/offsite-bench/walk';
const src = join(dir, `src-${files}`);
const copy = join(dir, `copy-${files}`);
const linked = join(dir, 'linked');

function dropCaches(): void {
  execFileSync('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3');
}

/** wall seconds and peak RSS (MiB) of a command, from GNU time */
function measure(argv: string[]): { seconds: number; rssMiB: number } {
  const out = join(dir, 'time.out');
  execFileSync('/usr/bin/time', ['-o', out, '-f', '%e %M', ...argv], { stdio: 'ignore' });
  const [seconds, kib] = readFileSync(out, 'utf8').trim().split(' ').map(Number);
  return { seconds: seconds!, rssMiB: kib! / 1024 };
}

if (!existsSync(join(copy, 'done'))) {
  console.error(`making ${files} files under ${dir} (once)`);
  rmSync(src, { recursive: true, force: true });
  const body = Buffer.alloc(100, 1);
  for (let i = 0; i < files; i++) {
    const d = join(src, `d${Math.floor(i / 1000)}`);
    if (i % 1000 === 0) mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f${i}`), body);
  }
  execFileSync('rsync', ['-a', `${src}/`, `${copy}/`]);
  writeFileSync(join(copy, 'done'), '');
  writeFileSync(join(src, 'done'), '');
}

const arms: Record<string, () => { seconds: number; rssMiB: number }> = {
  'offsite verify walk': () => measure([process.execPath, '--input-type=module', '-e', WALK, src, copy]),
  'rsync -a --link-dest': () => {
    rmSync(linked, { recursive: true, force: true });
    dropCaches();
    return measure(['rsync', '-a', '--delete', `--link-dest=${copy}`, `${src}/`, `${linked}/`]);
  },
  "rsync --link-dest with offsite's options": () => {
    rmSync(linked, { recursive: true, force: true });
    dropCaches();
    return measure([
      'rsync',
      '-a',
      '-H',
      '-A',
      '-X',
      '--numeric-ids',
      '--delete',
      '--no-inc-recursive',
      `--link-dest=${copy}`,
      `${src}/`,
      `${linked}/`,
    ]);
  },
  'rsync -a --dry-run': () => measure(['rsync', '-a', '--delete', '--dry-run', `${src}/`, `${copy}/`]),
};
const got: Record<string, { seconds: number[]; rss: number[] }> = {};
for (let round = 0; round < rounds; round++) {
  const order = Object.keys(arms).filter((a) => !values.only || a.includes(values.only));
  if (round % 2) order.reverse();
  for (const arm of order) {
    dropCaches();
    const before = load();
    const m = arms[arm]!();
    got[arm] ??= { seconds: [], rss: [] };
    got[arm].seconds.push(m.seconds);
    got[arm].rss.push(m.rssMiB);
    console.error(
      `${arm}: ${m.seconds} s, ${m.rssMiB.toFixed(0)} MiB (load before ${before}, after ${load()})`,
    );
  }
}
rmSync(linked, { recursive: true, force: true });
console.log(`${files} files, cold cache, median of ${rounds}`);
console.log('| walk | time | peak RSS |');
console.log('|---|---|---|');
for (const [arm, g] of Object.entries(got))
  console.log(`| ${arm} | ${median(g.seconds).toFixed(1)} s | ${median(g.rss).toFixed(0)} MiB |`);
