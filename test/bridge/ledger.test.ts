/**
 * The ledger as the reminders depend on it: a corrupt file is moved aside and
 * said (log, mail), never a stack trace or a silent stop; two writers never
 * lose each other's update; a last success that cannot be trusted counts as
 * never. The commands run as the real CLI against a real SMTP server and
 * mosquitto; the ledger's times are relative to the real clock the CLI reads.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { statusReport, statusTable } from '../../bridge/commands/status.js';
import { loadConfig, parseConfig } from '../../bridge/config.js';
import { driveState, emptyRecord, Ledger } from '../../bridge/ledger.js';
import { createLogger } from '../../bridge/log.js';
import { overdueText } from '../../bridge/words.js';
import { startBroker, type TestBroker } from '../../harness/broker.js';
import { enrolDrive } from '../../units/prepare/enrol.js';
import { decodeWords, mailBody } from '../helpers/mime.js';
import { runEnded } from '../helpers/run-ended.js';
import { startSmtp } from '../helpers/smtp.js';
import { offsite } from '../units/cli.js';

const DAY = 86_400_000;

function memoryLog() {
  const lines: string[] = [];
  const log = createLogger({ write: (level, line) => lines.push(`${level}: ${line}`) });
  return { log, lines };
}

const CORRUPT: [string, string][] = [
  ['a truncated file', '{\n  "version": 1,\n  "drives": {\n    "alpha": {\n      "name": "al'],
  ['"drives": null', '{"drives":null}'],
];

describe('the ledger', () => {
  let broker: TestBroker;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  before(async () => {
    broker = await startBroker();
    smtp = await startSmtp();
  });
  after(async () => {
    await smtp.stop();
    await broker.stop();
  });

  function configured() {
    const dir = mkdtempSync(join(tmpdir(), 'offsite-ledger-'));
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir);
    mkdirSync(join(dir, 'alpha'));
    mkdirSync(join(dir, 'source'));
    writeFileSync(join(dir, 'source', 'a.txt'), 'alpha\n');
    const file = join(dir, 'config.yaml');
    writeFileSync(
      file,
      `node_id: n${Math.random().toString(36).slice(2, 8)}
state_dir: ${stateDir}
source: {path: ${join(dir, 'source')}}
drives: [{name: alpha, directory: ${join(dir, 'alpha')}}]
mqtt: {url: "${broker.url}"}
email: {smtp: {port: ${smtp.port}}, from: nas@example.org, to: [me@example.org]}
`,
    );
    return { dir, stateDir, file, ledgerFile: join(stateDir, 'ledger.json') };
  }

  const badFiles = (stateDir: string) =>
    readdirSync(stateDir).filter((n) => n.startsWith('ledger.json.bad-'));

  for (const [what, text] of CORRUPT)
    it(`${what}: status and check say so and go on; check moves it aside and mails it, once`, async () => {
      const { stateDir, file, ledgerFile } = configured();
      writeFileSync(ledgerFile, text);

      const status = await offsite(['status', '--config', file]);
      assert.equal(status.exitCode, 0, status.stderr);
      assert.match(status.stderr, /warn: the ledger .*ledger\.json cannot be used \(.+\): read as empty/);
      assert.doesNotMatch(status.stderr, /\n\s+at /, 'no stack trace');
      assert.match(status.stdout, /^alpha +never +- +yes /m);
      assert.equal(readFileSync(ledgerFile, 'utf8'), text, 'status only reads');

      const mailsBefore = smtp.mails.length;
      const check = await offsite(['check', '--config', file]);
      assert.equal(check.exitCode, 0, check.stderr);
      assert.doesNotMatch(check.stderr, /\n\s+at /, 'no stack trace');
      const [aside] = badFiles(stateDir);
      assert.match(aside ?? '', /^ledger\.json\.bad-\d{8}T\d{6}\.\d{3}Z$/);
      assert.equal(readFileSync(join(stateDir, aside!), 'utf8'), text, 'kept as it was');
      assert.match(
        check.stderr,
        new RegExp(`could not be used \\(.+\\): moved it to ${join(stateDir, aside!)} and started a new one`),
      );
      const mails = (await smtp.waitFor(mailsBefore + 2)).slice(mailsBefore);
      const subjects = mails.map((m) => decodeWords(m.subject)).sort();
      assert.match(subjects[0]!, /^offsite: drive "alpha" is overdue for a backup/);
      assert.match(subjects[1]!, /^offsite: the ledger on n\w+ could not be read and was started again$/);
      const body = mailBody(mails.find((m) => decodeWords(m.subject).includes('ledger'))!.raw);
      assert.match(body, new RegExp(`It moved the file to ${join(stateDir, aside!)}`));

      // the new ledger is a good one, and the next check finds nothing wrong
      assert.equal(JSON.parse(readFileSync(ledgerFile, 'utf8')).version, 1);
      const again = await offsite(['check', '--config', file]);
      assert.equal(again.exitCode, 0, again.stderr);
      assert.doesNotMatch(again.stderr, /ledger/);
      assert.equal(badFiles(stateDir).length, 1);
      assert.equal(smtp.mails.length, mailsBefore + 2, 'said once');
    });

  it('a run over a corrupt ledger copies, moves it aside, mails it, and records the run in a new one', async () => {
    const { stateDir, file, ledgerFile } = configured();
    const config = loadConfig(file);
    await enrolDrive(config, config.drives[0]!, { force: false });
    writeFileSync(ledgerFile, '{"drives":null}');
    const mailsBefore = smtp.mails.length;
    const run = await offsite(['run', 'alpha', '--config', file]);
    assert.equal(run.exitCode, 0, run.stderr);
    assert.doesNotMatch(`${run.stdout}${run.stderr}`, /could not record the run/);
    assert.equal(badFiles(stateDir).length, 1);
    const mails = (await smtp.waitFor(mailsBefore + 1)).slice(mailsBefore);
    assert.deepEqual(
      mails.map((m) => decodeWords(m.subject).replace(/ on n\w+/, '')),
      ['offsite: the ledger could not be read and was started again'],
    );
    const record = new Ledger(stateDir).drive('alpha');
    assert.equal(record.last_result, 'success');
    assert.ok(record.last_success);
  });

  it('a write that meets a bad file moves it aside first, then writes a good one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'offsite-ledger-'));
    writeFileSync(join(dir, 'ledger.json'), '[]');
    const { log, lines } = memoryLog();
    const ledger = new Ledger(dir, { log });
    assert.deepEqual(ledger.drive('alpha'), emptyRecord('alpha'));
    const r = await ledger.recordRun(runEnded('alpha', new Date()));
    assert.equal(r.last_result, 'success');
    assert.equal(badFiles(dir).length, 1);
    assert.equal(readFileSync(join(dir, badFiles(dir)[0]!), 'utf8'), '[]');
    assert.equal(new Ledger(dir).drive('alpha').last_result, 'success');
    assert.equal(lines.filter((l) => l.includes('could not be used')).length, 1);
  });

  it('two processes updating it at once lose nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'offsite-ledger-'));
    const per = 150;
    const script = `
      import { Ledger } from ${JSON.stringify(new URL('../../bridge/ledger.ts', import.meta.url).pathname)};
      const ledger = new Ledger(process.argv[1]);
      for (let i = 0; i < ${per}; i++)
        await ledger.update('alpha', (r) => ({ reported_failures: [...r.reported_failures, process.argv[2] + i] }));`;
    const writers = ['a', 'b'].map(
      (id) =>
        new Promise<number | null>((resolve) =>
          spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dir, id], {
            stdio: 'inherit',
          }).on('close', resolve),
        ),
    );
    assert.deepEqual(await Promise.all(writers), [0, 0]);
    const ids = new Ledger(dir).drive('alpha').reported_failures;
    assert.equal(ids.length, 2 * per, `lost ${2 * per - ids.length} of ${2 * per} updates`);
    assert.equal(new Set(ids).size, 2 * per);
  });

  it('a last success in the future or that is no time is unknown: overdue, shown and said as unknown', async () => {
    const now = new Date();
    const config = { overdue_after_days: 35 };
    for (const last_success of [
      new Date(now.getTime() + 30 * DAY).toISOString(),
      'yesterday',
      '2026-13-45T99:00:00Z',
    ]) {
      const record = { ...emptyRecord('alpha'), last_success, last_result: 'success' as const };
      const state = driveState(record, config, now, { present: false, open: false });
      assert.equal(state.overdue, true, last_success);
      assert.equal(state.last_success, null);
      assert.equal(state.age_days, null);
    }
    // a success a few minutes ahead (the clock was corrected since) is just fresh
    const ahead = { ...emptyRecord('alpha'), last_success: new Date(now.getTime() + 60_000).toISOString() };
    assert.equal(driveState(ahead, config, now, { present: false, open: false }).overdue, false);

    const dir = mkdtempSync(join(tmpdir(), 'offsite-ledger-'));
    mkdirSync(join(dir, 'state'));
    const future = new Date(now.getTime() + 400 * DAY).toISOString();
    writeFileSync(
      join(dir, 'state', 'ledger.json'),
      JSON.stringify({ version: 1, drives: { alpha: { name: 'alpha', last_success: future } }, history: [] }),
    );
    const cfg = parseConfig({
      state_dir: join(dir, 'state'),
      source: { path: '/srv/backup' },
      drives: [{ name: 'alpha', directory: join(dir, 'alpha') }],
    });
    const report = await statusReport(cfg, new Ledger(cfg.state_dir), now, async () => false);
    assert.equal(report.drives[0]!.untrusted_last_success, future);
    assert.match(statusTable(report), /^alpha +unknown +unknown +yes +no /m);
    assert.equal(
      overdueText('alpha', null, 35, true),
      `when drive "alpha" was last backed up is unknown (the ledger's time cannot be trusted)`,
    );
    assert.ok(!existsSync(join(dir, 'state', 'ledger.json.bad')), 'an untrusted time is no corrupt file');
  });
});
