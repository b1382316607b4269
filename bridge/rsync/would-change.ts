/**
 * Asks rsync whether a copy would change anything (`rsyncCheckArgs`: a dry
 * run with the same options and filters). It stops at the first itemized
 * change: on a changed source the question costs only the scan up to it.
 * Any doubt (output, an exit code other than 0, a signal) answers "changed":
 * the safe answer is always the full copy.
 */
import { spawnOwned } from '../exec.js';
import { commandOf, descendants, STOP_GRACE_MS, signalTree } from '../processes.js';

export type Answer =
  | { changed: false }
  | { changed: true; why: string }
  | { changed: 'cancelled' }
  | { changed: 'error'; error: Error };

export function wouldChange(argv: readonly string[], signal?: AbortSignal): Promise<Answer> {
  return new Promise((resolve) => {
    const child = spawnOwned(argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C.UTF-8' },
    });
    let first = '';
    let stderr = '';
    let stopped = false;
    let killTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      if (!child.pid) return;
      const pid = child.pid;
      // a prefix that ignores SIGTERM, or goes on once its rsync is gone, is not waited for forever
      killTimer = setTimeout(() => signalTree(pid, 'SIGKILL'), STOP_GRACE_MS);
      // rsync cleans up for ~0.4 s after SIGTERM (measured): a dry run writes nothing, so its
      // processes are killed outright. A lock prefix (borg with-lock) is not: it releases its
      // lock once its rsync is gone.
      const tree = [child.pid, ...descendants(child.pid)];
      const rsyncs = tree.filter((p) => commandOf(p) === 'rsync');
      if (!rsyncs.length) return signalTree(child.pid, 'SIGTERM');
      for (const p of rsyncs) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {}
      }
    };
    child.stdout!.on('data', (c: Buffer) => {
      if (!first) first = c.toString('utf8').split('\n')[0] ?? '';
      stop();
    });
    child.stderr!.on('data', (c: Buffer) => {
      if (stderr.length < 4096) stderr += c.toString('utf8');
    });
    const onAbort = () => stop();
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    let spawnError: Error | null = null;
    child.on('error', (e) => {
      spawnError = e;
    });
    child.on('close', (code, sig) => {
      clearTimeout(killTimer);
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) return resolve({ changed: 'cancelled' });
      if (spawnError) return resolve({ changed: 'error', error: spawnError });
      if (first) return resolve({ changed: true, why: first.trim() });
      if (code === 0) return resolve({ changed: false });
      const last = stderr.trim().split('\n').pop() ?? '';
      resolve({ changed: true, why: `the check exited with ${code ?? sig}${last ? `: ${last}` : ''}` });
    });
  });
}
