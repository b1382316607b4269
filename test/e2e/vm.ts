/**
 * A running Debian guest for the end-to-end tests, driven only through QEMU's own channels:
 * QMP for the hardware (plug, unplug, snapshots) and the guest agent over virtio-serial for
 * commands. The guest has no network (`-nic none`).
 *
 * The API scenarios use:
 *
 *   const vm = await Vm.start({ image: await ensureImage() });   // resolves when the guest agent answers
 *   await vm.waitUntilBooted();                  // systemctl is-system-running --wait (running or degraded)
 *   const r = await vm.exec('systemctl is-active mosquitto');    // { exitCode, stdout, stderr }; never throws on exit code
 *   const out = await vm.run('cat /etc/hostname');               // stdout; throws with stderr on non-zero exit
 *   await vm.waitFor('test -e /dev/mapper/x', { timeoutMs });    // polls until the command exits 0
 *   await vm.background('mqtt', 'mosquitto_sub -v -t "#" > /run/mqtt.log');   // a transient service e2e-mqtt
 *   await vm.writeFile('/etc/offsite/config.yaml', text);        // small files through the agent
 *   const buf = await vm.readFile('/var/lib/offsite/ledger.json');
 *   await vm.copyIn(repo, '/opt/offsite', { exclude: ['/.git'] });  // a directory tree, via a hot-plugged ext4 image
 *   await vm.plug(drive.path, { id: 'alpha' });                  // a USB stick in a USB port (usb-storage on xhci)
 *   await vm.plug(img, { id: 'x', bus: 'virtio' });              // or a virtio-blk disk (needs the guest's ACPI eject)
 *   await vm.unplug('alpha');                                    // pulled, as by hand: waits for DEVICE_DELETED
 *   const leds = await vm.plugKeyboardLeds();                    // real LED class devices: { capslock: '/sys/class/leds/…' }
 *   await vm.checkpoint('booted'); ... await vm.restore('booted'); // savevm/loadvm in the run's overlay (~seconds)
 *   await vm.shutdown();                                         // poweroff in the guest; QEMU exits
 *
 * Start-up: the first start on a host boots the kernel (30-60 s under TCG), waits for
 * multi-user and saves the whole machine (a QEMU migration stream, zstd) beside the cached
 * image; every later start resumes that state in a few seconds, with the guest clock set to
 * now. OFFSITE_E2E_BOOT=cold (or `boot: 'cold'`) boots the kernel every time instead.
 *
 * Each run writes to its own qcow2 overlay on top of the cached base image, so the cache stays
 * clean. The run directory (overlay, sockets, console.log) is removed on shutdown unless
 * OFFSITE_E2E_KEEP=1; `vm.consoleTail()` gives the guest's serial console for failure reports.
 *
 * Acceleration: KVM when /dev/kvm can actually boot the guest's kernel (probed once per host
 * kernel and QEMU version, the verdict cached), else TCG with a bounded translation cache.
 * OFFSITE_E2E_ACCEL=kvm|tcg forces one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Accel, chooseAccel } from './accel.js';
import { elapsed, sh } from './host.js';
import { type GuestImage, KERNEL_CMDLINE } from './image.js';
import { GuestAgent, Qmp } from './qmp.js';
import { timing } from './timing.js';

export interface VmOptions {
  image: GuestImage;
  memoryMb?: number;
  cpus?: number;
  accel?: Accel;
  /** Milliseconds to wait for the guest agent after QEMU starts. */
  bootTimeoutMs?: number;
  /**
   * snapshot (default): resume the cached booted state, made by one cold boot the first time;
   * cold: boot the kernel every time. OFFSITE_E2E_BOOT=cold sets the default.
   */
  boot?: 'snapshot' | 'cold';
  log?: (line: string) => void;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  timeoutMs?: number;
  env?: Record<string, string>;
  input?: string | Buffer;
}

export interface PlugOptions {
  /** The QEMU device id, used again by unplug. [a-zA-Z0-9_-]. */
  id: string;
  /** usb: a usb-storage device on the xhci controller, removable like a stick; virtio: a virtio-blk disk. */
  bus?: 'usb' | 'virtio';
  readOnly?: boolean;
}

const QEMU = 'qemu-system-x86_64';

interface Machine {
  image: GuestImage;
  accel: Accel;
  memoryMb: number;
  cpus: number;
  log: (line: string) => void;
  bootTimeoutMs: number;
}
const GUEST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface ExecStatus {
  exited: boolean;
  exitcode?: number;
  signal?: number;
  'out-data'?: string;
  'err-data'?: string;
}

export class Vm {
  private readonly plugged = new Map<string, string>();
  private exited = false;
  private copies = 0;

  readonly accel: Accel;
  /** True when the guest resumed the booted snapshot, false when it booted its kernel. */
  readonly resumed: boolean;
  /** The run's directory: overlay.qcow2, console.log, the QMP and agent sockets. */
  readonly runDir: string;
  private readonly qemu: ChildProcess;
  private readonly qmp: Qmp;
  private readonly agent: GuestAgent;
  private readonly log: (line: string) => void;

  private constructor(
    accel: Accel,
    resumed: boolean,
    runDir: string,
    child: ChildProcess,
    qmp: Qmp,
    agent: GuestAgent,
    log: (line: string) => void,
  ) {
    this.accel = accel;
    this.resumed = resumed;
    this.runDir = runDir;
    this.qemu = child;
    this.qmp = qmp;
    this.agent = agent;
    this.log = log;
    child.once('exit', () => {
      this.exited = true;
    });
  }

  static async start(options: VmOptions): Promise<Vm> {
    const log = options.log ?? ((line: string) => console.log(line));
    const { image } = options;
    const accel = options.accel ?? (await chooseAccel(image, log));
    const machine: Machine = {
      image,
      accel,
      memoryMb: options.memoryMb ?? 1024,
      cpus: options.cpus ?? 2,
      log,
      bootTimeoutMs: options.bootTimeoutMs ?? 240_000,
    };
    const boot = options.boot ?? (process.env.OFFSITE_E2E_BOOT === 'cold' ? 'cold' : 'snapshot');
    if (boot === 'snapshot') {
      try {
        const booted = await Vm.bootedSnapshot(machine);
        return await Vm.launch(machine, {
          backing: booted.disk,
          backingFormat: 'qcow2',
          incoming: booted.state,
        });
      } catch (error) {
        log(`e2e: resuming the booted snapshot failed, booting cold instead: ${(error as Error).message}`);
      }
    }
    return Vm.launch(machine, { backing: image.rootfs, backingFormat: 'raw' });
  }

  /**
   * Starts QEMU on a fresh overlay over `backing`. With `incoming`, the guest resumes from a
   * saved migration stream (the booted snapshot) instead of booting: the command line must
   * then be the one the stream was saved with, except for file paths.
   */
  private static async launch(
    machine: Machine,
    disk: { backing: string; backingFormat: 'raw' | 'qcow2'; incoming?: string; overlay?: string },
  ): Promise<Vm> {
    const { accel, log } = machine;
    const runDir = await mkdtemp(join(tmpdir(), 'offsite-e2e-'));
    const overlay = disk.overlay ?? join(runDir, 'overlay.qcow2');
    await sh('qemu-img', [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-F',
      disk.backingFormat,
      '-b',
      disk.backing,
      overlay,
    ]);

    const args = qemuArgs(machine, runDir, overlay, disk.incoming !== undefined);
    const started = performance.now();
    const how = disk.incoming ? 'resuming the booted snapshot' : 'booting';
    log(
      `e2e: starting QEMU (${accel}${accel === 'tcg' ? ', software emulation' : ''}), ${how}, in ${runDir}`,
    );
    const child = spawn(QEMU, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    child.once('exit', () => process.off('exit', killOnExit));

    try {
      const exitedEarly = new Promise<never>((_, reject) =>
        child.once('exit', (code) =>
          reject(new Error(`QEMU exited (${code}) during boot: ${stderr.trim()}`)),
        ),
      );
      const connectAll = async () => {
        const qmp = await Qmp.connect(join(runDir, 'qmp.sock'));
        const agent = await GuestAgent.connect(join(runDir, 'qga.sock'));
        if (disk.incoming) {
          await qmp.execute('migrate-incoming', { uri: `exec:zstd -q -d -c '${disk.incoming}'` });
          // The state was saved from a stopped guest, so it arrives paused.
          const state = await waitForRunState(qmp, ['running', 'paused'], 120_000);
          if (state === 'paused') await qmp.execute('cont');
          await agent.sync(30_000);
          // The guest resumes at the moment the snapshot was taken.
          await agent.execute('guest-set-time', { time: Date.now() * 1_000_000 });
        } else {
          await agent.sync(machine.bootTimeoutMs);
        }
        return { qmp, agent };
      };
      const { qmp, agent } = await Promise.race([connectAll(), exitedEarly]);
      exitedEarly.catch(() => undefined);
      log(`e2e: guest agent answers ${elapsed(started)} after QEMU started`);
      return new Vm(accel, disk.incoming !== undefined, runDir, child, qmp, agent, log);
    } catch (error) {
      child.kill('SIGKILL');
      const tail = await readFile(join(runDir, 'console.log'), 'utf8').catch(() => '');
      if (process.env.OFFSITE_E2E_KEEP !== '1') await rm(runDir, { recursive: true, force: true });
      throw new Error(
        `${(error as Error).message}\n--- guest console (last lines) ---\n${lastLines(tail, 30)}`,
      );
    }
  }

  /** Stops the guest and writes its whole state (memory, devices) to a file; QEMU then quits. */
  private async saveStateAndQuit(statePath: string): Promise<void> {
    await this.qmp.execute('stop');
    await this.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 10 * 2 ** 30 });
    await this.qmp.execute('migrate', { uri: `exec:zstd -q -1 -o '${statePath}'` });
    const deadline = Date.now() + 300_000;
    for (;;) {
      const { status, 'error-desc': why } = await this.qmp.execute<{
        status?: string;
        'error-desc'?: string;
      }>('query-migrate');
      if (status === 'completed') break;
      if (status === 'failed' || status === 'cancelled')
        throw new Error(`saving the guest state ${status}: ${why}`);
      if (Date.now() > deadline) throw new Error('saving the guest state took too long');
      await sleep(200);
    }
    const gone = new Promise<void>((resolve) => this.qemu.once('exit', () => resolve()));
    await this.qmp.execute('quit').catch(() => undefined);
    await gone;
    this.qmp.close();
    this.agent.close();
    await rm(this.runDir, { recursive: true, force: true });
  }

  /**
   * The booted snapshot beside the image: the root disk as it was when the guest reached
   * multi-user (disk.qcow2 over rootfs.img) and the machine state then (state.zst). Made by one
   * cold boot; every later start resumes from it in seconds. Keyed by everything that must
   * match between saving and resuming.
   */
  private static async bootedSnapshot(machine: Machine): Promise<{ disk: string; state: string }> {
    const qemuVersion = (await sh(QEMU, ['--version'])).stdout.split('\n')[0] ?? '';
    // A saved state resumes only on the same machine: same QEMU, same command line bar paths.
    const key = createHash('sha256')
      .update(qemuVersion)
      .update(JSON.stringify(qemuArgs(machine, '/RUN', '/OVERLAY', false)))
      .digest('hex')
      .slice(0, 12);
    const dir = join(machine.image.dir, `booted-${key}`);
    const result = { disk: join(dir, 'disk.qcow2'), state: join(dir, 'state.zst') };
    if (existsSync(join(dir, 'READY'))) return result;

    const started = performance.now();
    machine.log('e2e: no booted snapshot yet: booting cold once to make it');
    const work = `${dir}.tmp-${process.pid}`;
    await rm(work, { recursive: true, force: true });
    await mkdir(work, { recursive: true });
    try {
      const vm = await Vm.launch(machine, {
        backing: machine.image.rootfs,
        backingFormat: 'raw',
        overlay: join(work, 'disk.qcow2'),
      });
      try {
        const state = await vm.waitUntilBooted(machine.bootTimeoutMs);
        if (state !== 'running') throw new Error(`the guest booted ${state}, not running`);
        await vm.run('sync');
        await vm.saveStateAndQuit(join(work, 'state.zst'));
      } catch (error) {
        vm.kill();
        throw error;
      }
      for (const old of await readdir(machine.image.dir)) {
        const path = join(machine.image.dir, old);
        if (old.startsWith('booted-') && path !== work) await rm(path, { recursive: true, force: true });
      }
      await rename(work, dir);
    } catch (error) {
      await rm(work, { recursive: true, force: true });
      throw error;
    }
    await writeFile(join(dir, 'READY'), `${new Date().toISOString()}\n`);
    timing('booted snapshot made (cold boot + save)', started);
    return result;
  }

  /** Runs `sh -c command` in the guest as root. Resolves with the exit code; rejects only on timeout or agent failure. */
  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = options.timeoutMs ?? 120_000;
    const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
    const env = { PATH: GUEST_PATH, HOME: '/root', LANG: 'C.UTF-8', ...options.env };
    const { pid } = await this.agent.execute<{ pid: number }>('guest-exec', {
      path: '/usr/bin/timeout',
      arg: ['-k', '5', String(seconds), '/bin/sh', '-c', command],
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      'capture-output': true,
      ...(options.input !== undefined ? { 'input-data': Buffer.from(options.input).toString('base64') } : {}),
    });
    const deadline = Date.now() + timeoutMs + 15_000;
    for (let wait = 20; ; wait = Math.min(wait * 2, 250)) {
      const status = await this.agent.execute<ExecStatus>('guest-exec-status', { pid });
      if (status.exited) {
        const result = {
          exitCode: status.exitcode ?? 128 + (status.signal ?? 0),
          stdout: Buffer.from(status['out-data'] ?? '', 'base64').toString('utf8'),
          stderr: Buffer.from(status['err-data'] ?? '', 'base64').toString('utf8'),
        };
        if (result.exitCode === 124 || result.exitCode === 137) {
          throw new Error(`guest command timed out after ${timeoutMs} ms: ${command}\n${result.stderr}`);
        }
        return result;
      }
      if (Date.now() > deadline) throw new Error(`guest command did not finish: ${command}`);
      await sleep(wait);
    }
  }

  /** Like exec, but returns stdout and throws (with stderr) when the command fails. */
  async run(command: string, options: ExecOptions = {}): Promise<string> {
    const result = await this.exec(command, options);
    if (result.exitCode !== 0) {
      throw new Error(`guest: \`${command}\` exited ${result.exitCode}\n${result.stderr}${result.stdout}`);
    }
    return result.stdout;
  }

  /** Polls a guest command until it exits 0; returns its result, or throws with the last one. */
  async waitFor(
    command: string,
    options: { timeoutMs?: number; intervalMs?: number } = {},
  ): Promise<ExecResult> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const result = await this.exec(command, { timeoutMs: Math.max(5_000, deadline - Date.now()) });
      if (result.exitCode === 0) return result;
      if (Date.now() > deadline) {
        throw new Error(
          `guest: \`${command}\` still exits ${result.exitCode} after ${timeoutMs} ms\n${result.stderr}${result.stdout}`,
        );
      }
      await sleep(options.intervalMs ?? 250);
    }
  }

  /**
   * Starts a long-running guest command as a transient systemd service (e2e-<name>.service),
   * e.g. an MQTT recorder or an SMTP sink; stop it with `vm.run('systemctl stop e2e-<name>')`.
   * Its output goes to the journal: `journalctl -u e2e-<name>`.
   */
  async background(name: string, command: string): Promise<string> {
    if (!/^[a-z0-9_-]+$/.test(name)) throw new Error(`bad service name ${name}`);
    const unit = `e2e-${name}.service`;
    const quoted = `'${command.replace(/'/g, `'\\''`)}'`;
    await this.run(`systemd-run --quiet --collect --unit=${unit} /bin/sh -c ${quoted}`);
    return unit;
  }

  /** Waits for boot to finish; returns systemd's verdict (running, or degraded with the failed units). */
  async waitUntilBooted(timeoutMs = 180_000): Promise<string> {
    const result = await this.exec('systemctl is-system-running --wait', { timeoutMs });
    const state = result.stdout.trim();
    if (state !== 'running') {
      const failed = await this.exec('systemctl --failed --no-legend --plain');
      this.log(`e2e: guest is ${state}; failed units: ${failed.stdout.trim() || '(none)'}`);
    }
    return state;
  }

  async writeFile(guestPath: string, content: string | Buffer, mode?: number): Promise<void> {
    const handle = await this.agent.execute<number>('guest-file-open', { path: guestPath, mode: 'w' });
    try {
      const data = Buffer.from(content);
      // The agent takes requests of a few MB at most; small files are what this is for.
      for (let offset = 0; offset < data.length || offset === 0; offset += 1 << 20) {
        const chunk = data.subarray(offset, offset + (1 << 20));
        await this.agent.execute('guest-file-write', { handle, 'buf-b64': chunk.toString('base64') });
        if (data.length === 0) break;
      }
    } finally {
      await this.agent.execute('guest-file-close', { handle });
    }
    if (mode !== undefined) await this.run(`chmod ${mode.toString(8)} '${guestPath}'`);
  }

  async readFile(guestPath: string): Promise<Buffer> {
    const handle = await this.agent.execute<number>('guest-file-open', { path: guestPath, mode: 'r' });
    const parts: Buffer[] = [];
    try {
      for (;;) {
        const r = await this.agent.execute<{ count: number; 'buf-b64': string; eof: boolean }>(
          'guest-file-read',
          {
            handle,
            count: 1 << 20,
          },
        );
        parts.push(Buffer.from(r['buf-b64'], 'base64'));
        if (r.eof || r.count === 0) break;
      }
    } finally {
      await this.agent.execute('guest-file-close', { handle });
    }
    return Buffer.concat(parts);
  }

  /** Plugs a raw disk image into the running guest. */
  async plug(imagePath: string, options: PlugOptions): Promise<void> {
    const { id } = options;
    if (!/^[a-zA-Z][a-zA-Z0-9_-]*$/.test(id)) throw new Error(`bad device id ${id}`);
    if (this.plugged.has(id)) throw new Error(`device ${id} is already plugged`);
    const node = `${id}-blk`;
    await this.qmp.execute('blockdev-add', {
      driver: 'raw',
      'node-name': node,
      'read-only': options.readOnly ?? false,
      file: { driver: 'file', filename: imagePath, 'read-only': options.readOnly ?? false },
    });
    try {
      if ((options.bus ?? 'usb') === 'usb') {
        await this.qmp.execute('device_add', {
          driver: 'usb-storage',
          bus: 'xhci.0',
          drive: node,
          id,
          removable: true,
        });
      } else {
        await this.qmp.execute('device_add', { driver: 'virtio-blk-pci', drive: node, id });
      }
    } catch (error) {
      await this.qmp.execute('blockdev-del', { 'node-name': node }).catch(() => undefined);
      throw error;
    }
    this.plugged.set(id, node);
  }

  /** Pulls a device out; for USB this is a surprise removal, as when a person pulls the stick. */
  async unplug(id: string, timeoutMs = 30_000): Promise<void> {
    const node = this.plugged.get(id);
    if (node === undefined) throw new Error(`device ${id} is not plugged`);
    const mark = this.qmp.mark();
    await this.qmp.execute('device_del', { id });
    await this.qmp.waitEvent('DEVICE_DELETED', (d) => d.device === id, timeoutMs, mark);
    if (node) await this.qmp.execute('blockdev-del', { 'node-name': node });
    this.plugged.delete(id);
  }

  /**
   * Plugs a USB keyboard whose lock LEDs the guest kernel exposes as LED class devices
   * (/sys/class/leds/input<N>::capslock, ::numlock, ::scrolllock; brightness 0 or 1):
   * real sysfs LEDs for the LED agent's sysfs driver, since the guest has no other LED.
   * Returns their /sys/class/leds paths by function, e.g. { capslock: '/sys/class/leds/input3::capslock' }.
   */
  async plugKeyboardLeds(id = 'ledkbd'): Promise<Record<string, string>> {
    await this.qmp.execute('device_add', { driver: 'usb-kbd', bus: 'xhci.0', id });
    this.plugged.set(id, '');
    // The machine's PS/2 keyboard has lock LEDs too (input0::*): take the ones on USB.
    const result = await this.waitFor(
      'for l in /sys/class/leds/input*::capslock; do readlink -f "$l/device" | grep -q /usb && echo "$l"; done | grep .',
      { timeoutMs: 30_000 },
    );
    const input = result.stdout
      .trim()
      .split('\n')
      .pop()!
      .replace(/::capslock$/, '');
    const names = (await this.run(`ls -d ${input}::*`)).trim().split('\n');
    return Object.fromEntries(names.map((path) => [path.slice(path.indexOf('::') + 2), path]));
  }

  /**
   * Copies a host directory into the guest: packed with mkfs.ext4 -d, plugged read-only,
   * copied with rsync -a (owners, modes, links, hard links kept). `exclude` takes rsync patterns
   * (e.g. '/.git'); they save guest time, not packing time.
   */
  async copyIn(hostDir: string, guestDir: string, options: { exclude?: string[] } = {}): Promise<void> {
    const started = performance.now();
    const id = `copyin${++this.copies}`;
    const image = join(this.runDir, `${id}.img`);
    const uuid = randomUUID();
    const bytes = Number((await sh('du', ['-sb', '--apparent-size', hostDir])).stdout.split('\t')[0]);
    const files = (await sh('find', [hostDir, '-xdev'])).stdout.split('\n').length;
    const mb = Math.ceil((bytes * 1.3) / 2 ** 20) + 32 + Math.ceil(files / 128);
    await sh('mkfs.ext4', [
      '-q',
      '-F',
      '-O',
      '^has_journal',
      '-N',
      String(files + 1024),
      '-U',
      uuid,
      '-E',
      'root_owner=0:0',
      '-d',
      hostDir,
      image,
      `${mb}M`,
    ]);
    await this.plug(image, { id, bus: 'virtio', readOnly: true });
    const mnt = `/run/offsite-e2e-${id}`;
    const excludes = (options.exclude ?? []).map((p) => `'--exclude=${p.replace(/'/g, '')}'`).join(' ');
    try {
      await this.waitFor(`test -b /dev/disk/by-uuid/${uuid}`, { timeoutMs: 30_000 });
      await this.run(
        `mkdir -p ${mnt} '${guestDir}' && mount -o ro /dev/disk/by-uuid/${uuid} ${mnt} && ` +
          `rsync -aH --exclude=/lost+found ${excludes} ${mnt}/ '${guestDir}/' && umount ${mnt} && rmdir ${mnt}`,
        { timeoutMs: 600_000 },
      );
    } finally {
      await this.unplug(id);
      await rm(image, { force: true });
    }
    this.log(
      `e2e: copied ${hostDir} (${(bytes / 2 ** 20).toFixed(0)} MB) to ${guestDir} in ${elapsed(started)}`,
    );
  }

  /** Saves the whole VM (memory, devices, disk) inside the run's overlay. Nothing may be plugged. */
  async checkpoint(name: string): Promise<void> {
    if (this.plugged.size > 0) throw new Error(`unplug ${[...this.plugged.keys()].join(', ')} first`);
    const out = await this.qmp.human(`savevm ${name}`);
    if (out.trim()) throw new Error(`savevm ${name}: ${out.trim()}`);
  }

  /** Returns the guest to a checkpoint; the guest clock is set to now, since it resumes from the past. */
  async restore(name: string): Promise<void> {
    for (const id of [...this.plugged.keys()]) await this.unplug(id);
    const out = await this.qmp.human(`loadvm ${name}`);
    if (out.trim()) throw new Error(`loadvm ${name}: ${out.trim()}`);
    this.agent.invalidate();
    await this.agent.sync(30_000);
    await this.agent.execute('guest-set-time', { time: Date.now() * 1_000_000 });
  }

  /** The last lines of the guest's serial console (kernel messages, systemd's emergency output). */
  async consoleTail(lines = 40): Promise<string> {
    return lastLines(await readFile(join(this.runDir, 'console.log'), 'utf8').catch(() => ''), lines);
  }

  /** Powers the guest off (QEMU exits), or kills QEMU if it does not within the timeout. */
  async shutdown(timeoutMs = 60_000): Promise<void> {
    if (!this.exited) {
      const gone = new Promise<void>((resolve) => {
        if (this.exited) resolve();
        else this.qemu.once('exit', () => resolve());
      });
      this.agent.fire('guest-shutdown', { mode: 'powerdown' });
      const cancel = new AbortController();
      const timer = sleep(timeoutMs, 'timeout' as const, { signal: cancel.signal }).catch(() => undefined);
      const outcome = await Promise.race([gone, timer]);
      cancel.abort();
      if (outcome === 'timeout') {
        this.log('e2e: guest did not power off in time; killing QEMU');
        this.qemu.kill('SIGKILL');
        await gone;
      }
    }
    this.qmp.close();
    this.agent.close();
    if (process.env.OFFSITE_E2E_KEEP !== '1') await rm(this.runDir, { recursive: true, force: true });
  }

  /** Stops QEMU at once (for cleanup after a failure). */
  kill(): void {
    if (!this.exited) this.qemu.kill('SIGKILL');
  }

  get running(): boolean {
    return !this.exited;
  }
}

function qemuArgs(machine: Machine, runDir: string, overlay: string, incoming: boolean): string[] {
  const { image, accel } = machine;
  return [
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    ...(accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg,tb-size=256', '-cpu', 'max']),
    '-m',
    String(machine.memoryMb),
    '-smp',
    String(machine.cpus),
    '-nic',
    'none',
    '-serial',
    `file:${join(runDir, 'console.log')}`,
    '-kernel',
    image.kernel,
    '-initrd',
    image.initrd,
    '-append',
    KERNEL_CMDLINE,
    '-blockdev',
    `driver=qcow2,node-name=root,file.driver=file,file.filename=${overlay}`,
    '-device',
    'virtio-blk-pci,drive=root,id=rootdisk',
    '-device',
    'qemu-xhci,id=xhci',
    '-device',
    'virtio-rng-pci',
    '-device',
    'virtio-serial-pci,id=vser',
    '-chardev',
    `socket,id=qga,path=${join(runDir, 'qga.sock')},server=on,wait=off`,
    '-device',
    'virtserialport,bus=vser.0,chardev=qga,name=org.qemu.guest_agent.0',
    '-qmp',
    `unix:${join(runDir, 'qmp.sock')},server=on,wait=off`,
    ...(incoming ? ['-incoming', 'defer'] : []),
  ];
}

async function waitForRunState(qmp: Qmp, wanted: string[], timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status } = await qmp.execute<{ status: string }>('query-status');
    if (wanted.includes(status)) return status;
    if (Date.now() > deadline) {
      throw new Error(`the guest is ${status}, not ${wanted.join(' or ')}, after ${timeoutMs} ms`);
    }
    await sleep(100);
  }
}

function lastLines(text: string, n: number): string {
  return text.split('\n').slice(-n).join('\n');
}
