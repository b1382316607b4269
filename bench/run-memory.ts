/**
 * Peak resident memory of the `offsite run` process (Node; rsync is separate)
 * on a fresh copy and an unchanged second run, for 10,000 and 100,000 files:
 * it should not grow with the size of the tree (the verify walk streams).
 *
 *   npm run build && node --import tsx bench/run-memory.ts [--files 10000,100000]
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { generateTree } from './run-overhead.js';

const CLI = new URL('../dist/bridge/cli.js', import.meta.url).pathname;

/** VmHWM (peak RSS) of the process, sampled until it exits */
function peakRss(args: string[]): Promise<{ code: number | null; peakMiB: number }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: 'ignore' });
    let peak = 0;
    const sample = () => {
      try {
        const kib = Number(
          /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0,
        );
        peak = Math.max(peak, kib);
      } catch {}
    };
    const timer = setInterval(sample, 10);
    child.on('exit', (code) => {
      clearInterval(timer);
      resolve({ code, peakMiB: peak / 1024 });
    });
  });
}

const { values } = parseArgs({ options: { files: { type: 'string', default: '10000,100000' } } });
const counts = values.files.split(',').map(Number);
if (!counts.every((n) => Number.isInteger(n) && n > 0)) throw new Error(`--files: counts, e.g. 10000,100000`);

const base = mkdtempSync(join(tmpdir(), 'offsite-bench-mem-'));
try {
  console.log('| files | fresh run: peak RSS | unchanged run: peak RSS |');
  console.log('|---|---|---|');
  for (const files of counts) {
    const src = join(base, `src${files}`);
    generateTree(src, files);
    const target = join(base, `drive${files}`);
    mkdirSync(target);
    const config = join(base, `config${files}.yaml`);
    writeFileSync(
      config,
      stringify({
        state_dir: join(base, `state${files}`),
        source: { path: src },
        drives: [{ name: 'bench', directory: target }],
      }),
    );
    execFileSync(process.execPath, [CLI, 'enrol', 'bench', '--config', config], { stdio: 'ignore' });
    const fresh = await peakRss([CLI, 'run', 'bench', '--config', config]);
    const unchanged = await peakRss([CLI, 'run', 'bench', '--config', config]);
    if (fresh.code !== 0 || unchanged.code !== 0)
      throw new Error(`offsite run exited ${fresh.code}/${unchanged.code}`);
    console.log(
      `| ${files.toLocaleString('en')} | ${fresh.peakMiB.toFixed(1)} MiB | ${unchanged.peakMiB.toFixed(1)} MiB |`,
    );
    rmSync(src, { recursive: true, force: true });
    rmSync(target, { recursive: true, force: true });
  }
} finally {
  rmSync(base, { recursive: true, force: true });
}
