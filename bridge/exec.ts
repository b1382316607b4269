/**
 * The edge where offsite runs other programs (systemctl, mount, rsync, ...).
 * Everything goes through here so that errors carry the command and its
 * stderr, so that a run can be cancelled as a whole, and so that nothing a
 * run starts outlives it unnoticed (see spawnOwned).
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { PARENT_ENV, parentMark } from './processes.js';

// execa is loaded on first use: importing it costs ~0.1 s of start-up, which
// every `offsite` command paid even when it ran nothing (docs/benchmarks.md)
type Execa = typeof import('execa').execa;
let execaFn: Execa | undefined;
async function loadExeca(): Promise<Execa> {
  execaFn ??= (await import('execa')).execa;
  return execaFn;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  override name = 'CommandError';
  readonly command: string;
  readonly exitCode: number | undefined;
  readonly stderr: string;
  constructor(command: string, exitCode: number | undefined, stderr: string, reason: string) {
    super(reason);
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

export interface ExecOptions {
  /** exit codes that are not an error (default: only 0) */
  okCodes?: number[];
  timeoutMs?: number;
  signal?: AbortSignal;
  input?: string;
  env?: Record<string, string>;
}

function describe(file: string, args: readonly string[]): string {
  return [file, ...args]
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`))
    .join(' ');
}

/** Run a program to completion; throws CommandError unless its exit code is allowed. */
export async function run(
  file: string,
  args: readonly string[],
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const okCodes = opts.okCodes ?? [0];
  const cmd = describe(file, args);
  const execa = await loadExeca();
  const result = await execa(file, args, {
    reject: false,
    timeout: opts.timeoutMs,
    cancelSignal: opts.signal,
    input: opts.input,
    env: { ...opts.env, [PARENT_ENV]: parentMark() },
    stripFinalNewline: true,
  });
  const exitCode = result.exitCode ?? -1;
  if (result.failed && (result.exitCode === undefined || !okCodes.includes(exitCode))) {
    const why = result.timedOut
      ? `timed out after ${opts.timeoutMs} ms`
      : result.isCanceled
        ? 'cancelled'
        : result.code === 'ENOENT'
          ? `${file} is not installed (not found on PATH)`
          : result.signal
            ? `killed by ${result.signal}`
            : `exit code ${exitCode}${result.stderr ? `: ${lastLine(result.stderr)}` : ''}`;
    throw new CommandError(cmd, result.exitCode, String(result.stderr ?? ''), `${cmd}: ${why}`);
  }
  return { exitCode, stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? '') };
}

function lastLine(s: string): string {
  const lines = String(s).trim().split('\n');
  return lines[lines.length - 1] ?? '';
}

/** true when a program is on PATH */
export async function which(file: string): Promise<boolean> {
  const execa = await loadExeca();
  const r = await execa('sh', ['-c', `command -v "$1"`, 'sh', file], { reject: false });
  return r.exitCode === 0;
}

/** The program's path, or null when it cannot be run (not on PATH, not executable). */
function findProgram(file: string): string | null {
  const candidates = file.includes('/')
    ? [file]
    : (process.env.PATH ?? '/usr/bin:/bin').split(delimiter).map((d) => join(d, file));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {}
  }
  return null;
}

let setpriv: string | null | undefined;

/**
 * `argv` made to receive SIGTERM when its parent dies (util-linux setpriv
 * sets PR_SET_PDEATHSIG, which Node cannot, then becomes the program). As is
 * when setpriv is missing: the lock then still sees what outlived its run
 * (bridge/lockfile.ts).
 */
function dieWithParent(argv: readonly string[]): string[] {
  if (setpriv === undefined) setpriv = findProgram('setpriv');
  // a program that is not there is left to fail as itself (ENOENT), not as setpriv's exit 127
  if (!setpriv || !argv[0] || !findProgram(argv[0])) return [...argv];
  return [setpriv, '--pdeathsig', 'TERM', '--', ...argv];
}

/**
 * Start a long-running program that belongs to this run (rsync, behind its
 * lock prefix). It stays in this process's group, so a signal to the group
 * reaches it (Ctrl-C, a closed terminal, systemd stopping the unit); it gets
 * SIGTERM when this process dies, even by `kill -9` (dieWithParent); and it
 * carries PARENT_ENV, so a lock knows if it outlived us all the same. Stop it
 * with signalTree(child.pid): a prefix does not pass signals on.
 */
export function spawnOwned(argv: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  const [file, ...args] = dieWithParent(argv);
  return spawn(file!, args, {
    ...opts,
    detached: false,
    env: { ...(opts.env ?? process.env), [PARENT_ENV]: parentMark() },
  });
}
