/**
 * The harness itself, end to end, before any product code is involved: the guest boots to
 * multi-user, a LUKS drive hot-plugged into its USB port shows up the way systemd will
 * trigger a backup from it, opens with dm-crypt in the guest, takes a filesystem, and is
 * pulled out again.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { byUuidDeviceUnit, type LuksDisk, makeLuksDisk } from './disk.js';
import { ensureImage } from './image.js';
import { timing } from './timing.js';
import { Vm } from './vm.js';

describe('the e2e harness', () => {
  let vm: Vm;
  let drive: LuksDisk;
  let disksDir: string;

  before(async () => {
    disksDir = await mkdtemp(join(tmpdir(), 'offsite-e2e-disks-'));
    const image = await ensureImage();
    const started = performance.now();
    vm = await Vm.start({ image });
    await vm.waitUntilBooted();
    timing(`start to multi-user (${vm.accel}, ${vm.resumed ? 'resumed snapshot' : 'cold boot'})`, started);
    drive = await makeLuksDisk({ dir: disksDir, name: 'alpha' });
  });

  after(async () => {
    if (vm) {
      if (process.exitCode) console.log(await vm.consoleTail());
      await vm.shutdown();
      assert.equal(vm.running, false, 'QEMU exits after the guest powers off');
    }
    if (disksDir) await rm(disksDir, { recursive: true, force: true });
  });

  test('the guest boots to multi-user.target with systemd as PID 1 and no failed unit', async () => {
    assert.equal((await vm.run('systemctl is-system-running')).trim(), 'running');
    assert.equal((await vm.run('systemctl is-active multi-user.target')).trim(), 'active');
    assert.equal((await vm.run('cat /proc/1/comm')).trim(), 'systemd');
    assert.match(await vm.run('node --version'), /^v20\./);
    assert.equal((await vm.run('systemctl is-active mosquitto.service')).trim(), 'active');
  });

  test('a command runs in the guest with its exit code, stdout, stderr and stdin', async () => {
    const r = await vm.exec('read line; echo "out:$line"; echo err >&2; exit 3', { input: 'hello\n' });
    assert.deepEqual(r, { exitCode: 3, stdout: 'out:hello\n', stderr: 'err\n' });
  });

  test("a background service in the guest receives from the guest's MQTT broker", async () => {
    const unit = await vm.background(
      'sub',
      'mosquitto_sub -h 127.0.0.1 -t e2e/smoke -C 1 > /run/e2e-sub.out',
    );
    await vm.waitFor(`systemctl is-active ${unit}`, { timeoutMs: 10_000 });
    // The subscription may not be in place the moment the service starts: publish until it lands.
    await vm.waitFor('mosquitto_pub -h 127.0.0.1 -t e2e/smoke -m hello && grep -qx hello /run/e2e-sub.out', {
      timeoutMs: 20_000,
      intervalMs: 500,
    });
    await vm.waitFor(`! systemctl is-active ${unit}`, { timeoutMs: 10_000 });
  });

  test('a LUKS drive plugged into a USB port becomes its by-uuid device unit', async () => {
    const started = performance.now();
    await vm.plug(drive.path, { id: 'alpha' });
    await vm.waitFor(`test -b /dev/disk/by-uuid/${drive.uuid}`, { timeoutMs: 30_000, intervalMs: 100 });
    timing('plug to /dev/disk/by-uuid', started);
    const unit = byUuidDeviceUnit(drive.uuid);
    await vm.waitFor(`systemctl is-active '${unit}'`, { timeoutMs: 30_000, intervalMs: 100 });
    timing('plug to device unit active', started);
    assert.equal(
      (await vm.run(`blkid -o value -s TYPE /dev/disk/by-uuid/${drive.uuid}`)).trim(),
      'crypto_LUKS',
    );
    const removable = await vm.run(
      `cat /sys/block/$(basename $(readlink -f /dev/disk/by-uuid/${drive.uuid}))/removable`,
    );
    assert.equal(removable.trim(), '1', 'the drive is a removable USB disk');
  });

  test('the drive opens with its key in the guest, takes ext4, mounts, unmounts and closes', async () => {
    await vm.run('mkdir -p /root/keys && chmod 700 /root/keys');
    await vm.writeFile('/root/keys/alpha.key', drive.key, 0o400);
    const dev = `/dev/disk/by-uuid/${drive.uuid}`;
    const started = performance.now();
    await vm.run(`cryptsetup open --key-file /root/keys/alpha.key ${dev} smoke`);
    timing('cryptsetup open in the guest', started);
    await vm.run('mkfs.ext4 -q -L smoke /dev/mapper/smoke');
    await vm.run('mkdir -p /mnt/smoke && mount /dev/mapper/smoke /mnt/smoke');
    assert.equal((await vm.exec('mountpoint -q /mnt/smoke')).exitCode, 0);
    await vm.run('echo written-in-the-guest > /mnt/smoke/marker && sync');
    await vm.run('umount /mnt/smoke && cryptsetup close smoke');
    assert.notEqual((await vm.exec('test -e /dev/mapper/smoke')).exitCode, 0, 'the mapping is gone');
    assert.notEqual((await vm.exec('mountpoint -q /mnt/smoke')).exitCode, 0, 'nothing is mounted');
  });

  test('pulled out, the drive leaves QEMU (DEVICE_DELETED) and the guest (device unit inactive)', async () => {
    await vm.unplug('alpha');
    await vm.waitFor(`! test -e /dev/disk/by-uuid/${drive.uuid}`, { timeoutMs: 30_000 });
    const state = await vm.exec(`systemctl is-active '${byUuidDeviceUnit(drive.uuid)}'`);
    assert.equal(state.stdout.trim(), 'inactive');
  });

  test('plugged back, the drive still holds what the guest wrote to it', async () => {
    await vm.plug(drive.path, { id: 'alpha' });
    const dev = `/dev/disk/by-uuid/${drive.uuid}`;
    await vm.waitFor(`test -b ${dev}`, { timeoutMs: 30_000, intervalMs: 100 });
    await vm.run(
      `cryptsetup open --key-file /root/keys/alpha.key ${dev} smoke && mount /dev/mapper/smoke /mnt/smoke`,
    );
    assert.equal((await vm.readFile('/mnt/smoke/marker')).toString(), 'written-in-the-guest\n');
    await vm.run('umount /mnt/smoke && cryptsetup close smoke');
    await vm.unplug('alpha');
  });

  test('a wrong key does not open the drive', async () => {
    await vm.plug(drive.path, { id: 'alpha' });
    const dev = `/dev/disk/by-uuid/${drive.uuid}`;
    await vm.waitFor(`test -b ${dev}`, { timeoutMs: 30_000, intervalMs: 100 });
    await vm.writeFile('/root/keys/wrong.key', Buffer.alloc(64, 1), 0o400);
    const r = await vm.exec(`cryptsetup open --key-file /root/keys/wrong.key ${dev} smoke`);
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /No key available/);
    await vm.unplug('alpha');
  });

  test('a USB keyboard gives the guest real LED class devices to drive through sysfs', async () => {
    const leds = await vm.plugKeyboardLeds();
    const capslock = leds.capslock!;
    assert.ok(capslock, `a capslock LED among ${Object.keys(leds).join(', ')}`);
    assert.equal((await vm.run(`cat '${capslock}/max_brightness'`)).trim(), '1');
    await vm.run(`echo 1 > '${capslock}/brightness'`);
    assert.equal((await vm.run(`cat '${capslock}/brightness'`)).trim(), '1');
    await vm.run(`echo 0 > '${capslock}/brightness'`);
    await vm.unplug('ledkbd');
    await vm.waitFor(`! test -e '${capslock}'`, { timeoutMs: 30_000 });
  });

  test('copyIn ships a host directory into the guest byte for byte', async () => {
    const here = fileURLToPath(new URL('.', import.meta.url));
    const started = performance.now();
    await vm.copyIn(here, '/opt/e2e-copy');
    timing('copyIn of test/e2e', started);
    const expected = createHash('sha256')
      .update(await readFile(join(here, 'vm.ts')))
      .digest('hex');
    const actual = (await vm.run('sha256sum /opt/e2e-copy/vm.ts')).split(' ')[0];
    assert.equal(actual, expected);
  });

  test('a checkpoint takes the guest back in time, with its clock set to now', async () => {
    let started = performance.now();
    await vm.checkpoint('smoke');
    timing('checkpoint (savevm)', started);
    await vm.run('touch /root/after-checkpoint');
    started = performance.now();
    await vm.restore('smoke');
    timing('restore (loadvm)', started);
    assert.notEqual((await vm.exec('test -e /root/after-checkpoint')).exitCode, 0);
    const guestNow = Number((await vm.run('date +%s')).trim());
    assert.ok(Math.abs(guestNow - Date.now() / 1000) < 10, `guest clock ${guestNow} is close to the host's`);
    assert.equal((await vm.run('systemctl is-system-running')).trim(), 'running');
  });
});
