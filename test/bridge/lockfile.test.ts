import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { acquireLock, describeBusy, describeStopping, readHolder, tryLock } from '../../bridge/lockfile.js';
import { fullDisk } from '../helpers/full-disk.js';
import { tempDir } from '../helpers/trees.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function lockPath(): string {
  const d = tempDir('offsite-lock-');
  dirs.push(d);
  return join(d, 'locks', 'source.lock');
}

/** the pid of a process that has exited */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number(String(r.stdout).trim());
}

describe('the source lock file', () => {
  it('records who holds it, and is gone after release', async () => {
    const file = lockPath();
    const held = await acquireLock(file, { label: 'drive alpha' });
    const h = readHolder(file)!;
    assert.equal(h.pid, process.pid);
    assert.equal(h.label, 'drive alpha');
    held.release();
    assert.equal(existsSync(file), false);
    held.release(); // twice is harmless
  });

  it('taken again at once by the same process, it reads differently, so a waiter that saw the old one cannot remove it', () => {
    // a waiter that read the first lock, then found it gone, may reclaim only that exact text; the
    // second lock must never match it, even within the same millisecond (CI once lost a ledger update so)
    const file = lockPath();
    const texts = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const { lock } = tryLock(file, 'ledger');
      assert.ok(lock);
      texts.add(readFileSync(file, 'utf8'));
      lock.release();
    }
    assert.equal(texts.size, 50);
    const first = tryLock(file, 'ledger').lock!;
    first.release();
    const second = tryLock(file, 'ledger').lock!;
    first.release(); // a stale handle's release is harmless
    assert.equal(existsSync(file), true);
    second.release();
    assert.equal(existsSync(file), false);
  });

  it('a second holder waits until the first releases', async () => {
    const file = lockPath();
    const order: string[] = [];
    const a = await acquireLock(file, { label: 'a' });
    let waited = false;
    const b = acquireLock(file, { label: 'b', pollMs: 5, onWait: () => (waited = true) }).then((l) => {
      order.push('b acquired');
      return l;
    });
    while (!waited) await new Promise((r) => setTimeout(r, 5));
    order.push('a releases');
    a.release();
    const heldB = await b;
    assert.deepEqual(order, ['a releases', 'b acquired']);
    assert.equal(readHolder(file)?.label, 'b');
    heldB.release();
  });

  it('serializes separate processes', async () => {
    const file = lockPath();
    const log = join(file, '..', '..', 'log');
    writeFileSync(log, '');
    const script = `
      import { appendFileSync } from 'node:fs';
      import { acquireLock } from ${JSON.stringify(new URL('../../bridge/lockfile.ts', import.meta.url).pathname)};
      const l = await acquireLock(process.argv[1], { pollMs: 5, maxPollMs: 20 });
      appendFileSync(process.argv[2], 'in ' + process.pid + '\\n');
      await new Promise((r) => setTimeout(r, 50));
      appendFileSync(process.argv[2], 'out ' + process.pid + '\\n');
      l.release();`;
    const children = Array.from({ length: 4 }, () =>
      spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, file, log], {
        stdio: 'inherit',
      }),
    );
    const codes = await Promise.all(children.map((c) => new Promise((r) => c.on('close', r))));
    assert.deepEqual(codes, [0, 0, 0, 0]);
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    assert.equal(lines.length, 8);
    for (let i = 0; i < lines.length; i += 2) {
      const [inWord, inPid] = lines[i]!.split(' ');
      const [outWord, outPid] = lines[i + 1]!.split(' ');
      assert.deepEqual([inWord, outWord, inPid], ['in', 'out', outPid], `no overlap: ${lines.join(', ')}`);
    }
  });

  it('reclaims a lock whose holder is dead, or whose pid now belongs to another process', async () => {
    const file = lockPath();
    (await acquireLock(file)).release(); // makes the directory
    writeFileSync(
      file,
      JSON.stringify({ pid: deadPid(), start: '1', time: new Date().toISOString(), label: 'crashed' }),
    );
    const l1 = await acquireLock(file, { label: 'after crash' });
    assert.equal(readHolder(file)?.label, 'after crash');
    l1.release();

    // our own pid, but a different start time: the pid was reused after the holder died
    writeFileSync(
      file,
      JSON.stringify({ pid: process.pid, start: '1', time: new Date().toISOString(), label: 'old' }),
    );
    const l2 = await acquireLock(file, { label: 'reused pid' });
    assert.equal(readHolder(file)?.label, 'reused pid');
    l2.release();
  });

  it('several waiters on a stale lock: exactly one reclaims it at a time', async () => {
    const file = lockPath();
    (await acquireLock(file)).release();
    writeFileSync(
      file,
      JSON.stringify({ pid: deadPid(), start: null, time: new Date().toISOString(), label: 'dead' }),
    );
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 5 }, async () => {
        const l = await acquireLock(file, { pollMs: 1, maxPollMs: 5 });
        inside++;
        most = Math.max(most, inside);
        await new Promise((r) => setTimeout(r, 5));
        inside--;
        l.release();
      }),
    );
    assert.equal(most, 1);
  });

  it('a wait is given up when the run is cancelled, and the holder keeps the lock', async () => {
    const file = lockPath();
    const a = await acquireLock(file, { label: 'a' });
    const ac = new AbortController();
    const waiting = acquireLock(file, {
      signal: ac.signal,
      pollMs: 5,
      onWait: () => ac.abort(new Error('SIGTERM')),
    });
    await assert.rejects(waiting, /SIGTERM/);
    assert.equal(readHolder(file)?.label, 'a');
    a.release();
  });

  it('tryLock never waits: a live holder keeps it, and is named', async () => {
    const file = lockPath();
    const a = await acquireLock(file, { label: 'offsite run alpha' });
    const b = tryLock(file, 'offsite cleanup alpha');
    assert.equal(b.lock, null);
    assert.equal(b.busy?.holder?.pid, process.pid);
    assert.match(describeBusy(b.busy!), new RegExp(`^pid ${process.pid} \\(offsite run alpha\\) since `));
    a.release();
    const c = tryLock(file, 'offsite cleanup alpha');
    assert.equal(readHolder(file)?.label, 'offsite cleanup alpha');
    c.lock?.release();
  });

  it('an empty or garbled lock file is no lock: it is reclaimed at once', async () => {
    for (const junk of ['', '{"pid":', 'not json']) {
      const file = lockPath();
      mkdirSync(join(file, '..'), { recursive: true });
      writeFileSync(file, junk);
      const t = tryLock(file, 'after junk');
      assert.ok(t.lock, `reclaimed ${JSON.stringify(junk)}`);
      assert.equal(readHolder(file)?.label, 'after junk');
      t.lock.release();
    }
  });

  it('on a full disk: says "no space left", and leaves no lock (empty or not) behind', async () => {
    const disk = fullDisk();
    try {
      const file = join(disk.dir, 'locks', 'drive-alpha.lock');
      mkdirSync(join(disk.dir, 'locks'));
      disk.fill();
      assert.throws(
        () => tryLock(file, 'offsite run alpha'),
        new RegExp(`^Error: no space left on ${disk.dir}/locks: cannot write the lock drive-alpha.lock$`),
      );
      await assert.rejects(acquireLock(file), /no space left on /);
      assert.deepEqual(readdirSync(join(disk.dir, 'locks')), []);
      disk.free();
      const t = tryLock(file, 'room again');
      assert.equal(readHolder(file)?.label, 'room again');
      t.lock?.release();
    } finally {
      disk.unmount();
    }
  });

  /**
   * A holder that takes the lock and starts a program the way a run starts rsync; the program
   * ignores the SIGTERM it gets when its parent dies (as a lock prefix may), and the holder is
   * SIGKILLed. Returns the program's pid.
   */
  async function deadHolderWithProgram(file: string): Promise<number> {
    const script = `
      import { acquireLock } from ${JSON.stringify(new URL('../../bridge/lockfile.ts', import.meta.url).pathname)};
      import { spawnOwned } from ${JSON.stringify(new URL('../../bridge/exec.ts', import.meta.url).pathname)};
      await acquireLock(process.argv[1], { label: 'offsite run alpha' });
      const child = spawnOwned(['sh', '-c', 'trap "" TERM; echo ready; exec sleep 600'], { stdio: ['ignore', 'pipe', 'ignore'] });
      child.stdout.once('data', () => process.stdout.write(String(child.pid) + '\\n'));
      setInterval(() => {}, 1000);`;
    const holder = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, file], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const childPid = Number(
      await new Promise<string>((resolve) => holder.stdout.once('data', (c: Buffer) => resolve(String(c)))),
    );
    const exited = new Promise((r) => holder.on('exit', r));
    holder.kill('SIGKILL');
    await exited;
    return childPid;
  }

  const gone = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/environ`).length === 0; // a zombie's is empty
    } catch {
      return true;
    }
  };

  it('a holder killed while programs it started keep running: busy until they end', async () => {
    const file = lockPath();
    const childPid = await deadHolderWithProgram(file);
    const t = tryLock(file, 'next run');
    const left = t.busy?.left ?? [];
    try {
      assert.equal(t.lock, null, 'not taken while the program of the dead holder runs');
      assert.ok(
        left.some((p) => p.pid === childPid),
        `${childPid} in ${JSON.stringify(left)}`,
      );
      assert.match(
        describeBusy(t.busy!),
        /^pid \d+ \(offsite run alpha\) died but left .*\(pid \d+\).* running$/,
      );
    } finally {
      for (const p of left) process.kill(p.pid, 'SIGKILL');
    }
    while (!left.every((p) => gone(p.pid))) await new Promise((r) => setTimeout(r, 10));
    const again = tryLock(file, 'next run');
    assert.ok(again.lock, 'reclaimed once nothing of the dead holder runs');
    again.lock.release();
  });

  it('a waiter that stops what a dead holder left running: SIGKILL for what ignores SIGTERM, then the lock', {
    timeout: 60_000,
  }, async () => {
    const file = lockPath();
    const childPid = await deadHolderWithProgram(file);
    const said: string[] = [];
    try {
      const lock = await acquireLock(file, {
        label: 'next run',
        stopLeftBehind: (busy) => said.push(describeStopping(busy)),
        onWait: (_h, busy) => said.push(`waiting: ${describeBusy(busy)}`),
      });
      assert.equal(gone(childPid), true, 'the program that ignored SIGTERM is gone');
      assert.equal(readHolder(file)?.label, 'next run');
      lock.release();
    } finally {
      if (!gone(childPid)) process.kill(childPid, 'SIGKILL');
    }
    assert.equal(said.length, 1, said.join('\n'));
    assert.match(
      said[0]!,
      /^pid \d+ \(offsite run alpha\) died but left sleep \(pid \d+\) running: stopping them \(nothing of a dead run will use them; SIGTERM, then SIGKILL after 10 s\)$/,
    );
  });
});
