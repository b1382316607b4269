/**
 * Runs rsync (behind an optional lock prefix) and streams its progress.
 * rsync belongs to the run (bridge/exec.ts spawnOwned): it dies with it.
 * Cancelling signals the whole tree: the prefix, rsync, and rsync's
 * receiver/generator children.
 */
import type { SyncProgress } from '../events.js';
import { spawnOwned } from '../exec.js';
import { STOP_GRACE_MS, signalTree } from '../processes.js';
import type { BytePath } from './byte-path.js';
import { unescapeRsync } from './file-list.js';
import { PathSet } from './path-set.js';
import { LineSplitter, parseProgressLine } from './progress.js';

/**
 * An itemized line for a regular file whose data rsync wrote: `>f` received
 * from the source, `cf` copied locally (from the --link-dest copy, when only
 * its attributes differ). `hf` (a hard link to another name) and `.f`
 * (attributes only) write no data.
 */
export function writtenFile(line: BytePath): BytePath | null {
  if (line.length < 13 || line[1] !== 'f' || line[11] !== ' ') return null;
  if (line[0] !== '>' && line[0] !== 'c') return null;
  return unescapeRsync(line.slice(12));
}

export interface RsyncRun {
  /** the exit code; null when killed by a signal */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stderr lines (the first MAX_KEPT), enough to list the files of a 23/24; a byte string (byte-path.ts) */
  stderr: BytePath;
  /** a byte string: `shown()` it */
  lastStderrLine: BytePath;
  /** the last progress rsync printed */
  last: SyncProgress | null;
  /** the regular files rsync wrote data for (`--out-format=%i %n` lines), relative to the source, as bytes */
  written: PathSet;
  /** could not start at all (ENOENT ...) */
  spawnError: Error | null;
}

export interface RsyncRunOptions {
  signal?: AbortSignal;
  onProgress?(p: SyncProgress): void;
  /** grace after SIGTERM before SIGKILL of the whole tree (a lock prefix may ignore SIGTERM) */
  killAfterMs?: number;
}

const MAX_KEPT = 5_000;

export function runRsync(argv: readonly string[], opts: RsyncRunOptions = {}): Promise<RsyncRun> {
  return new Promise((resolve) => {
    // C.UTF-8: plain number formatting, messages in English (parsed); names are read as bytes
    const child = spawnOwned(argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C.UTF-8' },
    });
    const out = new LineSplitter('bytes');
    const err = new LineSplitter('bytes');
    const kept: string[] = [];
    let lastStderrLine = '';
    let last: SyncProgress | null = null;
    const written = new PathSet();
    let spawnError: Error | null = null;
    let killTimer: NodeJS.Timeout | undefined;

    // rsync prints a progress line per file; only the newest in each chunk matters
    // (reports are throttled anyway), so parse from the end and stop at the first that parses
    const onOut = (lines: string[]) => {
      for (const line of lines) {
        const file = writtenFile(line);
        if (file !== null) written.add(file);
      }
      for (let i = lines.length - 1; i >= 0; i--) {
        const p = parseProgressLine(lines[i]!);
        if (!p) continue;
        last = p;
        opts.onProgress?.(p);
        return;
      }
    };
    const onErr = (lines: string[]) => {
      for (const line of lines) {
        lastStderrLine = line;
        if (kept.length < MAX_KEPT) kept.push(line);
      }
    };
    child.stdout!.on('data', (c: Buffer) => onOut(out.push(c)));
    child.stderr!.on('data', (c: Buffer) => onErr(err.push(c)));

    const killTree = (sig: NodeJS.Signals) => {
      if (child.pid) signalTree(child.pid, sig);
    };
    const onAbort = () => {
      killTree('SIGTERM');
      killTimer = setTimeout(() => killTree('SIGKILL'), opts.killAfterMs ?? STOP_GRACE_MS);
    };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });

    child.on('error', (e) => {
      spawnError = e;
    });
    child.on('close', (code, signal) => {
      clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      onOut(out.end());
      onErr(err.end());
      resolve({ code, signal, stderr: kept.join('\n'), lastStderrLine, last, written, spawnError });
    });
  });
}
