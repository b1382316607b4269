/**
 * The LUKS side of enrolling a drive, through cryptsetup(8): a LUKS2
 * container opened by a generated key file, optionally a passphrase too, and
 * a header backup (a damaged header otherwise loses the whole drive).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { run } from '../../bridge/exec.js';

export const KEY_BYTES = 4096;

/**
 * `dir` itself 0700, the parents it needs 0755: state_dir and /etc/offsite must
 * stay readable for the unprivileged LED agent (its ledger and configuration);
 * only the keys and header backups are private.
 */
export function privateDir(dir: string): void {
  mkdirSync(dirname(dir), { recursive: true, mode: 0o755 });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** 4096 random bytes, mode 0400, never overwriting an existing key (it may be another drive's only key). */
export function createKeyFile(file: string): void {
  privateDir(dirname(file));
  const fd = openSync(file, 'wx', 0o400);
  try {
    writeSync(fd, randomBytes(KEY_BYTES));
  } finally {
    closeSync(fd);
  }
  chmodSync(file, 0o400);
}

export interface FormatOptions {
  label: string;
  /** cryptsetup --iter-time: milliseconds of key derivation per unlock (default 2000) */
  iterTimeMs?: number;
}

export async function formatLuks(device: string, keyFile: string, opts: FormatOptions): Promise<void> {
  const args = [
    'luksFormat',
    '--type',
    'luks2',
    '--batch-mode',
    '--key-file',
    keyFile,
    '--label',
    opts.label,
  ];
  if (opts.iterTimeMs) args.push('--iter-time', String(opts.iterTimeMs));
  await run('cryptsetup', [...args, '--', device], { timeoutMs: 10 * 60_000 });
}

/** A passphrase slot next to the key file's: what a person types if the NAS is gone. */
export async function addPassphrase(
  device: string,
  keyFile: string,
  passphrase: string,
  iterTimeMs?: number,
): Promise<void> {
  const args = ['luksAddKey', '--batch-mode', '--key-file', keyFile];
  if (iterTimeMs) args.push('--iter-time', String(iterTimeMs));
  // "-": the new key from stdin, exactly these bytes (no newline, as typed at a prompt)
  await run('cryptsetup', [...args, '--', device, '-'], { input: passphrase, timeoutMs: 10 * 60_000 });
}

export async function backupHeader(device: string, file: string): Promise<void> {
  privateDir(dirname(file));
  await run('cryptsetup', ['luksHeaderBackup', '--header-backup-file', file, '--', device], {
    timeoutMs: 60_000,
  });
  chmodSync(file, 0o400);
}

export async function luksUuid(device: string): Promise<string> {
  return (await run('cryptsetup', ['luksUUID', '--', device])).stdout.trim().toLowerCase();
}

/** Whether a key file or a passphrase opens a slot, without opening the container (no device-mapper needed). */
export async function keyOpens(
  device: string,
  key: { file: string } | { passphrase: string },
): Promise<boolean> {
  const args = ['open', '--test-passphrase', '--key-file', 'file' in key ? key.file : '-', '--', device];
  const r = await run('cryptsetup', args, {
    input: 'passphrase' in key ? key.passphrase : undefined,
    okCodes: [0, 1, 2],
  });
  return r.exitCode === 0;
}

/**
 * Opening needs the kernel's device-mapper. /proc/misc lists it once loaded
 * (the /dev/mapper/control node alone proves nothing: cryptsetup creates it
 * even on a kernel without device-mapper).
 */
export function deviceMapperAvailable(): boolean {
  const listed = () => {
    try {
      return /\bdevice-mapper\b/.test(readFileSync('/proc/misc', 'utf8'));
    } catch {
      return false;
    }
  };
  if (listed()) return true;
  spawnSync('modprobe', ['-q', 'dm_crypt'], { stdio: 'ignore', timeout: 30_000 });
  return listed();
}

export async function openLuks(device: string, keyFile: string, mapper: string): Promise<string> {
  await run('cryptsetup', ['open', '--type', 'luks2', '--key-file', keyFile, '--', device, mapper], {
    timeoutMs: 5 * 60_000,
  });
  return `/dev/mapper/${mapper}`;
}

export async function closeLuks(mapper: string): Promise<void> {
  if (existsSync(`/dev/mapper/${mapper}`))
    await run('cryptsetup', ['close', '--', mapper], { timeoutMs: 60_000 });
}
