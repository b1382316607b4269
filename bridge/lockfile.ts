/**
 * A waiting lock file: created with O_EXCL, holding who took it (pid, process
 * start time, when, a label). Two drives plugged at once serialize on the
 * source this way even when no `source.lock` prefix (e.g. borg) is configured.
 *
 * A lock whose holder is gone (pid dead, or the pid reused by another process:
 * the start time differs) is stale and reclaimed. Reclaiming happens under a
 * tiny second lock so that two waiters never both remove a lock and both
 * believe they hold it.
 */
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';

export interface LockHolder {
  pid: number;
  /** the holder's start time in clock ticks since boot (Linux), to see through pid reuse */
  start: string | null;
  time: string;
  label: string;
}

export interface HeldLock {
  file: string;
  release(): void;
}

export interface LockOptions {
  signal?: AbortSignal;
  /** who is asking, written into the lock (e.g. "drive alpha, run 2024...") */
  label?: string;
  /** called once when the lock is busy and we start waiting */
  onWait?(holder: LockHolder | null): void;
  /** first poll interval; doubles up to maxPollMs */
  pollMs?: number;
  maxPollMs?: number;
}

/** A reclaim lock older than this belongs to a process that died inside a few syscalls. */
const RECLAIM_STALE_MS = 10_000;

function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count fields after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

function alive(holder: LockHolder): boolean {
  try {
    process.kill(holder.pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (holder.start === null) return true;
  const now = processStart(holder.pid);
  return now === null || now === holder.start;
}

export function readHolder(file: string): LockHolder | null {
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as LockHolder;
    return typeof h.pid === 'number' ? h : null;
  } catch {
    return null;
  }
}

function createExclusive(file: string, content: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return true;
}

function fileAgeMs(file: string): number {
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Remove `file` if it still holds exactly the stale content we saw. Returns
 * true when the caller should retry at once.
 */
function reclaim(file: string, staleText: string): boolean {
  const guard = `${file}.reclaim`;
  const me = JSON.stringify({
    pid: process.pid,
    start: processStart(process.pid),
    time: new Date().toISOString(),
  });
  if (!createExclusive(guard, me)) {
    if (fileAgeMs(guard) > RECLAIM_STALE_MS) {
      // move it aside rather than unlink, so a concurrent reclaimer's fresh guard is not the one removed blindly
      try {
        renameSync(guard, `${guard}.${process.pid}.old`);
        unlinkSync(`${guard}.${process.pid}.old`);
      } catch {}
    }
    return false;
  }
  try {
    let now: string | null = null;
    try {
      now = readFileSync(file, 'utf8');
    } catch {}
    if (now === staleText) unlinkSync(file);
    return true;
  } finally {
    try {
      unlinkSync(guard);
    } catch {}
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Take the lock, waiting (with backoff) while a live process holds it. Rejects when `signal` aborts. */
export async function acquireLock(file: string, opts: LockOptions = {}): Promise<HeldLock> {
  mkdirSync(dirname(file), { recursive: true });
  const mine: LockHolder = {
    pid: process.pid,
    start: processStart(process.pid),
    time: new Date().toISOString(),
    label: opts.label ?? '',
  };
  const text = `${JSON.stringify(mine)}\n`;
  let delay = opts.pollMs ?? 100;
  const maxDelay = opts.maxPollMs ?? 5_000;
  let told = false;
  for (;;) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (createExclusive(file, text)) break;
    let seen: string | null = null;
    try {
      seen = readFileSync(file, 'utf8');
    } catch {
      continue; // released between our open and read: try again at once
    }
    const holder = readHolder(file);
    // an unparsable lock may be one being written right now; only an old one is stale
    const stale = holder ? !alive(holder) : fileAgeMs(file) > RECLAIM_STALE_MS;
    if (stale && reclaim(file, seen)) continue;
    if (!told) {
      told = true;
      opts.onWait?.(holder);
    }
    await sleep(delay, opts.signal);
    delay = Math.min(maxDelay, delay * 2);
  }
  let released = false;
  return {
    file,
    release() {
      if (released) return;
      released = true;
      // only remove it if it is still ours (it may have been reclaimed while we were frozen)
      const now = readHolder(file);
      if (now?.pid === mine.pid && now.time === mine.time) unlinkSync(file);
    },
  };
}
