/** What rsync's exit codes mean (rsync(1), EXIT VALUES), and what a run makes of them. */

export const RSYNC_EXIT: Readonly<Record<number, string>> = {
  0: 'success',
  1: 'syntax or usage error',
  2: 'protocol incompatibility',
  3: 'errors selecting input/output files, dirs',
  4: 'requested action not supported',
  5: 'error starting client-server protocol',
  6: 'daemon unable to append to log-file',
  10: 'error in socket I/O',
  11: 'error in file I/O',
  12: 'error in rsync protocol data stream',
  13: 'errors with program diagnostics',
  14: 'error in IPC code',
  20: 'received SIGUSR1 or SIGINT',
  21: 'some error returned by waitpid()',
  22: 'error allocating core memory buffers',
  23: 'partial transfer due to error',
  24: 'partial transfer due to vanished source files',
  25: 'the --max-delete limit stopped deletions',
  30: 'timeout in data send/receive',
  35: 'timeout waiting for daemon connection',
  127: 'command not found',
};

export function exitMeaning(code: number): string {
  return RSYNC_EXIT[code] ?? 'unknown exit code';
}

export type RsyncOutcome =
  | { kind: 'ok' }
  /** 23/24: the copy is usable but some files are missing or stale */
  | { kind: 'partial' }
  | { kind: 'full' }
  | { kind: 'error' };

export const NO_SPACE = /No space left on device|\bENOSPC\b|Disk quota exceeded|\(28\)/;

/** `stderr` is what rsync printed; disk full shows as 11/12 (or 23 on some paths) with ENOSPC. */
export function classifyExit(code: number, stderr: string): RsyncOutcome {
  if (code === 0) return { kind: 'ok' };
  if (NO_SPACE.test(stderr) && [11, 12, 23].includes(code)) return { kind: 'full' };
  if (code === 23 || code === 24) return { kind: 'partial' };
  return { kind: 'error' };
}
