/**
 * What /proc says about processes: a process's start time (to see through pid
 * reuse), a process's descendants (to stop a whole tree), and the processes a
 * dead offsite left behind. Every program offsite starts carries
 * OFFSITE_PARENT=<pid>:<start> of the offsite process that started it, and so
 * does everything those start in turn (a lock prefix, rsync's own children):
 * that mark survives the parent's death, when the parent pid and the process
 * group no longer say whose it was.
 */
import { readdirSync, readFileSync } from 'node:fs';

export const PARENT_ENV = 'OFFSITE_PARENT';

interface Stat {
  ppid: number;
  /** start time in clock ticks since boot */
  start: string;
  command: string;
}

function stat(pid: number): Stat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // the command name (field 2) may hold spaces and parentheses: count fields after the last ')'
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  return {
    ppid: Number(fields[1]),
    start: fields[19] ?? '',
    command: text.slice(text.indexOf('(') + 1, close),
  };
}

function pids(): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

/** A process's start time in clock ticks since boot, or null when it is gone. */
export function processStart(pid: number): string | null {
  return stat(pid)?.start ?? null;
}

/** The value of PARENT_ENV for the programs this process starts. */
export function parentMark(pid = process.pid): string {
  return `${pid}:${processStart(pid) ?? '?'}`;
}

/** Every live descendant of `pid`, parents before their children. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of pids()) {
    const s = stat(p);
    if (!s) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(p);
    children.set(s.ppid, list);
  }
  const out: number[] = [];
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/** A process's command name (as /proc/<pid>/stat has it), or null when it is gone. */
export function commandOf(pid: number): string | null {
  return stat(pid)?.command ?? null;
}

/** Send `signal` to `pid` and every descendant of it (those first seen; a dying tree may lose some). */
export function signalTree(pid: number, signal: NodeJS.Signals): void {
  for (const p of [pid, ...descendants(pid)]) {
    try {
      process.kill(p, signal);
    } catch {}
  }
}

export interface LeftBehind {
  pid: number;
  command: string;
}

/**
 * Live processes started (directly or not) by the offsite process `pid`
 * whose start time was `start`: what it left running if it died.
 */
export function leftBehind(pid: number, start: string | null): LeftBehind[] {
  const mark = `${PARENT_ENV}=${pid}:${start ?? '?'}`;
  const found: LeftBehind[] = [];
  for (const p of pids()) {
    if (p === process.pid) continue;
    let env: string;
    try {
      env = readFileSync(`/proc/${p}/environ`, 'latin1');
    } catch {
      continue; // gone, or not ours to read
    }
    if (!env.split('\0').includes(mark)) continue;
    const s = stat(p);
    if (s) found.push({ pid: p, command: s.command });
  }
  return found;
}

/** How long a program gets to end after SIGTERM before it is killed (SIGKILL). */
export const STOP_GRACE_MS = 10_000;

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Stop what the dead offsite process `pid` (started at `start`) left running:
 * SIGTERM to each, then SIGKILL to whatever still carries its mark after
 * `graceMs` (a lock prefix may ignore SIGTERM, and start more once its rsync
 * is gone). Returns what is still there after that (normally nothing: only a
 * process stuck in the kernel outlives SIGKILL for long).
 */
export async function stopLeftBehind(
  pid: number,
  start: string | null,
  graceMs = STOP_GRACE_MS,
): Promise<LeftBehind[]> {
  const signalAll = (signal: NodeJS.Signals) => {
    for (const p of leftBehind(pid, start)) {
      try {
        process.kill(p.pid, signal);
      } catch {}
    }
  };
  const until = async (ms: number) => {
    for (const end = Date.now() + ms; Date.now() < end; await pause(50))
      if (!leftBehind(pid, start).length) return true;
    return false;
  };
  signalAll('SIGTERM');
  if (await until(graceMs)) return [];
  signalAll('SIGKILL');
  await until(5_000);
  return leftBehind(pid, start);
}
