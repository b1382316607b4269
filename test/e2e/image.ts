/**
 * Builds the Debian 12 guest that the end-to-end tests boot, and caches it outside the
 * checkout under CACHE_ROOT/<hash of this recipe>/, so a second run reuses it.
 *
 *   node --import tsx test/e2e/image.ts            build (or reuse) and print the paths
 *   node --import tsx test/e2e/image.ts --rebuild  build again even if cached
 *
 * The recipe: debootstrap minbase of bookworm with systemd, udev, cryptsetup, rsync,
 * mosquitto and qemu-guest-agent (how the harness runs commands with no network);
 * the host's own Node.js binary at /usr/local/bin/node (Debian 12's nodejs is 18);
 * kernel and initrd copied out to boot with -kernel/-initrd; trimmed; packed into a raw
 * ext4 image with `mkfs.ext4 -d` (no loop mount, the host has no device-mapper either).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { CACHE_ROOT, elapsed, ensureHostPackages, sh } from './host.js';

const SUITE = 'bookworm';

/** What the product needs in the guest, plus what the harness needs to drive it. */
export const GUEST_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'udev',
  'dbus',
  'kmod',
  'e2fsprogs',
  'cryptsetup',
  'rsync',
  'mosquitto',
  'mosquitto-clients',
  'procps',
  'qemu-guest-agent',
  'linux-image-amd64',
];

/** Modules the initrd must carry to mount the root disk (virtio-blk, ext4); the rest load from the root. */
const INITRD_MODULES = ['virtio_pci', 'virtio_blk', 'ext4'];

/** Kernel module trees nothing in the tests touches (no network, no graphics, no sound). */
const UNUSED_MODULE_DIRS = [
  'drivers/gpu',
  'drivers/net',
  'drivers/media',
  'drivers/infiniband',
  'drivers/staging',
  'drivers/iio',
  'drivers/bluetooth',
  'drivers/isdn',
  'drivers/mtd',
  'drivers/thunderbolt',
  'drivers/nfc',
  'drivers/hwmon',
  'drivers/platform',
  'drivers/edac',
  'drivers/comedi',
  'drivers/scsi/qla2xxx',
  'drivers/scsi/lpfc',
  'drivers/scsi/mpt3sas',
  'drivers/scsi/megaraid',
  'sound',
  'net/wireless',
  'net/mac80211',
  'net/bluetooth',
  'fs/btrfs',
  'fs/xfs',
  'fs/nfs',
  'fs/nfsd',
  'fs/ceph',
  'fs/ocfs2',
  'fs/gfs2',
  'fs/smb',
  'fs/f2fs',
];

const TRIM_DIRS = [
  'usr/share/doc',
  'usr/share/man',
  'usr/share/info',
  'usr/share/locale',
  'usr/share/lintian',
  'usr/share/bash-completion',
  'var/cache/apt',
  'var/lib/apt/lists',
  'var/cache/debconf',
];

/** Size of the root filesystem; the image file is sparse, so only what is written costs disk. */
const ROOTFS_SIZE = '3G';

export const KERNEL_CMDLINE = [
  'root=/dev/vda',
  'rootfstype=ext4',
  'rw',
  'console=ttyS0',
  'loglevel=4',
  'panic=-1',
  'mitigations=off',
  'net.ifnames=0',
  'systemd.show_status=false',
].join(' ');

export interface GuestImage {
  /** The cache directory of this recipe. */
  dir: string;
  rootfs: string;
  kernel: string;
  initrd: string;
  hash: string;
  /** True when this call built it, false when it came from the cache. */
  built: boolean;
  buildSeconds: number;
}

/** The hash covers this file (the recipe) and the Node.js binary that goes into the guest. */
async function recipeHash(): Promise<string> {
  const self = await readFile(fileURLToPath(import.meta.url));
  const node = await stat(process.execPath);
  return createHash('sha256')
    .update(self)
    .update(`${process.version} ${node.size} ${GUEST_PACKAGES.join(',')} ${KERNEL_CMDLINE}`)
    .digest('hex')
    .slice(0, 16);
}

/** The host's own Debian mirror (its apt sources), so the guest comes from the same place; else debootstrap's default. */
async function hostMirror(): Promise<string | undefined> {
  const candidates: string[] = [];
  const dir = '/etc/apt/sources.list.d';
  if (existsSync(dir)) {
    for (const name of await readdir(dir)) {
      if (name.endsWith('.sources') || name.endsWith('.list')) candidates.push(join(dir, name));
    }
  }
  if (existsSync('/etc/apt/sources.list')) candidates.push('/etc/apt/sources.list');
  for (const file of candidates) {
    const text = await readFile(file, 'utf8');
    // deb822 stanzas
    for (const stanza of text.split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1]?.split(/\s+/) ?? [];
      if (uri && suites.includes(SUITE) && !/^Types:.*deb-src/m.test(stanza)) return uri;
    }
    // one-line format
    for (const line of text.split('\n')) {
      const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s/.exec(line.trim());
      if (m && m[2] === SUITE) return m[1];
    }
  }
  return undefined;
}

export async function ensureImage(
  options: { rebuild?: boolean; log?: (line: string) => void } = {},
): Promise<GuestImage> {
  const log = options.log ?? ((line: string) => console.log(line));
  const hash = await recipeHash();
  const dir = join(CACHE_ROOT, hash);
  const image = (built: boolean, buildSeconds: number): GuestImage => ({
    dir,
    rootfs: join(dir, 'rootfs.img'),
    kernel: join(dir, 'vmlinuz'),
    initrd: join(dir, 'initrd.img'),
    hash,
    built,
    buildSeconds,
  });
  if (!options.rebuild && existsSync(join(dir, 'READY'))) {
    log(`e2e: guest image ${hash} from cache (${dir})`);
    return image(false, 0);
  }
  if (process.getuid?.() !== 0) {
    throw new Error(
      'building the guest image needs root (apt-get, debootstrap, chroot); run the e2e tests as root',
    );
  }
  await ensureHostPackages(log);
  const started = performance.now();
  const work = `${dir}.build-${process.pid}`;
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  try {
    await build(work, log);
    await rm(dir, { recursive: true, force: true });
    await rename(work, dir);
  } catch (error) {
    log(`e2e: image build failed; its files are kept in ${work} (build.log)`);
    throw error;
  }
  await pruneOtherImages(hash, log);
  const seconds = (performance.now() - started) / 1000;
  await writeFile(join(dir, 'READY'), `${new Date().toISOString()} built in ${seconds.toFixed(0)} s\n`);
  log(`e2e: guest image ${hash} built in ${seconds.toFixed(0)} s (${dir})`);
  return image(true, seconds);
}

/** Images of older recipes, and builds abandoned by a dead process, are half a gigabyte each. */
async function pruneOtherImages(keep: string, log: (line: string) => void): Promise<void> {
  for (const entry of await readdir(CACHE_ROOT)) {
    const build = /^[0-9a-f]{16}\.build-(\d+)$/.exec(entry);
    const stale = build ? !processAlive(Number(build[1])) : /^[0-9a-f]{16}$/.test(entry) && entry !== keep;
    if (!stale) continue;
    log(`e2e: removing ${join(CACHE_ROOT, entry)} (another recipe)`);
    await rm(join(CACHE_ROOT, entry), { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function build(work: string, log: (line: string) => void): Promise<void> {
  const root = join(work, 'root');
  const buildLog = join(work, 'build.log');
  const debs = join(CACHE_ROOT, 'debs');
  await mkdir(debs, { recursive: true });
  const mirror = await hostMirror();

  let t = performance.now();
  log(`e2e: debootstrap ${SUITE} (first stage)${mirror ? ` from ${mirror}` : ''}`);
  await logged(buildLog, 'debootstrap', [
    '--variant=minbase',
    '--foreign',
    `--include=${GUEST_PACKAGES.join(',')}`,
    `--cache-dir=${debs}`,
    SUITE,
    root,
    ...(mirror ? [mirror] : []),
  ]);
  log(`e2e:   first stage ${elapsed(t)}`);

  // Before any package is configured, so the kernel's postinst makes a small initrd at once.
  await mkdir(join(root, 'etc/initramfs-tools/conf.d'), { recursive: true });
  await mkdir(join(root, 'etc/initramfs-tools/hooks'), { recursive: true });
  await writeFile(join(root, 'etc/initramfs-tools/conf.d/offsite-e2e.conf'), 'MODULES=list\n');
  const hook = join(root, 'etc/initramfs-tools/hooks/offsite-e2e');
  await writeFile(
    hook,
    [
      '#!/bin/sh',
      'case "$1" in prereqs) exit 0;; esac',
      '. /usr/share/initramfs-tools/hook-functions',
      ...INITRD_MODULES.map((m) => `force_load ${m}`),
      '',
    ].join('\n'),
  );
  await chmod(hook, 0o755);

  t = performance.now();
  log('e2e: debootstrap second stage (installs and configures the packages)');
  await logged(buildLog, 'chroot', [root, '/debootstrap/debootstrap', '--second-stage']);
  log(`e2e:   second stage ${elapsed(t)}`);

  t = performance.now();
  await configure(root, work);
  log(`e2e:   configured and trimmed ${elapsed(t)}`);

  t = performance.now();
  await logged(buildLog, 'mkfs.ext4', [
    '-q',
    '-F',
    '-L',
    'offsite-e2e',
    '-E',
    'root_owner=0:0',
    '-d',
    root,
    join(work, 'rootfs.img'),
    ROOTFS_SIZE,
  ]);
  await rm(root, { recursive: true, force: true });
  log(`e2e:   packed with mkfs.ext4 -d ${elapsed(t)}`);
}

async function configure(root: string, work: string): Promise<void> {
  const etc = (p: string) => join(root, 'etc', p);
  await writeFile(etc('hostname'), 'offsite-e2e\n');
  await writeFile(etc('hosts'), '127.0.0.1 localhost\n127.0.1.1 offsite-e2e\n::1 localhost\n');
  await writeFile(etc('fstab'), '/dev/vda / ext4 rw,errors=remount-ro 0 0\n');
  // A fixed machine id: no first-boot behaviour, the same journal path every boot.
  await writeFile(etc('machine-id'), 'f0f5e2e0000000000000000000000001\n');

  // Nothing scheduled may start apt or scrub disks in the middle of a test.
  const masked = [
    'apt-daily.timer',
    'apt-daily-upgrade.timer',
    'e2scrub_all.timer',
    'e2scrub_reap.service',
    'fstrim.timer',
    'getty@tty1.service',
    'systemd-timesyncd.service',
  ];
  for (const unit of masked) {
    const link = etc(`systemd/system/${unit}`);
    await rm(link, { force: true });
    await symlink('/dev/null', link);
  }
  // The journal stays in memory: faster under emulation, and nothing outlives the run anyway.
  await mkdir(etc('systemd/journald.conf.d'), { recursive: true });
  await writeFile(etc('systemd/journald.conf.d/offsite-e2e.conf'), '[Journal]\nStorage=volatile\n');

  // Node.js: the host's own binary (the project supports Node 20; Debian 12 ships 18).
  await sh('install', ['-m', '0755', process.execPath, join(root, 'usr/local/bin/node')]);

  // Kernel and initrd go beside the image; the guest boots them with -kernel/-initrd.
  const boot = join(root, 'boot');
  const files = await readdir(boot);
  const kernel = files.find((f) => f.startsWith('vmlinuz-'));
  const initrd = files.find((f) => f.startsWith('initrd.img-'));
  if (!kernel || !initrd) throw new Error(`no kernel or initrd in ${boot}: ${files.join(' ')}`);
  const kver = kernel.slice('vmlinuz-'.length);
  await sh('cp', [join(boot, kernel), join(work, 'vmlinuz')]);
  await sh('cp', [join(boot, initrd), join(work, 'initrd.img')]);
  for (const f of files) {
    if (f.startsWith('vmlinuz-') || f.startsWith('initrd.img-') || f.startsWith('System.map-')) {
      await rm(join(boot, f), { force: true });
    }
  }

  for (const dir of UNUSED_MODULE_DIRS) {
    await rm(join(root, 'lib/modules', kver, 'kernel', dir), { recursive: true, force: true });
  }
  await sh('chroot', [root, 'depmod', '-a', kver]);
  for (const dir of TRIM_DIRS) {
    const path = join(root, dir);
    if (!existsSync(path)) continue;
    for (const entry of await readdir(path)) await rm(join(path, entry), { recursive: true, force: true });
  }
  await rm(join(root, 'debootstrap'), { recursive: true, force: true });
}

/** Runs a build command with its output appended to build.log (kept on failure). */
async function logged(logFile: string, file: string, args: string[]): Promise<void> {
  const result = await execa(file, args, {
    reject: false,
    all: true,
    env: { DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C.UTF-8' },
  });
  await writeFile(logFile, `$ ${file} ${args.join(' ')}\n${String(result.all)}\n`, { flag: 'a' });
  if (result.exitCode !== 0) {
    const tail = String(result.all).split('\n').slice(-20).join('\n');
    throw new Error(`${file} exited ${result.exitCode}; last lines (all in ${logFile}):\n${tail}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const image = await ensureImage({ rebuild: process.argv.includes('--rebuild') });
  console.log(JSON.stringify(image, null, 2));
}
