/**
 * A lock file holding who took it (pid, process start time, when, a label).
 * It is written whole to a temp file and linked into place, so a lock is never
 * empty or half-written, and a disk too full to write it says so rather than
 * looking like a lock someone else holds. Two drives plugged at once serialize
 * on the source this way even when no `source.lock` prefix (e.g. borg) is
 * configured; two runs of one drive, or a run and `offsite cleanup`, never
 * overlap.
 *
 * A lock whose holder is gone (pid dead, or the pid reused by another process:
 * the start time differs) is stale and reclaimed, unless programs the holder
 * started are still running (bridge/processes.ts: an rsync outliving a
 * `kill -9` of its run must not get a second rsync beside it). A run stops
 * those (stopLeftBehind) rather than wait for them: nothing of a dead run
 * will ever use what they do, and a lock prefix that ignores SIGTERM may
 * never end by itself. Reclaiming
 * happens under a tiny second lock so that two waiters never both remove a
 * lock and both believe they hold it.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { type LeftBehind, leftBehind, processStart, STOP_GRACE_MS, stopLeftBehind } from './processes.js';
import { stateError } from './state-file.js';

export interface LockHolder {
  pid: number;
  /** the holder's start time in clock ticks since boot (Linux), to see through pid reuse */
  start: string | null;
  time: string;
  label: string;
  /** random per acquisition: a holder that releases and takes the lock again within one millisecond writes other text */
  nonce?: string;
}

export interface HeldLock {
  file: string;
  release(): void;
}

/** Who keeps a lock busy: its holder, or what a dead holder left running. */
export interface Busy {
  holder: LockHolder | null;
  left: LeftBehind[];
}

export interface LockOptions {
  signal?: AbortSignal;
  /** who is asking, written into the lock (e.g. "drive alpha, run 2024...") */
  label?: string;
  /** called once when the lock is busy and we start waiting */
  onWait?(holder: LockHolder | null, busy: Busy): void;
  /**
   * Stop what a dead holder left running (bridge/processes.ts stopLeftBehind)
   * instead of waiting for it to end; called first, to say so.
   */
  stopLeftBehind?(busy: Busy): void;
  /** first poll interval; doubles up to maxPollMs */
  pollMs?: number;
  maxPollMs?: number;
}

/** A reclaim lock older than this belongs to a process that died inside a few syscalls. */
const RECLAIM_STALE_MS = 10_000;

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

function parseHolder(text: string): LockHolder | null {
  try {
    const h = JSON.parse(text) as LockHolder;
    return typeof h?.pid === 'number' ? h : null;
  } catch {
    return null;
  }
}

export function readHolder(file: string): LockHolder | null {
  try {
    return parseHolder(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

/** "pid 4242 (offsite run alpha) since ...", or what a dead holder left running */
export function describeBusy(busy: Busy): string {
  const { holder, left } = busy;
  const who = holder ? `pid ${holder.pid}${holder.label ? ` (${holder.label})` : ''}` : 'a process';
  if (left.length)
    return `${who} died but left ${left.map((p) => `${p.command} (pid ${p.pid})`).join(', ')} running`;
  return holder ? `${who} since ${holder.time}` : who;
}

/** "pid 4242 (offsite run alpha) died but left rsync (pid 4250) running: stopping them ..." */
export function describeStopping(busy: Busy): string {
  return `${describeBusy(busy)}: stopping them (nothing of a dead run will use them; SIGTERM, then SIGKILL after ${STOP_GRACE_MS / 1000} s)`;
}

/** Create `file` with `content` unless it exists: written whole beside it, then linked into place. */
function createExclusive(file: string, content: string): boolean {
  const tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, content, { flag: 'wx', mode: 0o644 });
    linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw stateError(e, dirname(file), `cannot write the lock ${basename(file)}`);
  } finally {
    try {
      unlinkSync(tmp);
    } catch {}
  }
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

function holderText(label: string): { mine: LockHolder; text: string } {
  const mine: LockHolder = {
    pid: process.pid,
    start: processStart(process.pid),
    time: new Date().toISOString(),
    label,
    nonce: randomBytes(8).toString('hex'),
  };
  return { mine, text: `${JSON.stringify(mine)}\n` };
}

function held(file: string, mine: LockHolder): HeldLock {
  let released = false;
  return {
    file,
    release() {
      if (released) return;
      released = true;
      // only remove it if it is still ours (it may have been reclaimed while we were frozen)
      const now = readHolder(file);
      if (now?.pid === mine.pid && now.nonce === mine.nonce) unlinkSync(file);
    },
  };
}

/**
 * One attempt: the lock, or who keeps it busy. A stale lock is reclaimed on
 * the way. Throws when the lock cannot be written (e.g. no space left).
 */
function attempt(file: string, text: string): Busy | null {
  for (;;) {
    if (createExclusive(file, text)) return null;
    let seen: string;
    try {
      seen = readFileSync(file, 'utf8');
    } catch {
      continue; // released between our link and our read: try again at once
    }
    // judge the text we read, never a second read: the holder may have released and taken it again in between
    const holder = parseHolder(seen);
    // every lock is linked into place whole: one that does not parse was never a lock of ours
    if (!holder) {
      if (reclaim(file, seen)) continue;
      return { holder: null, left: [] };
    }
    const busy = busyWith(holder);
    if (busy) return busy;
    if (reclaim(file, seen)) continue;
    return { holder, left: [] };
  }
}

function prepare(file: string): void {
  try {
    mkdirSync(dirname(file), { recursive: true });
  } catch (e) {
    throw stateError(e, dirname(dirname(file)), `cannot create ${dirname(file)}`);
  }
}

/** Who keeps `file` busy now (a live holder, or what a dead one left running), without taking it. */
export function whoHolds(file: string): Busy | null {
  const holder = readHolder(file);
  return holder ? busyWith(holder) : null;
}

function busyWith(holder: LockHolder): Busy | null {
  if (alive(holder)) return { holder, left: [] };
  const left = leftBehind(holder.pid, holder.start);
  return left.length ? { holder, left } : null;
}

/** Take the lock now, or say who keeps it busy. Never waits. */
export function tryLock(
  file: string,
  label = '',
): { lock: HeldLock; busy: null } | { lock: null; busy: Busy } {
  prepare(file);
  const { mine, text } = holderText(label);
  const busy = attempt(file, text);
  return busy ? { lock: null, busy } : { lock: held(file, mine), busy: null };
}

/** Take the lock, waiting (with backoff) while a live process holds it. Rejects when `signal` aborts. */
export async function acquireLock(file: string, opts: LockOptions = {}): Promise<HeldLock> {
  prepare(file);
  const { mine, text } = holderText(opts.label ?? '');
  let delay = opts.pollMs ?? 100;
  const maxDelay = opts.maxPollMs ?? 5_000;
  let told = false;
  const stopped = new Set<string>();
  for (;;) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const busy = attempt(file, text);
    if (!busy) return held(file, mine);
    const dead = busy.left.length ? busy.holder : null;
    // once per dead holder: what outlives SIGKILL (stuck in the kernel) is waited for like a live holder
    if (dead && opts.stopLeftBehind && !stopped.has(`${dead.pid}:${dead.start}`)) {
      stopped.add(`${dead.pid}:${dead.start}`);
      opts.stopLeftBehind(busy);
      await stopLeftBehind(dead.pid, dead.start);
      continue;
    }
    if (!told) {
      told = true;
      opts.onWait?.(busy.holder, busy);
    }
    await sleep(delay, opts.signal);
    delay = Math.min(maxDelay, delay * 2);
  }
}
