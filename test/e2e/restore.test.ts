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
import { after, before, describe, test } from 'node:test';
import { blocksUnder, placed, RESTORE_PAGE } from '../helpers/doc-blocks.js';
import { luksUuid } from './disk.js';
import { type EnrolledDrive, type GuestOps, startGuest } from './guest-ops.js';
import { sh } from './host.js';
import {
  LED_DIR,
  ledChanges,
  ledFor,
  ledger,
  recordMark,
  records,
  SOURCE,
  STATE_DIR,
  statuses,
} from './product.js';
import { timing } from './timing.js';
import type { Vm } from './vm.js';

const PASSPHRASE = 'rescue me, the NAS is gone';
const UNIT = 'offsite-backup@alpha.service';
const HEADER = `${STATE_DIR}/headers/alpha.luksheader`;
const GREEN = ledFor('#00ff00');
/** the LED's colour for an open drive (docs/led.md: blinking blue) */
const OPEN_BLUE = '0 80 255';

describe('restore, and the drive at rest, on a LUKS USB stick', () => {
  let vm: Vm;
  /** the guest set up as for the scenarios: waiting for runs, looking at drives, enrolling the stick */
  let g: GuestOps;
  let alpha: EnrolledDrive;

  const step = (fn: () => Promise<void>) => g.scenario(fn);
  const present = async (path: string) => (await vm.exec(`test -e '${path}'`)).exitCode === 0;
  /** the stick's /dev/disk/by-id/usb-… link: QEMU may put it on another port, so another name, at each plug */
  const STICK = 'ls -d /dev/disk/by-id/usb-* 2>/dev/null | grep -v -- -part';

  /** The stick's device node, once udev has named it. */
  async function stickDevice(): Promise<string> {
    const r = await vm.waitFor(STICK, { timeoutMs: 60_000 });
    return (await vm.run(`readlink -f '${r.stdout.trim().split('\n')[0]}'`)).trim();
  }

  /** Plugs the stick in; its device node. */
  async function plugStick(): Promise<string> {
    await vm.plug(alpha.image, { id: 'alpha' });
    return stickDevice();
  }

  /**
   * Pulls the stick out, and waits until the guest has seen it go: a plug that came before
   * would find its device unit still active, and start nothing.
   */
  async function pullStick(): Promise<void> {
    await vm.unplug('alpha');
    await vm.waitFor(`! ${STICK} | grep -q .`, { timeoutMs: 60_000 });
  }

  /** The stick out and in again with its backup held off (masked), for `fn` (given its device node). */
  const pluggedHeldOff = <T>(fn: (device: string) => Promise<T>): Promise<T> =>
    g.replugToLook(alpha, async () => fn(await stickDevice()));

  /** The page's shell block (`index` under `section`), its stick at the stick's device node. */
  async function docBlock(section: string, index: number, device: string, input?: string): Promise<string> {
    const block = blocksUnder(RESTORE_PAGE, section)[index];
    assert.ok(block, `block ${index} under "${section}"`);
    const script = placed(block.text, [['/dev/sdb', device]]);
    const r = await vm.exec(`set -e\n${script}`, { timeoutMs: 300_000, ...(input ? { input } : {}) });
    assert.equal(r.exitCode, 0, `docs/${RESTORE_PAGE}:${block.line}:\n${script}\n${r.stdout}${r.stderr}`);
    return r.stdout + r.stderr;
  }

  before(async () => {
    const started = performance.now();
    g = await startGuest('restore');
    vm = g.vm;
    await g.setUp(async () => {
      // docs/setup.md section 4, with a passphrase beside the key file
      alpha = await g.enrol('alpha', 64, { passphrase: PASSPHRASE });
      await g.install();
      timing('restore: setup total (copy, enrol, install)', started);
    });
  });

  after(() => g?.shutdown());

  test('a good run powers the stick off: the device goes, the unit succeeds, nothing is reported; plugged in again, the next run starts', () =>
    step(async () => {
      const before = await g.invocation(UNIT);
      const mark = await recordMark(vm);
      const since = (await vm.run('date +%s')).trim();
      const device = await plugStick();
      assert.equal(await g.unitFinished(UNIT, before), 'success');
      const final = await g.finalStatus(mark, 'alpha');
      assert.equal(final.state, 'success', final.message ?? '');
      const said = statuses(await records(vm, mark)).filter((s) => s.drive === 'alpha');
      assert.ok(
        said.some((s) => s.step === 'power-off'),
        said.map((s) => s.step).join(', '),
      );
      assert.deepEqual(
        said.filter((s) => s.state === 'failed'),
        [],
        'the device going away published no failure',
      );
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
      assert.equal(await present(`/dev/disk/by-uuid/${alpha.uuid}`), false);
      assert.equal(
        (await vm.run("systemctl show -p InvocationID --value 'offsite-failure@alpha.service'")).trim(),
        '',
        'no failure was reported',
      );
      assert.equal((await ledger(vm)).drives.alpha.last_result, 'success');

      // pulled and plugged in again: the next run
      const first = await g.invocation(UNIT);
      await pullStick();
      await plugStick();
      assert.equal(await g.unitFinished(UNIT, first), 'success');
      await vm.waitFor(`! ${STICK} | grep -q .`, { timeoutMs: 60_000 });
    }));

  test('offsite open on a LUKS drive: read-only, a file read back equals the source, a run refused while open; close closes and powers off', () =>
    step(async () => {
      await pluggedHeldOff(async (device) => {
        // docs/restore.md, "Opening a drive": hold the backup off, plug, open
        await docBlock('Opening a drive: `offsite open`', 0, device);
        const openMark = await recordMark(vm);
        const opened = await docBlock('Opening a drive: `offsite open`', 1, device);
        assert.match(opened, /alpha is open, read-only, on \/mnt\/offsite\/alpha/);
        assert.match(
          opened,
          /current: \/mnt\/offsite\/alpha\/current -> snapshots\/\S+: the copy of run \S+, made /,
        );
        const options = await vm.run('awk \'$2 == "/mnt/offsite/alpha" {print $4}\' /proc/mounts');
        assert.ok(options.split(',').includes('ro'), options);
        assert.equal(await g.manifest('/mnt/offsite/alpha/current'), await g.manifest(SOURCE));
        assert.equal(
          await vm.run(`sha256sum < '/mnt/offsite/alpha/current/photos/2024 été/plage.jpg'`),
          await vm.run(`sha256sum < '${SOURCE}/photos/2024 été/plage.jpg'`),
        );
        const status = JSON.parse(await vm.run('offsite status --json'));
        assert.equal(status.drives[0].open, true);
        // the MQTT status and the LED say it is not safe to remove
        await g.sinceMark(openMark, (recs) =>
          statuses(recs).find((s) => s.state === 'open' && s.drive === 'alpha'),
        );
        await vm.waitFor(`test "$(cat '${LED_DIR}/multi_intensity')" = '${OPEN_BLUE}'`, {
          timeoutMs: 60_000,
        });

        // a run refused while it is open: by hand, and as systemd starts it
        const byHand = await vm.exec('offsite run alpha');
        assert.equal(byHand.exitCode, 75);
        assert.match(
          byHand.stderr,
          /drive "alpha" is open \(offsite open: read-only on \/mnt\/offsite\/alpha since/,
        );
        await vm.run(`systemctl unmask --runtime ${UNIT}`);
        const before = await g.invocation(UNIT);
        await vm.run(`systemctl start ${UNIT}`).catch(() => '');
        assert.equal(
          await g.unitFinished(UNIT, before),
          'success',
          'exit 75 is no failure (SuccessExitStatus=75)',
        );
        assert.ok(await g.mounted('/mnt/offsite/alpha'), 'its ExecStopPost= cleanup left it mounted');
        assert.equal(await g.mapped('offsite_alpha'), true);

        // docs/restore.md, "Closing it"
        const closeMark = await recordMark(vm);
        const closed = await docBlock('Closing it: `offsite close`', 0, device);
        assert.match(closed, /alpha: close: \/dev\/mapper\/offsite_alpha is gone/);
        assert.match(closed, /alpha: power-off: sd[a-z]+ was flushed, stopped and removed/);
        assert.match(closed, /alpha is closed: safe to remove/);
        assert.equal(await g.mounted('/mnt/offsite/alpha'), false);
        assert.equal(await g.mapped('offsite_alpha'), false);
        assert.equal(await present(device), false, 'powered off');
        const idle = await g.sinceMark(closeMark, (recs) =>
          statuses(recs).find((s) => s.state === 'idle' && s.drive === 'alpha'),
        );
        assert.equal(idle.message, 'alpha is closed: safe to remove');
        // the last run's colour again, and never green while it was open (a refused run and its cleanup included)
        await vm.waitFor(`test "$(cat '${LED_DIR}/multi_intensity')" = '${GREEN.split('|')[1]}'`, {
          timeoutMs: 60_000,
        });
        const whileOpen = ledChanges((await records(vm, openMark)).slice(0, closeMark - openMark));
        assert.ok(
          whileOpen.some((l) => l.endsWith(`|${OPEN_BLUE}`)),
          `blue while open: ${whileOpen.join(', ')}`,
        );
        assert.ok(!whileOpen.includes(GREEN), `never green while open: ${whileOpen.join(', ')}`);
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
          assert.equal(await g.manifest('/mnt/restore/current'), await g.manifest(SOURCE));
          await docBlock(section, 3, device); // closed
          assert.equal(await g.mapped('offsite_restore'), false);
          // with the key file from the rescue folder instead
          await docBlock(section, 2, device);
          await vm.run('mount -o ro /dev/mapper/offsite_restore /mnt/restore');
          assert.equal(await g.manifest('/mnt/restore/current'), await g.manifest(SOURCE));
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
      await sh('dd', [
        'if=/dev/zero',
        `of=${alpha.image}`,
        'bs=1M',
        'count=16',
        'conv=notrunc',
        'status=none',
      ]);
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
        assert.equal(await g.manifest('/mnt/restore/current'), await g.manifest(SOURCE));
        await docBlock('When the NAS is gone: on another Linux machine', 3, device);

        // on the NAS: the header put back from the backup prepare-drive made, then offsite open
        const opened = await docBlock(section, 0, device);
        assert.match(opened, /alpha is open, read-only, on \/mnt\/offsite\/alpha/);
        assert.equal(await luksUuid(alpha.image), alpha.uuid, 'the header, and with it the UUID, is back');
        assert.equal(await g.manifest('/mnt/offsite/alpha/current'), await g.manifest(SOURCE));
        const closed = await vm.exec('offsite close alpha');
        assert.equal(closed.exitCode, 0, closed.stderr);
      } finally {
        await vm.run(`systemctl unmask --runtime ${UNIT}`);
      }
    }));
});
