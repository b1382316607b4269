/**
 * Untrusted input end to end (issue 9): what the guest's systemd starts when a drive is plugged,
 * inside the hardened units (docs/units.md), against a drive that carries planted links, a stick
 * that only pretends to be an enrolled drive, and a NAS whose root filesystem is full. Each is
 * refused or reported, and the NAS's files are what they were.
 *
 * One guest, set up like scenarios.test.ts (docs/setup.md to the letter) with two drives: alpha
 * (LUKS) and delta (plain, `prepare-drive --plain`); saved as the checkpoint `installed`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeBlankDisk } from './disk.js';
import { type EnrolledDrive, type GuestOps, startGuest } from './guest-ops.js';
import { sh } from './host.js';
import { ledger, mails, recordMark, records, SOURCE, STATE_DIR, statuses, subject } from './product.js';
import { timing } from './timing.js';
import type { Vm } from './vm.js';

/** A directory of the NAS that a planted link points at. */
const VICTIM = '/srv/victim';

/** Lines of a JavaScript stack trace, as Node prints them. */
const STACK_LINE = /^\s+at .+(\(|\s)(node:|file:|\/).+:\d+:\d+\)?$/m;

describe('untrusted input in a guest: refused or reported, the NAS untouched', () => {
  let vm: Vm;
  let disks: string;
  let g: GuestOps;
  const drives: Record<string, EnrolledDrive> = {};
  /** the victim directory and the source as they were before any scenario */
  let victimBefore: string;
  let sourceBefore: string;

  const scenario = (fn: () => Promise<void>) => g.scenario(fn);

  /** What the units of `drive` logged since `since` (seconds since the epoch, in the guest). */
  const journal = (drive: string, since: string) =>
    vm.run(
      `journalctl -q --since @${since} --no-pager -o cat -u 'offsite-backup@${drive}' -u 'offsite-failure@${drive}'`,
    );

  /** Plugs `image` and waits for the run of `drive` it starts: its final status and unit result. */
  async function plugAndRun(image: string, drive: string) {
    const mark = await recordMark(vm);
    const since = (await vm.run('date +%s')).trim();
    const before = await g.invocation(`offsite-backup@${drive}.service`);
    const started = performance.now();
    await vm.plug(image, { id: drive });
    const final = await g.finalStatus(mark, drive);
    const result = await g.unitFinished(`offsite-backup@${drive}.service`, before);
    timing(`plug to unit finished (${drive}, ${final.state})`, started);
    return { final, result, since };
  }

  /** With the backup held off, plugs a drive and changes what is on it by hand. */
  async function plant(drive: EnrolledDrive, keyFile: string, shell: (root: string) => string) {
    await vm.run(`systemctl mask --runtime offsite-backup@${drive.name}.service`);
    try {
      await vm.plug(drive.image, { id: drive.name });
      await g.lookInside(drive.uuid, keyFile, (root) => vm.run(shell(root)), { writable: true });
      await vm.unplug(drive.name);
    } finally {
      await vm.run(`systemctl unmask --runtime offsite-backup@${drive.name}.service`);
    }
  }

  const sha256 = async (file: string) =>
    createHash('sha256')
      .update(await readFile(file))
      .digest('hex');

  before(async () => {
    const started = performance.now();
    g = await startGuest('untrusted');
    vm = g.vm;
    disks = g.disks;
    await g.setUp(async () => {
      await vm.run(
        `mkdir -p ${VICTIM}/deep && echo 'a NAS file' > ${VICTIM}/keep.txt && ` +
          `head -c 100000 /dev/urandom > ${VICTIM}/deep/data.bin && ln -s keep.txt ${VICTIM}/link`,
      );
      drives.alpha = await g.enrol('alpha', 64);
      drives.delta = await g.enrol('delta', 32, { plain: true });
      await g.install();
      victimBefore = await g.manifest(VICTIM);
      sourceBefore = await g.manifest(SOURCE);
      await vm.checkpoint('installed');
      timing('untrusted: setup total (copy, enrol 2 drives, install)', started);
    });
  });

  after(() => g?.shutdown());

  test('(1) delta, a plain drive, enrolled by prepare-drive --plain: its first backup succeeds', () =>
    scenario(async () => {
      const { final, result } = await plugAndRun(drives.delta!.image, 'delta');
      assert.equal(final.state, 'success', final.message ?? '');
      assert.equal(result, 'success');
      // powered off by the run: plugged in again to look
      const copy = await g.replugToLook(drives.delta!, () =>
        g.lookInside(drives.delta!.uuid, null, (root) => g.manifest(`${root}/current`)),
      );
      assert.equal(copy, sourceBefore, 'the copy on the drive equals the source');
      await vm.unplug('delta');
    }));

  test("(2) a blank stick formatted with delta's UUID: refused at mount, nothing written to it", () =>
    scenario(async () => {
      const impostor = join(disks, 'impostor.img');
      await makeBlankDisk(impostor, 32);
      await sh('mkfs.ext4', ['-q', '-F', '-U', drives.delta!.uuid, impostor]);
      const held = await sha256(impostor);
      const lastSuccess = (await ledger(vm)).drives.delta.last_success;
      const mailsBefore = (await mails(vm)).length;

      const { final, result, since } = await plugAndRun(impostor, 'delta');
      assert.equal(final.state, 'failed');
      assert.equal(final.step, 'mount');
      assert.match(final.message ?? '', /not enrolled/);
      assert.match(final.message ?? '', /offsite enrol delta/);
      assert.equal(result, 'exit-code');
      assert.equal(await g.mounted('/mnt/offsite/delta'), false);
      assert.equal(
        (await ledger(vm)).drives.delta.last_success,
        lastSuccess,
        'the last good copy is still the last',
      );
      const sent = (await mails(vm)).slice(mailsBefore);
      assert.equal(sent.length, 1, sent.map(subject).join('\n'));
      assert.match(subject(sent[0]!), /"delta" FAILED at step mount/);
      assert.doesNotMatch(await journal('delta', since), STACK_LINE);
      await vm.unplug('delta');
      assert.equal(await sha256(impostor), held, 'the impostor is byte for byte what it was');
      await rm(impostor);
    }));

  test('(3) alpha (LUKS, with its key) carries snapshots -> /srv/victim: refused at sync, /srv/victim untouched', () =>
    scenario(async () => {
      const key = '/etc/offsite/keys/alpha.key';
      await plant(drives.alpha!, key, (root) => `ln -s ${VICTIM} ${root}/snapshots`);
      const { final, result, since } = await plugAndRun(drives.alpha!.image, 'alpha');
      assert.equal(final.state, 'failed');
      assert.equal(final.step, 'sync');
      assert.match(final.message ?? '', /snapshots on the drive is a symlink \(to \/srv\/victim\)/);
      assert.equal(result, 'exit-code');
      assert.equal(await g.mapped('offsite_alpha'), false);
      assert.equal(await g.manifest(VICTIM), victimBefore, '/srv/victim is what it was');
      assert.equal(await g.manifest(SOURCE), sourceBefore, 'the source is what it was');
      assert.doesNotMatch(await journal('alpha', since), STACK_LINE);
      const left = await g.lookInside(drives.alpha!.uuid, key, (root) =>
        vm.run(`readlink ${root}/snapshots; ls -A ${root}`),
      );
      assert.equal(
        left,
        `${VICTIM}\n.offsite-drive.json\nlost+found\nsnapshots\n`,
        'the link is left for a person',
      );
      await vm.unplug('alpha');
    }));

  test('(4) alpha carries current -> /srv/victim: replaced by a real copy, /srv/victim untouched', () =>
    scenario(async () => {
      const key = '/etc/offsite/keys/alpha.key';
      await plant(drives.alpha!, key, (root) => `rm ${root}/snapshots && ln -s ${VICTIM} ${root}/current`);
      const { final, result } = await plugAndRun(drives.alpha!.image, 'alpha');
      assert.equal(final.state, 'success', final.message ?? '');
      assert.equal(result, 'success');
      assert.equal(await g.manifest(VICTIM), victimBefore, '/srv/victim is what it was');
      const copy = await g.replugToLook(drives.alpha!, () =>
        g.lookInside(drives.alpha!.uuid, key, async (root) => ({
          current: await vm.run(`readlink ${root}/current`),
          files: await g.manifest(`${root}/current/`),
        })),
      );
      assert.match(copy.current, /^snapshots\/[^/]+\n$/);
      assert.equal(copy.files, sourceBefore, 'current is a copy of the source');
      await vm.unplug('alpha');
    }));

  test("(5) the NAS's root filesystem full: the run fails saying so, the mail and the status still go out", () =>
    scenario(async () => {
      await vm.restore('installed');
      // every free block, root's reserve included: fallocate (quick, it writes nothing), then dd for the rest
      await vm.run(
        `fallocate -l $(( $(stat -f -c '%f * %S' /) - 64 * 1024 * 1024 )) /var/fill && ` +
          '{ dd if=/dev/zero of=/var/fill2 bs=64k status=none; dd if=/dev/zero of=/var/fill3 bs=4k status=none; sync; } 2>/dev/null; ' +
          '! (echo x > /var/probe) 2>/dev/null; r=$?; rm -f /var/probe; exit $r',
        { timeoutMs: 300_000 },
      );
      const mailsBefore = (await mails(vm)).length;
      const mark = await recordMark(vm);
      const { final, result, since } = await plugAndRun(drives.alpha!.image, 'alpha');
      assert.equal(final.state, 'failed');
      assert.match(final.message ?? '', /no space left on \/var\/lib\/offsite/);
      assert.equal(result, 'exit-code');
      assert.equal(await g.mapped('offsite_alpha'), false);
      assert.equal(await g.mounted('/mnt/offsite/alpha'), false);
      // OnFailure= ran, and found the failure reported by the run (it could not say so in the ledger)
      assert.equal(await g.unitFinished('offsite-failure@alpha.service', ''), 'success');
      const sent = (await mails(vm)).slice(mailsBefore);
      assert.equal(sent.length, 1, sent.map(subject).join(' | '));
      assert.match(subject(sent[0]!), /backup of drive "alpha" FAILED at step identify/);
      const last = statuses(await records(vm, mark)).at(-1);
      assert.match(last?.message ?? '', /no space left on/, "the run's own reason is the last word");
      assert.doesNotMatch(await journal('alpha', since), STACK_LINE);
      assert.equal(await g.manifest(SOURCE), sourceBefore, 'the source is what it was');
      assert.equal((await vm.exec(`ls ${STATE_DIR}/locks`)).stdout.trim(), '', 'no lock left behind');
      await vm.unplug('alpha');
      await vm.run('rm -f /var/fill /var/fill2 /var/fill3');
    }));
});
