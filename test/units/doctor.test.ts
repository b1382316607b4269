import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { newToken, stageToken } from '../../bridge/steps/marker.js';
import { freePort, startBroker, type TestBroker } from '../../harness/broker.js';
import { startSmtp } from '../helpers/smtp.js';
import { ALPHA_UUID, offsite, offsiteHere } from './cli.js';

let broker: TestBroker;
let smtp: Awaited<ReturnType<typeof startSmtp>>;
before(async () => {
  broker = await startBroker();
  smtp = await startSmtp();
});
after(async () => {
  await broker.stop();
  await smtp.stop();
});

/** A whole NAS in a temporary directory: config, key, header backup, LED class dir, source. */
function nas(opts: { mqttPort: number; smtpPort: number; lock?: string }) {
  const dir = mkdtempSync(join(tmpdir(), 'offsite-doctor-'));
  const key = join(dir, 'keys', 'alpha.key');
  mkdirSync(join(dir, 'keys'));
  writeFileSync(key, Buffer.alloc(4096, 7), { mode: 0o400 });
  mkdirSync(join(dir, 'state', 'headers'), { recursive: true });
  writeFileSync(join(dir, 'state', 'headers', 'alpha.luksheader'), 'header');
  stageToken(join(dir, 'state'), 'alpha', newToken()).commit();
  const led = join(dir, 'leds', 'nas:rgb:status');
  mkdirSync(led, { recursive: true });
  writeFileSync(join(led, 'brightness'), '0\n');
  mkdirSync(join(dir, 'source'));
  const root = join(dir, 'root');
  mkdirSync(root);
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    `source:
  path: ${join(dir, 'source')}
${opts.lock ? `  lock: [${opts.lock}, with-lock, /srv/backup]\n` : ''}state_dir: ${join(dir, 'state')}
drives:
  - {name: alpha, luks_uuid: ${ALPHA_UUID}, key_file: ${key}, mount_point: /mnt/offsite/alpha}
mqtt: {url: "mqtt://127.0.0.1:${opts.mqttPort}"}
email:
  smtp: {host: 127.0.0.1, port: ${opts.smtpPort}, secure: false}
  from: nas@example.org
  to: [me@example.org]
led: {driver: sysfs, path: "${led}"}
`,
  );
  const args = ['--config', config, '--root', root, '--node', process.execPath];
  return { dir, key, config, root, led, args };
}

describe('offsite doctor', () => {
  it('says all good, exit 0, when everything a run needs is there', async () => {
    const n = nas({ mqttPort: broker.port, smtpPort: smtp.port });
    assert.equal((await offsiteHere(['install', ...n.args])).exitCode, 0);
    const r = await offsiteHere(['doctor', ...n.args]);
    assert.equal(r.exitCode, 0, r.stdout);
    assert.doesNotMatch(r.stdout, /FAIL/);
    for (const line of [
      /^ok {4}drive alpha: key file .*alpha\.key \(0400, root\)$/m,
      /^ok {4}drive alpha: header backup /m,
      /^ok {4}drive alpha: enrolled \(.*alpha\.token\)$/m,
      /^ok {4}units, links, crypttab and fstab agree with the configuration$/m,
      /^ok {4}rsync is installed$/m,
      /^ok {4}cryptsetup is installed$/m,
      /^ok {4}MQTT broker mqtt:\/\/127\.0\.0\.1:\d+ answers$/m,
      /^ok {4}SMTP server 127\.0\.0\.1:\d+ answers$/m,
      /^ok {4}LED .* is there$/m,
      // the test broker lets anyone in (test/units/doctor-broker.test.ts has the closed ones)
      /^WARN {2}a client without a login may publish under offsite\/[a-z0-9_-]+\/ on mqtt:/m,
      /^all good, 1 warning\(s\)$/m,
    ])
      assert.match(r.stdout, line);
  });

  it('names each problem with the command that fixes it, exit 1', async () => {
    const deadPort = await freePort();
    const n = nas({ mqttPort: deadPort, smtpPort: deadPort, lock: 'borg' });
    chmodSync(n.key, 0o644);
    const r0 = await offsiteHere(['doctor', ...n.args]);
    assert.match(r0.stdout, /^FAIL {2}offsite is not installed in .*\n {6}fix: offsite install --root /m);
    assert.equal((await offsiteHere(['install', ...n.args])).exitCode, 0);
    // the configuration moves on after install: a new mount point
    writeFileSync(
      n.config,
      (await import('node:fs'))
        .readFileSync(n.config, 'utf8')
        .replace('/mnt/offsite/alpha', '/mnt/offsite/a'),
    );
    const r = await offsiteHere(['doctor', ...n.args]);
    assert.equal(r.exitCode, 1);
    const expect: Array<[RegExp, RegExp]> = [
      [/alpha\.key is mode 0644/, /fix: chown root:root .*alpha\.key && chmod 0400 /],
      [
        /installed file\(s\) differ from the configuration: \/etc\/fstab/,
        /fix: offsite install --root .* --dry-run/,
      ],
      [/MQTT broker mqtt:\/\/127\.0\.0\.1:\d+ does not answer/, /fix: systemctl status mosquitto/],
      // the key's description, from the schema, says what it is for
      [/SMTP server 127\.0\.0\.1:\d+ does not answer/, /fix: fix email\.smtp in \S+ \(How mail is sent\)/],
    ];
    if (!(await import('../../bridge/exec.js').then((m) => m.which('borg'))))
      expect.push([/borg is not installed/, /fix: apt install borgbackup/]);
    for (const [what, fix] of expect) {
      const at = r.stdout.split('\n').findIndex((l) => l.startsWith('FAIL') && what.test(l));
      assert.ok(at >= 0, `no problem matching ${what} in:\n${r.stdout}`);
      assert.match(r.stdout.split('\n')[at + 1]!, fix);
    }
    assert.match(r.stdout, new RegExp(`^${expect.length} problem\\(s\\)$`, 'm'));
  });

  it('a missing header backup, enrolment token or LED is a problem too', async () => {
    const n = nas({ mqttPort: broker.port, smtpPort: smtp.port });
    await offsiteHere(['install', ...n.args]);
    const { rmSync } = await import('node:fs');
    rmSync(join(n.dir, 'state', 'headers', 'alpha.luksheader'));
    rmSync(join(n.dir, 'state', 'drives', 'alpha.token'));
    rmSync(n.led, { recursive: true });
    const r = await offsiteHere(['doctor', ...n.args]);
    assert.equal(r.exitCode, 1);
    assert.match(
      r.stdout,
      /FAIL {2}drive alpha: no LUKS header backup at .*\n {6}fix: plug drive alpha in, then: cryptsetup luksHeaderBackup \/dev\/disk\/by-uuid\/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0 --header-backup-file /,
    );
    assert.match(
      r.stdout,
      /FAIL {2}drive alpha: not enrolled on this NAS \(no .*alpha\.token\): every run refuses it\n {6}fix: plug drive alpha in, then: offsite enrol alpha\n/,
    );
    assert.match(r.stdout, /FAIL {2}LED .*brightness: ENOENT\n {6}fix: ls \/sys\/class\/leds\//);
    // the test broker lets anyone in: one warning (test/units/doctor-broker.test.ts has the closed ones)
    assert.match(r.stdout, /^3 problem\(s\), 1 warning\(s\)$/m);
  });
});

describe('offsite doctor, without setpriv', () => {
  it('warns that rsync would outlive a run killed alone, names util-linux, and still exits 0', async () => {
    const n = nas({ mqttPort: broker.port, smtpPort: smtp.port });
    assert.equal((await offsiteHere(['install', ...n.args])).exitCode, 0);
    // a PATH with what doctor looks for, but not setpriv
    const bin = join(n.dir, 'bin');
    mkdirSync(bin);
    for (const program of ['sh', 'rsync', 'mount', 'cryptsetup']) {
      const found = execFileSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' }).trim();
      symlinkSync(found, join(bin, program));
    }
    const r = await offsite(['doctor', ...n.args], { env: { PATH: bin } });
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /^WARN {2}setpriv is not installed: rsync does not die with a run killed alone \(kill -9\); it copies on, unverified, until the next run of a drive stops it\n {6}fix: apt install util-linux$/m,
    );
    assert.match(r.stdout, /^ok {4}rsync is installed$/m);
    // with it: ok
    const all = await offsiteHere(['doctor', ...n.args]);
    assert.match(all.stdout, /^ok {4}setpriv is installed$/m);
  });
});

describe('offsite doctor, with nobody to tell', () => {
  it('warns when neither email nor MQTT is configured, and still exits 0', async () => {
    const n = nas({ mqttPort: broker.port, smtpPort: smtp.port });
    const { readFileSync } = await import('node:fs');
    const text = readFileSync(n.config, 'utf8');
    writeFileSync(
      n.config,
      text.replace(/^mqtt: .*\n/m, 'mqtt: {enabled: false}\n').replace(/^email:\n( {2}.*\n)+/m, ''),
    );
    assert.equal((await offsiteHere(['install', ...n.args])).exitCode, 0);
    const r = await offsiteHere(['doctor', ...n.args]);
    assert.equal(r.exitCode, 0, r.stdout);
    assert.match(
      r.stdout,
      /^WARN {2}neither email nor MQTT is configured: nobody hears of a failed or overdue backup but the LED\n {6}fix: add an email: section \(docs\/email\.md\) or an mqtt: section \(docs\/mqtt\.md\) to .*config\.yaml$/m,
    );
    assert.match(r.stdout, /^all good, 1 warning\(s\)$/m);
    // either one is enough
    writeFileSync(n.config, text.replace(/^mqtt: .*\n/m, ''));
    const withEmail = await offsiteHere(['doctor', ...n.args]);
    assert.doesNotMatch(withEmail.stdout, /WARN/);
    assert.match(withEmail.stdout, /^all good$/m);
  });
});
