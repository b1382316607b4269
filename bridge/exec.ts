/**
 * The edge where offsite runs other programs (systemctl, mount, rsync, ...).
 * Everything goes through here so that errors carry the command and its
 * stderr, and so that a run can be cancelled as a whole.
 */
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
    env: opts.env,
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
