import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  ConfigError,
  configPath,
  loadConfig,
  parseConfig,
  readSecret,
  sanitizeNodeId,
} from '../../bridge/config.js';
import { offsiteHere } from '../units/cli.js';

const UUID = '0b1c2d3e-0000-1111-2222-333344445555';
const dir = mkdtempSync(join(tmpdir(), 'offsite-config-'));
function file(text: string): string {
  const f = join(dir, `${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(f, text);
  return f;
}
function errorOf(fn: () => unknown, what = ''): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
    return e;
  }
  assert.fail(`expected an error ${what}`);
}

describe('configuration', () => {
  it('reads the documented example with its defaults', () => {
    const c = loadConfig(
      file(`node_id: nas
source:
  path: /srv/backup
  lock: [borg, with-lock, /srv/backup]
drives:
  - name: alpha
    luks_uuid: 0B1C2D3E-0000-1111-2222-333344445555
    key_file: /etc/offsite/keys/alpha.key
    mount_point: /mnt/offsite/alpha
  - name: scratch
    directory: /tmp/offsite-target
`),
    );
    assert.equal(c.state_dir, '/var/lib/offsite');
    assert.equal(c.overdue_after_days, 35);
    assert.deepEqual(c.drives[0], {
      kind: 'luks',
      name: 'alpha',
      luksUuid: '0b1c2d3e-0000-1111-2222-333344445555',
      keyFile: '/etc/offsite/keys/alpha.key',
      mapper: 'offsite_alpha',
      mountPoint: '/mnt/offsite/alpha',
      mountOptions: 'noatime',
      powerOff: true,
    });
    assert.deepEqual(c.drives[1], { kind: 'directory', name: 'scratch', directory: '/tmp/offsite-target' });
    assert.equal(c.led.driver, 'none');
    assert.equal(c.led.states.running.color, '#33c280');
  });

  it('takes a configuration with no drive yet (before the first prepare-drive, docs/setup.md)', () => {
    assert.deepEqual(loadConfig(file('source: {path: /srv}\ndrives: []\n')).drives, []);
    assert.deepEqual(loadConfig(file('source: {path: /srv}\n')).drives, []);
  });

  it('power_off: on by default for a drive with a disk, false keeps it powered, refused for a directory drive', () => {
    const drive = (extra: Record<string, unknown>) =>
      parseConfig({ source: { path: '/srv' }, drives: [{ name: 'a', ...extra }] }).drives[0];
    const plain = { uuid: '2d3e4f50-6172-8394-a5b6-c7d8e9f0a1b2', mount_point: '/mnt/offsite/a' };
    assert.equal((drive(plain) as { powerOff: boolean }).powerOff, true);
    assert.equal((drive({ ...plain, power_off: false }) as { powerOff: boolean }).powerOff, false);
    assert.throws(
      () => drive({ directory: '/srv2/a', power_off: true }),
      /drives\[0\]\.power_off: not for a directory drive: it has no disk of its own to power off/,
    );
  });

  it('names the file, the key path and what was expected', () => {
    const f = file(
      'source: {path: /srv}\ndrives:\n  - name: alpha\n    luks_uuid: 0b1c2d3e-0000-1111-2222-333344445555\n    mount_point: /mnt/a\n',
    );
    const e = errorOf(() => loadConfig(f));
    assert.equal(e.file, f);
    assert.equal(e.keyPath, 'drives[0].key_file');
    assert.match(e.message, /drives\[0\]\.key_file: required for a LUKS drive/);
  });

  it('rejects unknown keys, bad names and wrong types', () => {
    const colour = errorOf(() =>
      parseConfig({ source: { path: '/s' }, drives: [{ name: 'a', directory: '/x', colour: 1 }] }),
    );
    assert.equal(colour.keyPath, 'drives[0].colour');
    assert.match(colour.expected, /^unknown key \(known here: name, luks_uuid, .*directory/);
    assert.equal(
      errorOf(() => parseConfig({ source: { path: '/s' }, drives: [{ name: 'Alpha', directory: '/x' }] }))
        .keyPath,
      'drives[0].name',
    );
    assert.equal(
      errorOf(() =>
        parseConfig({
          source: { path: '/s' },
          drives: [{ name: 'a', directory: '/x' }],
          overdue_after_days: 'x',
        }),
      ).keyPath,
      'overdue_after_days',
    );
    assert.match(
      errorOf(() =>
        parseConfig({
          source: { path: '/s' },
          drives: [
            { name: 'a', directory: '/x' },
            { name: 'a', directory: '/y' },
          ],
        }),
      ).expected,
      /used twice/,
    );
    assert.match(
      errorOf(() => parseConfig({ source: { path: '/s' }, drives: [{ name: 'a' }] })).expected,
      /exactly one of/,
    );
  });

  it('refuses a mount point on, inside or around the source, the state directory, another drive or a system directory', () => {
    const refused = (drives: unknown[], extra: Record<string, unknown> = {}) =>
      errorOf(() => parseConfig({ source: { path: '/srv/backup' }, drives, ...extra }));
    const at = (mount_point: string) => ({ name: 'a', uuid: UUID, mount_point });
    for (const [mp, why] of [
      ['/srv/backup', /overlaps source\.path \(\/srv\/backup\)/],
      ['/srv/backup/drive', /overlaps source\.path/],
      ['/srv', /\/srv is a system directory/],
      ['/var/lib/offsite/mnt', /overlaps state_dir \(\/var\/lib\/offsite\)/],
      ['/', /\/ is a system directory/],
      ['/etc', /\/etc is a system directory/],
      ['/etc/offsite/drive', /inside the system directory \/etc/],
      ['/usr/local/drive', /inside the system directory \/usr/],
      ['/lib64/drive', /inside the system directory \/lib64/],
      ['/var', /system directory/],
      ['/home', /system directory/],
      ['/tmp', /system directory/],
      ['/mnt', /system directory/],
      ['/run', /system directory/],
    ] as const) {
      const e = refused([at(mp)]);
      assert.equal(e.keyPath, 'drives[0].mount_point', mp);
      assert.match(e.expected, why, mp);
    }
    const twice = refused([at('/mnt/offsite/a'), { ...at('/mnt/offsite/a/b'), name: 'b' }]);
    assert.equal(twice.keyPath, 'drives[1].mount_point');
    assert.match(twice.expected, /overlaps drives\[0\]\.mount_point \(\/mnt\/offsite\/a\)/);
    const around = refused([at('/srv/data')], { source: { path: '/srv/data/backup' } });
    assert.match(around.expected, /overlaps source\.path/);
    const directory = refused([{ name: 'd', directory: '/srv/backup/copy' }]);
    assert.equal(directory.keyPath, 'drives[0].directory');
    for (const fine of ['/mnt/x', '/media/x', '/tmp/x', '/srv/drive', '/home/me/drive', '/run/media/x'])
      assert.equal(
        parseConfig({ source: { path: '/srv/backup' }, drives: [at(fine)] }).drives.length,
        1,
        fine,
      );
  });

  it('refuses every value that would change the meaning of a generated file or a command line', () => {
    const luks = { name: 'a', luks_uuid: UUID, key_file: '/etc/offsite/keys/a.key', mount_point: '/mnt/a' };
    const bad: Array<[string, Record<string, unknown>, RegExp]> = [
      [
        'drives[0].mount_options',
        { drives: [{ ...luks, mount_options: 'noatime\n# END offsite\n/dev/sdz1 /etc ext4 defaults 0 0' }] },
        /mount options of letters/,
      ],
      [
        'drives[0].mount_options',
        { drives: [{ ...luks, mount_options: '-o remount' }] },
        /not starting with -/,
      ],
      ['drives[0].mount_options', { drives: [{ ...luks, mount_options: 'noatime 0 0' }] }, /mount options/],
      ['drives[0].mapper', { drives: [{ ...luks, mapper: '-alpha' }] }, /not starting with -/],
      ['drives[0].mapper', { drives: [{ ...luks, mapper: 'a b' }] }, /device-mapper name/],
      [
        'drives[0].mapper',
        { drives: [{ ...luks, mapper: 'a'.repeat(128) }] },
        /device-mapper name of at most/,
      ],
      ['drives[0].key_file', { drives: [{ ...luks, key_file: '/etc/keys/a key' }] }, /no spaces/],
      ['drives[0].key_file', { drives: [{ ...luks, key_file: '/etc/keys/a\nb' }] }, /no spaces/],
      ['drives[0].mount_point', { drives: [{ ...luks, mount_point: '/mnt/../etc' }] }, /normalized/],
      ['drives[0].mount_point', { drives: [{ ...luks, mount_point: '/mnt//a' }] }, /normalized/],
      ['drives[0].mount_point', { drives: [{ ...luks, mount_point: '/mnt/a/' }] }, /normalized/],
      ['drives[0].mount_point', { drives: [{ ...luks, mount_point: 'mnt/a' }] }, /absolute/],
      ['drives[0].mount_point', { drives: [{ ...luks, mount_point: `/mnt/${'a-'.repeat(70)}` }] }, /255/],
      ['drives[0].luks_uuid', { drives: [{ ...luks, luks_uuid: `${UUID} x` }] }, /a UUID/],
      ['drives[0].name', { drives: [{ ...luks, name: 'a\nb' }] }, /lower-case/],
      ['state_dir', { state_dir: '/var/lib/off site' }, /no spaces/],
      ['source.path', { source: { path: '/srv/"x"' } }, /no spaces, quotes/],
      ['source.exclude[0]', { source: { path: '/srv', exclude: ['a\nb'] } }, /control characters/],
      ['mqtt.password_file', { mqtt: { password_file: '/etc/offsite/mqtt password' } }, /no spaces/],
      ['mqtt.password_file', { mqtt: { password_file: 'cred:name' } }, /credential name/],
      ['mqtt.base_topic', { mqtt: { base_topic: 'offsite/#' } }, /topic levels/],
      ['mqtt.client_id', { mqtt: { client_id: 'a b' } }, /topic level/],
      ['email.from', { email: { from: 'a@b\nBcc: c@d', to: ['me@example.org'] } }, /e-mail address/],
      ['email.smtp.host', { email: { smtp: { host: '-oProxy' }, from: 'a@b', to: ['c@d'] } }, /host name/],
      ['led.path', { led: { driver: 'sysfs', path: '/sys/class/leds/a+b' } }, /LED class directory/],
    ];
    for (const [key, extra, why] of bad) {
      const e = errorOf(() => parseConfig({ source: { path: '/srv/backup' }, ...extra }), key);
      assert.equal(e.keyPath, key, JSON.stringify(extra));
      assert.match(e.expected, why, key);
    }
    const fine = parseConfig({
      source: { path: '/srv/backup', exclude: ['*.tmp', 'cache dir/'] },
      drives: [
        {
          ...luks,
          mapper: 'offsite-a_1',
          mount_options: 'noatime,errors=remount-ro,x-systemd.device-timeout=5s',
        },
      ],
      mqtt: { password_file: 'mqtt.password', base_topic: 'home/offsite' },
      email: { smtp: { host: '[::1]' }, from: 'NAS <nas@example.org>', to: ['me@example.org'] },
      led: { driver: 'sysfs', path: '/sys/class/leds/nas:rgb:status', serial: 'BS012345-3.0' },
    });
    assert.equal(fine.drives[0]!.kind, 'luks');
  });

  it('refuses a password written into the file (it is world-readable): the key that holds it is named', () => {
    const mqtt = errorOf(() =>
      parseConfig({ source: { path: '/s' }, mqtt: { url: 'mqtt://127.0.0.1', password: 's3cret' } }),
    );
    assert.equal(mqtt.keyPath, 'mqtt.password');
    assert.match(mqtt.expected, /unknown key \(known here: .*password_file/);
    const smtp = errorOf(() =>
      parseConfig({
        source: { path: '/s' },
        email: {
          smtp: { host: 'mail.example.org', user: 'nas', password: 's3cret' },
          from: 'a@b.c',
          to: ['a@b.c'],
        },
      }),
    );
    assert.equal(smtp.keyPath, 'email.smtp.password');
    assert.match(smtp.expected, /unknown key \(known here: .*password_file/);
    assert.doesNotMatch(`${mqtt.message}${smtp.message}`, /s3cret/);
  });

  it('refuses a user name or password in the MQTT URL, and never repeats it', async () => {
    for (const url of [
      'mqtt://offsite:s3cret@127.0.0.1:1883',
      'mqtt://offsite@127.0.0.1',
      'mqtts://:s3cret@broker.lan:8883',
      'mqtt://@127.0.0.1',
    ]) {
      const e = errorOf(() => parseConfig({ source: { path: '/srv' }, mqtt: { url } }), url);
      assert.equal(e.keyPath, 'mqtt.url');
      assert.match(e.expected, /without a user name or password .*mqtt\.username .*mqtt\.password_file/);
      assert.doesNotMatch(e.message, /s3cret|offsite@/);
    }
    for (const url of ['mqtt://127.0.0.1?x=1', 'http://127.0.0.1', 'mqtt://', 'mqtt://a b'])
      assert.equal(
        errorOf(() => parseConfig({ source: { path: '/srv' }, mqtt: { url } }), url).keyPath,
        'mqtt.url',
      );
    for (const url of ['mqtt://127.0.0.1:1883', 'mqtts://broker.lan:8883', 'ws://[::1]:9001/mqtt'])
      assert.equal(parseConfig({ source: { path: '/srv' }, mqtt: { url } }).mqtt?.url, url);
    // what doctor, a run and the LED agent say on such a file: exit 2, the key, not the password
    const f = file('source: {path: /srv}\nmqtt: {url: "mqtt://offsite:s3cret@127.0.0.1:1"}\n');
    for (const args of [['doctor'], ['run', 'alpha'], ['status']]) {
      const r = await offsiteHere([...args, '--config', f]);
      assert.equal(r.exitCode, 2, args.join(' '));
      assert.match(r.stderr, /mqtt\.url: a URL without a user name or password/);
      assert.doesNotMatch(r.stdout + r.stderr, /s3cret/);
    }
  });

  it('explains a missing file (and where the example is) and broken YAML, without a dangling colon', () => {
    const absent = errorOf(() => loadConfig(join(dir, 'absent.yaml')));
    const example = new URL('../../docs/config.example.yaml', import.meta.url).pathname;
    assert.match(absent.message, /no such file\. Start from the example: cp \S+ /);
    assert.ok(absent.message.includes(`cp ${example} ${join(dir, 'absent.yaml')}`), absent.message);
    assert.match(errorOf(() => loadConfig(file('source: [unclosed\n'))).message, /invalid YAML at line \d+/);
    const twice = errorOf(() => loadConfig(file('source: {path: /srv}\nsource: {path: /x}\n')));
    assert.equal(twice.expected, 'invalid YAML at line 2, column 1: Map keys must be unique');
    for (const text of ['a: b: c\n', 'source: [unclosed\n', '- a\nb: c\n', 'a:\n\t- b\n'])
      for (const p of errorOf(() => loadConfig(file(text))).problems)
        assert.doesNotMatch(p.expected, /:$/, text);
  });

  it('reports every problem at once, each with its key: "required", and the key an unknown one was meant to be', () => {
    const e = errorOf(() =>
      parseConfig({
        node_id: 'nas_1',
        sorce: { path: '/srv' },
        overdue_after_days: 'soon',
        drives: [
          { name: 'alpha', luks_uuid: UUID, mount_point: '/mnt/a', mount_opts: 'noatime' },
          { name: 'bravo', directory: '/x', colour: 'red' },
        ],
        email: { to: ['me@example.org'] },
        ledd: {},
      }),
    );
    assert.deepEqual(
      e.problems.map((p) => `${p.keyPath}: ${p.expected}`),
      [
        'node_id: lower-case letters, digits and - (no _: Home Assistant would take nas_1 and nas-1 for one device)',
        'source: required: What is backed up.',
        'overdue_after_days: expected a number',
        'drives[0].mount_opts: unknown key (did you mean mount_options?)',
        'drives[0].key_file: required for a LUKS drive (luks_uuid)',
        'drives[1].colour: unknown key (known here: name, luks_uuid, key_file, mapper, uuid, mount_point, directory, mount_options, power_off)',
        'email.from: required: The sender.',
        'sorce: unknown key (did you mean source?)',
        'ledd: unknown key (did you mean led?)',
      ],
    );
    // one line each, the file first: what the journal shows
    assert.equal(e.message.split('\n').length, e.problems.length);
    assert.match(e.message.split('\n')[3]!, /^\(inline\): drives\[0\]\.mount_opts: unknown key/);
  });

  it('finds the file from --config, then $OFFSITE_CONFIG, then /etc', () => {
    assert.equal(configPath('/a.yaml', { OFFSITE_CONFIG: '/b.yaml' }), '/a.yaml');
    assert.equal(configPath(undefined, { OFFSITE_CONFIG: '/b.yaml' }), '/b.yaml');
    assert.equal(configPath(undefined, {}), '/etc/offsite/config.yaml');
  });

  it('reads a secret from its file, or from the systemd credential of the same name first', () => {
    const creds = mkdtempSync(join(tmpdir(), 'offsite-creds-'));
    const original = file('from the file\n');
    assert.equal(readSecret(original, {}), 'from the file');
    writeFileSync(join(creds, original.split('/').pop()!), 'from the credential\n');
    assert.equal(readSecret(original, { CREDENTIALS_DIRECTORY: creds }), 'from the credential');
    writeFileSync(join(creds, 'mqtt.password'), 's3cret');
    assert.equal(readSecret('mqtt.password', { CREDENTIALS_DIRECTORY: creds }), 's3cret');
    assert.throws(() => readSecret('mqtt.password', {}), /needs \$CREDENTIALS_DIRECTORY/);
    assert.throws(() => readSecret(join(dir, 'absent'), {}), /not found/);
  });

  it('the LED follows another node only with the drives it names (a drive it does not know could be forged)', () => {
    const base = { node_id: 'nas', source: { path: '/s' }, drives: [{ name: 'alpha', directory: '/x' }] };
    const bare = errorOf(() => parseConfig({ ...base, led: { nodes: ['nas', 'pi'] } }));
    assert.equal(bare.keyPath, 'led.nodes[1]');
    assert.match(bare.expected, /"pi" is another node: name the drives/);
    const unknown = errorOf(() =>
      parseConfig({ ...base, led: { nodes: [{ node: 'nas', drives: ['beta'] }] } }),
    );
    assert.equal(unknown.keyPath, 'led.nodes[0].drives[0]');
    const ok = parseConfig({ ...base, led: { nodes: ['nas', { node: 'pi', drives: ['gamma'] }] } });
    assert.deepEqual(ok.led.nodes, ['nas', { node: 'pi', drives: ['gamma'] }]);
  });

  it('sanitizes a hostname into a node id', () => {
    assert.equal(sanitizeNodeId('My.NAS box'), 'my-nas-box');
    assert.equal(sanitizeNodeId('...'), 'nas');
    assert.equal(sanitizeNodeId('nas_1'), 'nas-1');
  });

  it('the command prints each problem on a line of its own and exits 2', async () => {
    const f = file('sorce: {path: /srv}\noverdue_after_days: soon\n');
    const r = await offsiteHere(['status', '--config', f]);
    assert.equal(r.exitCode, 2);
    assert.deepEqual(r.stderr.trim().split('\n'), [
      `error: configuration error: ${f}: source: required: What is backed up.`,
      `error: configuration error: ${f}: overdue_after_days: expected a number`,
      `error: configuration error: ${f}: sorce: unknown key (did you mean source?)`,
    ]);
  });

  it('keeps node ids apart in Home Assistant: nas_1 is refused, nas-1 taken', () => {
    assert.equal(parseConfig({ node_id: 'nas-1', source: { path: '/srv' } }).node_id, 'nas-1');
    const e = errorOf(() => parseConfig({ node_id: 'nas_1', source: { path: '/srv' } }));
    assert.equal(e.keyPath, 'node_id');
    assert.match(e.expected, /no _: Home Assistant would take nas_1 and nas-1 for one device/);
    assert.equal(
      errorOf(() => parseConfig({ source: { path: '/srv' }, led: { nodes: ['nas_2'] } })).keyPath,
      'led.nodes[0]',
    );
  });
});
