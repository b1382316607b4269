/**
 * Email against a real SMTP server on loopback: what a failure mail says, when
 * a success or warning mail goes out, and that a dead or silent SMTP server is
 * a log line, never an exception.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Config, parseConfig } from '../../../bridge/config.js';
import { smtpMailer } from '../../../bridge/email/mailer.js';
import { MAX_FILES_LISTED } from '../../../bridge/email/messages.js';
import type { RunEnded, RunEvents } from '../../../bridge/events.js';
import { Ledger } from '../../../bridge/ledger.js';
import { createLogger, type Logger } from '../../../bridge/log.js';
import { EmailReporter } from '../../../bridge/reporters/email.js';
import { Bus } from '../../../bridge/run/bus.js';
import { freePort } from '../../../harness/broker.js';
import { decodeWords, mailBody, mailHeader } from '../../helpers/mime.js';
import { startSmtp } from '../../helpers/smtp.js';

type Smtp = Awaited<ReturnType<typeof startSmtp>>;

const PREVIOUS_SUCCESS = new Date(2026, 10, 16, 10, 0);
const NOW = new Date(2026, 10, 28, 15, 0);

function outcome(over: Partial<RunEnded> = {}): RunEnded {
  return {
    runId: `run-${Math.random().toString(36).slice(2, 10)}`,
    drive: 'alpha',
    result: 'failed',
    step: 'mount',
    message: '/mnt/offsite/alpha is not a mount point',
    startedAt: new Date(2026, 10, 28, 14, 58),
    endedAt: NOW,
    exitCode: 1,
    warnings: [],
    bytes: null,
    freeBytes: null,
    sizeBytes: null,
    undoErrors: [],
    ...over,
  };
}

describe('email', () => {
  let smtp: Smtp;
  before(async () => {
    smtp = await startSmtp();
  });
  after(() => smtp.stop());

  async function setup(on: string[], port = smtp.port) {
    const dir = mkdtempSync(join(tmpdir(), 'offsite-email-'));
    const config: Config = parseConfig({
      node_id: 'nas',
      state_dir: join(dir, 'state'),
      source: { path: '/srv/backup' },
      drives: [{ name: 'alpha', directory: join(dir, 'alpha') }],
      email: { smtp: { host: '127.0.0.1', port }, from: 'nas@example.org', to: ['me@example.org'], on },
      led: { driver: 'console' },
    });
    const ledger = new Ledger(config.state_dir);
    await ledger.recordRun(
      outcome({ result: 'success', step: null, message: 'ok', endedAt: PREVIOUS_SUCCESS }),
    );
    const log: Logger = createLogger({ write: () => {} });
    const bus = new Bus<RunEvents>();
    const reporter = new EmailReporter({
      config,
      ledger,
      log,
      env: { INVOCATION_ID: 'inv-1' },
      now: () => NOW,
    });
    reporter.attach(bus);
    return { config, ledger, log, bus, reporter };
  }

  it('a failed run mails the drive, the failing step, the reason, what to do and the last log lines', async () => {
    const before = smtp.mails.length;
    const { bus, log, ledger } = await setup(['failure']);
    log.info('alpha: mount: the decrypted filesystem is mounted');
    log.error('alpha: mount failed: /mnt/offsite/alpha is not a mount point (Fotos/Ürlaub 2026)');
    const run = outcome({ message: '/mnt/offsite/alpha is not a mount point (Fotos/Ürlaub 2026)' });
    await ledger.recordRun(run);
    bus.emit('run:end', run);
    await bus.settle();

    assert.equal(smtp.mails.length, before + 1);
    const mail = smtp.mails.at(-1)!;
    assert.equal(decodeWords(mail.subject), 'offsite: backup of drive "alpha" FAILED at step mount');
    assert.deepEqual(mail.to, ['me@example.org']);
    assert.match(mailHeader(mail.raw, 'Content-Type') ?? '', /text\/plain; charset=utf-8/i);
    assert.equal(mailHeader(mail.raw, 'Auto-Submitted'), 'auto-generated');
    const body = mailBody(mail.raw);
    assert.match(body, /Reason: \/mnt\/offsite\/alpha is not a mount point \(Fotos\/Ürlaub 2026\)/);
    assert.match(body, /The status light shows red\./);
    assert.match(body, /Your data on the NAS is untouched/);
    assert.match(body, /previous complete copy, from 2026-11-16 10:00 \(12 days old\), is kept as it was/);
    assert.match(body, /journalctl -u offsite-backup@alpha/);
    assert.match(body, /offsite doctor/);
    assert.match(
      body,
      /Last log lines\n {2}alpha: mount: the decrypted filesystem is mounted\n {2}error: alpha: mount failed/,
    );
    // report-failure's idempotency rests on this
    assert.deepEqual(ledger.drive('alpha').reported_failures, [run.runId, 'inv-1']);
  });

  it('a failed undo is in the mail: the drive may still be mounted', async () => {
    const before = smtp.mails.length;
    const { bus } = await setup(['failure']);
    bus.emit('run:end', outcome({ step: 'sync', undoErrors: ['undo of mount failed: target is busy'] }));
    await bus.settle();
    assert.equal(smtp.mails.length, before + 1);
    const body = mailBody(smtp.mails.at(-1)!.raw);
    assert.match(body, /may still be mounted or unlocked:\n {4}undo of mount failed: target is busy/);
  });

  it('a success is mailed only when email.on lists success', async () => {
    const before = smtp.mails.length;
    const quiet = await setup(['failure', 'overdue']);
    quiet.bus.emit(
      'run:end',
      outcome({ result: 'success', step: null, message: 'copy complete', bytes: 3 * 1024 ** 3 }),
    );
    await quiet.bus.settle();
    assert.equal(smtp.mails.length, before, 'no mail without "success" in email.on');

    const chatty = await setup(['failure', 'success']);
    chatty.bus.emit(
      'run:end',
      outcome({ result: 'success', step: null, message: 'copy complete', bytes: 3 * 1024 ** 3 }),
    );
    await chatty.bus.settle();
    assert.equal(smtp.mails.length, before + 1);
    const mail = smtp.mails.at(-1)!;
    assert.equal(decodeWords(mail.subject), 'offsite: backup of drive "alpha" succeeded, safe to remove');
    assert.match(
      mailBody(mail.raw),
      /unmounted and closed: safe to remove\.\n\nThe copy took 120 s, 3\.0 GiB transferred\./,
    );
  });

  it('a warning mail lists the files rsync could not copy, capped', async () => {
    const before = smtp.mails.length;
    const { bus } = await setup(['failure', 'warning']);
    const files = Array.from({ length: 60 }, (_, i) => `photos/2026/IMG_${String(i).padStart(4, '0')}.jpg`);
    const run = outcome({
      result: 'warning',
      step: null,
      message: 'copied with 1 warning(s)',
      warnings: ['rsync exit 23: some files could not be read'],
    });
    bus.emit('warning', { runId: run.runId, drive: 'alpha', step: 'sync', message: run.warnings[0]!, files });
    bus.emit('run:end', run);
    await bus.settle();
    assert.equal(smtp.mails.length, before + 1);
    const mail = smtp.mails.at(-1)!;
    assert.equal(
      decodeWords(mail.subject),
      'offsite: backup of drive "alpha" finished with warnings (60 files not copied)',
    );
    const body = mailBody(mail.raw);
    assert.match(body, /Warning: rsync exit 23: some files could not be read/);
    assert.ok(body.includes('  photos/2026/IMG_0000.jpg'));
    assert.ok(body.includes(`  photos/2026/IMG_00${MAX_FILES_LISTED - 1}.jpg`));
    assert.ok(!body.includes(`IMG_00${MAX_FILES_LISTED}.jpg`), 'files past the cap are not listed');
    assert.match(body, /\.\.\. and 10 more \(journalctl -u offsite-backup@alpha has them all\)/);
  });

  it('an SMTP server that is down is logged, never thrown, and the failure stays unreported', async () => {
    const deadPort = await freePort();
    const { bus, log, ledger, reporter } = await setup(['failure'], deadPort);
    const run = outcome();
    bus.emit('run:end', run);
    await bus.settle();
    assert.ok(
      log
        .tail()
        .some((l) =>
          /^error: email: could not send "offsite: backup of drive "alpha" FAILED at step mount" via smtp 127\.0\.0\.1:\d+: .*ECONNREFUSED/.test(
            l,
          ),
        ),
      log.tail().join('\n'),
    );
    assert.deepEqual(ledger.drive('alpha').reported_failures, [], 'report-failure gets to try again');
    assert.equal(await reporter.runEnded(outcome()), 'failed');
  });

  it('an SMTP server that accepts but never answers is given up after the timeout', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => sockets.push(s));
    const port = await freePort();
    await new Promise<void>((r) => silent.listen(port, '127.0.0.1', r));
    try {
      const { config, ledger, log } = await setup(['failure'], port);
      const reporter = new EmailReporter({
        config,
        ledger,
        log,
        mailer: smtpMailer(config.email!, { timeoutMs: 300 }),
        now: () => NOW,
      });
      assert.equal(await reporter.runEnded(outcome()), 'failed');
      assert.ok(sockets.length >= 1, 'the mailer did connect');
      assert.ok(
        log.tail().some((l) => /could not send .*: Timeout/.test(l)),
        log.tail().join('\n'),
      );
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('without an email section nothing is sent and a failure counts as reported', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'offsite-email-'));
    const config = parseConfig({
      state_dir: join(dir, 'state'),
      source: { path: '/srv/backup' },
      drives: [{ name: 'alpha', directory: join(dir, 'alpha') }],
    });
    const ledger = new Ledger(config.state_dir);
    const reporter = new EmailReporter({ config, ledger, log: createLogger({ write: () => {} }), env: {} });
    const run = outcome();
    assert.equal(await reporter.runEnded(run), 'not-wanted');
    assert.deepEqual(ledger.drive('alpha').reported_failures, [run.runId]);
  });
});
