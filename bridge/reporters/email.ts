/**
 * Email as a reporter on the run's bus: on run:end it sends what `email.on`
 * asks for. It never throws and never changes the run's exit code: an SMTP
 * problem is a log line. When a failure has been mailed, the run id (and the
 * systemd invocation id) go into the ledger's reported_failures, which is how
 * `offsite report-failure` knows not to mail the same failure twice.
 *
 *   const email = new EmailReporter({ config, ledger, log });
 *   email.attach(bus);
 *   ... run ...
 *   await bus.settle();   // the mail is out (or its failure logged)
 */
import type { Config } from '../config.js';
import { type Mailer, type MailMessage, smtpMailer } from '../email/mailer.js';
import { failureMail, ledgerResetMail, overdueMail, successMail, warningMail } from '../email/messages.js';
import { errorMessage } from '../error-message.js';
import type { LedgerReset, RunEnded, RunEvents } from '../events.js';
import { type DriveRecord, type Ledger, markReported } from '../ledger.js';
import { childLogger, type Logger } from '../log.js';
import type { Bus } from '../run/bus.js';
import type { Reporter } from '../run/run-drive.js';

/** what happened to a mail: sent, not asked for by `email.on` (or no email configured), or failed (logged) */
export type Delivery = 'sent' | 'not-wanted' | 'failed';

type Occasion = 'failure' | 'success' | 'overdue' | 'warning';

export interface EmailReporterOptions {
  config: Config;
  ledger: Ledger;
  log: Logger;
  /** default: SMTP as configured in `email`; null (or no `email` section) sends nothing */
  mailer?: Mailer | null;
  /** the last log lines quoted in a failure mail; default: log.tail() */
  logTail?: () => string[];
  env?: NodeJS.ProcessEnv;
  now?: () => Date;
}

export class EmailReporter implements Reporter {
  private readonly config: Config;
  private readonly ledger: Ledger;
  private readonly log: Logger;
  private readonly mailer: Mailer | null;
  private readonly logTail: () => string[];
  private readonly env: NodeJS.ProcessEnv;
  private readonly now: () => Date;
  /** files rsync could not copy, per run, from the `warning` events */
  private readonly files = new Map<string, string[]>();

  constructor(opts: EmailReporterOptions) {
    this.config = opts.config;
    this.ledger = opts.ledger;
    this.log = childLogger(opts.log, 'email');
    this.env = opts.env ?? process.env;
    this.mailer =
      opts.mailer !== undefined
        ? opts.mailer
        : opts.config.email
          ? smtpMailer(opts.config.email, { env: this.env })
          : null;
    this.logTail = opts.logTail ?? (() => opts.log.tail());
    this.now = opts.now ?? (() => new Date());
  }

  /** listen to a run; returns a function that stops listening */
  attach(bus: Bus<RunEvents>): () => void {
    const offWarning = bus.on('warning', (w) => {
      const list = this.files.get(w.runId) ?? [];
      list.push(...w.files);
      this.files.set(w.runId, list);
    });
    const offEnd = bus.on('run:end', (outcome) => this.runEnded(outcome).then(() => undefined));
    const offReset = bus.on('ledger:reset', (reset) => this.ledgerReset(reset).then(() => undefined));
    return () => {
      offWarning();
      offEnd();
      offReset();
    };
  }

  /** the mail for a finished run, as `email.on` asks */
  async runEnded(outcome: RunEnded): Promise<Delivery> {
    const files = this.files.get(outcome.runId) ?? [];
    this.files.delete(outcome.runId);
    try {
      if (outcome.result === 'failed') return await this.failure(outcome);
      if (outcome.result === 'warning' && this.wants('warning'))
        return await this.deliver(warningMail({ config: this.config, outcome, files }));
      if (this.wants('success'))
        return await this.deliver(successMail({ config: this.config, outcome, files }));
      return 'not-wanted';
    } catch (e) {
      // building a mail must not break a run either
      this.log.error(`could not report the run of drive "${outcome.drive}": ${errorMessage(e)}`);
      return 'failed';
    }
  }

  /**
   * Mail a failure and record it as reported. `invocationId` is the systemd
   * invocation that failed (default: this process's own $INVOCATION_ID), so
   * that the OnFailure handler recognises a failure the run already reported.
   */
  async failure(
    outcome: RunEnded,
    opts: { logLines?: readonly string[]; invocationId?: string | null } = {},
  ): Promise<Delivery> {
    const invocationId = opts.invocationId !== undefined ? opts.invocationId : this.env.INVOCATION_ID;
    let delivery: Delivery = 'not-wanted';
    if (this.wants('failure')) {
      const record = this.ledger.drive(outcome.drive);
      const message = failureMail({
        config: this.config,
        outcome,
        record,
        logLines: opts.logLines ?? this.logTail(),
        now: this.now(),
      });
      delivery = await this.deliver(message);
    }
    // a failed delivery stays unreported so that report-failure can try once more
    if (delivery !== 'failed') {
      try {
        await markReported(this.ledger, outcome.drive, [outcome.runId, invocationId]);
      } catch (e) {
        this.log.error(
          `could not record in the ledger that run ${outcome.runId} was reported: ${errorMessage(e)}`,
        );
      }
    }
    return delivery;
  }

  async overdue(record: DriveRecord, now: Date): Promise<Delivery> {
    if (!this.wants('overdue')) return 'not-wanted';
    return this.deliver(overdueMail({ config: this.config, record, now }));
  }

  /** The ledger had to be started again: the reminders it drives start from nothing. */
  async ledgerReset(reset: LedgerReset): Promise<Delivery> {
    if (!this.wants('overdue') && !this.wants('failure')) return 'not-wanted';
    return this.deliver(ledgerResetMail(this.config, reset));
  }

  private wants(occasion: Occasion): boolean {
    return Boolean(this.mailer && this.config.email?.on.includes(occasion));
  }

  private async deliver(message: MailMessage): Promise<Delivery> {
    if (!this.mailer) return 'not-wanted';
    try {
      await this.mailer.send(message);
      this.log.info(`sent "${message.subject}" to ${this.config.email?.to.join(', ')}`);
      return 'sent';
    } catch (e) {
      this.log.error(`could not send "${message.subject}" via ${this.mailer.describe}: ${errorMessage(e)}`);
      return 'failed';
    }
  }
}
