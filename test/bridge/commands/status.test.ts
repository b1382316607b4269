/**
 * `offsite status` from a prepared ledger: the table people read, the JSON
 * scripts read, and the exit codes. The files are real. The ledger's times are set relative to
 * the real clock, because the CLI launched below reads it: the test passes on any day.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { statusReport, statusTable } from '../../../bridge/commands/status.js';
import { parseConfig } from '../../../bridge/config.js';
import type { RunEnded } from '../../../bridge/events.js';
import { Ledger } from '../../../bridge/ledger.js';
import { decode, driveSchema } from '../../../bridge/protocol.js';
import { runEnded } from '../../helpers/run-ended.js';

const NOW = new Date();
const daysBefore = (d: number, h = 0) => new Date(NOW.getTime() - d * 86_400_000 - h * 3_600_000);

/** a ten-minute run that copied 1000 bytes onto a 10 MB drive with 5 MB left */
const run = (drive: string, endedAt: Date, over: Partial<RunEnded> = {}) =>
  runEnded(drive, endedAt, {
    startedAt: new Date(endedAt.getTime() - 600_000),
    bytes: 1000,
    freeBytes: 5_000_000,
    sizeBytes: 10_000_000,
    ...over,
  });

/** alpha: fine, plugged in; beta: failed at mount, never succeeded; gamma: 50 days old; delta: never run */
async function prepared() {
  const dir = mkdtempSync(join(tmpdir(), 'offsite-status-'));
  mkdirSync(join(dir, 'alpha'));
  const raw = {
    node_id: 'nas',
    state_dir: join(dir, 'state'),
    source: { path: '/srv/backup' },
    overdue_after_days: 35,
    drives: ['alpha', 'beta', 'gamma', 'delta'].map((name) => ({ name, directory: join(dir, name) })),
  };
  const config = parseConfig(raw);
  const ledger = new Ledger(config.state_dir);
  await ledger.recordRun(run('alpha', daysBefore(12, 3)));
  await ledger.recordScrub('alpha', {
    next: { path: 'data/3/300', offset: 0 },
    position_bytes: 3_750,
    copy_bytes: 10_000,
    pass_started: daysBefore(40).toISOString(),
    last_full_pass: daysBefore(40).toISOString(),
  });
  await ledger.recordScrub('gamma', {
    next: { path: 'data/0/1', offset: 0 },
    position_bytes: 0,
    copy_bytes: 10_000,
    pass_started: daysBefore(50).toISOString(),
    last_full_pass: null,
  });
  await ledger.recordRun(
    run('beta', daysBefore(2), {
      result: 'failed',
      step: 'mount',
      message: '/mnt/offsite/beta is not a mount point',
      exitCode: 1,
    }),
  );
  await ledger.recordRun(run('gamma', daysBefore(50)));
  await ledger.recordRun(
    run('gamma', daysBefore(20), {
      result: 'failed',
      step: 'sync',
      message: 'No space left on device',
      exitCode: 1,
    }),
  );
  const file = join(dir, 'config.yaml');
  writeFileSync(file, JSON.stringify(raw));
  return { config, ledger, dir, file };
}

function cli(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'bridge/cli.ts', ...args], { encoding: 'utf8' });
}

describe('offsite status', () => {
  it('prints one line per drive: last success, age, overdue, presence, last result with its step', async () => {
    const { config, ledger } = await prepared();
    const table = statusTable(await statusReport(config, ledger, NOW));
    const fmt = (d: Date) =>
      `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')} ${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
    const alpha = fmt(daysBefore(12, 3));
    const scrubbed = fmt(daysBefore(40)).slice(0, 10);
    const gamma = fmt(daysBefore(50));
    assert.equal(
      table,
      [
        'DRIVE  LAST SUCCESS      AGE      OVERDUE  PRESENT  SCRUB                       LAST RESULT',
        `alpha  ${alpha}  12 days  no       yes      37% (last full ${scrubbed})  success`,
        'beta   never             -        yes      no       -                           failed at mount: /mnt/offsite/beta is not a mount point',
        `gamma  ${gamma}  50 days  yes      no       0% (no full pass yet)       failed at sync: No space left on device`,
        'delta  never             -        yes      no       -                           never run',
        '',
        'A drive is overdue 35 days after its last success. Overdue now: beta, gamma, delta.',
        '',
      ].join('\n'),
    );
  });

  it('--json carries the retained drive-state fields, the last failure and the run history', async () => {
    const { config, ledger } = await prepared();
    const report = JSON.parse(JSON.stringify(await statusReport(config, ledger, NOW)));
    assert.equal(report.node_id, 'nas');
    assert.equal(report.overdue_after_days, 35);
    assert.deepEqual(
      report.drives.map(
        (d: {
          name: string;
          overdue: boolean;
          age_days: number | null;
          present: boolean;
          scrub_progress: number | null;
        }) => [d.name, d.overdue, d.age_days, d.present, d.scrub_progress],
      ),
      [
        ['alpha', false, 12.1, true, 37.5],
        ['beta', true, null, false, null],
        ['gamma', true, 50, false, 0],
        ['delta', true, null, false, null],
      ],
    );
    for (const d of report.drives)
      assert.ok(decode(driveSchema, JSON.stringify(d)).ok, `${d.name} is a valid drive state`);
    assert.deepEqual(report.drives[1].last_failure.step, 'mount');
    assert.deepEqual(
      report.history.map((h: { drive: string; result: string }) => `${h.drive}:${h.result}`),
      ['alpha:success', 'beta:failed', 'gamma:success', 'gamma:failed'],
    );
  });

  it('the command prints the table, or JSON with --json, and exits 0 even with drives overdue', async () => {
    const { file } = await prepared();
    const table = cli(['status', '--config', file]);
    assert.equal(table.status, 0, table.stderr);
    assert.match(
      table.stdout,
      /^DRIVE +LAST SUCCESS +AGE +OVERDUE +PRESENT +SCRUB +LAST RESULT\nalpha +\S+ \S+ +12 days +no +yes +37% \(last full \S+\) +success\n/,
    );
    const json = cli(['status', '--json', '--config', file]);
    assert.equal(json.status, 0, json.stderr);
    assert.deepEqual(
      JSON.parse(json.stdout).drives.map((d: { name: string }) => d.name),
      ['alpha', 'beta', 'gamma', 'delta'],
    );
  });

  it('a configuration error exits 2 and names the key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'offsite-status-'));
    const file = join(dir, 'config.yaml');
    writeFileSync(
      file,
      'source: {path: /srv}\noverdue_after_days: soon\ndrives: [{name: alpha, directory: /tmp/a}]\n',
    );
    const r = cli(['status', '--config', file]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /overdue_after_days: expected a number/);
  });
});
