/**
 * Whatever the configuration says, `offsite install` writes only inside its
 * own blocks of crypttab and fstab, and only units systemd accepts: for any
 * configuration that loads (values drawn from names, paths and options laced
 * with line breaks, spaces, quotes, "%", "$", leading "-" and the block's own
 * END line), every line outside the blocks stays byte for byte, and
 * systemd-analyze verify finds nothing in the units, their drop-ins and what
 * systemd's crypttab and fstab generators make of our lines.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { type Config, ConfigError, parseConfig } from '../../bridge/config.js';
import { cryptsetupUnit, instance, mountUnit } from '../../bridge/systemd.js';
import { BACKUP_TEMPLATE, CRYPTTAB, FSTAB, UNIT_DIR } from '../../units/generate.js';
import { readBlock, removeBlock } from '../../units/managed-block.js';
import { ALPHA_UUID, offsiteHere, PLAIN_UUID } from './cli.js';

const GENERATORS = '/lib/systemd/system-generators';
const SYSTEM_FSTAB = `# /etc/fstab
UUID=5b2c1f7a-0000-4000-8000-000000000001 / ext4 errors=remount-ro 0 1
/dev/sr0 /media/cdrom0 udf,iso9660 user,noauto 0 0
`;
const SYSTEM_CRYPTTAB = 'sdb1_crypt UUID=aaaa none luks,discard\n';

/** Things that have broken a line-based or quoted format somewhere. */
const HOSTILE = [
  '',
  '-alpha',
  'a b',
  'a\nb',
  'x\r',
  'tab\there',
  '# END offsite',
  'noatime\n# END offsite\n/dev/sdz1 /etc ext4 defaults 0 0',
  '%i',
  '$HOME',
  '"q"',
  "it's",
  'back\\slash',
  'comma,separated',
  'é',
  '..',
  '.',
];
const hostile = fc.constantFrom(...HOSTILE);
const word = fc.stringMatching(/^[a-z0-9_]{1,12}$/);
const odd = fc.oneof(hostile, fc.string({ maxLength: 12 }), fc.stringMatching(/^[!-~]{1,12}$/));
/** mostly a good value, now and then an odd one: a configuration of ten values still loads often */
const mostly = <T>(good: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 12, arbitrary: good }, { weight: 1, arbitrary: odd });
/** a long part makes a unit name past systemd's 255 characters */
const part = fc.oneof({ weight: 10, arbitrary: word }, fc.stringMatching(/^[a-z0-9_@+-]{60,200}$/), odd);
const path = (prefix: string) =>
  mostly(fc.array(part, { minLength: 1, maxLength: 3 }).map((p) => `${prefix}/${p.join('/')}`));
const options = mostly(
  fc.constantFrom('noatime', 'noatime,errors=remount-ro', 'x-systemd.device-timeout=5s', 'ro,nodev:x'),
);
const absent = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 2 });

const drive = (i: number) =>
  fc.oneof(
    fc.record({
      name: mostly(fc.constant(`d${i}`)),
      luks_uuid: mostly(fc.constant(ALPHA_UUID)),
      key_file: path('/etc/offsite/keys'),
      mount_point: path(`/mnt/offsite${i}`),
      mapper: absent(mostly(fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_-]{0,20}$/))),
      mount_options: absent(options),
    }),
    fc.record({
      name: mostly(fc.constant(`d${i}`)),
      uuid: mostly(fc.constant(PLAIN_UUID)),
      mount_point: path(`/media/d${i}`),
      mount_options: absent(options),
    }),
    fc.record({ name: mostly(fc.constant(`d${i}`)), directory: path(`/srv/copies${i}`) }),
  );

const rawConfig = fc.record({
  source: fc.record({ path: path('/srv/backup') }),
  state_dir: path('/var/lib/offsite'),
  drives: fc.tuple(drive(0), drive(1), drive(2)).chain((ds) => fc.subarray(ds, { minLength: 1 })),
  mqtt: fc.record({ url: fc.constant('mqtt://127.0.0.1:1883'), password_file: path('/etc/offsite') }),
  led: fc.oneof(
    fc.constant({ driver: 'none' }),
    fc.record({ driver: fc.constant('sysfs'), path: path('/sys/class/leds') }),
  ),
});

function load(raw: unknown): Config | null {
  try {
    return parseConfig(JSON.parse(JSON.stringify(raw)));
  } catch (e) {
    if (e instanceof ConfigError) return null;
    throw e;
  }
}

/** The units to verify: every file install wrote, the instances, and what the generators made. */
function unitsOf(config: Config): string[] {
  const names = new Set<string>();
  for (const d of config.drives) {
    if (d.kind === 'directory') continue;
    names.add(instance(BACKUP_TEMPLATE, d.name));
    names.add(mountUnit(d.mountPoint));
    if (d.kind === 'luks') names.add(cryptsetupUnit(d.mapper));
  }
  return [...names];
}

function verify(root: string, config: Config): string {
  const gen = join(root, 'run-generator');
  mkdirSync(gen);
  for (const [generator, env] of [
    ['systemd-cryptsetup-generator', { SYSTEMD_CRYPTTAB: join(root, CRYPTTAB) }],
    ['systemd-fstab-generator', { SYSTEMD_FSTAB: join(root, FSTAB) }],
  ] as const) {
    const r = spawnSync(join(GENERATORS, generator), [gen, gen, gen], {
      encoding: 'utf8',
      env: { ...process.env, SYSTEMD_LOG_TARGET: 'console', ...env },
    });
    if (r.status !== 0 || r.stderr) return `${generator}: ${r.stderr}`;
  }
  const missing = unitsOf(config).filter((u) => !u.startsWith('offsite-') && !existsSync(join(gen, u)));
  if (missing.length) return `the generators made no ${missing.join(', ')}`;
  const unitDir = join(root, UNIT_DIR);
  const files = readdirSync(unitDir).filter((n) => /\.(service|timer)$/.test(n));
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...files, ...unitsOf(config)], {
    encoding: 'utf8',
    env: { ...process.env, SYSTEMD_LOG_TARGET: 'console', SYSTEMD_UNIT_PATH: `${unitDir}:${gen}:` },
  });
  return `${r.stdout}${r.stderr}`.trim() + (r.status === 0 ? '' : ` (exit ${r.status})`);
}

describe('install output, for any configuration that loads', () => {
  it('stays inside its blocks, and every unit passes systemd-analyze verify', async () => {
    let loaded = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(rawConfig, async (raw) => {
        const config = load(raw);
        if (!config) {
          refused++;
          return;
        }
        loaded++;
        const root = mkdtempSync(join(tmpdir(), 'offsite-prop-'));
        mkdirSync(join(root, 'etc'));
        writeFileSync(join(root, FSTAB), SYSTEM_FSTAB);
        writeFileSync(join(root, CRYPTTAB), SYSTEM_CRYPTTAB);
        const file = join(root, 'config.yaml');
        writeFileSync(file, stringify(raw));
        const r = await offsiteHere([
          'install',
          '--config',
          file,
          '--root',
          root,
          '--node',
          process.execPath,
        ]);
        assert.equal(r.exitCode, 0, r.stderr);
        const fstab = readFileSync(join(root, FSTAB), 'utf8');
        const crypttab = readFileSync(join(root, CRYPTTAB), 'utf8');
        assert.equal(removeBlock(fstab, false), SYSTEM_FSTAB);
        assert.equal(removeBlock(crypttab, false), SYSTEM_CRYPTTAB);
        const mounted = config.drives.filter((d) => d.kind !== 'directory');
        assert.equal(readBlock(fstab)?.length ?? 0, mounted.length);
        assert.equal(readBlock(crypttab)?.length ?? 0, mounted.filter((d) => d.kind === 'luks').length);
        for (const line of readBlock(fstab) ?? []) assert.equal(line.split(' ').length, 6, line);
        for (const line of readBlock(crypttab) ?? []) assert.equal(line.split(' ').length, 4, line);
        assert.ok(existsSync(join(root, UNIT_DIR, BACKUP_TEMPLATE)));
        assert.equal(verify(root, config), '');
      }),
      { numRuns: 150 },
    );
    // both sides were really tried
    assert.ok(loaded >= 10, `${loaded} configurations loaded`);
    assert.ok(refused >= 10, `${refused} refused`);
  });

  it('refuses the mount_options that once wrote a line after the block (exit 2, the key named, nothing written)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'offsite-prop-'));
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, FSTAB), SYSTEM_FSTAB);
    const file = join(root, 'config.yaml');
    writeFileSync(
      file,
      stringify({
        source: { path: '/srv/backup' },
        drives: [
          {
            name: 'alpha',
            uuid: PLAIN_UUID,
            mount_point: '/mnt/offsite/alpha',
            mount_options: 'noatime\n# END offsite\n/dev/sdz1 /etc ext4 defaults 0 0',
          },
        ],
      }),
    );
    const r = await offsiteHere(['install', '--config', file, '--root', root, '--node', process.execPath]);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /drives\[0\]\.mount_options: mount options of letters/);
    assert.deepEqual(readdirSync(join(root, 'etc')), ['fstab']);
    assert.equal(readFileSync(join(root, FSTAB), 'utf8'), SYSTEM_FSTAB);
  });
});
