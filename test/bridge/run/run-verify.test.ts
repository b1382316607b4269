/**
 * A copy that does not verify is never switched in: the run fails at verify,
 * with the same honest ending as any other failure (status, event, email,
 * exit code), and `current` stays the previous complete copy.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readlinkSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../../bridge/config.js';
import { silentLogger } from '../../../bridge/log.js';
import { topics } from '../../../bridge/protocol.js';
import { reportersFor } from '../../../bridge/reporters/index.js';
import { layout } from '../../../bridge/rsync/snapshots.js';
import { runDrive } from '../../../bridge/run/run-drive.js';
import { stepsFor } from '../../../bridge/steps/index.js';
import type { Step } from '../../../bridge/steps/step.js';
import { recorder, startBroker, type TestBroker } from '../../../harness/broker.js';
import { enrolDrive } from '../../../units/prepare/enrol.js';
import { decodeWords, mailHeader } from '../../helpers/mime.js';
import { startSmtp } from '../../helpers/smtp.js';
import { awkwardTree, diffTrees, tempDir } from '../../helpers/trees.js';

const out = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;

describe('a copy that does not verify', () => {
  let broker: TestBroker;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  before(async () => {
    broker = await startBroker();
    smtp = await startSmtp();
  });
  after(async () => {
    await broker.stop();
    await smtp.stop();
  });

  it('fails at verify: failed status, event, one email, exit 1, and current is still the previous copy', async () => {
    const dir = tempDir('offsite-verify-run-');
    const source = join(dir, 'source');
    const target = join(dir, 'drive');
    awkwardTree(source);
    mkdirSync(target);
    const config = parseConfig({
      node_id: 'verifynas',
      state_dir: join(dir, 'state'),
      source: { path: source },
      drives: [{ name: 'alpha', directory: target }],
      verify: { scrub: '100%' },
      mqtt: { url: broker.url },
      email: {
        smtp: { host: '127.0.0.1', port: smtp.port },
        from: 'nas@example.org',
        to: ['me@example.org'],
      },
    });
    const drive = config.drives[0]!;
    const log = silentLogger();
    await enrolDrive(config, drive, { force: false });

    const first = await runDrive(config, drive, {
      ...(await reportersFor(config, log, out)),
      steps: stepsFor(drive),
    });
    assert.equal(first.result, 'success', first.message);
    const previous = readlinkSync(join(target, 'current'));

    // bit rot in the new copy between sync and verify: same size, same time, other bytes
    writeFileSync(join(source, 'data', 'a.txt'), 'ALPHA\n');
    const rot: Step = {
      name: 'rot',
      title: 'a byte flips on the drive',
      async run() {
        const file = join(layout(target).staging, 'data', 'nested', 'b.bin');
        const st = statSync(file);
        const bytes = readFileSync(file);
        bytes[100] = bytes[100]! ^ 0xff;
        writeFileSync(file, bytes);
        utimesSync(file, st.atime, st.mtime);
      },
    };
    const steps = [...stepsFor(drive)];
    steps.splice(
      steps.findIndex((s) => s.name === 'verify'),
      0,
      rot,
    );

    const t = topics('offsite', 'verifynas');
    const watch = await recorder(broker.url, [t.status, t.event]);
    const mails = smtp.mails.length;
    const second = await runDrive(config, drive, {
      ...(await reportersFor(config, log, out)),
      steps,
    });
    assert.equal(second.result, 'failed');
    assert.equal(second.step, 'verify');
    assert.equal(second.exitCode, 1);
    assert.match(second.message, /b\.bin/);

    const status = await watch.waitFor(
      (m) => !m.retain && m.topic === t.status && (m.json() as { state: string }).state === 'failed',
    );
    assert.equal((status.json() as { step: string }).step, 'verify');
    await watch.waitFor(
      (m) => m.topic === t.event && (m.json() as { event_type: string }).event_type === 'failed',
    );
    await watch.close();
    await smtp.waitFor(mails + 1);
    assert.match(decodeWords(mailHeader(smtp.mails.at(-1)!.raw, 'Subject') ?? ''), /alpha.*verify/);

    assert.equal(readlinkSync(join(target, 'current')), previous, 'current was not switched');
    assert.match(
      diffTrees(source, join(target, 'current')),
      /a\.txt/,
      'current is the previous copy, without the new change',
    );

    const third = await runDrive(config, drive, {
      ...(await reportersFor(config, log, out)),
      steps: stepsFor(drive),
    });
    assert.equal(third.result, 'success', third.message);
    assert.equal(diffTrees(source, join(target, 'current')), '');
  });
});
