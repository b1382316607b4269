/** Run the real `offsite` CLI (from source, through tsx) as a child process. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
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
 * The same, in this process (much faster than a child with tsx): main() with
 * its own stdout and stderr, so that nothing else this process writes (the
 * test runner reports through stdout) is caught or lost.
 */
export async function offsiteHere(args: string[]): Promise<CliResult> {
  const { main } = await import('../../bridge/main.js');
  const out = capture();
  const err = capture();
  const exitCode = await main(
    args,
    { ...process.env, JOURNAL_STREAM: '', OFFSITE_DEBUG: '' },
    {
      stdout: out.stream,
      stderr: err.stream,
    },
  );
  return { exitCode, stdout: out.text(), stderr: err.text() };
}

/** A stream that keeps what is written to it (not a terminal). */
function capture(): { stream: NodeJS.WriteStream; text(): string } {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return {
    stream: Object.assign(stream, { isTTY: false }) as unknown as NodeJS.WriteStream,
    text: () => text,
  };
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
