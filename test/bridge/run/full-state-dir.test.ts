/**
 * A NAS disk with no space left under state_dir (a real tmpfs filled to the
 * last byte): the run fails honestly, saying what is wrong, and
 * report-failure still publishes and mails. Both say it and mail it before
 * they try to record it; the record is the one thing that fails, with one line.
 * The real CLI, a real mosquitto, a real SMTP server.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { loadConfig } from '../../../bridge/config.js';
import { Ledger } from '../../../bridge/ledger.js';
import { topics } from '../../../bridge/protocol.js';
import { recorder, startBroker, type TestBroker } from '../../../harness/broker.js';
import { enrolDrive } from '../../../units/prepare/enrol.js';
import { type FullDisk, fullDisk } from '../../helpers/full-disk.js';
import { decodeWords, mailBody } from '../../helpers/mime.js';
import { runEnded } from '../../helpers/run-ended.js';
import { startSmtp } from '../../helpers/smtp.js';
import { tempDir } from '../../helpers/trees.js';
import { offsite } from '../../units/cli.js';

const NODE = 'fullnas';
const t = topics('offsite', NODE);

describe('a state_dir with no space left', () => {
  let broker: TestBroker;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let disk: FullDisk;
  let dir: string;
  let file: string;
  let ledgerBefore: string;

  before(async () => {
    broker = await startBroker();
    smtp = await startSmtp();
    dir = tempDir('offsite-full-');
    mkdirSync(join(dir, 'source'));
    writeFileSync(join(dir, 'source', 'a.txt'), 'alpha\n');
    mkdirSync(join(dir, 'alpha'));
  });
  beforeEach(async () => {
    disk = fullDisk();
    file = join(dir, 'config.yaml');
    writeFileSync(
      file,
      JSON.stringify({
        node_id: NODE,
        state_dir: disk.dir,
        source: { path: join(dir, 'source') },
        drives: [{ name: 'alpha', directory: join(dir, 'alpha') }],
        mqtt: { url: broker.url },
        email: { smtp: { port: smtp.port }, from: 'nas@example.org', to: ['me@example.org'] },
      }),
    );
    const config = loadConfig(file);
    // each test has a state_dir of its own, the drive stays: enrolled anew with --force
    await enrolDrive(config, config.drives[0]!, { force: true });
    // a week-old success in the ledger, then not one more byte
    const week = new Date(Date.now() - 7 * 86_400_000);
    const ok = runEnded('alpha', week, { runId: 'previous', bytes: 6 });
    await new Ledger(disk.dir).recordRun(ok);
    ledgerBefore = readFileSync(join(disk.dir, 'ledger.json'), 'utf8');
    disk.fill();
  });
  afterEach(() => disk.unmount());
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await smtp.stop();
    await broker.stop();
  });

  it('offsite run fails at its first step saying so: status, mail, exit 1, nothing left behind', async () => {
    const watch = await recorder(broker.url, [t.status]);
    const mailsBefore = smtp.mails.length;
    const ran = await offsite(['run', 'alpha', '--config', file]);
    const failed = await watch.waitFor(
      (m) => !m.retain && (m.json() as { state: string }).state === 'failed',
    );
    await watch.close();

    assert.equal(ran.exitCode, 1, ran.stdout + ran.stderr);
    assert.doesNotMatch(ran.stderr, /\n\s+at /, 'no stack trace');
    assert.doesNotMatch(ran.stderr, /another run/);
    const why = `no space left on ${disk.dir}/locks: cannot write the lock drive-alpha.lock`;
    const status = failed.json() as { step: string; message: string };
    assert.equal(status.step, 'identify');
    assert.equal(status.message, why);
    const [mail] = (await smtp.waitFor(mailsBefore + 1)).slice(mailsBefore);
    assert.equal(decodeWords(mail!.subject), 'offsite: backup of drive "alpha" FAILED at step identify');
    assert.match(mailBody(mail!.raw), new RegExp(`Reason: ${why.replace(/[.]/g, '\\.')}`));
    assert.match(
      ran.stderr,
      new RegExp(`could not record the run in ${disk.dir}/ledger\\.json: no space left on `),
    );
    assert.deepEqual(readdirSync(join(disk.dir, 'locks')), [], 'no lock, empty or not, is left');
    assert.equal(readFileSync(join(disk.dir, 'ledger.json'), 'utf8'), ledgerBefore);

    // space again: the next run is not refused as "another run is in progress"
    disk.free();
    const next = await offsite(['run', 'alpha', '--config', file]);
    assert.equal(next.exitCode, 0, next.stdout + next.stderr);
  });

  it('report-failure publishes and mails first, then says the record could not be written; exit 0', async () => {
    const watch = await recorder(broker.url, [t.status, t.event]);
    const mailsBefore = smtp.mails.length;
    const ran = await offsite(['report-failure', 'alpha', '--config', file], {
      env: {
        MONITOR_SERVICE_RESULT: 'signal',
        MONITOR_EXIT_CODE: 'killed',
        MONITOR_EXIT_STATUS: 'KILL',
        MONITOR_INVOCATION_ID: 'inv-full-1',
        MONITOR_UNIT: 'offsite-backup@alpha.service',
      },
    });
    const failed = await watch.waitFor(
      (m) => m.topic === t.status && (m.json() as { state: string }).state === 'failed',
    );
    await watch.waitFor(
      (m) => m.topic === t.event && (m.json() as { event_type: string }).event_type === 'failed',
    );
    await watch.close();

    assert.equal(ran.exitCode, 0, ran.stdout + ran.stderr);
    assert.doesNotMatch(ran.stderr, /\n\s+at /, 'no stack trace');
    assert.match(
      (failed.json() as { message: string }).message,
      /offsite-backup@alpha\.service was killed by SIGKILL/,
    );
    const [mail] = (await smtp.waitFor(mailsBefore + 1)).slice(mailsBefore);
    assert.equal(decodeWords(mail!.subject), 'offsite: backup of drive "alpha" FAILED');
    assert.match(
      ran.stderr,
      new RegExp(
        `alpha: could not record the failure in ${disk.dir}/ledger\\.json: no space left on ${disk.dir}/locks`,
      ),
    );
    assert.equal(readFileSync(join(disk.dir, 'ledger.json'), 'utf8'), ledgerBefore);
  });

  it("after a run that reported its own failure, report-failure (exit status 1) mails nothing more and publishes nothing over the run's status", async () => {
    const watch = await recorder(broker.url, [t.status, t.event]);
    const mailsBefore = smtp.mails.length;
    const invocation = `inv-full-run-${process.pid}`;
    const ran = await offsite(['run', 'alpha', '--config', file], { env: { INVOCATION_ID: invocation } });
    assert.equal(ran.exitCode, 1, ran.stdout + ran.stderr);
    await smtp.waitFor(mailsBefore + 1);
    const statuses = () => watch.messages.filter((m) => m.topic === t.status && !m.retain).length;
    await watch.waitFor((m) => m.topic === t.status && (m.json() as { state: string }).state === 'failed');
    const seen = statuses();

    // the unit exited 1, so OnFailure= fires; the ledger could not say the run reported it
    const reported = await offsite(['report-failure', 'alpha', '--config', file], {
      env: {
        MONITOR_SERVICE_RESULT: 'exit-code',
        MONITOR_EXIT_CODE: 'exited',
        MONITOR_EXIT_STATUS: '1',
        MONITOR_INVOCATION_ID: invocation,
        MONITOR_UNIT: 'offsite-backup@alpha.service',
      },
    });
    assert.equal(reported.exitCode, 0, reported.stdout + reported.stderr);
    assert.match(reported.stdout, /reported already; nothing more to do/);
    // a round trip through the broker: anything report-failure published came before it
    await watch.client.publishAsync(t.event, 'round-trip', { qos: 1 });
    await watch.waitFor((m) => m.payload === 'round-trip');
    await watch.close();
    assert.equal(statuses(), seen, "no status over the run's own");
    assert.equal(smtp.mails.length, mailsBefore + 1, 'no second mail');
  });
});
