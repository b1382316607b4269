/**
 * What the product scenarios do in the guest, shared by the e2e test files: wait for a run's
 * outcome (its final status, its unit's result), look at a drive without offsite, and enrol a
 * new stick the way docs/setup.md says.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { luksUuid, makeBlankDisk } from './disk.js';
import { sh } from './host.js';
import { ensureImage } from './image.js';
import {
  CONFIG,
  configYaml,
  diagnostics,
  giveLedToAgent,
  installCheckout,
  LED_DIR,
  makeLed,
  makeSource,
  type Record_,
  records,
  stageCheckout,
  startWitnesses,
  statuses,
} from './product.js';
import { timing } from './timing.js';
import { Vm } from './vm.js';

/** systemd's journal MESSAGE_IDs for a unit that ended well, and one that failed (its UNIT_RESULT says how) */
const UNIT_SUCCEEDED = '7ad2d189f7e94e70a38c781354912448';
const UNIT_FAILED = 'd9b373ed55a64feb8242e02dbe79a49c';

/** A run under TCG: ~10 s of Node start-up, unlock, copy, verify, and the failure unit after it. */
export const RUN_TIMEOUT = 300_000;

export interface EnrolledDrive {
  name: string;
  image: string;
  /** the UUID the drive is plugged by: the LUKS container's, or a plain drive's filesystem's */
  uuid: string;
}

/**
 * A guest with offsite copied in and configured as docs/setup.md sections 2 and 3 say (no drive
 * yet), the source and the LED made; the drive images go to a new directory on the host.
 */
export async function startGuest(name: string): Promise<GuestOps> {
  const disks = await mkdtemp(join(tmpdir(), `offsite-e2e-${name}-`));
  const image = await ensureImage();
  const started = performance.now();
  const [stage, vm] = await Promise.all([stageCheckout(), Vm.start({ image })]);
  const g = new GuestOps(vm, disks);
  await g.setUp(async () => {
    await vm.waitUntilBooted();
    timing('checkout staged and guest started', started);
    const step = performance.now();
    await installCheckout(vm, stage.dir).finally(() => stage.remove());
    timing('offsite copied into the guest', step);
    assert.match(await vm.run('offsite --version'), /^offsite \d/);
    await vm.run('mkdir -p /etc/offsite/keys && chmod 0700 /etc/offsite/keys');
    await vm.writeFile(CONFIG, configYaml(), 0o644);
    await makeSource(vm);
    await makeLed(vm);
  });
  return g;
}

export class GuestOps {
  readonly vm: Vm;
  /** guest time (epoch seconds) at which `invocation` was last asked, per unit */
  readonly #askedAt = new Map<string, string>();
  /** where the drive images live on the host */
  readonly disks: string;

  constructor(vm: Vm, disks: string) {
    this.vm = vm;
    this.disks = disks;
  }

  /** Runs a scenario, or part of the setup; on failure prints what explains it before the error. */
  async scenario(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (error) {
      console.log(await diagnostics(this.vm).catch((e: Error) => `(no diagnostics: ${e.message})`));
      throw error;
    }
  }

  setUp(fn: () => Promise<void>): Promise<void> {
    return this.scenario(fn);
  }

  /**
   * docs/setup.md section 5, then the LED's files go to the agent's group, as the udev rule does
   * for a real LED, and the agent (which could not open them yet) starts again; the witnesses.
   */
  async install(): Promise<void> {
    const step = performance.now();
    const installed = await this.vm.exec('offsite install', { timeoutMs: 300_000 });
    timing('offsite install', step);
    assert.equal(installed.exitCode, 0, `offsite install: ${installed.stderr}`);
    await giveLedToAgent(this.vm);
    await this.vm.run('systemctl restart offsite-led');
    await this.vm.waitFor(`systemctl is-active offsite-led && grep -qx none '${LED_DIR}/trigger'`, {
      timeoutMs: 120_000,
    });
    await startWitnesses(this.vm);
  }

  /** The guest powered off (its console printed first if a test failed), the drive images removed. */
  async shutdown(): Promise<void> {
    if (process.exitCode) console.log(await this.vm.consoleTail());
    await this.vm.shutdown();
    await rm(this.disks, { recursive: true, force: true });
  }

  async sinceMark<T>(
    mark: number,
    find: (recs: Record_[]) => T | undefined,
    timeoutMs = RUN_TIMEOUT,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = find(await records(this.vm, mark));
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`not seen in ${timeoutMs} ms after record ${mark}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  /** The final status of a run of `drive` after `mark` (success or failed). */
  finalStatus(mark: number, drive: string) {
    return this.sinceMark(mark, (recs) =>
      statuses(recs).find((s) => s.drive === drive && (s.state === 'success' || s.state === 'failed')),
    );
  }

  async unitState(unit: string): Promise<Record<string, string>> {
    const out = await this.vm.run(`systemctl show -p InvocationID -p ActiveState -p Result '${unit}'`);
    return Object.fromEntries(
      out
        .trim()
        .split('\n')
        .map((l) => l.split('=') as [string, string]),
    );
  }

  /**
   * Waits for a new invocation of `unit` (other than `before`, from `invocation`) to finish;
   * returns its result. A run that powered its drive off is no longer wanted by a device unit,
   * and systemd unloads it as soon as it has ended well (its InvocationID then reads empty): its
   * end is then read from systemd's own line in the journal ("Deactivated successfully"), among
   * those since `invocation` was asked.
   */
  async unitFinished(unit: string, before: string): Promise<string> {
    const since = this.#askedAt.get(unit);
    const deadline = Date.now() + RUN_TIMEOUT;
    for (;;) {
      const s = await this.unitState(unit);
      if (
        s.InvocationID &&
        s.InvocationID !== before &&
        (s.ActiveState === 'inactive' || s.ActiveState === 'failed')
      )
        return s.Result!;
      if (!s.InvocationID && since) {
        const ended = await this.endedSince(unit, before, since);
        if (ended) return ended;
      }
      if (Date.now() > deadline) throw new Error(`${unit} did not finish a new run: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** The result of the last invocation of `unit` (other than `before`) that ended since `since`, from the journal. */
  private async endedSince(unit: string, before: string, since: string): Promise<string | null> {
    const out = await this.vm.run(`journalctl -q -o json --no-pager --since @${since} -u '${unit}'`);
    let result: string | null = null;
    for (const line of out.split('\n').filter(Boolean)) {
      const e = JSON.parse(line) as { MESSAGE_ID?: string; INVOCATION_ID?: string; UNIT_RESULT?: string };
      if (!e.INVOCATION_ID || e.INVOCATION_ID === before) continue;
      if (e.MESSAGE_ID === UNIT_SUCCEEDED) result = 'success';
      else if (e.MESSAGE_ID === UNIT_FAILED) result = e.UNIT_RESULT ?? 'failed';
    }
    return result;
  }

  /** The unit's current InvocationID ('' if none); `unitFinished` waits for another one. */
  async invocation(unit: string): Promise<string> {
    const now = (await this.vm.run('date +%s.%N')).trim();
    this.#askedAt.set(unit, now);
    return (await this.unitState(unit)).InvocationID ?? '';
  }

  async mounted(dir: string): Promise<boolean> {
    return (await this.vm.exec(`grep -q ' ${dir} ' /proc/mounts`)).exitCode === 0;
  }

  async mapped(mapper: string): Promise<boolean> {
    return (await this.vm.exec(`test -e /dev/mapper/${mapper}`)).exitCode === 0;
  }

  /** Every entry (type, mode, path, link target) and every file's SHA-256, relative to `dir`. */
  manifest(dir: string): Promise<string> {
    return this.vm.run(
      `cd '${dir}' && { find . -mindepth 1 ! -name .offsite-drive.json -printf '%y %m %p -> %l\\n' | LC_ALL=C sort; ` +
        `find . -type f ! -name .offsite-drive.json -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum; }`,
    );
  }

  /**
   * Opens (with `keyFile`, or as a plain filesystem without) and mounts a plugged drive by hand,
   * to look at it, or with `writable` to plant something on it, without offsite.
   */
  async lookInside<T>(
    uuid: string,
    keyFile: string | null,
    fn: (root: string) => Promise<T>,
    opts: { writable?: boolean } = {},
  ): Promise<T> {
    const dev = `/dev/disk/by-uuid/${uuid}`;
    await this.vm.waitFor(`test -b ${dev}`, { timeoutMs: 60_000 });
    const fs = keyFile ? '/dev/mapper/e2echeck' : dev;
    // the journal of a pulled drive is replayed on mount; ro keeps everything else as it is
    await this.vm.run(
      `${keyFile ? `cryptsetup open --key-file ${keyFile} ${dev} e2echeck && ` : ''}` +
        `mkdir -p /mnt/e2echeck && mount -o ${opts.writable ? 'rw' : 'ro'} ${fs} /mnt/e2echeck`,
    );
    try {
      return await fn('/mnt/e2echeck');
    } finally {
      await this.vm.run(`umount /mnt/e2echeck${keyFile ? '; cryptsetup close e2echeck' : ''}`);
    }
  }

  /**
   * A drive powered off by its run (the power-off step) plugged in again for a look, with its
   * backup held off: unplugged, plugged with the unit masked, unmasked once `fn` is done.
   */
  async replugToLook<T>(drive: EnrolledDrive, fn: () => Promise<T>): Promise<T> {
    await this.vm.run(`systemctl mask --runtime offsite-backup@${drive.name}.service`);
    try {
      await this.vm.unplug(drive.name);
      await this.vm.plug(drive.image, { id: drive.name });
      return await fn();
    } finally {
      await this.vm.run(`systemctl unmask --runtime offsite-backup@${drive.name}.service`);
    }
  }

  /** The stick's stable name, as docs/setup.md has people pick it. */
  async usbById(): Promise<string> {
    const r = await this.vm.waitFor('ls /dev/disk/by-id/ | grep "^usb-" | grep -v -- "-part"', {
      timeoutMs: 60_000,
    });
    return `/dev/disk/by-id/${r.stdout.trim().split('\n')[0]}`;
  }

  /**
   * docs/setup.md section 4: plug a new disk, `offsite prepare-drive` it (`--plain`: no LUKS;
   * `passphrase`: `--passphrase`, typed twice on stdin, beside the key file), unplug it.
   */
  async enrol(
    name: string,
    sizeMb: number,
    opts: { plain?: boolean; passphrase?: string } = {},
  ): Promise<EnrolledDrive> {
    const image = join(this.disks, `${name}.img`);
    await makeBlankDisk(image, sizeMb);
    await this.vm.plug(image, { id: name });
    const dev = await this.usbById();
    const started = performance.now();
    // --iter-time: the key derivation is benchmarked to ~2 s per unlock by default, much more under emulation
    const luks = opts.passphrase ? '--iter-time 100 --passphrase' : '--iter-time 100';
    const out = await this.vm.run(
      `offsite prepare-drive '${dev}' --name ${name} ${opts.plain ? '--plain' : luks} --yes-i-typed-it='${dev}'`,
      {
        timeoutMs: 300_000,
        ...(opts.passphrase ? { input: `${opts.passphrase}\n${opts.passphrase}\n` } : {}),
      },
    );
    timing(`prepare-drive ${opts.plain ? '--plain ' : ''}${name} (${sizeMb} MiB)`, started);
    assert.match(out, new RegExp(`Drive ${name} is ready`));
    await this.vm.unplug(name);
    // every stick gets the same by-id name (same port): the next one must not find this one's link
    await this.vm.waitFor(`test ! -e '${dev}'`, { timeoutMs: 60_000 });
    const uuid = opts.plain
      ? (await sh('blkid', ['-p', '-s', 'UUID', '-o', 'value', image])).stdout.trim()
      : await luksUuid(image);
    return { name, image, uuid };
  }
}
