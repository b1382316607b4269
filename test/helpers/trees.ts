/** Source trees for copy tests, with the awkward parts a backup must keep. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function tempDir(prefix = 'offsite-sync-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * A small tree: nested files, a symlink (relative and dangling), an
 * executable and a private file, two hard links to one file, unicode and
 * space-laden names, an empty directory.
 */
export function awkwardTree(root: string): void {
  mkdirSync(join(root, 'data', 'nested', 'deeper'), { recursive: true });
  mkdirSync(join(root, 'empty dir'), { recursive: true });
  writeFileSync(join(root, 'data', 'a.txt'), 'alpha\n');
  writeFileSync(join(root, 'data', 'nested', 'b.bin'), Buffer.alloc(70_000, 7));
  writeFileSync(join(root, 'data', 'nested', 'deeper', 'c.txt'), 'gamma\n');
  writeFileSync(join(root, 'Grüße – 日本語 ✓.txt'), 'unicode\n');
  writeFileSync(join(root, 'run.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(root, 'run.sh'), 0o755);
  writeFileSync(join(root, 'private'), 'secret\n');
  chmodSync(join(root, 'private'), 0o600);
  writeFileSync(join(root, 'linked-1'), 'one inode, two names\n');
  linkSync(join(root, 'linked-1'), join(root, 'data', 'linked-2'));
  symlinkSync('data/a.txt', join(root, 'to-a'));
  symlinkSync('nowhere/at/all', join(root, 'dangling'));
  utimesSync(
    join(root, 'data', 'a.txt'),
    new Date('2020-02-02T02:02:02Z'),
    new Date('2020-02-02T02:02:02.123Z'),
  );
}

/** `count` small files in directories of 100 */
export function manyFiles(root: string, count: number, size = 64): void {
  const body = Buffer.alloc(size, 1);
  for (let i = 0; i < count; i++) {
    const dir = join(root, `d${Math.floor(i / 100)}`);
    if (i % 100 === 0) mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `f${i}`), body);
  }
}

/** `diff -r` with symlinks compared as links (the roots themselves followed): '' means equal contents */
export function diffTrees(a: string, b: string): string {
  try {
    execFileSync('diff', ['-r', '--no-dereference', realpathSync(a), realpathSync(b)], {
      encoding: 'utf8',
      stdio: 'pipe',
    });
    return '';
  } catch (e) {
    const { stdout, stderr } = e as { stdout?: string; stderr?: string };
    return `${stdout ?? ''}${stderr ?? ''}` || String(e);
  }
}

export function listDir(dir: string): string[] {
  return readdirSync(dir).sort();
}

/**
 * Everything about a tree that a write through it would change: per entry its
 * type, inode, link count, mode, owner, size, modification time, symlink target
 * and a sha256 of a file's contents. Equal fingerprints: the tree was not touched.
 */
export function fingerprint(root: string): string {
  const lines: string[] = [];
  const walk = (rel: string) => {
    const path = rel ? join(root, rel) : root;
    const s = lstatSync(path, { bigint: true });
    const what = s.isSymbolicLink()
      ? `-> ${readlinkSync(path)}`
      : s.isFile()
        ? createHash('sha256').update(readFileSync(path)).digest('hex')
        : '';
    lines.push(
      `${rel || '.'} ${s.mode.toString(8)} ino=${s.ino} n=${s.nlink} ${s.uid}:${s.gid} ${s.size} ${s.mtimeNs} ${what}`,
    );
    if (s.isDirectory()) for (const name of readdirSync(path).sort()) walk(rel ? `${rel}/${name}` : name);
  };
  walk('');
  return lines.join('\n');
}
