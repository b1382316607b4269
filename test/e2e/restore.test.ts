/**
 * Restore, and the drive at rest (issue 13), in the guest on a real LUKS USB stick: a good run
 * powers the stick off (its device gone, the unit a success, nothing reported) and plugging it in
 * again starts the next run; `offsite open`/`close` on it (a file read back equals the source, a
 * run refused while it is open); and docs/restore.md's LUKS sections run as written: open with the
 * passphrase only, or the key file, on "another machine"; a header overwritten, restored from the
 * backup prepare-drive made, then opened. Its Borg sections run on the host
 * (test/docs/restore.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { blocksUnder, placed, RESTORE_PAGE } from '../helpers/doc-blocks.js';
import { luksUuid, makeBlankDisk } from './disk.js';
import { sh } from './host.js';
import { ensureImage } from './image.js';
import { CONFIG, installCheckout, makeSource, SOURCE, STATE_DIR, stageCheckout } from './product.js';
import { timing } from './timing.js';
import { Vm } from './vm.js';

/** A run under TCG: ~10 s of Node start-up, unlock, copy, verify. */
const RUN_TIMEOUT = 300_000;
const PASSPHRASE = 'rescue me, the NAS is gone';
const UNIT = 'offsite-backup@alpha.service';
const HEADER = `${STATE_DIR}/headers/alpha.luksheader`;

describe('restore, and the drive at rest, on a LUKS USB stick', () => {
  let vm: Vm;
  let disks: string;
  let image: string;
  let uuid: string;

  async function step(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (error) {
      const journal = await vm
        .exec('journalctl -b --no-pager -n 400 -o short-precise | grep -v qemu-ga | tail -n 120')
        .catch(() => null);
      const units = await vm
        .exec("systemctl list-units --all --no-pager 'dev-disk-by*' 'offsite*'")
        .catch(() => null);
      console.log(
        `${journal?.stdout ?? ''}\n${units?.stdout ?? ''}\n--- console ---\n${await vm.consoleTail(30)}`,
      );
      throw error;
    }
  }

  const unitState = async () =>
    Object.fromEntries(
      (await vm.run(`systemctl show -p InvocationID -p ActiveState -p Result '${UNIT}'`))
        .trim()
        .split('\n')
        .map((l) => l.split('=') as [string, string]),
    );

  /** Waits for a new invocation of the backup (other than `before`) to finish; its result. */
  async function runFinished(before: string): Promise<string> {
    const deadline = Date.now() + RUN_TIMEOUT;
    for (;;) {
      const s = await unitState();
      if (s.InvocationID && s.InvocationID !== before && ['inactive', 'failed'].includes(s.ActiveState!))
        return s.Result!;
      if (Date.now() > deadline) throw new Error(`${UNIT} did not finish a new run: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  const present = async (path: string) => (await vm.exec(`test -e '${path}'`)).exitCode === 0;
  /** the stick's /dev/disk/by-id/usb-… link: QEMU may put it on another port, so another name, at each plug */
  const STICK = 'ls -d /dev/disk/by-id/usb-* 2>/dev/null | grep -v -- -part';

  /** Plugs the stick in; its device node once udev has named it. */
  async function plugStick(): Promise<string> {
    await vm.plug(image, { id: 'alpha' });
    const r = await vm.waitFor(STICK, { timeoutMs: 60_000 });
    return (await vm.run(`readlink -f '${r.stdout.trim().split('\n')[0]}'`)).trim();
  }

  /**
   * Pulls the stick out, and waits until the guest has seen it go: a plug that came before
   * would find its device unit still active, and start nothing.
   */
  async function pullStick(): Promise<void> {
    await vm.unplug('alpha');
    await vm.waitFor(`! ${STICK} | grep -q .`, { timeoutMs: 60_000 });
  }
  const mounted = async (dir: string) => (await vm.exec(`grep -q ' ${dir} ' /proc/mounts`)).exitCode === 0;

  /** The stick out and in again with its backup held off (masked), for `fn` (given its device node). */
  async function pluggedHeldOff<T>(fn: (device: string) => Promise<T>): Promise<T> {
    await vm.run(`systemctl mask --runtime ${UNIT}`);
    try {
      await pullStick();
      return await fn(await plugStick());
    } finally {
      await vm.run(`systemctl unmask --runtime ${UNIT}`);
    }
  }

  /** The page's shell block (`index` under `section`), its stick at the stick's device node. */
  async function docBlock(section: string, index: number, device: string, input?: string): Promise<string> {
    const block = blocksUnder(RESTORE_PAGE, section)[index];
    assert.ok(block, `block ${index} under "${section}"`);
    const script = placed(block.text, [['/dev/sdb', device]]);
    const r = await vm.exec(`set -e\n${script}`, { timeoutMs: 300_000, ...(input ? { input } : {}) });
    assert.equal(r.exitCode, 0, `docs/${RESTORE_PAGE}:${block.line}:\n${script}\n${r.stdout}${r.stderr}`);
    return r.stdout + r.stderr;
  }

  /** Every entry and SHA-256 under `dir`, relative to it (the marker aside). */
  const manifest = (dir: string) =>
    vm.run(
      `cd '${dir}' && { find . -mindepth 1 ! -name .offsite-drive.json -printf '%y %m %p -> %l\\n' | LC_ALL=C sort; ` +
        `find . -type f ! -name .offsite-drive.json -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum; }`,
    );

  before(async () => {
    disks = await mkdtemp(join(tmpdir(), 'offsite-e2e-restore-'));
    const started = performance.now();
    const [stage, started_vm] = await Promise.all([
      stageCheckout(),
      Vm.start({ image: await ensureImage() }),
    ]);
    vm = started_vm;
    await vm.waitUntilBooted();
    await installCheckout(vm, stage.dir).finally(() => stage.remove());
    await vm.run('mkdir -p /etc/offsite/keys && chmod 0700 /etc/offsite/keys');
    await vm.writeFile(
      CONFIG,
      stringify({
        node_id: 'nas',
        state_dir: STATE_DIR,
        source: { path: SOURCE },
        mqtt: { url: 'mqtt://127.0.0.1:1883', base_topic: 'offsite' },
      }),
      0o644,
    );
    await makeSource(vm);
    // docs/setup.md section 4, with a passphrase beside the key file (asked twice, read from stdin)
    image = join(disks, 'alpha.img');
    await makeBlankDisk(image, 64);
    await vm.plug(image, { id: 'alpha' });
    const listed = await vm.waitFor(STICK, { timeoutMs: 60_000 });
    const byId = listed.stdout.trim().split('\n')[0]!;
    const prepared = await vm.exec(
      `offsite prepare-drive '${byId}' --name alpha --passphrase --iter-time 100 --yes-i-typed-it='${byId}'`,
      { timeoutMs: 300_000, input: `${PASSPHRASE}\n${PASSPHRASE}\n` },
    );
    assert.equal(prepared.exitCode, 0, prepared.stderr);
    assert.match(prepared.stdout, /Drive alpha is ready/);
    await pullStick();
    uuid = await luksUuid(image);
    const installed = await vm.exec('offsite install', { timeoutMs: 300_000 });
    assert.equal(installed.exitCode, 0, installed.stderr);
    timing('restore suite set up', started);
  });

  after(async () => {
    if (vm) await vm.shutdown();
    if (disks) await rm(disks, { recursive: true, force: true });
  });

  test('a good run powers the stick off: the device goes, the unit succeeds, nothing is reported; plugged in again, the next run starts', () =>
    step(async () => {
      const before = (await unitState()).InvocationID ?? '';
      const since = (await vm.run('date +%s')).trim();
      const device = await plugStick();
      assert.equal(await runFinished(before), 'success');
      const journal = await vm.run(`journalctl -q --since @${since} --no-pager -o cat -u '${UNIT}'`);
      assert.match(
        journal,
        /alpha: power-off: sd[a-z]+ was flushed, stopped and removed; its USB device \S+ is disconnected/,
      );
      assert.match(journal, /alpha: done in .*: safe to remove/);
      // what ExecStopPost=offsite cleanup found to do: nothing
      assert.doesNotMatch(journal, /cleanup alpha:/);
      const kernel = await vm.run(`journalctl -k -q --since @${since} --no-pager -o cat`);
      assert.match(kernel, /Stopping disk/, 'the kernel stopped the disk as it removed it');
      assert.equal(await present(device), false, 'the stick is gone');
      assert.equal((await vm.exec(`${STICK} | grep -q .`)).exitCode, 1, 'no USB disk left');
      assert.equal(await present(`/dev/disk/by-uuid/${uuid}`), false);
      assert.equal(
        (await vm.run("systemctl show -p InvocationID --value 'offsite-failure@alpha.service'")).trim(),
        '',
        'no failure was reported',
      );
      const ledger = JSON.parse((await vm.readFile(`${STATE_DIR}/ledger.json`)).toString());
      assert.equal(ledger.drives.alpha.last_result, 'success');

      // pulled and plugged in again: the next run
      const first = (await unitState()).InvocationID!;
      await pullStick();
      await plugStick();
      assert.equal(await runFinished(first), 'success');
      await vm.waitFor(`! ${STICK} | grep -q .`, { timeoutMs: 60_000 });
    }));

  test('offsite open on a LUKS drive: read-only, a file read back equals the source, a run refused while open; close closes and powers off', () =>
    step(async () => {
      await pluggedHeldOff(async (device) => {
        // docs/restore.md, "Opening a drive": hold the backup off, plug, open
        await docBlock('Opening a drive: `offsite open`', 0, device);
        const opened = await docBlock('Opening a drive: `offsite open`', 1, device);
        assert.match(opened, /alpha is open, read-only, on \/mnt\/offsite\/alpha/);
        assert.match(
          opened,
          /current: \/mnt\/offsite\/alpha\/current -> snapshots\/\S+: the copy of run \S+, made /,
        );
        const options = await vm.run('awk \'$2 == "/mnt/offsite/alpha" {print $4}\' /proc/mounts');
        assert.ok(options.split(',').includes('ro'), options);
        assert.equal(await manifest('/mnt/offsite/alpha/current'), await manifest(SOURCE));
        assert.equal(
          await vm.run(`sha256sum < '/mnt/offsite/alpha/current/photos/2024 été/plage.jpg'`),
          await vm.run(`sha256sum < '${SOURCE}/photos/2024 été/plage.jpg'`),
        );
        const status = JSON.parse(await vm.run('offsite status --json'));
        assert.equal(status.drives[0].open, true);

        // a run refused while it is open: by hand, and as systemd starts it
        const byHand = await vm.exec('offsite run alpha');
        assert.equal(byHand.exitCode, 75);
        assert.match(
          byHand.stderr,
          /drive "alpha" is open \(offsite open: read-only on \/mnt\/offsite\/alpha since/,
        );
        await vm.run(`systemctl unmask --runtime ${UNIT}`);
        const before = (await unitState()).InvocationID ?? '';
        await vm.run(`systemctl start ${UNIT}`).catch(() => '');
        assert.equal(await runFinished(before), 'success', 'exit 75 is no failure (SuccessExitStatus=75)');
        assert.ok(await mounted('/mnt/offsite/alpha'), 'its ExecStopPost= cleanup left it mounted');
        assert.equal(await present('/dev/mapper/offsite_alpha'), true);

        // docs/restore.md, "Closing it"
        const closed = await docBlock('Closing it: `offsite close`', 0, device);
        assert.match(closed, /alpha: close: \/dev\/mapper\/offsite_alpha is gone/);
        assert.match(closed, /alpha: power-off: sd[a-z]+ was flushed, stopped and removed/);
        assert.match(closed, /alpha is closed: safe to remove/);
        assert.equal(await mounted('/mnt/offsite/alpha'), false);
        assert.equal(await present('/dev/mapper/offsite_alpha'), false);
        assert.equal(await present(device), false, 'powered off');
      });
    }));

  test('when the NAS is gone: opened on "another machine" with the passphrase only, then with the key file', () =>
    step(async () => {
      const section = 'When the NAS is gone: on another Linux machine';
      await pluggedHeldOff(async (device) => {
        await docBlock(section, 0, device); // the rescue folder
        // the key file kept aside, the passphrase typed (read from stdin here)
        await vm.run('mv /etc/offsite/keys/alpha.key /root/alpha.key.away');
        try {
          const listing = await docBlock(section, 1, device, `${PASSPHRASE}\n`);
          assert.match(listing, new RegExp(`${device.replace('/dev/', '')}\\s.*crypto_LUKS`));
          assert.match(listing, /current -> snapshots\//);
          assert.equal(await manifest('/mnt/restore/current'), await manifest(SOURCE));
          await docBlock(section, 3, device); // closed
          assert.equal(await present('/dev/mapper/offsite_restore'), false);
          // with the key file from the rescue folder instead
          await docBlock(section, 2, device);
          await vm.run('mount -o ro /dev/mapper/offsite_restore /mnt/restore');
          assert.equal(await manifest('/mnt/restore/current'), await manifest(SOURCE));
          await docBlock(section, 3, device);
        } finally {
          await vm.run('mv /root/alpha.key.away /etc/offsite/keys/alpha.key');
        }
      });
    }));

  test('a LUKS header overwritten: open says which file would help, or that it is not there; restored from it, the drive opens', () =>
    step(async () => {
      const section = 'A damaged LUKS header';
      await pullStick();
      // a dd to the wrong disk: the first 16 MiB, the whole LUKS2 header and its key slots
      await sh('dd', ['if=/dev/zero', `of=${image}`, 'bs=1M', 'count=16', 'conv=notrunc', 'status=none']);
      await vm.run(`systemctl mask --runtime ${UNIT}`);
      try {
        const device = await plugStick();
        const withBackup = await vm.exec('offsite open alpha');
        assert.equal(withBackup.exitCode, 75);
        assert.match(withBackup.stderr, /drive "alpha" is not plugged in/);
        assert.ok(
          withBackup.stderr.includes(
            `put the header back from its backup: cryptsetup luksHeaderRestore <device> --header-backup-file ${HEADER}`,
          ),
          withBackup.stderr,
        );
        await vm.run(`mv ${HEADER} ${HEADER}.away`);
        const without = await vm.exec('offsite open alpha');
        assert.equal(without.exitCode, 75);
        assert.ok(
          without.stderr.includes(
            `the header backup that prepare-drive makes, ${HEADER}, would have helped, and it is not there`,
          ),
          without.stderr,
        );
        await vm.run(`mv ${HEADER}.away ${HEADER}`);

        // another machine with the rescue folder: a detached header opens it without writing to it
        await docBlock(section, 1, device, `${PASSPHRASE}\n`);
        await vm.run('mount -o ro /dev/mapper/offsite_restore /mnt/restore');
        assert.equal(await manifest('/mnt/restore/current'), await manifest(SOURCE));
        await docBlock('When the NAS is gone: on another Linux machine', 3, device);

        // on the NAS: the header put back from the backup prepare-drive made, then offsite open
        const opened = await docBlock(section, 0, device);
        assert.match(opened, /alpha is open, read-only, on \/mnt\/offsite\/alpha/);
        assert.equal(await luksUuid(image), uuid, 'the header, and with it the UUID, is back');
        assert.equal(await manifest('/mnt/offsite/alpha/current'), await manifest(SOURCE));
        const closed = await vm.exec('offsite close alpha');
        assert.equal(closed.exitCode, 0, closed.stderr);
      } finally {
        await vm.run(`systemctl unmask --runtime ${UNIT}`);
      }
    }));
});
