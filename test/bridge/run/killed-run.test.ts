/**
 * A run killed with `kill -9` mid-sync: the real `offsite run` in its own
 * process group (as systemd starts it), a real rsync slowed down by
 * --bwlimit, and SIGKILL sent to the run's process only (as a person does in
 * a terminal; systemd would kill the whole cgroup). rsync must not outlive
 * it, and no second run may copy beside one that does: the next run stops
 * what is left of it first.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../../bridge/config.js';
import { type LeftBehind, leftBehind, processStart } from '../../../bridge/processes.js';
import { enrolDrive } from '../../../units/prepare/enrol.js';
import { tempDir } from '../../helpers/trees.js';
import { offsite } from '../../units/cli.js';

const CLI = new URL('../../../bridge/cli.ts', import.meta.url).pathname;

const tick = () => new Promise((r) => setTimeout(r, 50));

describe('a run killed with kill -9 during sync', () => {
  let dir: string;
  before(() => {
    dir = tempDir('offsite-killed-');
    mkdirSync(join(dir, 'source'));
    writeFileSync(join(dir, 'source', 'big.bin'), Buffer.alloc(8 * 1024 * 1024, 5));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** a drive (enrolled) and a state_dir of its own per name; `slow` copies at 8 KiB/s (the 8 MiB would take 17 minutes) */
  async function config(name: string, opts: { slow: boolean; lock?: string[] }): Promise<string> {
    const file = join(dir, `${name}${opts.slow ? '-slow' : ''}.yaml`);
    mkdirSync(join(dir, name), { recursive: true });
    writeFileSync(
      file,
      JSON.stringify({
        state_dir: join(dir, `state-${name}`),
        source: {
          path: join(dir, 'source'),
          ...(opts.slow ? { rsync_args: ['--bwlimit=8'] } : {}),
          ...(opts.lock ? { lock: opts.lock } : {}),
        },
        drives: [{ name: 'alpha', directory: join(dir, name) }],
      }),
    );
    // enrolled once, by the slow run's config (enrol takes the drive's lock too)
    if (opts.slow) {
      const loaded = loadConfig(file);
      await enrolDrive(loaded, loaded.drives[0]!, { force: false });
    }
    return file;
  }

  /**
   * Start `offsite run alpha` in a process group of its own, wait until its rsync copies, SIGKILL
   * the run alone. Returns what carries the run's mark (bridge/processes.ts) right after.
   */
  async function killMidSync(file: string, env = process.env): Promise<() => LeftBehind[]> {
    const run = spawn(process.execPath, ['--import', 'tsx', CLI, 'run', 'alpha', '--config', file], {
      detached: true,
      stdio: 'ignore',
      env,
    });
    const exited = new Promise((r) => run.on('exit', r));
    const start = processStart(run.pid!);
    let programs: LeftBehind[] = [];
    while (!programs.some((p) => p.command === 'rsync')) {
      assert.equal(run.exitCode, null, 'the run ended before its rsync started');
      await tick();
      programs = leftBehind(run.pid!, start);
    }
    process.kill(run.pid!, 'SIGKILL');
    await exited;
    return () => leftBehind(run.pid!, start);
  }

  /** the next run of alpha stops what `left` finds of the killed run (saying so), copies, and leaves nothing of it */
  async function nextRunStops(left: () => LeftBehind[], file: string, env?: Record<string, string>) {
    assert.ok(
      left().some((p) => p.command === 'rsync'),
      `rsync lives on: ${JSON.stringify(left())}`,
    );
    try {
      const next = await offsite(['run', 'alpha', '--config', file], { env });
      assert.equal(next.exitCode, 0, next.stdout + next.stderr);
      assert.match(
        next.stdout + next.stderr,
        /alpha: pid \d+ \(offsite run alpha\) died but left .*rsync \(pid \d+\).* running: stopping them/,
      );
      assert.deepEqual(left(), [], 'nothing of the killed run is left');
    } finally {
      for (const p of left()) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {}
      }
    }
  }

  it('rsync dies with it, and the next run copies alone', { timeout: 120_000 }, async () => {
    const left = await killMidSync(await config('plain', { slow: true }));
    // no deadline: an rsync still copying keeps this waiting (and the test's timeout fails it)
    while (left().length) await tick();
    const next = await offsite(['run', 'alpha', '--config', await config('plain', { slow: false })]);
    assert.equal(next.exitCode, 0, next.stderr);
  });

  it('without setpriv (util-linux) rsync lives on, and the next run stops it and copies', {
    timeout: 120_000,
  }, async () => {
    // every program of the system but setpriv
    const bin = join(dir, 'bin-without-setpriv');
    mkdirSync(bin, { recursive: true });
    for (const d of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'])
      for (const name of existsSync(d) ? readdirSync(d) : [])
        if (name !== 'setpriv' && !existsSync(join(bin, name))) symlinkSync(join(d, name), join(bin, name));
    const env = { ...process.env, PATH: bin };
    const left = await killMidSync(await config('nosetpriv', { slow: true }), env);
    await nextRunStops(left, await config('nosetpriv', { slow: false }), { PATH: bin });
  });

  it('a lock prefix that ignores SIGTERM lives on: the next run stops it (SIGKILL after the grace) and copies', {
    timeout: 120_000,
  }, async () => {
    // ignores SIGTERM, and goes on (sleeping, SIGTERM ignored still) when its rsync fails
    const lock = ['sh', '-c', 'trap "" TERM; "$@" || sleep 600', 'sh'];
    const left = await killMidSync(await config('stubborn', { slow: true, lock }));
    await nextRunStops(left, await config('stubborn', { slow: false, lock }));
  });
});
