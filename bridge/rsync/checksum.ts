/** sha256 of a sample of files on both sides: catches what size and time cannot. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';

export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20, signal }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface ChecksumMismatch {
  file: string;
  source: string;
  copy: string;
}

/** Compares each sampled file; returns the ones whose contents differ. */
export async function compareChecksums(
  source: string,
  copy: string,
  files: readonly string[],
  signal?: AbortSignal,
): Promise<ChecksumMismatch[]> {
  const bad: ChecksumMismatch[] = [];
  for (const file of files) {
    const [a, b] = await Promise.all([
      sha256File(join(source, file), signal),
      sha256File(join(copy, file), signal),
    ]);
    if (a !== b) bad.push({ file, source: a, copy: b });
  }
  return bad;
}
