/**
 * The ledger, as one of the run's reporters: when the run starts it repairs
 * the ledger (one that cannot be read is moved aside and said on the bus,
 * `ledger:reset`, which the email reporter mails); when the run stops it
 * records the run. The controller (run-drive.ts) places it itself: started
 * after the other reporters, so that they hear the reset, and stopped after
 * them, so that a state_dir with no space left costs the record, never the
 * status or the mail.
 */
import type { Config } from '../config.js';
import { errorMessage } from '../error-message.js';
import type { RunEnded, RunEvents } from '../events.js';
import { Ledger } from '../ledger.js';
import type { Logger } from '../log.js';
import type { Bus } from './bus.js';
import { noteReported } from './reported-note.js';
import type { Reporter } from './run-drive.js';

export class LedgerReporter implements Reporter {
  private readonly ledger: Ledger;
  private readonly config: Config;
  private readonly log: Logger;
  /** false: the run is not a backup and is not recorded as one (`offsite scrub`) */
  private readonly recordRun: boolean;
  private bus: Bus<RunEvents> | null = null;
  private outcome: RunEnded | null = null;

  constructor(opts: { config: Config; log: Logger; recordRun: boolean }) {
    this.config = opts.config;
    this.log = opts.log;
    this.recordRun = opts.recordRun;
    this.ledger = new Ledger(opts.config.state_dir, { log: opts.log });
  }

  attach(bus: Bus<RunEvents>): void {
    this.bus = bus;
    bus.on('run:end', (outcome) => {
      this.outcome = outcome;
    });
  }

  /** A ledger that cannot be used is moved aside and said now (log, mail), not found at the end. Never throws. */
  async start(): Promise<void> {
    const reset = await this.ledger.repairOrSay(this.log);
    if (reset) this.bus?.emit('ledger:reset', reset);
  }

  /** Record the run that ended; one that cannot be recorded (a full disk) is noted on /run instead. Never throws. */
  async stop(): Promise<void> {
    const outcome = this.outcome;
    if (!outcome || !this.recordRun) return;
    try {
      await this.ledger.recordRun(outcome);
    } catch (e) {
      this.log.error(`could not record the run in ${this.ledger.file}: ${errorMessage(e)}`);
      try {
        noteReported(this.config.state_dir, [outcome.runId, process.env.INVOCATION_ID]);
      } catch (note) {
        this.log.error(`could not note the run in /run either: ${errorMessage(note)}`);
      }
    }
  }
}
