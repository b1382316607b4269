/**
 * The product end to end (issue 5): offsite installed in a Debian guest the way docs/setup.md
 * says, drives enrolled there with `offsite prepare-drive`, and USB sticks plugged and pulled
 * while the guest's own systemd, udev, dm-crypt, mosquitto, an SMTP sink and the LED agent do
 * the rest. Each scenario asserts on what those saw: unit results and the journal, the
 * drive's filesystem, the MQTT messages, the mails and the LED's files.
 *
 * One guest for the whole file: set up once, saved as the checkpoint `installed`, and
 * restored before each scenario that needs a clean state. The drive images live on the host
 * and keep what earlier scenarios wrote to them (a restore only rewinds the guest), which is
 * what scenario 5 relies on: alpha's copy from scenario 1 is "the previous copy".
 */
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { byUuidDeviceUnit, luksUuid, makeLuksDisk } from './disk.js';
import { type EnrolledDrive, type GuestOps, startGuest } from './guest-ops.js';
import { sh } from './host.js';
import {
  CONFIG,
  editConfig,
  LED_DIR,
  ledChanges,
  ledFor,
  ledger,
  mails,
  recordMark,
  records,
  SOURCE,
  statuses,
  subject,
} from './product.js';
import { timing } from './timing.js';
import type { Vm } from './vm.js';

const RUNNING = ledFor('#33c280');
const GREEN = ledFor('#00ff00');
const RED = ledFor('#ff0000');
type Drive = EnrolledDrive;

describe('offsite in a guest: plug a drive, get a backup', () => {
  let vm: Vm;
  let disks: string;
  /** waiting for runs, looking at drives, enrolling sticks */
  let g: GuestOps;
  const drives: Record<string, Drive> = {};
  /** alpha's UUID with bravo's filesystem and marker, opened by alpha's key (scenario 4) */
  let impostor: string;
  /** what the impostor holds before scenario 4 */
  let impostorHeld: { marker: string; entries: string };

  const scenario = (fn: () => Promise<void>) => g.scenario(fn);

  async function impostorContents(root: string): Promise<{ marker: string; entries: string }> {
    return {
      marker: JSON.parse(await vm.run(`cat ${root}/.offsite-drive.json`)).drive,
      entries: await vm.run(`find ${root} -mindepth 1 -printf '%y %s %P\\n' | LC_ALL=C sort`),
    };
  }

  before(async () => {
    const started = performance.now();
    g = await startGuest('drives');
    vm = g.vm;
    disks = g.disks;
    await g.setUp(async () => {
      for (const [name, size] of [
        ['alpha', 64],
        ['bravo', 64],
        ['charlie', 32],
      ] as const)
        drives[name] = await g.enrol(name, size);

      // the impostor: bravo's filesystem and marker behind alpha's UUID and alpha's key
      impostor = join(disks, 'impostor.img');
      await sh('cp', ['--sparse=always', drives.bravo!.image, impostor]);
      await sh('cryptsetup', ['luksUUID', '-q', '--uuid', drives.alpha!.uuid, impostor]);
      await writeFile(join(disks, 'alpha.key'), await vm.readFile('/etc/offsite/keys/alpha.key'), {
        mode: 0o400,
      });
      await writeFile(join(disks, 'bravo.key'), await vm.readFile('/etc/offsite/keys/bravo.key'), {
        mode: 0o400,
      });
      await sh('cryptsetup', [
        'luksAddKey',
        '-q',
        '--pbkdf',
        'pbkdf2',
        '--pbkdf-force-iterations',
        '1000',
        '--key-file',
        join(disks, 'bravo.key'),
        impostor,
        join(disks, 'alpha.key'),
      ]);
      assert.equal(await luksUuid(impostor), drives.alpha!.uuid);
      // looked at before install, while plugging it starts nothing
      await vm.plug(impostor, { id: 'impostor' });
      impostorHeld = await g.lookInside(drives.alpha!.uuid, '/etc/offsite/keys/alpha.key', (root) =>
        impostorContents(root),
      );
      await vm.unplug('impostor');
      assert.equal(impostorHeld.marker, 'bravo');

      await g.install();
      const step = performance.now();
      await vm.checkpoint('installed');
      timing('checkpoint installed', step);
      timing('setup total (copy, enrol 3 drives, install)', started);
    });
  });

  after(() => g?.shutdown());

  test('the installation: units for both drives, the LED agent running as its own user', () =>
    scenario(async () => {
      for (const name of ['alpha', 'bravo', 'charlie']) {
        const wants = await vm.run(
          `systemctl show -p Wants --value '${byUuidDeviceUnit(drives[name]!.uuid)}'`,
        );
        assert.match(wants, new RegExp(`offsite-backup@${name}\\.service`));
      }
      assert.equal(
        (await vm.run('systemctl is-active offsite-led offsite-check.timer')).trim(),
        'active\nactive',
      );
      const pid = (await vm.run('systemctl show -p MainPID --value offsite-led')).trim();
      assert.notEqual(
        (await vm.run(`stat -c %u /proc/${pid}`)).trim(),
        '0',
        'the LED agent does not run as root',
      );
      assert.match(await vm.run(`cat ${CONFIG}`), /luks_uuid:/);
    }));

  test('(1) alpha plugged in: running -> success, a copy equal to the source, unmounted and closed when success is published, LED green', () =>
    scenario(async () => {
      const mark = await recordMark(vm);
      const before = await g.invocation('offsite-backup@alpha.service');
      const started = performance.now();
      await vm.plug(drives.alpha!.image, { id: 'alpha' });
      const final = await g.finalStatus(mark, 'alpha');
      timing('plug to success (alpha, first copy)', started);
      assert.equal(final.state, 'success', final.message ?? '');
      assert.equal(await g.unitFinished('offsite-backup@alpha.service', before), 'success');
      timing('plug to unit finished (alpha)', started);

      const recs = await records(vm, mark);
      const seen = statuses(recs).filter((s) => s.drive === 'alpha');
      assert.equal(seen[0]!.state, 'running');
      const steps = [...new Set(seen.map((s) => s.step).filter(Boolean))];
      assert.deepEqual(steps, [
        'identify',
        'unlock',
        'mount',
        'sync',
        'verify',
        'unmount',
        'close',
        'power-off',
      ]);
      assert.equal(seen.at(-1)!.state, 'success');
      const atSuccess = recs.find((r) => r.kind === 'at-success' && r.drive === 'alpha');
      assert.deepEqual(
        { mounted: atSuccess?.mounted, mapper: atSuccess?.mapper },
        { mounted: false, mapper: false },
        'when success is published, /mnt/offsite/alpha is unmounted and /dev/mapper/offsite_alpha gone',
      );

      await vm.waitFor(`test "$(cat '${LED_DIR}/multi_intensity')" = '${GREEN.split('|')[1]}'`, {
        timeoutMs: 60_000,
      });
      const leds = ledChanges(await records(vm, mark));
      assert.ok(leds.includes(RUNNING), `the LED showed the running colour: ${leds.slice(-8).join(', ')}`);
      assert.equal(leds.at(-1), GREEN);
      assert.ok(leds.indexOf(RUNNING) < leds.lastIndexOf(GREEN));

      // powered off by the run: plugged in again to look
      assert.equal((await vm.exec(`test -e /dev/disk/by-uuid/${drives.alpha!.uuid}`)).exitCode, 1);
      const copy = await g.replugToLook(drives.alpha!, () =>
        g.lookInside(drives.alpha!.uuid, '/etc/offsite/keys/alpha.key', (root) =>
          g.manifest(`${root}/current`),
        ),
      );
      assert.equal(copy, await g.manifest(SOURCE), 'the copy on the drive equals the source');
      assert.match(copy, /l 777 \.\/latest-photo -> photos\/2024 été\/plage\.jpg/);
      assert.match(copy, /документы\/отчёт\.pdf/);
      assert.equal((await mails(vm)).length, 0, 'no mail for a success (email.on has no success)');
      await vm.unplug('alpha');
    }));

  test('(2) bravo next: the rotation is in the ledger, both drives with their last success', () =>
    scenario(async () => {
      const mark = await recordMark(vm);
      const before = await g.invocation('offsite-backup@bravo.service');
      const started = performance.now();
      await vm.plug(drives.bravo!.image, { id: 'bravo' });
      const final = await g.finalStatus(mark, 'bravo');
      timing('plug to success (bravo)', started);
      assert.equal(final.state, 'success', final.message ?? '');
      assert.equal(await g.unitFinished('offsite-backup@bravo.service', before), 'success');
      const book = await ledger(vm);
      assert.equal(book.drives.alpha.last_result, 'success');
      assert.equal(book.drives.bravo.last_result, 'success');
      assert.ok(book.drives.alpha.last_success && book.drives.bravo.last_success);
      assert.ok(book.drives.alpha.last_success <= book.drives.bravo.last_success, 'alpha first, then bravo');
      assert.deepEqual(
        book.history
          .map((h: { drive: string; result: string }) => `${h.drive} ${h.result}`)
          .slice(-2)
          .sort(),
        ['alpha success', 'bravo success'],
      );
      const status = JSON.parse(await vm.run('offsite status --json'));
      const byName = Object.fromEntries(status.drives.map((d: { name: string }) => [d.name, d]));
      assert.equal(byName.alpha.overdue, false);
      assert.equal(byName.bravo.overdue, false);
      assert.equal(byName.bravo.present, false, 'powered off at the end of its run');
      await vm.unplug('bravo');
    }));

  test('(3) an unregistered drive: nothing happens', () =>
    scenario(async () => {
      const stranger = await makeLuksDisk({ dir: disks, name: 'stranger' });
      const mark = await recordMark(vm);
      const since = (await vm.run('date +%s')).trim();
      const ledBefore = await vm.run(`cat '${LED_DIR}/multi_intensity'`);
      await vm.plug(stranger.path, { id: 'stranger' });
      // the backup would be started with the device unit, in the same transaction
      await vm.waitFor(`systemctl is-active '${byUuidDeviceUnit(stranger.uuid)}'`, { timeoutMs: 60_000 });
      // and a run says so within seconds; give it a bounded window to prove the negative
      await new Promise((r) => setTimeout(r, 8_000));
      assert.equal((await vm.run('systemctl list-jobs --no-legend')).trim(), '');
      const journal = await vm.run(`journalctl -q --since @${since} --no-pager -o cat -u 'offsite-*'`);
      assert.equal(journal.trim(), '', 'no offsite unit logged anything');
      assert.deepEqual(statuses(await records(vm, mark)), [], 'no status published');
      assert.equal(await vm.run(`cat '${LED_DIR}/multi_intensity'`), ledBefore, 'the LED unchanged');
      assert.equal(await g.mapped('offsite_alpha'), false);
      await vm.unplug('stranger');
      await rm(stranger.path);
    }));

  test("(4) alpha's UUID with a marker naming bravo: refused at mount, nothing written", () =>
    scenario(async () => {
      const mark = await recordMark(vm);
      const before = await g.invocation('offsite-backup@alpha.service');
      await vm.plug(impostor, { id: 'impostor' });
      const final = await g.finalStatus(mark, 'alpha');
      assert.equal(final.state, 'failed');
      assert.equal(final.step, 'mount');
      assert.match(final.message ?? '', /wrong drive: its marker names drive "bravo", not "alpha"/);
      assert.equal(await g.unitFinished('offsite-backup@alpha.service', before), 'exit-code');
      assert.equal(await g.mounted('/mnt/offsite/alpha'), false);
      assert.equal(await g.mapped('offsite_alpha'), false);
      const held = await g.lookInside(drives.alpha!.uuid, '/etc/offsite/keys/alpha.key', (root) =>
        impostorContents(root),
      );
      assert.deepEqual(held, impostorHeld, 'the impostor holds what it held before: its marker, no copy');
      assert.doesNotMatch(held.entries, /current|snapshots/);
      await vm.waitFor(`test "$(cat '${LED_DIR}/multi_intensity')" = '${RED.split('|')[1]}'`, {
        timeoutMs: 60_000,
      });
      await vm.unplug('impostor');
    }));

  test('(5) alpha pulled during sync: failed, a mail, LED red; plugged back, the previous copy is intact and the next run succeeds', () =>
    scenario(async () => {
      await vm.restore('installed');
      const previous = await g.manifest(SOURCE); // what scenario 1 copied onto alpha
      await vm.run(`head -c 24000000 /dev/urandom > '${SOURCE}/big.bin'`);
      await editConfig(vm, (c) => {
        (c.source as Record<string, unknown>).rsync_args = ['--bwlimit=1000'];
      });
      const mark = await recordMark(vm);
      const before = await g.invocation('offsite-backup@alpha.service');
      const failureBefore = await g.invocation('offsite-failure@alpha.service');
      await vm.plug(drives.alpha!.image, { id: 'alpha' });
      // pulled once rsync is a megabyte into the big file (it needs ~24 s for all of it)
      await g.sinceMark(mark, (recs) =>
        statuses(recs).find(
          (s) =>
            s.drive === 'alpha' && s.step === 'sync' && ((s as { bytes?: number }).bytes ?? 0) > 1_000_000,
        ),
      );
      await vm.unplug('alpha');
      const final = await g.finalStatus(mark, 'alpha');
      assert.equal(final.state, 'failed');
      assert.ok(['sync', 'verify'].includes(final.step ?? ''), `failed at ${final.step}: ${final.message}`);
      assert.equal(await g.unitFinished('offsite-backup@alpha.service', before), 'exit-code');
      // ExecStopPost=offsite cleanup: no stale mount or mapping left behind
      assert.equal(await g.mounted('/mnt/offsite/alpha'), false, 'no stale mount');
      assert.equal(await g.mapped('offsite_alpha'), false, 'no stale mapping');
      await vm.waitFor(`test "$(cat '${LED_DIR}/multi_intensity')" = '${RED.split('|')[1]}'`, {
        timeoutMs: 60_000,
      });
      assert.equal(await g.unitFinished('offsite-failure@alpha.service', failureBefore), 'success');
      const sent = await mails(vm);
      assert.equal(sent.length, 1, sent.map(subject).join('\n'));
      assert.match(subject(sent[0]!), /backup of drive "alpha" FAILED at step (sync|verify)/);

      // back in, with the backup held off: the copy from before is whole
      await vm.run('systemctl mask --runtime offsite-backup@alpha.service');
      await vm.plug(drives.alpha!.image, { id: 'alpha' });
      const kept = await g.lookInside(drives.alpha!.uuid, '/etc/offsite/keys/alpha.key', (root) =>
        g.manifest(`${root}/current`),
      );
      assert.equal(kept, previous, 'current is still the previous copy');
      await vm.unplug('alpha');
      await vm.run('systemctl unmask --runtime offsite-backup@alpha.service');

      // and plugged in for real: the next run succeeds
      await editConfig(vm, (c) => {
        (c.source as Record<string, unknown>).rsync_args = [];
      });
      const again = await recordMark(vm);
      const before2 = await g.invocation('offsite-backup@alpha.service');
      const started = performance.now();
      await vm.plug(drives.alpha!.image, { id: 'alpha' });
      const next = await g.finalStatus(again, 'alpha');
      timing('plug to success (alpha, after a pulled run, 24 MB new)', started);
      assert.equal(next.state, 'success', next.message ?? '');
      assert.equal(await g.unitFinished('offsite-backup@alpha.service', before2), 'success');
      const copy = await g.replugToLook(drives.alpha!, () =>
        g.lookInside(drives.alpha!.uuid, '/etc/offsite/keys/alpha.key', (root) =>
          g.manifest(`${root}/current`),
        ),
      );
      assert.equal(copy, await g.manifest(SOURCE));
      await vm.unplug('alpha');
    }));

  test('(6) a wrong key file: the unlock fails, the failure unit runs, status failed at unlock, one mail', () =>
    scenario(async () => {
      await vm.restore('installed');
      await vm.run('head -c 4096 /dev/urandom > /etc/offsite/keys/alpha.key');
      const mark = await recordMark(vm);
      const before = await g.invocation('offsite-backup@alpha.service');
      const failureBefore = await g.invocation('offsite-failure@alpha.service');
      await vm.plug(drives.alpha!.image, { id: 'alpha' });
      const final = await g.finalStatus(mark, 'alpha');
      assert.equal(final.state, 'failed');
      assert.equal(final.step, 'unlock');
      assert.equal(await g.unitFinished('offsite-backup@alpha.service', before), 'exit-code');
      assert.equal(await g.unitFinished('offsite-failure@alpha.service', failureBefore), 'success');
      const crypt = await vm.run(
        "journalctl -u 'systemd-cryptsetup@offsite_alpha.service' --no-pager -o cat",
      );
      assert.match(crypt, /Failed to activate|No key available|failed/i);
      assert.equal(await g.mapped('offsite_alpha'), false);
      const sent = await mails(vm);
      assert.equal(sent.length, 1, `one mail, not one per reporter: ${sent.map(subject).join(' | ')}`);
      assert.match(subject(sent[0]!), /backup of drive "alpha" FAILED at step unlock/);
      await vm.waitFor(`test "$(cat '${LED_DIR}/multi_intensity')" = '${RED.split('|')[1]}'`, {
        timeoutMs: 60_000,
      });
      await vm.unplug('alpha');
    }));

  test('(7) the target full: failed at sync, "target full", the previous copy intact', () =>
    scenario(async () => {
      await vm.restore('installed');
      const previous = await g.manifest(SOURCE);
      let mark = await recordMark(vm);
      let before = await g.invocation('offsite-backup@charlie.service');
      await vm.plug(drives.charlie!.image, { id: 'charlie' });
      const first = await g.finalStatus(mark, 'charlie');
      assert.equal(first.state, 'success', first.message ?? '');
      assert.equal(await g.unitFinished('offsite-backup@charlie.service', before), 'success');
      await vm.unplug('charlie');

      // 16 MiB of filesystem; the source grows past it
      await vm.run(`head -c 20000000 /dev/urandom > '${SOURCE}/too-big.bin'`);
      mark = await recordMark(vm);
      before = await g.invocation('offsite-backup@charlie.service');
      await vm.plug(drives.charlie!.image, { id: 'charlie' });
      const final = await g.finalStatus(mark, 'charlie');
      assert.equal(final.state, 'failed');
      assert.equal(final.step, 'sync');
      assert.match(final.message ?? '', /target full/);
      assert.equal(await g.unitFinished('offsite-backup@charlie.service', before), 'exit-code');
      assert.equal(await g.mapped('offsite_charlie'), false);
      const kept = await g.lookInside(
        drives.charlie!.uuid,
        '/etc/offsite/keys/charlie.key',
        async (root) => ({
          current: await g.manifest(`${root}/current`),
          leftovers: (await vm.run(`ls -A ${root}`)).trim(),
        }),
      );
      assert.equal(kept.current, previous, 'current is still the previous copy');
      const sent = await mails(vm);
      assert.equal(sent.length, 1);
      assert.match(subject(sent[0]!), /"charlie" FAILED at step sync/);
      await vm.waitFor(`test "$(cat '${LED_DIR}/multi_intensity')" = '${RED.split('|')[1]}'`, {
        timeoutMs: 60_000,
      });
      await vm.unplug('charlie');
    }));

  test('(8) the broker stopped for the whole run: the backup still succeeds and the mail still goes', () =>
    scenario(async () => {
      await vm.restore('installed');
      await vm.run('systemctl stop mosquitto');
      await editConfig(vm, (c) => {
        (c.email as Record<string, unknown>).on = ['failure', 'overdue', 'warning', 'success'];
      });
      const before = await g.invocation('offsite-backup@bravo.service');
      const started = performance.now();
      await vm.plug(drives.bravo!.image, { id: 'bravo' });
      assert.equal(await g.unitFinished('offsite-backup@bravo.service', before), 'success');
      timing('plug to unit finished (bravo, no broker)', started);
      const book = await ledger(vm);
      assert.equal(book.drives.bravo.last_result, 'success');
      assert.equal(await g.mounted('/mnt/offsite/bravo'), false);
      assert.equal(await g.mapped('offsite_bravo'), false);
      const sent = await mails(vm);
      assert.equal(sent.length, 1);
      assert.match(subject(sent[0]!), /backup of drive "bravo" succeeded/);
      assert.equal((await vm.exec('systemctl is-active mosquitto')).stdout.trim(), 'inactive');
      const journal = await vm.run("journalctl -u 'offsite-backup@bravo' --no-pager -o cat");
      assert.match(journal, /mqtt|broker/i, 'the run says the broker was unreachable');
      await vm.unplug('bravo');
    }));
});
