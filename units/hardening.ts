/**
 * The sandbox of the two root units: the backup (`offsite run`, and `offsite
 * cleanup` as its ExecStopPost=) and the failure reporter (`offsite
 * report-failure`). Each directive is here with the reason it is safe; the
 * ones left out, and why, are in docs/units.md ("Hardening").
 *
 * The backup mounts the drive for the host to see: nothing here may give it a
 * mount namespace of its own (ProtectSystem=, PrivateTmp=, PrivateDevices=,
 * ProtectKernel*=, ReadWritePaths=, PrivateIPC=, ...), or the drive would be
 * mounted where only the run sees it and the host's cleanup would find nothing.
 */
import type { Config } from '../bridge/config.js';
import { type Entry, pathList } from './unit-file.js';

/**
 * What `offsite run` needs of root: mount and unlock (CAP_SYS_ADMIN), read
 * every file of the source (DAC_*), and copy it as it is: owners, modes,
 * set-id bits, ACLs, file capabilities, device nodes (rsync -aHAX).
 */
export const BACKUP_CAPABILITIES = [
  'CAP_SYS_ADMIN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_CHOWN',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_MKNOD',
  'CAP_SETFCAP',
  // ext4 keeps a reserve of the NAS's disk for root: users filling it must not stop the backups
  'CAP_SYS_RESOURCE',
  // the run's lock reads /proc/<pid>/environ to find what a dead run left running (bridge/processes.ts);
  // the kernel refuses that for a process with capabilities this one lacks (a run started from a root shell)
  'CAP_SYS_PTRACE',
];

const LOOPBACK_HOST = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|::1|\[::1\])$/i;

/** The host of a URL or a bare host name is this machine (127.0.0.0/8, ::1, localhost). */
export function isLoopback(hostOrUrl: string): boolean {
  const host = /^[a-z][a-z0-9+.-]*:\/\//i.test(hostOrUrl)
    ? (/^[a-z][a-z0-9+.-]*:\/\/(?:[^@/]*@)?(\[[^\]]*\]|[^:/?#]*)/i.exec(hostOrUrl)?.[1] ?? '')
    : hostOrUrl;
  return LOOPBACK_HOST.test(host);
}

/**
 * Whether every peer the root units talk to is on this machine: the broker,
 * the SMTP server, and no lock command (it may reach a remote repository).
 * Only then can they be denied every other address.
 */
export function onlyLoopbackPeers(config: Config): boolean {
  const mqtt = !config.mqtt?.enabled || isLoopback(config.mqtt.url);
  const smtp = !config.email || isLoopback(config.email.smtp.host);
  return mqtt && smtp && !config.source.lock;
}

function loopbackOnly(config: Config): Entry[] {
  return onlyLoopbackPeers(config)
    ? [
        ['IPAddressDeny', 'any'],
        ['IPAddressAllow', 'localhost'],
      ]
    : [];
}

/** Protections that cost a root service nothing it needs, mount namespace or not. */
function common(config: Config): Entry[] {
  return [
    ['NoNewPrivileges', 'yes'],
    ['AmbientCapabilities', ''],
    // a UTS namespace only (no mount namespace): the hostname can be read, not changed
    ['ProtectHostname', 'yes'],
    ['RestrictNamespaces', 'yes'],
    ['RestrictRealtime', 'yes'],
    ['LockPersonality', 'yes'],
    // AF_NETLINK: glibc's getaddrinfo asks the kernel which addresses exist (AI_ADDRCONFIG)
    ['RestrictAddressFamilies', 'AF_UNIX AF_INET AF_INET6 AF_NETLINK'],
    ...loopbackOnly(config),
    ['SystemCallArchitectures', 'native'],
    // a call outside the filter fails with EPERM, reported like any error, instead of killing the run
    ['SystemCallErrorNumber', 'EPERM'],
  ];
}

export function backupSandbox(config: Config): Entry[] {
  return [
    ['CapabilityBoundingSet', BACKUP_CAPABILITIES.join(' ')],
    ...common(config),
    ['SystemCallFilter', '@system-service @mount'],
    ['SystemCallFilter', '~@resources'],
  ];
}

/**
 * `report-failure` mounts nothing, so it gets the file-system sandbox too:
 * the system read-only but for state_dir (the ledger), no capabilities (root
 * owns every file it reads or writes). It still sees the block devices:
 * blkid tells whether the drive is plugged in.
 */
export function failureSandbox(config: Config): Entry[] {
  return [
    ['CapabilityBoundingSet', ''],
    ...common(config),
    ['ProtectSystem', 'strict'],
    // "-": a state_dir the run could not create (a full disk) must not stop the report from starting
    ['ReadWritePaths', pathList([`-${config.state_dir}`])],
    // read-only, not hidden: Node.js or the package may live under /home (nvm)
    ['ProtectHome', 'read-only'],
    ['PrivateTmp', 'yes'],
    ['PrivateMounts', 'yes'],
    ['ProtectKernelTunables', 'yes'],
    ['ProtectKernelModules', 'yes'],
    ['ProtectKernelLogs', 'yes'],
    ['ProtectControlGroups', 'yes'],
    ['ProtectClock', 'yes'],
    // block devices read-only, for blkid; nothing else but the standard pseudo devices
    ['DevicePolicy', 'closed'],
    ['DeviceAllow', 'block-* r'],
    ['PrivateIPC', 'yes'],
    ['RestrictSUIDSGID', 'yes'],
    ['SystemCallFilter', '@system-service'],
    ['SystemCallFilter', '~@privileged @resources'],
  ];
}
