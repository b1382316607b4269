/**
 * KVM or TCG. KVM only counts if it boots the guest's kernel: on this kind of host /dev/kvm
 * opens, but a Debian kernel hangs in it. OFFSITE_E2E_ACCEL=kvm|tcg skips the probe.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import { CACHE_ROOT, elapsed, sh } from './host.js';
import type { GuestImage } from './image.js';

export type Accel = 'kvm' | 'tcg';

const QEMU = 'qemu-system-x86_64';

/**
 * KVM only counts if it boots the guest's kernel: this host's /dev/kvm opens, but a Debian
 * kernel hangs in it. The probe boots the kernel with no root disk; a working KVM reaches the
 * "unable to mount root" panic in a second or two.
 */
export async function chooseAccel(
  image: GuestImage,
  log: (line: string) => void = console.log,
): Promise<Accel> {
  const forced = process.env.OFFSITE_E2E_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') {
    log(`e2e: accelerator ${forced} (forced by OFFSITE_E2E_ACCEL)`);
    return forced;
  }
  if (!existsSync('/dev/kvm')) {
    log('e2e: no /dev/kvm: using TCG (software emulation)');
    return 'tcg';
  }
  const qemuVersion = (await sh(QEMU, ['--version'])).stdout.split('\n')[0] ?? '';
  const verdictFile = join(CACHE_ROOT, 'kvm-probe.json');
  const kernelHash = createHash('sha256')
    .update(await readFile(image.kernel))
    .digest('hex')
    .slice(0, 16);
  const key = `${release()} | ${qemuVersion} | ${kernelHash}`;
  try {
    const cached = JSON.parse(await readFile(verdictFile, 'utf8')) as { key: string; accel: Accel };
    if (cached.key === key) {
      log(`e2e: accelerator ${cached.accel} (probed earlier on this host)`);
      return cached.accel;
    }
  } catch {
    // no verdict yet
  }
  const started = performance.now();
  const works = await probeKvm(image.kernel);
  const accel: Accel = works ? 'kvm' : 'tcg';
  log(
    `e2e: KVM ${works ? 'boots the guest kernel' : 'cannot boot the guest kernel'} (probe ${elapsed(started)}): using ${accel}`,
  );
  await mkdir(CACHE_ROOT, { recursive: true });
  await writeFile(verdictFile, JSON.stringify({ key, accel }));
  return accel;
}

async function probeKvm(kernel: string, timeoutMs = 15_000): Promise<boolean> {
  const child = spawn(
    QEMU,
    [
      '-accel',
      'kvm',
      '-cpu',
      'host',
      '-m',
      '256',
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-no-reboot',
      '-serial',
      'stdio',
      '-kernel',
      kernel,
      '-append',
      'console=ttyS0 panic=-1',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  return new Promise<boolean>((resolve) => {
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    const onData = (s: string) => {
      output += s;
      if (/Kernel panic|VFS: Unable to mount root/.test(output)) finish(true);
    };
    child.stdout?.setEncoding('utf8').on('data', onData);
    child.stderr?.setEncoding('utf8').on('data', onData);
    child.once('exit', () => finish(/Kernel panic|VFS: Unable to mount root/.test(output)));
    child.once('error', () => finish(false));
  });
}
