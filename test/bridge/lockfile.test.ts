import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { acquireLock, readHolder } from '../../bridge/lockfile.js';
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
});
