/**
 * Everything `offsite install` puts on the system, generated from the
 * configuration: unit files, drop-ins, the links that start a backup when a
 * drive appears, the crypttab/fstab lines and the LED's udev rule. Pure: the
 * same configuration and paths always give the same plan (install.ts writes it).
 * docs/units.md explains each decision.
 */
import { basename, isAbsolute, join } from 'node:path';
import type { Config, Drive } from '../bridge/config.js';
import { byUuidDeviceUnit, cryptsetupUnit, instance } from '../bridge/systemd.js';
import {
  BLINKSTICK_RULE_FILE,
  blinkstickUdevRule,
  LED_GROUP,
  SYSFS_LED_RULE_FILE,
  sysfsLedUdevRule,
} from '../led-agent/udev.js';
import { backupSandbox, failureSandbox, isLoopback } from './hardening.js';
import { bridgeCli, type InstallPaths, ledCli } from './paths.js';
import {
  commandLine,
  type Entry,
  environment,
  INSTANCE,
  literal,
  pathList,
  renderUnit,
} from './unit-file.js';

export const UNIT_DIR = '/etc/systemd/system';
export const CRYPTTAB = '/etc/crypttab';
export const FSTAB = '/etc/fstab';
export const SYSUSERS_PATH = '/etc/sysusers.d/offsite.conf';
export const UDEV_RULES_DIR = '/etc/udev/rules.d';
export const BLINKSTICK_RULES_PATH = join(UDEV_RULES_DIR, BLINKSTICK_RULE_FILE);
export const SYSFS_LED_RULES_PATH = join(UDEV_RULES_DIR, SYSFS_LED_RULE_FILE);

export const BACKUP_TEMPLATE = 'offsite-backup@.service';
export const FAILURE_TEMPLATE = 'offsite-failure@.service';
export const CHECK_SERVICE = 'offsite-check.service';
export const CHECK_TIMER = 'offsite-check.timer';
export const LED_SERVICE = 'offsite-led.service';
/** The LED agent's transient (DynamicUser=) user: any name but the LED group's. */
export const LED_USER = 'offsite-led-agent';
/** the name of every drop-in file offsite writes */
export const DROP_IN = 'offsite.conf';

/** How long systemd waits for a cryptsetup unit to attach before calling it failed. */
export const UNLOCK_TIMEOUT = '2min';

export interface PlannedFile {
  path: string;
  content: string;
  mode: number;
  /** a unit file or drop-in (what `offsite units --out` writes) */
  unit: boolean;
}
export interface PlannedLink {
  path: string;
  target: string;
}
/** The lines offsite owns inside a shared file (crypttab, fstab). */
export interface PlannedBlock {
  path: string;
  lines: string[];
}
export interface Plan {
  files: PlannedFile[];
  links: PlannedLink[];
  blocks: PlannedBlock[];
}

export interface Credential {
  name: string;
  /** absolute path, or null: systemd looks the name up in its credential store (/etc/credstore) */
  path: string | null;
}

/** Secrets reach services as credentials (LoadCredential=), never in the unit text. */
export function credentials(config: Config, which: 'all' | 'mqtt' = 'all'): Credential[] {
  const refs = [config.mqtt?.password_file, which === 'all' ? config.email?.smtp.password_file : undefined];
  const seen = new Map<string, Credential>();
  for (const ref of refs) {
    if (!ref) continue;
    const cred = isAbsolute(ref) ? { name: basename(ref), path: ref } : { name: ref, path: null };
    if (/[\s:]/.test(cred.name) || (cred.path && /\s/.test(cred.path)))
      throw new Error(
        `the secret file ${ref} needs a name and path without spaces or ":" to be passed as a credential`,
      );
    const other = seen.get(cred.name);
    if (other && other.path !== cred.path)
      throw new Error(
        `two secret files share the credential name "${cred.name}": ${other.path} and ${cred.path}`,
      );
    seen.set(cred.name, cred);
  }
  return [...seen.values()];
}

function loadCredentials(creds: Credential[]): Entry[] {
  return creds.map((c) => ['LoadCredential', literal(c.path ? `${c.name}:${c.path}` : c.name)] as const);
}

function documentation(p: InstallPaths): Entry {
  return ['Documentation', literal(`file://${encodeURI(join(p.prefix, 'docs', 'units.md'))}`)];
}

function offsite(p: InstallPaths, ...args: Array<string | typeof INSTANCE>): string {
  return commandLine([p.node, bridgeCli(p), ...args]);
}

export function backupTemplate(config: Config, p: InstallPaths): string {
  return renderUnit([
    {
      name: 'Unit',
      entries: [
        ['Description', 'offsite: back up to drive %i'],
        documentation(p),
        // a crash, kill, timeout or failed dependency is reported by the failure unit
        ['OnFailure', 'offsite-failure@%i.service'],
        ['After', 'network-online.target'],
        // do not start before the data and the state directory are mounted (a drive plugged in at boot)
        ['RequiresMountsFor', pathList([config.source.path, config.state_dir])],
      ],
    },
    {
      name: 'Service',
      entries: [
        ['Type', 'oneshot'],
        ['Environment', environment('OFFSITE_CONFIG', p.config)],
        ['ExecStart', offsite(p, 'run', INSTANCE)],
        // 75: the drive was not plugged in (or another run of it is going): nothing was started, so
        // nothing failed, and OnFailure= must not report it as a failure
        ['SuccessExitStatus', '75'],
        // runs after every ExecStart, failed or not: no stale mount or mapping survives a pulled drive
        ['ExecStopPost', offsite(p, 'cleanup', INSTANCE)],
        ['TimeoutStartSec', '1d'],
        // room for the undo walk: unmounting writes out what is still cached for a slow USB disk
        ['TimeoutStopSec', '10min'],
        // SIGTERM to offsite only, which stops rsync itself and undoes its steps
        ['KillMode', 'mixed'],
        ['Nice', '10'],
        ['IOSchedulingClass', 'best-effort'],
        ['IOSchedulingPriority', '7'],
        ['SyslogIdentifier', 'offsite'],
        ...loadCredentials(credentials(config)),
        // root, but no more of it than mounting, unlocking and copying take (units/hardening.ts)
        ...backupSandbox(config),
      ],
    },
  ]);
}

export function failureTemplate(config: Config, p: InstallPaths): string {
  return renderUnit([
    {
      name: 'Unit',
      entries: [['Description', 'offsite: report a failed backup to drive %i'], documentation(p)],
    },
    {
      name: 'Service',
      entries: [
        ['Type', 'oneshot'],
        ['Environment', environment('OFFSITE_CONFIG', p.config)],
        ['ExecStart', offsite(p, 'report-failure', INSTANCE)],
        ['TimeoutStartSec', '5min'],
        ['SyslogIdentifier', 'offsite'],
        ...loadCredentials(credentials(config)),
        ...failureSandbox(config),
      ],
    },
  ]);
}

export function checkService(config: Config, p: InstallPaths): string {
  return renderUnit([
    {
      name: 'Unit',
      entries: [
        ['Description', 'offsite: find overdue drives and remind once'],
        documentation(p),
        ['Wants', 'network-online.target'],
        ['After', 'network-online.target'],
      ],
    },
    {
      name: 'Service',
      entries: [
        ['Type', 'oneshot'],
        ['Environment', environment('OFFSITE_CONFIG', p.config)],
        ['ExecStart', offsite(p, 'check')],
        ['TimeoutStartSec', '10min'],
        ['SyslogIdentifier', 'offsite'],
        ...loadCredentials(credentials(config)),
      ],
    },
  ]);
}

export function checkTimer(p: InstallPaths): string {
  return renderUnit([
    { name: 'Unit', entries: [['Description', 'offsite: daily overdue check'], documentation(p)] },
    {
      name: 'Timer',
      entries: [
        ['OnCalendar', 'daily'],
        // a NAS that was off at midnight checks when it comes back
        ['Persistent', 'true'],
        ['RandomizedDelaySec', '1h'],
      ],
    },
    { name: 'Install', entries: [['WantedBy', 'timers.target']] },
  ]);
}

/** The LED agent runs as a transient user in a tight sandbox; it only needs the broker and the LED. */
/** V8 flags for the LED agent's Node.js (measured in bench/led-memory.ts) */
export const LED_NODE_FLAGS = ['--lite-mode', '--max-semi-space-size=1'];

/**
 * The LED agent's memory cap. Measured (docs/benchmarks.md, LED agent): ~55 MiB
 * idle, 87–91 MiB at its peak while reading past a 50 or 200 MB payload
 * (bench/led-flood.ts). A cap near twice that peak never touches normal work;
 * a leak or an attack that gets past the packet guard ends in an OOM kill and a
 * restart (Restart=on-failure) instead of the NAS swapping.
 */
export const LED_MEMORY_MAX = '160M';

export function ledService(config: Config, p: InstallPaths): string {
  const led = config.led;
  const sysfs = led.driver === 'sysfs' && led.path ? led.path : null;
  const loopbackBroker = isLoopback(config.mqtt?.url ?? '');
  return renderUnit([
    {
      name: 'Unit',
      entries: [
        ['Description', 'offsite: LED agent (shows backup status on the LED)'],
        documentation(p),
        ['Wants', 'network-online.target'],
        ['After', 'network-online.target mosquitto.service'],
      ],
    },
    {
      name: 'Service',
      entries: [
        ['Type', 'exec'],
        ['Environment', environment('OFFSITE_CONFIG', p.config)],
        // a process that handles a few messages a second needs no optimizing compiler and a
        // small young generation: ~55 MiB resident instead of ~75 (docs/benchmarks.md, LED agent)
        ['ExecStart', commandLine([p.node, ...LED_NODE_FLAGS, ledCli(p)])],
        ['Restart', 'on-failure'],
        ['RestartSec', '5s'],
        ['MemoryMax', LED_MEMORY_MAX],
        ['SyslogIdentifier', 'offsite-led'],
        ...loadCredentials(credentials(config, 'mqtt')),
        ['DynamicUser', 'yes'],
        // named, because the default (the unit's name, offsite-led) is taken by the group below and
        // systemd then refuses to start the agent at all (status 217/USER, seen in the e2e guest)
        ['User', LED_USER],
        ['SupplementaryGroups', LED_GROUP],
        ['CapabilityBoundingSet', ''],
        ['AmbientCapabilities', ''],
        ['NoNewPrivileges', 'yes'],
        ['ProtectSystem', 'strict'],
        ['ProtectHome', 'yes'],
        ['PrivateTmp', 'yes'],
        ['PrivateMounts', 'yes'],
        // the BlinkStick is a hidraw device; nothing else in /dev is reachable
        ['DevicePolicy', 'closed'],
        ['DeviceAllow', 'char-hidraw rw'],
        ['ProtectKernelTunables', 'yes'],
        ['ProtectKernelModules', 'yes'],
        ['ProtectKernelLogs', 'yes'],
        ['ProtectControlGroups', 'yes'],
        ['ProtectClock', 'yes'],
        ['ProtectHostname', 'yes'],
        // ProcSubset=pid is left out: V8 on ARM reads /proc/cpuinfo for the CPU's features
        ['ProtectProc', 'invisible'],
        ['PrivateIPC', 'yes'],
        ['KeyringMode', 'private'],
        ['RestrictNamespaces', 'yes'],
        ['RestrictRealtime', 'yes'],
        ['RestrictSUIDSGID', 'yes'],
        ['LockPersonality', 'yes'],
        ['RemoveIPC', 'yes'],
        ['UMask', '0077'],
        // AF_NETLINK: node-hid watches udev for the BlinkStick coming and going
        ['RestrictAddressFamilies', 'AF_UNIX AF_INET AF_INET6 AF_NETLINK'],
        ...(loopbackBroker
          ? ([
              ['IPAddressDeny', 'any'],
              ['IPAddressAllow', 'localhost'],
            ] as Entry[])
          : []),
        ['SystemCallArchitectures', 'native'],
        ['SystemCallFilter', '@system-service'],
        ['SystemCallFilter', '~@privileged @resources'],
        ['SystemCallErrorNumber', 'EPERM'],
        // V8 compiles JavaScript to machine code: MemoryDenyWriteExecute=yes would kill node
        ...(sysfs ? ([['ReadWritePaths', pathList([sysfs])]] as Entry[]) : []),
      ],
    },
    { name: 'Install', entries: [['WantedBy', 'multi-user.target']] },
  ]);
}

/**
 * A drop-in for the cryptsetup unit the crypttab generator makes. It sets a
 * start timeout (the generated unit has none): a dying disk then fails the
 * unlock step instead of hanging the backup for a day. StopWhenUnneeded= is
 * deliberately absent: it never closes the mapping (docs/design.md §1); `offsite run`
 * stops the unit itself and checks the mapping is gone.
 */
export function cryptsetupDropIn(drive: Extract<Drive, { kind: 'luks' }>): string {
  return renderUnit([
    {
      name: 'Unit',
      entries: [['Description', literal(`offsite: unlock drive ${drive.name}`)]],
    },
    { name: 'Service', entries: [['TimeoutStartSec', UNLOCK_TIMEOUT]] },
  ]);
}

function field(value: string, what: string, drive: string): string {
  if (/\s/.test(value))
    throw new Error(
      `drive ${drive}: the ${what} "${value}" contains white space, which crypttab cannot hold`,
    );
  return value;
}

/** fstab escapes white space and backslashes as octal. */
function fstabField(value: string): string {
  return value.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/**
 * noauto: nothing opens the container at boot or on plug; `offsite run`
 * starts the unit. headless=true: a wrong key fails at once instead of waiting
 * forever for a password nobody can type on a headless NAS.
 */
export function crypttabLine(drive: Extract<Drive, { kind: 'luks' }>): string {
  return [
    field(drive.mapper, 'mapper name', drive.name),
    `UUID=${drive.luksUuid}`,
    field(drive.keyFile, 'key file', drive.name),
    'luks,noauto,headless=true',
  ].join(' ');
}

/** noauto,nofail: never mounted at boot, never blocks boot when the drive is away. */
export function fstabLine(drive: Extract<Drive, { kind: 'luks' | 'filesystem' }>): string {
  const source = drive.kind === 'luks' ? `/dev/mapper/${drive.mapper}` : `UUID=${drive.uuid}`;
  const fstype = drive.kind === 'luks' ? 'ext4' : 'auto';
  return [
    fstabField(source),
    fstabField(drive.mountPoint),
    fstype,
    `noauto,nofail,${drive.mountOptions}`,
    '0',
    '0',
  ].join(' ');
}

/** The partition UUID udev sees when the drive is plugged in, or null for a directory drive. */
export function plugUuid(drive: Drive): string | null {
  if (drive.kind === 'luks') return drive.luksUuid;
  if (drive.kind === 'filesystem') return drive.uuid;
  return null;
}

/**
 * The LED agent runs whenever there is a broker to follow: besides the LED it
 * keeps Home Assistant's entities whole between backups (docs/homeassistant),
 * so it is wanted with `led.driver: none` too.
 */
export function ledWanted(config: Config): boolean {
  return Boolean(config.mqtt?.enabled);
}

export function plan(config: Config, p: InstallPaths): Plan {
  const unit = (name: string, content: string): PlannedFile => ({
    path: join(UNIT_DIR, name),
    content,
    mode: 0o644,
    unit: true,
  });
  const files: PlannedFile[] = [
    unit(BACKUP_TEMPLATE, backupTemplate(config, p)),
    unit(FAILURE_TEMPLATE, failureTemplate(config, p)),
    unit(CHECK_SERVICE, checkService(config, p)),
    unit(CHECK_TIMER, checkTimer(p)),
  ];
  const links: PlannedLink[] = [
    { path: join(UNIT_DIR, 'timers.target.wants', CHECK_TIMER), target: join(UNIT_DIR, CHECK_TIMER) },
  ];
  const crypttab: string[] = [];
  const fstab: string[] = [];

  for (const drive of config.drives) {
    const uuid = plugUuid(drive);
    if (uuid)
      links.push({
        path: join(UNIT_DIR, `${byUuidDeviceUnit(uuid)}.wants`, instance(BACKUP_TEMPLATE, drive.name)),
        target: join(UNIT_DIR, BACKUP_TEMPLATE),
      });
    if (drive.kind === 'luks') {
      crypttab.push(crypttabLine(drive));
      files.push(unit(join(`${cryptsetupUnit(drive.mapper)}.d`, DROP_IN), cryptsetupDropIn(drive)));
    }
    if (drive.kind !== 'directory') fstab.push(fstabLine(drive));
  }

  if (ledWanted(config)) {
    files.push(unit(LED_SERVICE, ledService(config, p)));
    links.push({
      path: join(UNIT_DIR, 'multi-user.target.wants', LED_SERVICE),
      target: join(UNIT_DIR, LED_SERVICE),
    });
    files.push({
      path: SYSUSERS_PATH,
      content: `# Generated by \`offsite install\`; do not edit.\n# The group that may drive the status LED.\ng ${LED_GROUP} -\n`,
      mode: 0o644,
      unit: false,
    });
    // the rules give the LED's device node or sysfs files to the agent's group (led-agent/udev.ts)
    if (config.led.driver === 'blinkstick')
      files.push({ path: BLINKSTICK_RULES_PATH, content: blinkstickUdevRule(), mode: 0o644, unit: false });
    if (config.led.driver === 'sysfs' && config.led.path)
      files.push({
        path: SYSFS_LED_RULES_PATH,
        content: sysfsLedUdevRule(basename(config.led.path)),
        mode: 0o644,
        unit: false,
      });
  }

  return {
    files,
    links,
    blocks: [
      { path: CRYPTTAB, lines: crypttab },
      { path: FSTAB, lines: fstab },
    ],
  };
}
