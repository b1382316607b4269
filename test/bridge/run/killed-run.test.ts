/**
 * A run killed with `kill -9` mid-sync: the real `offsite run` in its own
 * process group (as systemd starts it), a real rsync slowed down by
 * --bwlimit, and SIGKILL sent to the run's process only (as a person does in
 * a terminal; systemd would kill the whole cgroup). rsync must not outlive
 * it, and no second run may copy beside one that does.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../../bridge/config.js';
import { type LeftBehind, leftBehind, processStart } from '../../../bridge/processes.js';
import { enrolDrive } from '../../../units/prepare/enrol.js';
import { tempDir } from '../../helpers/trees.js';
import { offsite } from '../../units/cli.js';

const CLI = new URL('../../../bridge/cli.ts', import.meta.url).pathname;

const gone = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/environ`).length === 0; // a zombie's is empty
  } catch {
    return true;
  }
};
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
  async function killMidSync(file: string): Promise<() => LeftBehind[]> {
    const run = spawn(process.execPath, ['--import', 'tsx', CLI, 'run', 'alpha', '--config', file], {
      detached: true,
      stdio: 'ignore',
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

  it('rsync dies with it, and the next run copies alone', { timeout: 120_000 }, async () => {
    const left = await killMidSync(await config('plain', { slow: true }));
    // no deadline: an rsync still copying keeps this waiting (and the test's timeout fails it)
    while (left().length) await tick();
    const next = await offsite(['run', 'alpha', '--config', await config('plain', { slow: false })]);
    assert.equal(next.exitCode, 0, next.stderr);
  });

  it('a program of it that lives on (a lock prefix ignoring SIGTERM) keeps the next run out', {
    timeout: 120_000,
  }, async () => {
    const lock = ['sh', '-c', 'trap "" TERM; "$@"; exit $?', 'sh'];
    const left = await killMidSync(await config('stubborn', { slow: true, lock }));
    const programs = left();
    const pid = programs.find((p) => p.command === 'rsync')?.pid;
    assert.ok(pid, `rsync lives on under the prefix: ${JSON.stringify(programs)}`);
    try {
      const next = await offsite([
        'run',
        'alpha',
        '--config',
        await config('stubborn', { slow: false, lock }),
      ]);
      assert.equal(next.exitCode, 75, next.stdout + next.stderr);
      assert.match(
        next.stderr,
        /another run of drive "alpha" is in progress \(pid \d+ \(offsite run alpha\) died but left .*rsync \(pid \d+\).* running\)/,
      );
      assert.equal(gone(pid), false, 'the survivor was left alone');
    } finally {
      for (const p of programs) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {}
      }
    }
    while (left().length) await tick();
    const after = await offsite([
      'run',
      'alpha',
      '--config',
      await config('stubborn', { slow: false, lock }),
    ]);
    assert.equal(after.exitCode, 0, after.stderr);
  });
});
