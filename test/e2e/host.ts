/**
 * The host side of the end-to-end harness: the tools it needs from Debian, where it
 * caches, and one way to run a command. Everything here runs as root on the host.
 */
import { existsSync } from 'node:fs';
import { execa } from 'execa';

/** Outside the checkout, so a fresh clone (CI) still finds the guest built by an earlier run. */
export const CACHE_ROOT = process.env.OFFSITE_E2E_CACHE ?? '/var/cache/offsite-e2e';

/** Debian packages the host needs, and one file each that proves it is installed. */
const HOST_PACKAGES: Record<string, string> = {
  debootstrap: '/usr/sbin/debootstrap',
  'qemu-system-x86': '/usr/bin/qemu-system-x86_64',
  'qemu-utils': '/usr/bin/qemu-img',
  'cryptsetup-bin': '/usr/sbin/cryptsetup',
  e2fsprogs: '/usr/sbin/mkfs.ext4',
  zstd: '/usr/bin/zstd',
};

/** Installs (apt-get) only the host packages that are missing; a no-op on a prepared machine. */
export async function ensureHostPackages(log: (line: string) => void = console.log): Promise<void> {
  const missing = Object.entries(HOST_PACKAGES)
    .filter(([, file]) => !existsSync(file))
    .map(([pkg]) => pkg);
  if (missing.length === 0) return;
  log(`e2e: installing host packages: ${missing.join(' ')}`);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  await execa('apt-get', ['update', '-q'], { env, stdio: 'inherit' });
  await execa('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], {
    env,
    stdio: 'inherit',
  });
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a host command; throws with its stderr when it fails, unless `allowFailure`. */
export async function sh(
  file: string,
  args: readonly string[],
  options: {
    allowFailure?: boolean;
    input?: string | Buffer;
    cwd?: string;
    env?: Record<string, string>;
  } = {},
): Promise<RunResult> {
  const result = await execa(file, args, {
    reject: false,
    ...(options.input !== undefined ? { input: options.input } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.env ? { env: options.env } : {}),
  });
  const exitCode = result.exitCode ?? -1;
  if (exitCode !== 0 && !options.allowFailure) {
    throw new Error(`${file} ${args.join(' ')} exited ${exitCode}: ${String(result.stderr).trim()}`);
  }
  return { exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
}

export function elapsed(startMs: number): string {
  return `${((performance.now() - startMs) / 1000).toFixed(1)} s`;
}
