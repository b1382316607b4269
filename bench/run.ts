/**
 * `npm run bench`: every benchmark, one after another (several minutes; run on a
 * quiet machine). Each prints its table; docs/benchmarks.md holds the figures
 * and says how each was run. One benchmark: `npm run bench -- led-latency`.
 */
import { spawnSync } from 'node:child_process';

const BENCHES = [
  'offsite-run',
  'run-memory',
  'run-overhead',
  'broker-down',
  'mqtt-messages',
  'led-latency',
  'led-memory',
  'led-flood',
  'led-imports',
];

const only = process.argv.slice(2);
const chosen = only.length ? BENCHES.filter((b) => only.includes(b)) : BENCHES;
if (!chosen.length) {
  console.error(`unknown benchmark; one of: ${BENCHES.join(', ')}`);
  process.exit(2);
}
spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
let failed = 0;
for (const bench of chosen) {
  console.log(`\n== ${bench}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', `bench/${bench}.ts`], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
