/**
 * The sandbox of the root units (units/hardening.ts, docs/units.md "Hardening"). The e2e suite
 * proves that a backup still mounts, unlocks, copies and reports inside it; these tests keep the
 * chosen directives in the generated files, and keep out of the backup every directive that would
 * give it a mount namespace of its own (the drive would then be mounted where the host cannot see
 * it, nor its cleanup unmount it).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Config, parseConfig } from '../../bridge/config.js';
import { backupTemplate, failureTemplate } from '../../units/generate.js';
import { BACKUP_CAPABILITIES, isLoopback } from '../../units/hardening.js';
import { installPaths } from '../../units/paths.js';
import { ALPHA_UUID } from './cli.js';

const paths = installPaths({ config: '/etc/offsite/config.yaml', node: process.execPath });

function config(extra: Record<string, unknown> = {}): Config {
  return parseConfig(
    {
      source: { path: '/srv/backup' },
      state_dir: '/var/lib/offsite',
      mqtt: { url: 'mqtt://127.0.0.1:1883' },
      email: { smtp: { host: '127.0.0.1', port: 25 }, from: 'nas@example.org', to: ['me@example.org'] },
      drives: [
        {
          name: 'alpha',
          luks_uuid: ALPHA_UUID,
          key_file: '/etc/offsite/keys/alpha.key',
          mount_point: '/mnt/offsite/alpha',
        },
      ],
      ...extra,
    },
    '/etc/offsite/config.yaml',
  );
}

/** The [Service] section as key -> values (a key may repeat). */
function service(unit: string): Map<string, string[]> {
  const section = unit.split(/^\[Service\]$/m)[1]!.split(/^\[/m)[0]!;
  const keys = new Map<string, string[]>();
  for (const line of section.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!]);
  }
  return keys;
}

/** Every setting systemd implements with a mount namespace (systemd.exec(5), PrivateMounts=). */
const MOUNT_NAMESPACE = [
  'PrivateMounts',
  'PrivateTmp',
  'PrivateDevices',
  'PrivateIPC',
  'ProtectSystem',
  'ProtectHome',
  'ProtectKernelTunables',
  'ProtectKernelModules',
  'ProtectKernelLogs',
  'ProtectControlGroups',
  'ProtectProc',
  'ProcSubset',
  'ReadWritePaths',
  'ReadOnlyPaths',
  'InaccessiblePaths',
  'ExecPaths',
  'NoExecPaths',
  'TemporaryFileSystem',
  'BindPaths',
  'BindReadOnlyPaths',
  'MountFlags',
  'RootDirectory',
  'RootImage',
  'MountImages',
  'ExtensionImages',
  'ExtensionDirectories',
  'LogNamespace',
  'PrivateNetwork',
  'NetworkNamespacePath',
  'DynamicUser',
];

describe('the backup unit is root, and no more than mounting, unlocking and copying take', () => {
  it('no directive gives it a mount namespace, a device policy or a W^X rule', () => {
    const unit = service(backupTemplate(config(), paths));
    // a device allow list is fixed when the run starts: the mapper's device group appears with the unlock
    // (dm-crypt loaded on the first plug); MemoryDenyWriteExecute= kills V8's compiler
    for (const key of [
      ...MOUNT_NAMESPACE,
      'DevicePolicy',
      'DeviceAllow',
      'ProtectClock',
      'MemoryDenyWriteExecute',
    ])
      assert.equal(unit.has(key), false, `${key}= is in offsite-backup@.service`);
  });

  it('keeps the chosen directives', () => {
    const unit = service(backupTemplate(config(), paths));
    const expected: Record<string, string[]> = {
      CapabilityBoundingSet: [BACKUP_CAPABILITIES.join(' ')],
      AmbientCapabilities: [''],
      NoNewPrivileges: ['yes'],
      ProtectHostname: ['yes'],
      RestrictNamespaces: ['yes'],
      RestrictRealtime: ['yes'],
      LockPersonality: ['yes'],
      RestrictAddressFamilies: ['AF_UNIX AF_INET AF_INET6 AF_NETLINK'],
      SystemCallArchitectures: ['native'],
      SystemCallFilter: ['@system-service @mount', '~@resources'],
      SystemCallErrorNumber: ['EPERM'],
      IPAddressDeny: ['any'],
      IPAddressAllow: ['localhost'],
    };
    for (const [key, values] of Object.entries(expected)) assert.deepEqual(unit.get(key), values, key);
    assert.deepEqual([...BACKUP_CAPABILITIES].sort(), [
      'CAP_CHOWN',
      'CAP_DAC_OVERRIDE',
      'CAP_DAC_READ_SEARCH',
      'CAP_FOWNER',
      'CAP_FSETID',
      'CAP_MKNOD',
      'CAP_SETFCAP',
      'CAP_SYS_ADMIN',
      'CAP_SYS_PTRACE',
      'CAP_SYS_RESOURCE',
    ]);
  });
});

describe('the failure unit mounts nothing, so it gets the file-system sandbox as well', () => {
  it('keeps the chosen directives; state_dir is its only writable place and may be missing', () => {
    const unit = service(failureTemplate(config({ state_dir: '/srv/offsite-state' }), paths));
    const expected: Record<string, string[]> = {
      CapabilityBoundingSet: [''],
      NoNewPrivileges: ['yes'],
      ProtectSystem: ['strict'],
      ReadWritePaths: ['-/srv/offsite-state'],
      ProtectHome: ['read-only'],
      PrivateTmp: ['yes'],
      PrivateMounts: ['yes'],
      PrivateIPC: ['yes'],
      ProtectKernelTunables: ['yes'],
      ProtectKernelModules: ['yes'],
      ProtectKernelLogs: ['yes'],
      ProtectControlGroups: ['yes'],
      ProtectClock: ['yes'],
      ProtectHostname: ['yes'],
      DevicePolicy: ['closed'],
      DeviceAllow: ['block-* r'],
      RestrictSUIDSGID: ['yes'],
      RestrictNamespaces: ['yes'],
      SystemCallFilter: ['@system-service', '~@privileged @resources'],
      SystemCallErrorNumber: ['EPERM'],
    };
    for (const [key, values] of Object.entries(expected)) assert.deepEqual(unit.get(key), values, key);
    // blkid must see the drive (PrivateDevices= would hide it); ProtectProc= and ProcSubset= do nothing for
    // root and hide /proc/partitions from blkid
    for (const key of ['PrivateDevices', 'ProtectProc', 'ProcSubset', 'MemoryDenyWriteExecute'])
      assert.equal(unit.has(key), false, `${key}= is in offsite-failure@.service`);
  });
});

describe('only peers on this machine: every other address denied', () => {
  it('a broker, an SMTP server or a lock command elsewhere keeps the network open', () => {
    const denied = (c: Config) => service(backupTemplate(c, paths)).get('IPAddressDeny')?.[0] ?? null;
    const failureDenied = (c: Config) => service(failureTemplate(c, paths)).get('IPAddressDeny')?.[0] ?? null;
    assert.equal(denied(config()), 'any');
    assert.equal(failureDenied(config()), 'any');
    assert.equal(denied(config({ mqtt: { url: 'mqtt://[::1]:1883' } })), 'any');
    assert.equal(denied(config({ mqtt: { url: 'mqtts://broker.lan:8883' } })), null);
    assert.equal(failureDenied(config({ mqtt: { url: 'mqtts://broker.lan:8883' } })), null);
    assert.equal(
      denied(
        config({
          email: {
            smtp: { host: 'smtp.example.org', port: 465, secure: true },
            from: 'a@b.c',
            to: ['d@e.f'],
          },
        }),
      ),
      null,
    );
    assert.equal(
      denied(config({ source: { path: '/srv/backup', lock: ['borg', 'with-lock', 'ssh://nas2/repo'] } })),
      null,
    );
    assert.equal(denied(config({ mqtt: undefined, email: undefined })), 'any');
  });

  it('isLoopback knows 127.0.0.0/8, ::1 and localhost, and nothing that only starts like them', () => {
    for (const yes of [
      '127.0.0.1',
      '127.1.2.3',
      'localhost',
      '::1',
      'mqtt://127.0.0.1:1883',
      'mqtt://[::1]',
      'mqtts://user@localhost:8883/x',
    ])
      assert.equal(isLoopback(yes), true, yes);
    for (const no of [
      '127.0.0.1.example.org',
      'mqtt://127.0.0.1.evil:1883',
      'localhost.example.org',
      '10.0.0.1',
      'mqtt://broker',
      '',
      'mqtt://evil@',
    ])
      assert.equal(isLoopback(no), false, no);
  });
});
