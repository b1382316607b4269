/** A small family backup to copy in the demo: photos, documents, awkward names, a symlink. */
import { randomBytes } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function writeSampleSource(root: string, files = 400): { files: number; bytes: number } {
  let bytes = 0;
  const write = (rel: string, size: number) => {
    const p = join(root, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, randomBytes(size));
    bytes += size;
  };
  for (let i = 0; i < files; i++) {
    const year = 2019 + (i % 7);
    write(`photos/${year}/IMG_${String(1000 + i).padStart(4, '0')}.jpg`, 20_000 + ((i * 7919) % 180_000));
  }
  write('documents/Steuererklärung 2025.pdf', 120_000);
  write('documents/recettes de grand-mère.txt', 4_000);
  write('documents/家族の写真リスト.txt', 2_000);
  write('music/Sigur Rós - Hoppípolla.flac', 300_000);
  mkdirSync(join(root, 'empty folder'), { recursive: true });
  symlinkSync('photos/2025', join(root, 'latest photos'));
  return { files: files + 4, bytes };
}
