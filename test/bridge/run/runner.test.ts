import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Drive, parseConfig } from '../../../bridge/config.js';
import type { RunEvents } from '../../../bridge/events.js';
import { childLogger, silentLogger } from '../../../bridge/log.js';
import { Bus } from '../../../bridge/run/bus.js';
import { runSteps } from '../../../bridge/run/runner.js';
import { stepsFor } from '../../../bridge/steps/index.js';
import { type RunContext, type Step, StepError } from '../../../bridge/steps/step.js';

const drives = (() => {
  const c = parseConfig({
    source: { path: '/srv' },
    drives: [
      {
        name: 'alpha',
        luks_uuid: '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0',
        key_file: '/etc/offsite/keys/alpha.key',
        mount_point: '/mnt/offsite/alpha',
      },
      { name: 'bravo', uuid: '1c2d3e4f-5061-7283-94a5-b6c7d8e9f0a1', mount_point: '/mnt/offsite/bravo' },
      { name: 'scratch', directory: '/tmp/x' },
    ],
  });
  const [luks, filesystem, directory] = c.drives as [Drive, Drive, Drive];
  return { luks, filesystem, directory };
})();

function context(signal = new AbortController().signal) {
  const config = parseConfig({ source: { path: '/srv' }, drives: [{ name: 'alpha', directory: '/tmp/x' }] });
  const bus = new Bus<RunEvents>();
  const seen: string[] = [];
  bus.on('run:start', () => {
    seen.push('run:start');
  });
  bus.on('step:start', (e) => {
    seen.push(`start ${e.step}`);
  });
  bus.on('step:done', (e) => {
    seen.push(`done ${e.step}`);
  });
  bus.on('run:end', (e) => {
    seen.push(`end ${e.result} ${e.step ?? ''}`.trim());
  });
  const ctx: RunContext = {
    config,
    drive: config.drives[0]!,
    runId: 'r1',
    log: childLogger(silentLogger(), 'alpha'),
    signal,
    facts: { warnings: [] },
    progress: () => {},
    warn: (m) => {
      ctx.facts.warnings.push(m);
    },
  };
  return { ctx, bus, seen };
}

function step(name: string, log: string[], opts: { fail?: Error; undoFails?: boolean } = {}): Step {
  return {
    name,
    title: name,
    async run() {
      log.push(`run ${name}`);
      if (opts.fail) throw opts.fail;
    },
    async undo() {
      log.push(`undo ${name}`);
      if (opts.undoFails) throw new Error(`cannot undo ${name}`);
    },
  };
}

describe('the step runner', () => {
  it('walks every step in order and announces each one', async () => {
    const { ctx, bus, seen } = context();
    const did: string[] = [];
    const out = await runSteps([step('a', did), step('b', did)], ctx, bus);
    assert.deepEqual(did, ['run a', 'run b']);
    assert.deepEqual(seen, ['run:start', 'start a', 'done a', 'start b', 'done b', 'end success']);
    assert.equal(out.exitCode, 0);
    assert.equal(out.result, 'success');
  });

  it('stops at the first failure and undoes the failing step and those before it, newest first', async () => {
    const { ctx, bus, seen } = context();
    const did: string[] = [];
    const out = await runSteps(
      [step('a', did), step('b', did), step('c', did, { fail: new Error('disk on fire') }), step('d', did)],
      ctx,
      bus,
    );
    assert.deepEqual(did, ['run a', 'run b', 'run c', 'undo c', 'undo b', 'undo a']);
    assert.equal(out.result, 'failed');
    assert.equal(out.step, 'c');
    assert.equal(out.message, 'disk on fire');
    assert.equal(out.exitCode, 1);
    assert.deepEqual(seen.slice(-2), ['start c', 'end failed c']);
  });

  it('keeps walking the undos when one of them fails, and says so', async () => {
    const { ctx, bus } = context();
    const did: string[] = [];
    const out = await runSteps(
      [step('a', did), step('b', did, { undoFails: true }), step('c', did, { fail: new Error('no') })],
      ctx,
      bus,
    );
    assert.deepEqual(did, ['run a', 'run b', 'run c', 'undo c', 'undo b', 'undo a']);
    assert.deepEqual(out.undoErrors, ['undo of b failed: cannot undo b']);
    assert.match(out.message, /^no \(and: undo of b failed/);
  });

  it('passes a step error exit code through (75: the drive was never there)', async () => {
    const { ctx, bus } = context();
    const out = await runSteps(
      [step('identify', [], { fail: new StepError('not plugged in', { exitCode: 75 }) })],
      ctx,
      bus,
    );
    assert.equal(out.exitCode, 75);
    assert.equal(out.step, 'identify');
  });

  it('reports warnings as a result of its own, not a silent success', async () => {
    const { ctx, bus } = context();
    const warn: Step = {
      name: 'sync',
      title: 'sync',
      async run(c) {
        c.warn('2 files vanished', ['a', 'b']);
      },
    };
    const out = await runSteps([warn], ctx, bus);
    assert.equal(out.result, 'warning');
    assert.equal(out.exitCode, 0);
    assert.match(out.message, /1 warning/);
  });

  it('stops before the next step once cancelled, and undoes what was done', async () => {
    const ac = new AbortController();
    const { ctx, bus } = context(ac.signal);
    const did: string[] = [];
    const cancelling: Step = {
      name: 'b',
      title: 'b',
      async run() {
        did.push('run b');
        ac.abort('SIGTERM');
      },
      async undo() {
        did.push('undo b');
      },
    };
    const out = await runSteps([step('a', did), cancelling, step('c', did)], ctx, bus);
    assert.deepEqual(did, ['run a', 'run b', 'undo b', 'undo a']);
    assert.equal(out.step, 'c');
    assert.match(out.message, /cancelled \(SIGTERM\)/);
  });

  it('prints what a step is doing before it runs, and what came of it after', async () => {
    const { ctx, bus } = context();
    const fine: Step = {
      name: 'mount',
      title: 'mounting the filesystem',
      run: async () => 'mounted on /mnt/x',
    };
    const quiet: Step = { name: 'unmount', title: 'unmounting the filesystem', run: async () => {} };
    const broken: Step = {
      name: 'close',
      title: 'closing the mapping',
      run: async () => {
        throw new StepError('it is still open');
      },
    };
    await runSteps([fine, quiet, broken], ctx, bus);
    const lines = ctx.log.tail().filter((l) => l.includes('alpha: '));
    assert.deepEqual(
      lines.map((l) => l.replace(/\(\d+\.\d s\)/, '(t)')),
      [
        'alpha: mount: mounting the filesystem',
        'alpha: mount: mounted on /mnt/x (t)',
        'alpha: unmount: unmounting the filesystem',
        'alpha: unmount: done (t)',
        'alpha: close: closing the mapping',
        'error: alpha: close failed: it is still open',
      ],
    );
  });

  it("every step's heading says what it is doing, not what came of it", () => {
    const all = new Set([
      ...stepsFor(drives.luks),
      ...stepsFor(drives.filesystem),
      ...stepsFor(drives.directory),
    ]);
    assert.equal(all.size, 8);
    for (const s of all) assert.match(s.title, /^[a-z]+ing\b/, `${s.name}: "${s.title}"`);
  });
});
