/**
 * Sync overhead: offsite's sync + verify steps (staging copy with
 * --link-dest, manifest, checksum sample, atomic switch, removal of the
 * previous copy) against bare `rsync -a --delete` on the same generated tree,
 * alternating runs. Two cases: a fresh target, and an unchanged second run.
 *
 * The bare arm is also timed with the filesystem flush that the original
 * setup's unmount pays anyway (offsite flushes before it switches `current`).
 *
 *   node --import tsx bench/run-overhead.ts [--files 10000] [--rounds 7]
 *
 * As root the target is a loop-mounted ext4 image (a drive-like filesystem
 * whose flush is its own); otherwise a temporary directory.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfig } from '../bridge/config.js';
import type { RunEvents } from '../bridge/events.js';
import { silentLogger } from '../bridge/log.js';
import { rsyncArgs } from '../bridge/rsync/args.js';
import { Bus } from '../bridge/run/bus.js';
import { newRunId, runSteps } from '../bridge/run/runner.js';
import type { RunContext } from '../bridge/steps/step.js';
import { sync } from '../bridge/steps/sync.js';
import { verify } from '../bridge/steps/verify.js';

export interface OverheadOptions {
  files?: number;
  rounds?: number;
  /** where to put source and targets (default: a loop ext4 image as root, else a temp dir) */
  workDir?: string;
  log?: (line: string) => void;
}

export interface CaseFigures {
  bareMs: number;
  /** rsync with offsite's options, in place */
  optionsMs: number;
  bareFlushMs: number;
  offsiteMs: number;
  syncMs: number;
  verifyMs: number;
  /** offsite - (bare + flush) */
  extraMs: number;
  extraPercent: number;
  /** offsite - bare (no flush) */
  extraVsBareMs: number;
}

export interface OverheadResult {
  files: number;
  bytes: number;
  rounds: number;
  filesystem: string;
  fresh: CaseFigures;
  unchanged: CaseFigures;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** a deterministic tree: 100 files per directory, 100..8,000 bytes each */
export function generateTree(root: string, files: number): number {
  let seed = 42;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  let bytes = 0;
  for (let i = 0; i < files; i++) {
    const dir = join(root, `d${Math.floor(i / 100)}`);
    if (i % 100 === 0) mkdirSync(dir, { recursive: true });
    const size = 100 + Math.floor(rnd() * 7900);
    const body = Buffer.alloc(size);
    for (let j = 0; j < size; j += 4)
      body.writeUInt32LE(Math.floor(rnd() * 0xffffffff), Math.min(j, size - 4));
    writeFileSync(join(dir, `f${i}`), body);
    bytes += size;
  }
  return bytes;
}

async function timeMs(f: () => unknown): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

function bareRsync(src: string, dst: string): void {
  execFileSync('rsync', ['-a', '--delete', `${src}/`, `${dst}/`]);
}

/** the options offsite gives rsync, in place (no staging, no link-dest): what the options alone cost */
function optionsRsync(src: string, dst: string): void {
  const args = rsyncArgs({ source: src, staging: dst, linkDest: null, exclude: [] });
  execFileSync('rsync', args, { stdio: 'ignore' });
}

function flush(path: string): void {
  execFileSync('sync', ['-f', path]);
}

async function offsiteRun(
  src: string,
  target: string,
  stateDir: string,
): Promise<{ syncMs: number; verifyMs: number }> {
  const config = parseConfig({
    state_dir: stateDir,
    source: { path: src },
    drives: [{ name: 'bench', directory: target }],
  });
  const bus = new Bus<RunEvents>();
  const ms: Record<string, number> = {};
  bus.on('step:done', (e) => {
    ms[e.step] = e.ms;
  });
  const ctx: RunContext = {
    config,
    drive: config.drives[0]!,
    runId: newRunId(),
    log: silentLogger(),
    signal: new AbortController().signal,
    facts: { warnings: [], target },
    progress: () => {},
    warn: (m) => {
      ctx.facts.warnings.push(m);
    },
  };
  const outcome = await runSteps([sync, verify], ctx, bus);
  if (outcome.result !== 'success') throw new Error(`offsite run failed: ${outcome.message}`);
  return { syncMs: ms.sync ?? 0, verifyMs: ms.verify ?? 0 };
}

function figures(
  bare: number[],
  options: number[],
  bareFlush: number[],
  ours: number[],
  syncs: number[],
  verifies: number[],
): CaseFigures {
  const b = median(bare);
  const bf = median(bareFlush);
  const o = median(ours);
  return {
    bareMs: b,
    optionsMs: median(options),
    bareFlushMs: bf,
    offsiteMs: o,
    syncMs: median(syncs),
    verifyMs: median(verifies),
    extraMs: o - bf,
    extraPercent: ((o - bf) / bf) * 100,
    extraVsBareMs: o - b,
  };
}

export async function benchSyncOverhead(opts: OverheadOptions = {}): Promise<OverheadResult> {
  const files = opts.files ?? 10_000;
  const rounds = opts.rounds ?? 7;
  const log = opts.log ?? (() => {});
  const base = mkdtempSync(join(tmpdir(), 'offsite-bench-'));
  let work = opts.workDir ?? base;
  let loop: string | null = null;
  let filesystem = execFileSync('findmnt', ['-no', 'FSTYPE', '-T', work], { encoding: 'utf8' }).trim();
  if (!opts.workDir && process.getuid?.() === 0) {
    const image = join(base, 'drive.img');
    execFileSync('truncate', ['-s', '1G', image]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-m', '0', image]);
    loop = execFileSync('losetup', ['--find', '--show', image], { encoding: 'utf8' }).trim();
    work = join(base, 'mnt');
    mkdirSync(work);
    execFileSync('mount', ['-o', 'noatime', loop, work]);
    filesystem = 'ext4 on a loop device';
  }
  try {
    const src = join(base, 'src');
    const bytes = generateTree(src, files);
    log(`tree: ${files} files, ${(bytes / 1e6).toFixed(1)} MB; target: ${filesystem}; ${rounds} rounds`);
    const r = {
      fresh: {
        bare: [] as number[],
        options: [] as number[],
        bareFlush: [] as number[],
        ours: [] as number[],
        sync: [] as number[],
        verify: [] as number[],
      },
      unchanged: {
        bare: [] as number[],
        options: [] as number[],
        bareFlush: [] as number[],
        ours: [] as number[],
        sync: [] as number[],
        verify: [] as number[],
      },
    };
    const bareDir = join(work, 'bare');
    const optionsDir = join(work, 'options');
    const oursDir = join(work, 'ours');
    const stateDir = join(base, 'state');
    for (let round = 0; round < rounds; round++) {
      // alternate which arm goes first, so neither always gets the warmer cache
      const arms =
        round % 2 ? (['ours', 'options', 'bare'] as const) : (['bare', 'options', 'ours'] as const);
      for (const kase of ['fresh', 'unchanged'] as const) {
        for (const arm of arms) {
          if (arm === 'bare') {
            if (kase === 'fresh') rmSync(bareDir, { recursive: true, force: true });
            flush(work);
            let t = 0;
            const ms = await timeMs(() => bareRsync(src, bareDir));
            t = ms + (await timeMs(() => flush(work)));
            r[kase].bare.push(ms);
            r[kase].bareFlush.push(t);
          } else if (arm === 'options') {
            if (kase === 'fresh') rmSync(optionsDir, { recursive: true, force: true });
            flush(work);
            r[kase].options.push(await timeMs(() => optionsRsync(src, optionsDir)));
          } else {
            if (kase === 'fresh') rmSync(oursDir, { recursive: true, force: true });
            mkdirSync(oursDir, { recursive: true });
            flush(work);
            let steps = { syncMs: 0, verifyMs: 0 };
            const ms = await timeMs(async () => {
              steps = await offsiteRun(src, oursDir, stateDir);
            });
            r[kase].ours.push(ms);
            r[kase].sync.push(steps.syncMs);
            r[kase].verify.push(steps.verifyMs);
          }
        }
      }
      log(`round ${round + 1}/${rounds} done`);
    }
    const fresh = figures(
      r.fresh.bare,
      r.fresh.options,
      r.fresh.bareFlush,
      r.fresh.ours,
      r.fresh.sync,
      r.fresh.verify,
    );
    const unchanged = figures(
      r.unchanged.bare,
      r.unchanged.options,
      r.unchanged.bareFlush,
      r.unchanged.ours,
      r.unchanged.sync,
      r.unchanged.verify,
    );
    return { files, bytes, rounds, filesystem, fresh, unchanged };
  } finally {
    if (loop) {
      try {
        execFileSync('umount', [work]);
      } catch {}
      try {
        execFileSync('losetup', ['-d', loop]);
      } catch {}
    }
    rmSync(base, { recursive: true, force: true });
  }
}

export function formatOverhead(r: OverheadResult): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(3)} s`;
  const row = (name: string, c: CaseFigures) =>
    `| ${name} | ${s(c.bareMs)} | ${s(c.optionsMs)} | ${s(c.bareFlushMs)} | ${s(c.offsiteMs)} (sync ${s(c.syncMs)}, verify ${s(c.verifyMs)}) | ${s(c.extraMs)} (${c.extraPercent.toFixed(0)} %) | ${s(c.extraVsBareMs)} |`;
  return [
    `${r.files} files, ${(r.bytes / 1e6).toFixed(1)} MB, target ${r.filesystem}, median of ${r.rounds} alternating rounds`,
    '',
    "| case | bare rsync -a --delete | rsync with offsite's options | bare rsync + flush | offsite sync + verify | extra vs bare + flush | extra vs bare |",
    '|---|---|---|---|---|---|---|',
    row('fresh target', r.fresh),
    row('unchanged second run', r.unchanged),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { files: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '7' } },
  });
  const result = await benchSyncOverhead({
    files: Number(values.files),
    rounds: Number(values.rounds),
    log: (l) => console.error(l),
  });
  console.log(formatOverhead(result));
}
