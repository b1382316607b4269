/**
 * `offsite report-failure`, the OnFailure= path, with systemd's MONITOR_*
 * variables, a real mosquitto and a real SMTP server: a failure the run could
 * not report is recorded, published and mailed once; one the run reported
 * itself is left alone.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { failureReason, monitorInfo, reportFailure } from '../../../bridge/commands/report-failure.js';
import { type Config, parseConfig } from '../../../bridge/config.js';
import type { RunEnded, RunEvents } from '../../../bridge/events.js';
import { Ledger } from '../../../bridge/ledger.js';
import { createLogger, type Logger } from '../../../bridge/log.js';
import { isoNow, type OffsiteEvent, type Status, topics } from '../../../bridge/protocol.js';
import { EmailReporter } from '../../../bridge/reporters/email.js';
import { Bus } from '../../../bridge/run/bus.js';
import { freePort, recorder, startBroker, type TestBroker } from '../../../harness/broker.js';
import { decodeWords, mailBody } from '../../helpers/mime.js';
import { startSmtp } from '../../helpers/smtp.js';

type Smtp = Awaited<ReturnType<typeof startSmtp>>;
type Recorder = Awaited<ReturnType<typeof recorder>>;

// relative to the real clock: the CLI launched below reads it (its ledger says how old this is)
const PREVIOUS = new Date(Date.now() - 10 * 86_400_000);

function ended(over: Partial<RunEnded>): RunEnded {
  return {
    runId: `run-${Math.random().toString(36).slice(2, 10)}`,
    drive: 'alpha',
    result: 'success',
    step: null,
    message: 'copy complete; safe to remove',
    startedAt: new Date(),
    endedAt: new Date(),
    exitCode: 0,
    warnings: [],
    bytes: null,
    freeBytes: null,
    sizeBytes: null,
    undoErrors: [],
    ...over,
  };
}

const killedDuringSync = (invocation: string) => ({
  MONITOR_SERVICE_RESULT: 'signal',
  MONITOR_EXIT_CODE: 'killed',
  MONITOR_EXIT_STATUS: 'KILL',
  MONITOR_INVOCATION_ID: invocation,
  MONITOR_UNIT: 'offsite-backup@alpha.service',
});

/**
 * The CLI in a child process, with only `env`'s $MONITOR_* variables (none of the test's own).
 * Asynchronous: the SMTP server and the broker live in this process and must keep answering.
 */
function cli(args: string[], env: Record<string, string> = {}) {
  const own = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MONITOR_')));
  return new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'bridge/cli.ts', ...args],
      { encoding: 'utf8', env: { ...own, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ status: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('offsite report-failure', () => {
  let broker: TestBroker;
  let smtp: Smtp;
  before(async () => {
    broker = await startBroker();
    smtp = await startSmtp();
  });
  after(async () => {
    await smtp.stop();
    await broker.stop();
  });

  async function setup(opts: { smtpPort?: number; mqttUrl?: string } = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'offsite-report-'));
    mkdirSync(join(dir, 'alpha'));
    const nodeId = `n${Math.random().toString(36).slice(2, 8)}`;
    const raw = {
      node_id: nodeId,
      state_dir: join(dir, 'state'),
      source: { path: '/srv/backup' },
      drives: [{ name: 'alpha', directory: join(dir, 'alpha') }],
      mqtt: { url: opts.mqttUrl ?? broker.url },
      email: { smtp: { port: opts.smtpPort ?? smtp.port }, from: 'nas@example.org', to: ['me@example.org'] },
    };
    const config: Config = parseConfig(raw);
    const file = join(dir, 'config.yaml');
    writeFileSync(file, JSON.stringify(raw));
    const ledger = new Ledger(config.state_dir);
    await ledger.recordRun(ended({ endedAt: PREVIOUS, startedAt: PREVIOUS }));
    const log: Logger = createLogger({ write: () => {} });
    const t = topics('offsite', nodeId);
    const report = (env: NodeJS.ProcessEnv, smtpPort?: number) => {
      const cfg = smtpPort
        ? { ...config, email: { ...config.email!, smtp: { ...config.email!.smtp, port: smtpPort } } }
        : config;
      const email = new EmailReporter({ config: cfg, ledger, log, env });
      return reportFailure('alpha', { config: cfg, ledger, log, email, env, journal: async () => [] });
    };
    return { config, ledger, log, t, report, file, dir };
  }

  async function drain(rec: Recorder, t: ReturnType<typeof topics>): Promise<void> {
    const marker = `drain-${Math.random()}`;
    await rec.client.publishAsync(t.event, marker, { qos: 1 });
    await rec.waitFor((m) => m.payload === marker);
  }
  const jsonOn = (rec: Recorder, topic: string) =>
    rec.messages.filter((m) => m.topic === topic && m.payload.startsWith('{')).map((m) => m.json());

  it('a run killed during sync is recorded, published and mailed once, with the step it was in', async () => {
    const { ledger, t, report } = await setup();
    const rec = await recorder(broker.url, [t.status, t.event]);
    const mailsBefore = smtp.mails.length;
    try {
      // the run's last word before SIGKILL: running, step sync
      const running = {
        state: 'running',
        drive: 'alpha',
        step: 'sync',
        progress: 42,
        bytes: 4096,
        eta: null,
        message: null,
        run_id: 'run-killed-1',
        updated: isoNow(),
      };
      await rec.client.publishAsync(t.status, JSON.stringify(running), { qos: 1, retain: true });

      const first = await report(killedDuringSync('inv-kill-1'));
      assert.deepEqual(first, { what: 'recorded', delivery: 'sent' });

      const record = ledger.drive('alpha');
      assert.equal(record.last_result, 'failed');
      assert.deepEqual(
        { ...record.last_failure, time: undefined },
        {
          run_id: 'run-killed-1',
          step: 'sync',
          message:
            'offsite-backup@alpha.service was killed by SIGKILL during step sync (systemd: result=signal code=killed status=KILL)',
          time: undefined,
        },
      );
      assert.equal(record.last_success, isoNow(PREVIOUS), 'the previous success is still the last success');

      const status = (
        await rec.waitFor((m) => m.topic === t.status && m.payload.includes('"failed"'))
      ).json() as Status;
      assert.equal(status.state, 'failed');
      assert.equal(status.step, 'sync');
      assert.equal(status.run_id, 'run-killed-1');
      const event = (
        await rec.waitFor((m) => m.topic === t.event && m.payload.includes('"failed"'))
      ).json() as OffsiteEvent;
      assert.equal(event.step, 'sync');
      assert.equal(event.drive, 'alpha');

      assert.equal(smtp.mails.length, mailsBefore + 1);
      const mail = smtp.mails.at(-1)!;
      assert.equal(decodeWords(mail.subject), 'offsite: backup of drive "alpha" FAILED at step sync');
      assert.match(
        mailBody(mail.raw),
        /Reason: offsite-backup@alpha\.service was killed by SIGKILL during step sync/,
      );

      // systemd (or a person) runs it again for the same invocation: nothing new
      const second = await report(killedDuringSync('inv-kill-1'));
      assert.deepEqual(second, { what: 'already-reported', delivery: null });
      await drain(rec, t);
      assert.equal(smtp.mails.length, mailsBefore + 1, 'no second mail');
      assert.equal(jsonOn(rec, t.event).length, 1, 'no second event');
      assert.equal(jsonOn(rec, t.status).filter((s) => (s as Status).state === 'failed').length, 1);
    } finally {
      await rec.close();
    }
  });

  it('after the run itself reported "failed at mount", it sends no second mail and keeps the message', async () => {
    const { ledger, log, t, config, report } = await setup();
    const rec = await recorder(broker.url, [t.status, t.event]);
    const mailsBefore = smtp.mails.length;
    try {
      // the run, as bridge/run/run-drive.ts wires it: the email reporter on the bus, the ledger last
      const bus = new Bus<RunEvents>();
      new EmailReporter({ config, ledger, log, env: { INVOCATION_ID: 'inv-mount-1' } }).attach(bus);
      const failed = ended({
        result: 'failed',
        step: 'mount',
        message: '/mnt/offsite/alpha is not a mount point',
        exitCode: 1,
      });
      bus.emit('run:end', failed);
      await bus.settle();
      await ledger.recordRun(failed);
      assert.equal(smtp.mails.length, mailsBefore + 1);

      // the unit exited 1, so OnFailure= fires
      const r = await report({
        MONITOR_SERVICE_RESULT: 'exit-code',
        MONITOR_EXIT_CODE: 'exited',
        MONITOR_EXIT_STATUS: '1',
        MONITOR_INVOCATION_ID: 'inv-mount-1',
        MONITOR_UNIT: 'offsite-backup@alpha.service',
      });
      assert.deepEqual(r, { what: 'already-reported', delivery: null });
      await drain(rec, t);
      assert.equal(smtp.mails.length, mailsBefore + 1, 'no second mail');
      assert.deepEqual(jsonOn(rec, t.event), [], 'no event');
      assert.deepEqual(jsonOn(rec, t.status), [], 'the status the run published is not replaced');
      const record = ledger.drive('alpha');
      assert.equal(record.last_failure?.run_id, failed.runId);
      assert.equal(record.last_failure?.message, '/mnt/offsite/alpha is not a mount point');
    } finally {
      await rec.close();
    }
  });

  it("a failure the run recorded while SMTP was down is mailed once, in the run's own words", async () => {
    const { ledger, log, config, report } = await setup();
    const deadPort = await freePort();
    const down = { ...config, email: { ...config.email!, smtp: { ...config.email!.smtp, port: deadPort } } };
    const bus = new Bus<RunEvents>();
    new EmailReporter({ config: down, ledger, log, env: { INVOCATION_ID: 'inv-smtp-1' } }).attach(bus);
    const failed = ended({
      result: 'failed',
      step: 'sync',
      message: 'rsync: No space left on device (28)',
      exitCode: 1,
    });
    bus.emit('run:end', failed);
    await bus.settle();
    await ledger.recordRun(failed);

    const mailsBefore = smtp.mails.length;
    const env = {
      MONITOR_SERVICE_RESULT: 'exit-code',
      MONITOR_EXIT_STATUS: '1',
      MONITOR_INVOCATION_ID: 'inv-smtp-1',
    };
    assert.deepEqual(await report(env), { what: 'mailed-recorded', delivery: 'sent' });
    assert.equal(smtp.mails.length, mailsBefore + 1);
    const mail = smtp.mails.at(-1)!;
    assert.equal(decodeWords(mail.subject), 'offsite: backup of drive "alpha" FAILED at step sync');
    assert.match(mailBody(mail.raw), /Reason: rsync: No space left on device \(28\)/);
    assert.equal(ledger.drive('alpha').last_failure?.message, 'rsync: No space left on device (28)');

    assert.deepEqual(await report(env), { what: 'already-reported', delivery: null });
    assert.equal(smtp.mails.length, mailsBefore + 1);
  });

  it('a failing unlock unit is reported as a failure at unlock', async () => {
    const { ledger, report } = await setup();
    const mailsBefore = smtp.mails.length;
    const r = await report({
      MONITOR_SERVICE_RESULT: 'exit-code',
      MONITOR_EXIT_CODE: 'exited',
      MONITOR_EXIT_STATUS: '1',
      MONITOR_INVOCATION_ID: 'inv-unlock-1',
      MONITOR_UNIT: 'systemd-cryptsetup@offsite_alpha.service',
    });
    assert.deepEqual(r, { what: 'recorded', delivery: 'sent' });
    assert.equal(ledger.drive('alpha').last_failure?.step, 'unlock');
    assert.equal(
      ledger.drive('alpha').last_failure?.message,
      'systemd-cryptsetup@offsite_alpha.service exited with status 1 without reporting why (systemd: result=exit-code code=exited status=1)',
    );
    assert.equal(
      decodeWords(smtp.mails.at(-1)!.subject),
      'offsite: backup of drive "alpha" FAILED at step unlock',
    );
    assert.equal(smtp.mails.length, mailsBefore + 1);
  });

  it('a later failure of another invocation is a new report', async () => {
    const { ledger, report } = await setup();
    const mailsBefore = smtp.mails.length;
    await report(killedDuringSync('inv-a'));
    const r = await report({
      ...killedDuringSync('inv-b'),
      MONITOR_SERVICE_RESULT: 'timeout',
      MONITOR_EXIT_CODE: 'killed',
      MONITOR_EXIT_STATUS: 'TERM',
    });
    assert.equal(r.what, 'recorded');
    assert.equal(smtp.mails.length, mailsBefore + 2);
    assert.match(ledger.drive('alpha').last_failure!.message, /timed out and was stopped by systemd/);
  });

  it('with the broker down it still records and mails', async () => {
    const { ledger, log, report } = await setup({ mqttUrl: `mqtt://127.0.0.1:${await freePort()}` });
    const mailsBefore = smtp.mails.length;
    const r = await report(killedDuringSync('inv-nobroker'));
    assert.deepEqual(r, { what: 'recorded', delivery: 'sent' });
    assert.equal(ledger.drive('alpha').last_result, 'failed');
    assert.equal(
      ledger.drive('alpha').last_failure?.step,
      null,
      'no broker, no last status: the step is unknown',
    );
    assert.equal(decodeWords(smtp.mails.at(-1)!.subject), 'offsite: backup of drive "alpha" FAILED');
    assert.equal(smtp.mails.length, mailsBefore + 1);
    assert.ok(
      log.tail().some((l) => /mqtt: .*unreachable/.test(l)),
      log.tail().join('\n'),
    );
  });

  it('a run that exited 75 (the drive was not plugged in) is nothing to report, from units written before SuccessExitStatus=75', async () => {
    const { ledger, report } = await setup();
    const before = ledger.drive('alpha');
    const mails = smtp.mails.length;
    const outcome = await report({
      MONITOR_SERVICE_RESULT: 'exit-code',
      MONITOR_EXIT_CODE: 'exited',
      MONITOR_EXIT_STATUS: '75',
      MONITOR_INVOCATION_ID: 'inv-absent-1',
      MONITOR_UNIT: 'offsite-backup@alpha.service',
    });
    assert.deepEqual(outcome, { what: 'not-a-failure', delivery: null });
    assert.deepEqual(ledger.drive('alpha'), before);
    assert.equal(smtp.mails.length, mails);
  });

  it("reads systemd's words into one reason", () => {
    const m = monitorInfo({
      MONITOR_SERVICE_RESULT: 'core-dump',
      MONITOR_EXIT_CODE: 'dumped',
      MONITOR_EXIT_STATUS: 'SEGV',
    });
    assert.equal(
      failureReason('alpha', m, null),
      'offsite-backup@alpha.service crashed (SIGSEGV, core dumped) (systemd: result=core-dump code=dumped status=SEGV)',
    );
    assert.equal(
      failureReason('alpha', monitorInfo({}), null),
      'offsite-backup@alpha.service failed without reporting why',
    );
  });

  it('the command: exit 0 once reported, the same mail not sent twice, exit 2 for an unknown drive', async () => {
    const { file } = await setup();
    const mailsBefore = smtp.mails.length;
    const env = killedDuringSync('inv-cli-1');
    const first = await cli(['report-failure', 'alpha', '--config', file], env);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr, /alpha: failed: offsite-backup@alpha\.service was killed by SIGKILL/);
    const again = await cli(['report-failure', 'alpha', '--config', file], env);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /reported already; nothing more to do/);
    assert.equal(smtp.mails.length, mailsBefore + 1);
    const unknown = await cli(['report-failure', 'omega', '--config', file]);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /no drive named "omega"/);
  });

  it("typed by hand, without systemd's $MONITOR_* variables, refuses and changes nothing unless --manual", async () => {
    const { file, ledger } = await setup();
    const mailsBefore = smtp.mails.length;
    const before = ledger.drive('alpha');
    const refused = await cli(['report-failure', 'alpha', '--config', file]);
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(
      refused.stderr,
      /this is what systemd runs when offsite-backup@alpha\.service fails \(OnFailure=\), and systemd's \$MONITOR_\* variables are not set: nothing was reported\. To record and report a failure by hand, add --manual/,
    );
    assert.deepEqual(ledger.drive('alpha'), before, 'the ledger is as it was');
    assert.equal(smtp.mails.length, mailsBefore, 'no mail');

    const manual = await cli(['report-failure', 'alpha', '--manual', '--config', file]);
    assert.equal(manual.status, 0, manual.stderr);
    assert.equal(ledger.drive('alpha').last_result, 'failed');
    assert.equal(smtp.mails.length, mailsBefore + 1);
  });
});
