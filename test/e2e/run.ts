/**
 * `npm run test:e2e`: the end-to-end tests in a QEMU guest.
 *
 *   npm run test:e2e                 every test/e2e/*.test.ts, one after the other
 *   npm run test:e2e -- smoke        only files whose name contains "smoke"
 *   npm run test:e2e -- --rebuild    build the guest image again even if it is cached
 *
 * Installs the host packages it needs (apt-get, only what is missing), builds or reuses the
 * cached guest image, then runs the files with Node's test runner, one at a time (each boots
 * its own guest; two emulated guests on two cores only slow each other down). Exits with the
 * test runner's status and prints the timings the tests reported.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureHostPackages } from './host.js';
import { ensureImage } from './image.js';
import { timing } from './timing.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const args = process.argv.slice(2);
const filters = args.filter((a) => !a.startsWith('--'));

const runStarted = performance.now();
const scratch = await mkdtemp(join(tmpdir(), 'offsite-e2e-run-'));
process.env.OFFSITE_E2E_TIMINGS = join(scratch, 'timings.jsonl');

await ensureHostPackages();
const imageStarted = performance.now();
const image = await ensureImage({ rebuild: args.includes('--rebuild') });
timing(image.built ? 'guest image build (cold)' : 'guest image (cached)', imageStarted);

const files = (await readdir(here))
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => filters.length === 0 || filters.some((part) => f.includes(part)))
  .sort()
  .map((f) => join(here, f));
if (files.length === 0) {
  console.error(`e2e: no test file matches ${filters.join(' ')}`);
  process.exit(2);
}

const code = await new Promise<number>((resolve) => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
    { stdio: 'inherit', env: process.env },
  );
  child.once('exit', (status, signal) => resolve(status ?? (signal ? 1 : 0)));
});

timing('e2e total', runStarted);
const lines = (await readFile(process.env.OFFSITE_E2E_TIMINGS, 'utf8').catch(() => ''))
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as { what: string; seconds: number });
console.log('\ne2e timings:');
for (const { what, seconds } of lines)
  console.log(`  ${what.padEnd(44)} ${seconds.toFixed(1).padStart(7)} s`);
await rm(scratch, { recursive: true, force: true });
process.exit(code);
