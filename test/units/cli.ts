/** Run the real `offsite` CLI (from source, through tsx) as a child process. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';

const REPO = resolve(import.meta.dirname, '..', '..');

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function offsite(
  args: string[],
  opts: { input?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const r = await execa(process.execPath, ['--import', 'tsx', join(REPO, 'bridge', 'cli.ts'), ...args], {
    cwd: REPO,
    reject: false,
    input: opts.input ?? '',
    env: { OFFSITE_DEBUG: '', JOURNAL_STREAM: '', ...opts.env },
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/**
 * The same, in this process (much faster than a child with tsx): main()
 * with stdout and stderr captured while it runs. Tests in a file run one at a
 * time, so nothing else writes meanwhile.
 */
export async function offsiteHere(args: string[]): Promise<CliResult> {
  const { main } = await import('../../bridge/main.js');
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write;
  const err = process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    const exitCode = await main(args, { ...process.env, JOURNAL_STREAM: '', OFFSITE_DEBUG: '' });
    return { exitCode, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

/** A config file in a fresh temporary directory. */
export function configFile(yaml: string): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'offsite-units-'));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, yaml);
  return { dir, file };
}

export const ALPHA_UUID = '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0';
export const BRAVO_UUID = '1c2d3e4f-5061-7283-94a5-b6c7d8e9f0a1';
export const PLAIN_UUID = '2d3e4f50-6172-8394-a5b6-c7d8e9f0a1b2';
