/**
 * The ledger as one of a run's reporters: it repairs the ledger when the run
 * starts (and says so on the bus) and records the run only when it stops,
 * after every other reporter has spoken.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseConfig } from '../../../bridge/config.js';
import type { LedgerReset, RunEvents } from '../../../bridge/events.js';
import { Ledger } from '../../../bridge/ledger.js';
import { createLogger, silentLogger } from '../../../bridge/log.js';
import { Bus } from '../../../bridge/run/bus.js';
import { LedgerReporter } from '../../../bridge/run/ledger-reporter.js';
import { fullDisk } from '../../helpers/full-disk.js';
import { runEnded } from '../../helpers/run-ended.js';
import { tempDir } from '../../helpers/trees.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function setUp(recordRun = true) {
  const dir = tempDir('offsite-ledger-reporter-');
  dirs.push(dir);
  const stateDir = join(dir, 'state');
  mkdirSync(stateDir);
  const config = parseConfig({
    state_dir: stateDir,
    source: { path: join(dir, 'source') },
    drives: [{ name: 'alpha', directory: join(dir, 'alpha') }],
  });
  const bus = new Bus<RunEvents>();
  const reporter = new LedgerReporter({ config, log: silentLogger(), recordRun });
  reporter.attach(bus);
  return { stateDir, bus, reporter, ledger: new Ledger(stateDir) };
}

describe('the ledger reporter', () => {
  it('records the run that ended when it stops, not before', async () => {
    const { bus, reporter, ledger } = setUp();
    await reporter.start();
    const ended = runEnded('alpha', new Date());
    bus.emit('run:end', ended);
    assert.equal(ledger.drive('alpha').last_run, null, 'nothing recorded while the others speak');
    await reporter.stop();
    assert.equal(ledger.drive('alpha').last_result, 'success');
    assert.equal(ledger.history().at(-1)?.run_id, ended.runId);
  });

  it('records nothing for a run that is not a backup (offsite scrub), nor for one that never ended', async () => {
    const scrub = setUp(false);
    scrub.bus.emit('run:end', runEnded('alpha', new Date()));
    await scrub.reporter.stop();
    assert.equal(scrub.ledger.drive('alpha').last_run, null);
    const unended = setUp();
    await unended.reporter.stop();
    assert.equal(existsSync(unended.ledger.file), false);
  });

  it('moves a ledger that cannot be read aside when the run starts, and says so on the bus', async () => {
    const { stateDir, bus, reporter } = setUp();
    writeFileSync(join(stateDir, 'ledger.json'), '{"drives":null}');
    const resets: LedgerReset[] = [];
    bus.on('ledger:reset', (r) => {
      resets.push(r);
    });
    await reporter.start();
    assert.equal(resets.length, 1);
    assert.ok(readdirSync(stateDir).some((f) => f.startsWith('ledger.json.bad-')));
  });

  it('a ledger it cannot repair (a full state_dir) is said in the log, and the run goes on', async () => {
    const disk = fullDisk();
    try {
      writeFileSync(join(disk.dir, 'ledger.json'), '{"drives":null}');
      disk.fill();
      const lines: string[] = [];
      const config = parseConfig({
        state_dir: disk.dir,
        source: { path: '/srv/backup' },
        drives: [{ name: 'alpha', directory: '/tmp/offsite-alpha' }],
      });
      const reporter = new LedgerReporter({
        config,
        log: createLogger({ write: (level, line) => lines.push(`${level}: ${line}`) }),
        recordRun: true,
      });
      reporter.attach(new Bus<RunEvents>());
      await reporter.start();
      assert.ok(
        lines.some((l) => /error: the ledger: no space left on /.test(l)),
        lines.join('\n'),
      );
    } finally {
      disk.unmount();
    }
  });
});
