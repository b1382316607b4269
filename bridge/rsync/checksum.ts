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

/** files checksummed at once: small files are dominated by open/stream set-up, not by reading */
const CONCURRENCY = 4;

/** Compares each sampled file; returns the ones whose contents differ (in the sample's order). */
export async function compareChecksums(
  source: string,
  copy: string,
  files: readonly string[],
  signal?: AbortSignal,
): Promise<ChecksumMismatch[]> {
  const results: (ChecksumMismatch | null)[] = new Array(files.length).fill(null);
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const i = next++;
      const file = files[i]!;
      const [a, b] = await Promise.all([
        sha256File(join(source, file), signal),
        sha256File(join(copy, file), signal),
      ]);
      if (a !== b) results[i] = { file, source: a, copy: b };
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, files.length) }, worker));
  return results.filter((r): r is ChecksumMismatch => r !== null);
}
