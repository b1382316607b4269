/**
 * `offsite check` with a real mosquitto and a real SMTP server: the retained
 * drive states, and "overdue" said once (one mail, one event) per time a drive
 * becomes overdue.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkDrives } from '../../../bridge/commands/check.js';
import { type Config, parseConfig } from '../../../bridge/config.js';
import { Ledger } from '../../../bridge/ledger.js';
import { createLogger, type Logger } from '../../../bridge/log.js';
import { type DriveState, type OffsiteEvent, topics } from '../../../bridge/protocol.js';
import { EmailReporter } from '../../../bridge/reporters/email.js';
import { freePort, type Received, recorder, startBroker, type TestBroker } from '../../../harness/broker.js';
import { decodeWords, mailBody } from '../../helpers/mime.js';
import { runEnded } from '../../helpers/run-ended.js';
import { startSmtp } from '../../helpers/smtp.js';

type Smtp = Awaited<ReturnType<typeof startSmtp>>;
type Recorder = Awaited<ReturnType<typeof recorder>>;

const T0 = new Date(2026, 9, 1, 9, 0);
const day = (n: number) => new Date(T0.getTime() + n * 86_400_000);

const success = (drive: string, endedAt: Date) => runEnded(drive, endedAt);

describe('offsite check', () => {
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

  function setup(opts: { mqttUrl?: string } = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'offsite-check-'));
    mkdirSync(join(dir, 'alpha'));
    const nodeId = `n${Math.random().toString(36).slice(2, 8)}`;
    const config: Config = parseConfig({
      node_id: nodeId,
      state_dir: join(dir, 'state'),
      source: { path: '/srv/backup' },
      overdue_after_days: 35,
      drives: [{ name: 'alpha', directory: join(dir, 'alpha') }],
      mqtt: { url: opts.mqttUrl ?? broker.url },
      email: {
        smtp: { port: smtp.port },
        from: 'nas@example.org',
        to: ['me@example.org'],
        on: ['failure', 'overdue'],
      },
    });
    const ledger = new Ledger(config.state_dir);
    const log: Logger = createLogger({ write: () => {} });
    const email = new EmailReporter({ config, ledger, log, env: {} });
    const t = topics('offsite', nodeId);
    return { config, ledger, log, t, check: (now: Date) => checkDrives({ config, ledger, log, email, now }) };
  }

  /** everything published before this point has reached the recorder (the broker keeps order) */
  async function drain(rec: Recorder, t: ReturnType<typeof topics>): Promise<void> {
    const marker = `drain-${Math.random()}`;
    await rec.client.publishAsync(t.event, marker, { qos: 1 });
    await rec.waitFor((m) => m.payload === marker);
  }

  const overdueEvents = (rec: Recorder, t: ReturnType<typeof topics>) =>
    rec.messages
      .filter((m) => m.topic === t.event && m.payload.startsWith('{'))
      .map((m) => m.json() as OffsiteEvent)
      .filter((e) => e.event_type === 'overdue');

  it('says "overdue" once when a drive becomes overdue, and again only after a success', async () => {
    const { ledger, t, check } = setup();
    const rec = await recorder(broker.url, [t.event, t.drive('alpha')]);
    const mailsBefore = smtp.mails.length;
    const mailsNow = () => smtp.mails.slice(mailsBefore);
    try {
      await ledger.recordRun(success('alpha', T0));

      // day 10: fine
      let [r] = await check(day(10));
      assert.equal(r!.state.overdue, false);
      assert.equal(r!.becameOverdue, false);
      await drain(rec, t);
      const state10 = rec.messages.filter((m) => m.topic === t.drive('alpha')).at(-1)!;
      assert.equal(state10.retain, false, 'a live message is not flagged retained');
      assert.deepEqual(
        (({ overdue, age_days, present, last_result }) => ({ overdue, age_days, present, last_result }))(
          state10.json() as DriveState,
        ),
        { overdue: false, age_days: 10, present: true, last_result: 'success' },
      );
      assert.equal(mailsNow().length, 0);
      assert.equal(overdueEvents(rec, t).length, 0);

      // day 36: becomes overdue: one mail, one event
      [r] = await check(day(36));
      assert.equal(r!.becameOverdue, true);
      await drain(rec, t);
      assert.equal(mailsNow().length, 1);
      assert.equal(
        decodeWords(mailsNow()[0]!.subject),
        'offsite: drive "alpha" is overdue for a backup (36 days)',
      );
      assert.match(
        mailBody(mailsNow()[0]!.raw),
        /Drive "alpha" was last backed up 36 days ago \(overdue after 35 days\)\./,
      );
      const events = overdueEvents(rec, t);
      assert.equal(events.length, 1);
      assert.equal(events[0]!.drive, 'alpha');
      assert.equal(
        events[0]!.message,
        'drive "alpha" was last backed up 36 days ago (overdue after 35 days)',
      );
      assert.ok(ledger.drive('alpha').overdue_notified_at);

      // day 37: still overdue, nothing new said; the retained state still says overdue
      [r] = await check(day(37));
      assert.equal(r!.state.overdue, true);
      assert.equal(r!.becameOverdue, false);
      await drain(rec, t);
      assert.equal(mailsNow().length, 1);
      assert.equal(overdueEvents(rec, t).length, 1);
      assert.equal(
        (
          rec.messages
            .filter((m) => m.topic === t.drive('alpha'))
            .at(-1)!
            .json() as DriveState
        ).age_days,
        37,
      );

      // day 38 a success; day 39 fine; 36 days after that: overdue again, said again
      await ledger.recordRun(success('alpha', day(38)));
      assert.equal(ledger.drive('alpha').overdue_notified_at, null, 'a success clears the reminder');
      [r] = await check(day(39));
      assert.equal(r!.state.overdue, false);
      [r] = await check(day(38 + 36));
      assert.equal(r!.becameOverdue, true);
      await drain(rec, t);
      assert.equal(mailsNow().length, 2);
      assert.equal(overdueEvents(rec, t).length, 2);
    } finally {
      await rec.close();
    }
  });

  it('the retained drive state is there for a subscriber that comes later (the LED agent after a restart)', async () => {
    const { ledger, t, check } = setup();
    await ledger.recordRun(success('alpha', T0));
    await check(day(40));
    const late = await recorder(broker.url, [t.drive('alpha')]);
    try {
      const m: Received = await late.waitFor((x) => x.topic === t.drive('alpha'));
      assert.equal(m.retain, true);
      assert.equal((m.json() as DriveState).overdue, true);
    } finally {
      await late.close();
    }
  });

  it('a drive that never succeeded is overdue from the first check', async () => {
    const { t, check } = setup();
    const rec = await recorder(broker.url, [t.event]);
    try {
      const [r] = await check(day(0));
      assert.equal(r!.becameOverdue, true);
      await drain(rec, t);
      assert.equal(overdueEvents(rec, t)[0]!.message, 'drive "alpha" has never been backed up');
    } finally {
      await rec.close();
    }
  });

  it('with the broker down it still mails, logs the broker, and finishes', async () => {
    const { ledger, log, check } = setup({ mqttUrl: `mqtt://127.0.0.1:${await freePort()}` });
    await ledger.recordRun(success('alpha', T0));
    const before = smtp.mails.length;
    const [r] = await check(day(36));
    assert.equal(r!.becameOverdue, true);
    assert.equal(smtp.mails.length, before + 1);
    assert.ok(
      log.tail().some((l) => /mqtt: .*unreachable/.test(l)),
      log.tail().join('\n'),
    );
  });

  it('when the overdue mail cannot be sent, the next check tries again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'offsite-check-'));
    const config = parseConfig({
      state_dir: join(dir, 'state'),
      source: { path: '/srv/backup' },
      drives: [{ name: 'alpha', directory: join(dir, 'alpha') }],
      email: { smtp: { port: await freePort() }, from: 'nas@example.org', to: ['me@example.org'] },
    });
    const ledger = new Ledger(config.state_dir);
    const log = createLogger({ write: () => {} });
    const email = new EmailReporter({ config, ledger, log, env: {} });
    const [first] = await checkDrives({ config, ledger, log, email, now: day(0) });
    assert.equal(first!.becameOverdue, true);
    assert.equal(ledger.drive('alpha').overdue_notified_at, null);
    assert.ok(log.tail().some((l) => /email: could not send "offsite: drive "alpha" is overdue/.test(l)));
    const [second] = await checkDrives({ config, ledger, log, email, now: day(1) });
    assert.equal(second!.becameOverdue, true);
  });
});
