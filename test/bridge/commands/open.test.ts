/**
 * `offsite open` and `offsite close` through the CLI, on a directory drive and
 * on a real ext4 drive on a loop device (a `uuid:` drive), with a real
 * mosquitto: read-only, where `current` is and which run made it, a run and
 * the ExecStopPost= cleanup refusing an open drive, the status and the MQTT
 * contract saying it, closing by hand and by itself when idle; what open says
 * of a LUKS drive whose header no longer reads. LUKS drives are opened in the
 * VM suite (test/e2e/restore.test.ts).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { Ledger } from '../../../bridge/ledger.js';
import { tryLock } from '../../../bridge/lockfile.js';
import { mountAt } from '../../../bridge/mounts.js';
import { readOpenRecord } from '../../../bridge/open-record.js';
import { topics } from '../../../bridge/protocol.js';
import { driveLockFile } from '../../../bridge/run/run-drive.js';
import { localTime } from '../../../bridge/words.js';
import { type Received, recorder, startBroker, type TestBroker } from '../../../harness/broker.js';
import { type LoopImage, makeExt4 } from '../../helpers/loop.js';
import { awkwardTree, diffTrees, tempDir } from '../../helpers/trees.js';
import { offsiteHere } from '../../units/cli.js';

async function until<T>(what: string, check: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = check();
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`not seen within ${timeoutMs} ms: ${what}`);
    await sleep(100);
  }
}

/** A process whose working directory is `dir` (it uses the drive), until killed. */
function holder(dir: string): ChildProcess {
  return spawn('sleep', ['600'], { cwd: dir, stdio: 'ignore' });
}

describe('offsite open and close', () => {
  let broker: TestBroker;
  let base: string;
  let dir: string;
  const cleanups: Array<() => void> = [];

  before(async () => {
    broker = await startBroker();
    dir = tempDir('offsite-open-');
    base = `offsite-open-${process.pid}`;
    mkdirSync(join(dir, 'src'));
    awkwardTree(join(dir, 'src'));
  });
  after(async () => {
    for (const c of cleanups.reverse()) c();
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A configuration with drive `name` (and `others`) and the broker; returns its file. */
  function configFile(name: string, drive: Record<string, unknown>, others: unknown[] = []): string {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      stringify({
        node_id: 'nas',
        state_dir: join(dir, `state-${name}`),
        source: { path: join(dir, 'src') },
        drives: [{ name, ...drive }, ...others],
        mqtt: { url: broker.url, base_topic: base },
      }),
    );
    return file;
  }

  const retained = async (topic: string) => {
    const r = await recorder(broker.url, [topic]);
    try {
      return (await r.waitFor((m: Received) => m.retain, 5000)).json() as Record<string, unknown>;
    } finally {
      await r.close();
    }
  };
  const t = () => topics(base, 'nas');

  describe('a directory drive', () => {
    let config: string;
    let target: string;
    before(async () => {
      target = join(dir, 'alpha');
      mkdirSync(target);
      mkdirSync(join(dir, 'charlie'));
      config = configFile('alpha', { directory: target }, [
        { name: 'charlie', directory: join(dir, 'charlie') },
      ]);
      assert.equal((await offsiteHere(['enrol', 'alpha', '--config', config])).exitCode, 0);
      assert.equal((await offsiteHere(['enrol', 'charlie', '--config', config])).exitCode, 0);
      const ran = await offsiteHere(['run', 'alpha', '--config', config]);
      assert.equal(ran.exitCode, 0, ran.stderr);
    });

    it('opens it and says where current is and which run made it, when; a run and the cleanup leave it alone; close ends it', async () => {
      const snapshot = readlinkSync(join(target, 'current'));
      const runId = snapshot.replace('snapshots/', '');
      const made = new Ledger(join(dir, 'state-alpha')).history(5).find((h) => h.run_id === runId)!;
      const opened = await offsiteHere(['open', 'alpha', '--config', config]);
      assert.equal(opened.exitCode, 0, opened.stderr);
      assert.ok(
        opened.stdout.includes(
          `current: ${target}/current -> ${snapshot}: the copy of run ${runId}, made ${localTime(made.ended)}\n`,
        ),
        opened.stdout,
      );
      assert.match(opened.stdout, /It is not safe to remove until it is closed: offsite close alpha/);

      const status = JSON.parse((await offsiteHere(['status', '--json', '--config', config])).stdout);
      assert.equal(status.drives[0].open, true);
      assert.equal(status.drives[0].opened.at, target);
      assert.match((await offsiteHere(['status', '--config', config])).stdout, /alpha\s.*\sopen\s/);
      assert.equal((await retained(t().status)).state, 'open');
      assert.equal((await retained(t().drive('alpha'))).open, true);

      const run = await offsiteHere(['run', 'alpha', '--config', config]);
      assert.equal(run.exitCode, 75);
      assert.match(
        run.stderr,
        /drive "alpha" is open \(offsite open: at .* since .*\): nothing was done\. Close it first: offsite close alpha/,
      );
      assert.equal(readlinkSync(join(target, 'current')), snapshot, 'current is as it was');
      assert.deepEqual(readdirSync(join(target, 'snapshots')), [runId]);
      assert.equal((await retained(t().status)).state, 'open', 'the refused run published nothing');
      // another drive's run succeeds meanwhile and republishes every drive's state: alpha's still says open
      const charlie = await offsiteHere(['run', 'charlie', '--config', config]);
      assert.equal(charlie.exitCode, 0, charlie.stderr);
      assert.equal((await retained(t().status)).state, 'success');
      assert.equal((await retained(t().drive('alpha'))).open, true);
      const again = await offsiteHere(['open', 'alpha', '--config', config]);
      assert.equal(again.exitCode, 75);
      assert.match(again.stderr, /drive "alpha" is open/);
      const cleanup = await offsiteHere(['cleanup', 'alpha', '--config', config]);
      assert.equal(cleanup.exitCode, 0);

      const closed = await offsiteHere(['close', 'alpha', '--config', config]);
      assert.equal(closed.exitCode, 0, closed.stderr);
      assert.match(
        closed.stdout,
        /alpha is closed \(a directory drive: nothing to unmount or power off\): safe to remove/,
      );
      assert.equal(readOpenRecord(join(dir, 'state-alpha'), 'alpha'), null);
      assert.equal((await retained(t().drive('alpha'))).open, false);
      const after = await retained(t().status);
      assert.deepEqual(
        [after.state, after.drive, after.message],
        ['idle', 'alpha', 'alpha is closed: safe to remove'],
      );
      const twice = await offsiteHere(['close', 'alpha', '--config', config]);
      assert.equal(twice.exitCode, 0);
      assert.match(twice.stdout, /^drive "alpha" is not open: nothing to do$/m);
      assert.equal(
        (await offsiteHere(['run', 'alpha', '--config', config])).exitCode,
        0,
        'runs again once closed',
      );
    });

    it('an unknown drive is a usage error; a directory that is not there is not plugged in', async () => {
      const unknown = await offsiteHere(['open', 'zulu', '--config', config]);
      assert.equal(unknown.exitCode, 2);
      assert.match(unknown.stderr, /no drive named "zulu" in .* \(drives: alpha, charlie\)/);
      const gone = configFile('ghost', { directory: join(dir, 'nowhere') });
      const absent = await offsiteHere(['open', 'ghost', '--config', gone]);
      assert.equal(absent.exitCode, 75);
      assert.match(
        absent.stderr,
        /drive "ghost" is not plugged in \(its directory .*nowhere does not exist\): nothing was started/,
      );
      const closing = await offsiteHere(['close', 'zulu', '--config', config]);
      assert.equal(closing.exitCode, 2);
    });
  });

  describe('a uuid: drive on a loop device', () => {
    let img: LoopImage;
    let config: string;
    let mnt: string;
    const state = () => join(dir, 'state-bravo');
    before(async () => {
      img = makeExt4(32);
      cleanups.push(() => img.detach());
      mnt = join(dir, 'mnt-bravo');
      config = configFile('bravo', { uuid: img.uuid, mount_point: mnt });
      assert.equal((await offsiteHere(['enrol', 'bravo', '--config', config])).exitCode, 0);
      const ran = await offsiteHere(['run', 'bravo', '--config', config]);
      assert.equal(ran.exitCode, 0, ran.stderr);
      assert.match(ran.stdout, /power-off: loop\d+ is a loop device: there is no disk to power off/);
    });

    it('mounts it read-only: what it holds equals the source, nothing can be written; close unmounts it', async () => {
      const opened = await offsiteHere(['open', 'bravo', '--config', config]);
      assert.equal(opened.exitCode, 0, opened.stderr);
      assert.match(opened.stdout, new RegExp(`bravo is open, read-only, on ${mnt}\\n`));
      const m = mountAt(mnt);
      assert.equal(m?.source, img.device);
      assert.ok(m?.options.split(',').includes('ro'), m?.options);
      assert.equal(diffTrees(join(dir, 'src'), join(mnt, 'current')), '');
      assert.throws(() => writeFileSync(join(mnt, 'current', 'new-file'), 'x'), /EROFS/);
      // the ExecStopPost= safety net after a refused run leaves it mounted
      assert.equal((await offsiteHere(['run', 'bravo', '--config', config])).exitCode, 75);
      const cleanup = await offsiteHere(['cleanup', 'bravo', '--config', config]);
      assert.match(
        cleanup.stdout,
        /cleanup bravo: the drive is open \(offsite open, read-only on .* since .*\): left as it is/,
      );
      assert.ok(mountAt(mnt), 'still mounted');

      const closed = await offsiteHere(['close', 'bravo', '--config', config]);
      assert.equal(closed.exitCode, 0, closed.stderr);
      assert.match(closed.stdout, /bravo: unmount: .* is unmounted/);
      assert.match(
        closed.stdout,
        /bravo: power-off: loop\d+ is a loop device: there is no disk to power off/,
      );
      assert.match(closed.stdout, /bravo is closed: safe to remove/);
      assert.equal(mountAt(mnt), null);
    });

    it('--at DIR mounts it there; --at over the source is refused before anything is done', async () => {
      const elsewhere = join(dir, 'restore-here');
      const opened = await offsiteHere(['open', 'bravo', '--at', elsewhere, '--config', config]);
      assert.equal(opened.exitCode, 0, opened.stderr);
      assert.equal(mountAt(elsewhere)?.source, img.device);
      assert.equal(mountAt(mnt), null);
      assert.equal((await offsiteHere(['close', 'bravo', '--config', config])).exitCode, 0);
      assert.equal(mountAt(elsewhere), null);

      const over = await offsiteHere(['open', 'bravo', '--at', join(dir, 'src', 'x'), '--config', config]);
      assert.equal(over.exitCode, 2);
      assert.match(over.stderr, /--at .*: .* overlaps source\.path/);
      assert.equal(readOpenRecord(state(), 'bravo'), null);
    });

    it('a LUKS drive whose header no longer reads: absent or not LUKS, and open names the header backup that helps, or would have', async () => {
      const key = join(dir, 'echo.key');
      writeFileSync(key, 'a key file of no use here\n', { mode: 0o600 });
      const luks = (uuid: string) =>
        configFile('echo', { luks_uuid: uuid, key_file: key, mount_point: join(dir, 'mnt-echo') });
      const headers = join(dir, 'state-echo', 'headers');
      const backup = join(headers, 'echo.luksheader');
      // a zeroed header takes the UUID with it: the drive looks absent
      const absent = luks('0e0e0e0e-1111-2222-3333-444444444444');
      const lost = await offsiteHere(['open', 'echo', '--config', absent]);
      assert.equal(lost.exitCode, 75);
      assert.match(lost.stderr, /drive "echo" is not plugged in \(no device with UUID 0e0e0e0e-/);
      assert.ok(
        lost.stderr.includes(
          `the header backup that prepare-drive makes, ${backup}, would have helped, and it is not there`,
        ),
        lost.stderr,
      );
      mkdirSync(headers, { recursive: true });
      writeFileSync(backup, 'the header backup\n', { mode: 0o600 });
      const kept = await offsiteHere(['open', 'echo', '--config', absent]);
      assert.equal(kept.exitCode, 75);
      assert.ok(
        kept.stderr.includes(`cryptsetup luksHeaderRestore <device> --header-backup-file ${backup}`),
        kept.stderr,
      );
      // the UUID reads, but not as LUKS (here a plain ext4): nothing is mounted, and the same advice
      const notLuks = await offsiteHere(['open', 'echo', '--config', luks(img.uuid)]);
      assert.equal(notLuks.exitCode, 1, notLuks.stderr);
      assert.match(notLuks.stderr, /is not a LUKS container/);
      assert.match(notLuks.stderr, /echo was not opened \(identify failed, above\)/);
      assert.ok(notLuks.stderr.includes(`--header-backup-file ${backup}`), notLuks.stderr);
      assert.equal(mountAt(join(dir, 'mnt-echo')), null);
      assert.equal(readOpenRecord(join(dir, 'state-echo'), 'echo'), null);
    });

    it('is refused while a run holds the drive', async () => {
      const taken = tryLock(driveLockFile(state(), 'bravo'), 'offsite run bravo');
      assert.ok(taken.lock);
      try {
        const refused = await offsiteHere(['open', 'bravo', '--config', config]);
        assert.equal(refused.exitCode, 75);
        assert.match(refused.stderr, /a run of drive "bravo" is in progress \(pid \d+ \(offsite run bravo\)/);
        assert.equal(mountAt(mnt), null);
      } finally {
        taken.lock.release();
      }
    });

    it('closing while something uses it names the process and keeps it open', async () => {
      assert.equal((await offsiteHere(['open', 'bravo', '--config', config])).exitCode, 0);
      const shell = holder(join(mnt, 'current'));
      try {
        const busy = await offsiteHere(['close', 'bravo', '--config', config]);
        assert.equal(busy.exitCode, 1);
        assert.match(
          busy.stderr,
          new RegExp(`in use by pid ${shell.pid} \\(sleep\\): working directory ${mnt}/`),
        );
        assert.ok(mountAt(mnt));
        assert.ok(readOpenRecord(state(), 'bravo'));
      } finally {
        shell.kill();
      }
      await until('the holder gone', () => shell.exitCode !== null || shell.signalCode !== null);
      assert.equal((await offsiteHere(['close', 'bravo', '--config', config])).exitCode, 0);
    });

    it('an opening whose mount is gone (unmounted by hand, pulled) is stale: the next run goes ahead', async () => {
      assert.equal((await offsiteHere(['open', 'bravo', '--config', config])).exitCode, 0);
      const { execFileSync } = await import('node:child_process');
      execFileSync('umount', [mnt]);
      const run = await offsiteHere(['run', 'bravo', '--config', config]);
      assert.equal(run.exitCode, 0, run.stderr);
      assert.match(
        run.stderr,
        /bravo: it was left open by offsite open, but nothing is mounted on .* any more: taken as closed/,
      );
      assert.equal(readOpenRecord(state(), 'bravo'), null);
    });

    it('--idle: closes it by itself once nothing has used it for that long, never while something does', async () => {
      const opened = await offsiteHere(['open', 'bravo', '--idle', '1s', '--config', config]);
      assert.equal(opened.exitCode, 0, opened.stderr);
      assert.match(opened.stdout, /It closes by itself after 1s without use\./);
      const watcher = readOpenRecord(state(), 'bravo')?.watcher;
      assert.ok(watcher, 'the watcher is recorded');
      cleanups.push(() => {
        try {
          process.kill(watcher.pid);
        } catch {}
      });
      const log = join(state(), 'open', 'bravo.log');
      const read = () => (existsSync(log) ? readFileSync(log, 'utf8') : '');
      const shell = holder(join(mnt, 'current'));
      try {
        await until('the watcher sees the holder', () => read().includes(`in use: pid ${shell.pid} (sleep)`));
        // several of its looks (every 0.5 s) past the idle time: it keeps the drive open
        await sleep(3000);
        assert.doesNotMatch(read(), /: closing it$/m);
        assert.ok(mountAt(mnt));
      } finally {
        shell.kill();
      }
      await until('closed by itself', () => read().includes('bravo is closed: safe to remove'));
      assert.equal(readOpenRecord(state(), 'bravo'), null);
      assert.equal(mountAt(mnt), null);
      const said = read();
      assert.ok(
        said.indexOf('in use:') < said.indexOf('no longer in use') &&
          said.indexOf('no longer in use') < said.indexOf('unused for 1s: closing it'),
        said,
      );
      // the watcher publishes after it has closed the drive
      const r = await recorder(broker.url, [t().drive('bravo')]);
      try {
        await r.waitFor((m) => (m.json() as { open: boolean }).open === false, 30_000);
      } finally {
        await r.close();
      }
    });
  });
});
