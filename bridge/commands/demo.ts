import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { LedAgent } from '../../led-agent/agent.js';
import { drivers } from '../../led-agent/drivers/index.js';
import type { LightState } from '../../led-agent/light.js';
import { enrolDrive } from '../../units/prepare/enrol.js';
import { parseConfig } from '../config.js';
import { watchAsHomeAssistant } from '../demo/home-assistant-view.js';
import { writeSampleSource } from '../demo/sample.js';
import { startEmbeddedBroker } from '../embedded-broker.js';
import { EXIT } from '../exit.js';
import { Ledger } from '../ledger.js';
import { driveRecordMessage } from '../mqtt/messages.js';
import { publishOnce } from '../mqtt/oneshot.js';
import { reportersFor } from '../reporters/index.js';
import { runDrive } from '../run/run-drive.js';
import { stepsFor } from '../steps/index.js';
import { formatBytes } from '../words.js';
import type { Command } from './command.js';
import { statusReport, statusTable } from './status.js';

/**
 * The run's output as plain lines even on a terminal: the LED and Home
 * Assistant lines of the demo come from elsewhere and would land inside a
 * live progress line.
 */
function plainLines(out: NodeJS.WriteStream): NodeJS.WriteStream {
  const plain = new Writable({
    write(chunk, _encoding, done) {
      out.write(chunk, done);
    },
  });
  return Object.assign(plain, { isTTY: false }) as unknown as NodeJS.WriteStream;
}

/** Until the LED shows `state`, for at most `ms`: the next paragraph then follows what it shows. */
function lightShows(led: LedAgent, state: LightState, ms = 3000): Promise<void> {
  if (led.light.state === state) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stop();
      clearTimeout(timer);
      resolve();
    };
    const stop = led.onLight((light) => light.state === state && done());
    const timer = setTimeout(done, ms);
  });
}

export const demoCommand: Command = {
  name: 'demo',
  usage: '',
  summary: 'the whole flow on temporary directories: embedded broker, terminal LED, no root, no hardware',
  help: `
Shows what offsite does without touching a drive. In a temporary directory it
makes a small "family backup" (photos, documents, awkward file names, a
symlink) and two drives, alpha and bravo, as plain directories, enrolled as
\`offsite enrol\` does it (a run refuses a drive that is not). It starts an
embedded MQTT broker on 127.0.0.1 (or uses --broker), the LED agent with the
terminal as its LED, and a subscriber that prints what Home Assistant would
show. Neither drive has a copy yet, so the LED starts with the amber overdue
reminder. Then it backs up onto alpha, edits a document, backs up onto bravo
(a drive of its own, so it gets a whole copy too; it is each drive's next
backup that copies only what changed), and prints offsite status.

Options:
  --broker URL   use this MQTT broker instead of the embedded one
  --keep         keep the temporary directory (its path is printed)
  --files N      how many photos to make (default 400)
`,
  options: {
    broker: { type: 'string' },
    keep: { type: 'boolean' },
    files: { type: 'string' },
  },
  async run(ctx) {
    const say = (line = '') => ctx.stdout.write(`${line}\n`);
    const dir = mkdtempSync(join(tmpdir(), 'offsite-demo-'));
    const files = Number(ctx.values.files ?? 400);
    const sample = writeSampleSource(join(dir, 'source'), Number.isFinite(files) && files > 0 ? files : 400);
    for (const d of ['alpha', 'bravo']) mkdirSync(join(dir, 'drives', d), { recursive: true });

    const broker = ctx.values.broker ? null : await startEmbeddedBroker(0);
    const url = (ctx.values.broker as string | undefined) ?? `mqtt://127.0.0.1:${broker!.port}`;
    const config = parseConfig(
      {
        node_id: 'demo',
        state_dir: join(dir, 'state'),
        source: { path: join(dir, 'source') },
        drives: [
          { name: 'alpha', directory: join(dir, 'drives', 'alpha') },
          { name: 'bravo', directory: join(dir, 'drives', 'bravo') },
        ],
        mqtt: { url },
        led: { driver: 'console' },
      },
      '(demo)',
    );

    for (const drive of config.drives) await enrolDrive(config, drive, { force: false });

    say(`offsite demo in ${dir}`);
    say(
      `  source: ${sample.files} files, ${formatBytes(sample.bytes)}; drives: alpha, bravo (directories, enrolled)`,
    );
    say(`  MQTT: ${broker ? `embedded broker at ${url}` : url}; LED: this terminal`);
    say();

    const stopHa = await watchAsHomeAssistant(config, (line) => say(line));
    const led = new LedAgent({
      config,
      driver: await drivers.console(config.led, {
        file: config.file,
        log: ctx.log,
        clock: (await import('../../led-agent/clock.js')).systemClock,
      }),
    });
    await led.start();

    let code: number = EXIT.ok;
    try {
      // what the daily `offsite check` publishes: neither drive has a copy yet, so both are overdue
      const ledger = new Ledger(config.state_dir);
      const now = new Date();
      await publishOnce(
        config.mqtt,
        config.drives.map((d) =>
          driveRecordMessage(config, ledger.drive(d.name), now, { present: true, open: false }),
        ),
        { log: ctx.log, role: 'demo' },
      );
      await lightShows(led, 'overdue');
      say();
      for (const [i, name] of ['alpha', 'bravo'].entries()) {
        if (i > 0) {
          appendFileSync(
            join(dir, 'source', 'documents', 'recettes de grand-mère.txt'),
            '\nTarte Tatin: ...\n',
          );
          say();
          say('A week later: a document was edited (a recipe added to "recettes de grand-mère.txt").');
          say('Plug in the other drive, bravo (its first copy, so a whole one):');
        } else {
          say('Plug in drive alpha:');
        }
        const drive = config.drives.find((d) => d.name === name)!;
        const outcome = await runDrive(config, drive, {
          ...(await reportersFor(config, ctx.log, plainLines(ctx.stdout))),
          steps: stepsFor(drive),
        });
        await new Promise((r) => setTimeout(r, 300)); // let the LED and HA lines arrive before the next paragraph
        if (outcome.exitCode !== 0) code = outcome.exitCode;
      }
      say();
      say(statusTable(await statusReport(config, ledger, new Date())));
      say(
        `Each drive now holds <drive>/current, a complete copy${
          ctx.values.keep ? `: see ${join(dir, 'drives')}` : ' (offsite demo --keep leaves them to look at)'
        }.`,
      );
      say('On a NAS: offsite prepare-drive, then offsite install (docs/setup.md).');
    } finally {
      await led.stop();
      await stopHa();
      await broker?.close();
      if (ctx.values.keep) say(`kept ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
    }
    return code;
  },
};
