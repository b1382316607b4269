/**
 * Who is using an open drive, from /proc: a process uses it when one of its
 * open files, its working directory, its root or a file it has mapped lies
 * under the drive's mount point. `offsite close --when-idle` (what `open
 * --idle` starts) counts "idle" from the last time anyone did; a close that
 * finds the drive busy names them.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface Use {
  pid: number;
  command: string;
  /** "working directory", "open file", "root directory", "mapped file" */
  how: string;
  path: string;
}

function within(path: string, root: string): boolean {
  const p = path.replace(/ \(deleted\)$/, '');
  return p === root || p.startsWith(root === '/' ? '/' : `${root}/`);
}

function link(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

function command(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** The first use of `root` by one process, or null (a process that ends while it is looked at has none). */
function useBy(pid: number, root: string): Omit<Use, 'pid' | 'command'> | null {
  for (const [what, how] of [
    ['cwd', 'working directory'],
    ['root', 'root directory'],
  ] as const) {
    const p = link(`/proc/${pid}/${what}`);
    if (p && within(p, root)) return { how, path: p };
  }
  let fds: string[] = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {}
  for (const fd of fds) {
    const p = link(`/proc/${pid}/fd/${fd}`);
    if (p?.startsWith('/') && within(p, root)) return { how: 'open file', path: p };
  }
  let maps = '';
  try {
    maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {}
  for (const line of maps.split('\n')) {
    // address perms offset dev inode path: the path is whatever follows the fifth field
    const path = /^\S+ \S+ \S+ \S+ \S+ +(\/.*)$/.exec(line)?.[1];
    if (path && within(path, root)) return { how: 'mapped file', path };
  }
  return null;
}

/** Every process but this one that uses something under `root` (an absolute path, no trailing slash). */
export function usersOf(root: string): Use[] {
  const uses: Use[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    const use = useBy(pid, root);
    if (use) uses.push({ pid, command: command(pid), ...use });
  }
  return uses;
}

/** "pid 4242 (bash): working directory /mnt/offsite/alpha/current" and so on, at most `max`. */
export function describeUsers(uses: readonly Use[], max = 5): string {
  const shown = uses.slice(0, max).map((u) => `pid ${u.pid} (${u.command}): ${u.how} ${u.path}`);
  return `${shown.join('; ')}${uses.length > max ? `; and ${uses.length - max} more` : ''}`;
}
