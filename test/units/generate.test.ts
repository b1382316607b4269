import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { type Config, parseConfig } from '../../bridge/config.js';
import { byUuidDeviceUnit, mountUnit } from '../../bridge/systemd.js';
import {
  BACKUP_TEMPLATE,
  CRYPTTAB,
  FSTAB,
  fstabLine,
  LED_MEMORY_MAX,
  LED_SERVICE,
  type Plan,
  plan,
  UNIT_DIR,
} from '../../units/generate.js';
import { installPaths } from '../../units/paths.js';
import { ALPHA_UUID, configFile, offsite, PLAIN_UUID } from './cli.js';

const GENERATORS = '/lib/systemd/system-generators';

function config(extra: Record<string, unknown> = {}): Config {
  return parseConfig(
    {
      source: { path: '/srv/backup' },
      mqtt: { url: 'mqtt://127.0.0.1:1883', password_file: '/etc/offsite/mqtt.password' },
      email: {
        smtp: {
          host: 'smtp.example.org',
          port: 465,
          secure: true,
          password_file: '/etc/offsite/smtp.password',
        },
        from: 'nas@example.org',
        to: ['me@example.org'],
      },
      led: { driver: 'blinkstick' },
      drives: [
        {
          name: 'alpha',
          luks_uuid: ALPHA_UUID,
          key_file: '/etc/offsite/keys/alpha.key',
          mount_point: '/mnt/offsite/alpha',
        },
        { name: 'plain', uuid: PLAIN_UUID, mount_point: '/mnt/offsite/plain-drive@usb' },
        { name: 'scratch', directory: '/tmp/offsite-scratch' },
      ],
      ...extra,
    },
    '/etc/offsite/config.yaml',
  );
}

/** Write a plan into a fresh root, the crypttab/fstab blocks as the whole files. */
function materialize(p: Plan): string {
  const root = mkdtempSync(join(tmpdir(), 'offsite-gen-'));
  for (const f of p.files) {
    mkdirSync(dirname(join(root, f.path)), { recursive: true });
    writeFileSync(join(root, f.path), f.content);
  }
  for (const b of p.blocks) {
    mkdirSync(dirname(join(root, b.path)), { recursive: true });
    writeFileSync(join(root, b.path), b.lines.map((l) => `${l}\n`).join(''));
  }
  return root;
}

/** Run systemd's own crypttab and fstab generators on the generated files, as at boot. */
function runGenerators(root: string): string {
  const out = join(root, 'run-generator');
  mkdirSync(out);
  for (const [gen, env] of [
    ['systemd-cryptsetup-generator', { SYSTEMD_CRYPTTAB: join(root, CRYPTTAB) }],
    ['systemd-fstab-generator', { SYSTEMD_FSTAB: join(root, FSTAB) }],
  ] as const) {
    const r = spawnSync(join(GENERATORS, gen), [out, out, out], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });
    assert.equal(r.status, 0, `${gen}: ${r.stderr}`);
  }
  return out;
}

/** systemd-analyze verify with the generated units first in the search path. Any output is a finding. */
function verify(unitPath: string[], units: string[]): { status: number | null; output: string } {
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...units], {
    encoding: 'utf8',
    env: { ...process.env, SYSTEMD_UNIT_PATH: `${unitPath.join(':')}:` },
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

function unitNames(root: string): string[] {
  return readdirSync(join(root, UNIT_DIR)).filter((n) => /\.(service|timer)$/.test(n));
}

describe('generated units', () => {
  const paths = installPaths({ config: '/etc/offsite/config.yaml', node: process.execPath });

  it('every unit, instance and drop-in passes systemd-analyze verify, with the real crypttab/fstab generators', () => {
    const root = materialize(plan(config(), paths));
    const gen = runGenerators(root);
    const units = [
      ...unitNames(root),
      'offsite-backup@alpha.service',
      'offsite-backup@plain.service',
      'offsite-failure@alpha.service',
      'systemd-cryptsetup@offsite_alpha.service',
      mountUnit('/mnt/offsite/alpha'),
      mountUnit('/mnt/offsite/plain-drive@usb'),
    ];
    const r = verify([join(root, UNIT_DIR), gen], units);
    assert.equal(r.output, '', 'systemd-analyze verify printed findings');
    assert.equal(r.status, 0);
  });

  it('verify catches a broken unit (the check above is not vacuous)', () => {
    const root = materialize(plan(config(), paths));
    const file = join(root, UNIT_DIR, BACKUP_TEMPLATE);
    writeFileSync(
      file,
      readFileSync(file, 'utf8')
        .replace(process.execPath, '/nonexistent/node')
        .replace('Type=oneshot', 'Type=oneshot\nBogus=1'),
    );
    const r = verify([join(root, UNIT_DIR)], ['offsite-backup@alpha.service']);
    assert.notEqual(r.status, 0);
    assert.match(r.output, /Unknown key 'Bogus'/);
    assert.match(r.output, /\/nonexistent\/node.*not executable/);
  });

  it('quotes paths with spaces, "%" and "$" so systemd finds the real binary', () => {
    // verify checks that ExecStart's binary exists: a wrong quoting would point elsewhere
    const dir = join(mkdtempSync(join(tmpdir(), 'offsite-gen-')), 'my node 100% $HOME');
    mkdirSync(dir, { recursive: true });
    symlinkSync(process.execPath, join(dir, 'node'));
    const odd = installPaths({
      config: '/etc/offsite/my config %i.yaml',
      node: join(dir, 'node'),
      prefix: dir,
    });
    const p = plan(config(), { ...odd, node: join(dir, 'node') });
    const root = materialize(p);
    const backup = readFileSync(join(root, UNIT_DIR, BACKUP_TEMPLATE), 'utf8');
    assert.match(
      backup,
      /^ExecStart="[^"]*my node 100%% \$HOME\/node" "[^"]*my node 100%% \$\$HOME\/dist\/bridge\/cli\.js" run %i$/m,
    );
    assert.match(backup, /^Environment="OFFSITE_CONFIG=\/etc\/offsite\/my config %%i\.yaml"$/m);
    const r = verify([join(root, UNIT_DIR)], [...unitNames(root), 'offsite-backup@alpha.service']);
    assert.equal(r.output, '');
    assert.equal(r.status, 0);
    // the same unit with the quoting stripped names a binary that does not exist
    writeFileSync(
      join(root, UNIT_DIR, BACKUP_TEMPLATE),
      backup.replace(/^ExecStart="([^"]*)"/m, 'ExecStart=$1'),
    );
    assert.notEqual(verify([join(root, UNIT_DIR)], ['offsite-backup@alpha.service']).status, 0);
  });

  it('crypttab and fstab lines mean what they should to systemd', () => {
    const root = materialize(plan(config(), paths));
    const gen = runGenerators(root);
    const crypt = readFileSync(join(gen, 'systemd-cryptsetup@offsite_alpha.service'), 'utf8');
    assert.match(crypt, new RegExp(`^BindsTo=${byUuidDeviceUnit(ALPHA_UUID).replace(/\\/g, '\\\\')}$`, 'm'));
    assert.match(
      crypt,
      /attach 'offsite_alpha' '\/dev\/disk\/by-uuid\/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0' '\/etc\/offsite\/keys\/alpha\.key' 'luks,noauto,headless=true'/,
    );
    // noauto: nothing at boot pulls the container in
    assert.equal(existsSync(join(gen, 'cryptsetup.target.requires')), false);
    const mount = readFileSync(join(gen, mountUnit('/mnt/offsite/alpha')), 'utf8');
    assert.match(mount, /^What=\/dev\/mapper\/offsite_alpha$/m);
    assert.match(mount, /^Options=noauto,nofail,noatime$/m);
    const plain = readFileSync(join(gen, mountUnit('/mnt/offsite/plain-drive@usb')), 'utf8');
    assert.match(plain, /^Where=\/mnt\/offsite\/plain-drive@usb$/m);
    // the configuration refuses white space in a path; the escaping stays for whatever gets past it
    const spaced = {
      kind: 'filesystem',
      name: 'p',
      uuid: PLAIN_UUID,
      mountOptions: 'noatime',
      powerOff: true,
    } as const;
    assert.match(fstabLine({ ...spaced, mountPoint: '/mnt/a b\tc' }), /^UUID=\S+ \/mnt\/a\\040b\\011c auto /);
    assert.equal(existsSync(join(gen, 'local-fs.target.requires')), false);
  });

  it('the drop-in for the cryptsetup unit is picked up by systemd', () => {
    const root = materialize(plan(config(), paths));
    const gen = runGenerators(root);
    const dropIn = join(root, UNIT_DIR, 'systemd-cryptsetup@offsite_alpha.service.d', 'offsite.conf');
    assert.match(readFileSync(dropIn, 'utf8'), /^TimeoutStartSec=2min$/m);
    // a stray key in the drop-in is reported against that file: proof systemd reads it
    writeFileSync(dropIn, `${readFileSync(dropIn, 'utf8')}Probe=1\n`);
    const r = verify([join(root, UNIT_DIR), gen], ['systemd-cryptsetup@offsite_alpha.service']);
    assert.match(r.output, /offsite\.conf:\d+: Unknown key 'Probe'/);
    assert.doesNotMatch(readFileSync(dropIn, 'utf8'), /StopWhenUnneeded/);
  });

  it('each plugged drive gets a wants link on the device unit of its partition UUID; directories none', () => {
    const p = plan(config(), paths);
    const wants = p.links.filter((l) => l.path.includes('.device.wants/'));
    assert.deepEqual(
      wants.map((l) => relative(UNIT_DIR, l.path)),
      [
        'dev-disk-by\\x2duuid-0b1c2d3e\\x2d4f50\\x2d6172\\x2d8394\\x2da5b6c7d8e9f0.device.wants/offsite-backup@alpha.service',
        'dev-disk-by\\x2duuid-2d3e4f50\\x2d6172\\x2d8394\\x2da5b6\\x2dc7d8e9f0a1b2.device.wants/offsite-backup@plain.service',
      ],
    );
    for (const l of wants) assert.equal(l.target, join(UNIT_DIR, BACKUP_TEMPLATE));
    const dev = spawnSync(
      'systemd-escape',
      ['--path', '--suffix=device', `/dev/disk/by-uuid/${ALPHA_UUID}`],
      { encoding: 'utf8' },
    );
    assert.equal(relative(UNIT_DIR, dirname(wants[0]!.path)), `${dev.stdout.trim()}.wants`);
  });

  it('the backup is only wanted by its device, never bound to it: the power-off at the end of a good run does not stop it', () => {
    const root = materialize(plan(config(), paths));
    const backup = readFileSync(join(root, UNIT_DIR, BACKUP_TEMPLATE), 'utf8');
    // any of these would have systemd stop (or fail) the run when its own power-off removes the device
    assert.doesNotMatch(backup, /^(BindsTo|Requires|Requisite|PartOf|StopPropagatedFrom|Upholds)=/m);
    assert.doesNotMatch(backup, /\.device\b/);
  });

  it('exit 75 (the drive was not plugged in) is no failure to systemd: OnFailure= does not run for it', () => {
    const root = materialize(plan(config(), paths));
    const backup = readFileSync(join(root, UNIT_DIR, BACKUP_TEMPLATE), 'utf8');
    assert.match(backup, /^OnFailure=offsite-failure@%i\.service$/m);
    assert.match(backup, /^SuccessExitStatus=75$/m);
  });

  it('secrets go in as credentials, never in the unit text', () => {
    const root = materialize(plan(config(), paths));
    const backup = readFileSync(join(root, UNIT_DIR, BACKUP_TEMPLATE), 'utf8');
    assert.match(backup, /^LoadCredential=mqtt\.password:\/etc\/offsite\/mqtt\.password$/m);
    assert.match(backup, /^LoadCredential=smtp\.password:\/etc\/offsite\/smtp\.password$/m);
    const led = readFileSync(join(root, UNIT_DIR, LED_SERVICE), 'utf8');
    assert.match(led, /^LoadCredential=mqtt\.password:/m);
    assert.doesNotMatch(led, /smtp/);
  });

  it('the LED agent is sandboxed well by systemd-analyze security (exposure at most 2.0)', () => {
    for (const led of [
      { driver: 'blinkstick' },
      { driver: 'sysfs', path: '/sys/class/leds/nas:rgb:status' },
    ]) {
      const root = materialize(plan(config({ led }), paths));
      const r = spawnSync(
        'systemd-analyze',
        ['security', '--offline=true', join(root, UNIT_DIR, LED_SERVICE)],
        {
          encoding: 'utf8',
        },
      );
      const score = Number(/Overall exposure level for offsite-led\.service: ([\d.]+)/.exec(r.stdout)?.[1]);
      assert.ok(score <= 2.0, `exposure ${score} for ${led.driver}`);
      assert.match(r.stdout, /✓ User=\/DynamicUser=/);
    }
  });

  it('the LED agent has a memory cap (MemoryMax=) that systemd reads, with room over its measured peak', () => {
    const root = materialize(plan(config(), paths));
    const file = join(root, UNIT_DIR, LED_SERVICE);
    assert.match(readFileSync(file, 'utf8'), new RegExp(`^MemoryMax=${LED_MEMORY_MAX}$`, 'm'));
    // a key systemd does not know, or a value it cannot parse, is a warning of verify
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' });
    assert.doesNotMatch(r.stderr, /MemoryMax|Unknown key|memory limit/i);
    // 91 MiB: the highest peak measured, reading past a 200 MB payload (docs/benchmarks.md)
    assert.ok(Number.parseInt(LED_MEMORY_MAX, 10) >= 1.5 * 91);
  });

  it("the LED agent's dynamic user is named, and not like a group install creates (systemd would refuse: 217/USER)", () => {
    const p = plan(config({ led: { driver: 'sysfs', path: '/sys/class/leds/nas:rgb:status' } }), paths);
    const led = p.files.find((f) => f.path.endsWith(LED_SERVICE))!.content;
    const user = /^User=(.+)$/m.exec(led)?.[1];
    assert.ok(user, 'User= is set: the default is the unit name, offsite-led');
    assert.match(led, /^DynamicUser=yes$/m);
    const sysusers = p.files.find((f) => f.path.endsWith('sysusers.d/offsite.conf'))!.content;
    const groups = [...sysusers.matchAll(/^g (\S+)/gm)].map((m) => m[1]);
    assert.deepEqual(groups, ['offsite-led']);
    assert.ok(!groups.includes(user), `the user ${user} is not one of the groups ${groups.join(', ')}`);
    assert.match(led, new RegExp(`^SupplementaryGroups=${groups[0]}$`, 'm'));
  });

  it('the LED group really is created by systemd-sysusers from the generated file', () => {
    const p = plan(config(), paths);
    const sysusers = p.files.find((f) => f.path.endsWith('sysusers.d/offsite.conf'))!;
    const root = mkdtempSync(join(tmpdir(), 'offsite-sysusers-'));
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\n');
    writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    const conf = join(root, 'offsite.conf');
    writeFileSync(conf, sysusers.content);
    const r = spawnSync('systemd-sysusers', [`--root=${root}`, conf], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(readFileSync(join(root, 'etc', 'group'), 'utf8'), /^offsite-led:x:\d+:$/m);
  });

  it('no broker, no LED unit; driver none still runs the agent (it keeps Home Assistant whole) with no udev rule; sysfs gets its rule and a writable LED directory', () => {
    const noBroker = plan(
      config({ led: { driver: 'blinkstick' }, mqtt: { url: 'mqtt://127.0.0.1:1883', enabled: false } }),
      paths,
    );
    assert.equal(
      noBroker.files.some((f) => f.path.endsWith(LED_SERVICE)),
      false,
    );
    const none = plan(config({ led: { driver: 'none' } }), paths);
    assert.ok(none.files.some((f) => f.path.endsWith(LED_SERVICE)));
    assert.equal(
      none.files.some((f) => f.path.includes('udev')),
      false,
    );
    const sysfs = plan(config({ led: { driver: 'sysfs', path: '/sys/class/leds/nas:rgb:status' } }), paths);
    const unit = sysfs.files.find((f) => f.path.endsWith(LED_SERVICE))!.content;
    assert.match(unit, /^ReadWritePaths=\/sys\/class\/leds\/nas:rgb:status$/m);
    assert.ok(sysfs.files.some((f) => f.path === '/etc/udev/rules.d/70-offsite-led.rules'));
  });

  it('the same configuration always gives the same plan', () => {
    assert.deepEqual(plan(config(), paths), plan(config(), paths));
  });

  it('offsite units --out writes the unit files and drop-ins only', async () => {
    const { dir, file } = configFile(`source: {path: /srv/backup}
led: {driver: blinkstick}
mqtt: {url: "mqtt://127.0.0.1:1883"}
drives:
  - {name: alpha, luks_uuid: ${ALPHA_UUID}, key_file: /etc/offsite/keys/alpha.key, mount_point: /mnt/offsite/alpha}
`);
    const out = join(dir, 'out');
    const r = await offsite(['units', '--config', file, '--out', out, '--node', process.execPath]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(readdirSync(out, { recursive: true }).map(String).sort(), [
      'offsite-backup@.service',
      'offsite-check.service',
      'offsite-check.timer',
      'offsite-failure@.service',
      'offsite-led.service',
      'systemd-cryptsetup@offsite_alpha.service.d',
      'systemd-cryptsetup@offsite_alpha.service.d/offsite.conf',
    ]);
    chmodSync(out, 0o755);
    const v = verify([out], ['offsite-backup@.service', 'offsite-led.service', 'offsite-check.timer']);
    assert.equal(v.output, '');
  });
});
