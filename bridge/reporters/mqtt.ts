/**
 * The run's MQTT reporter: listens to the run's bus and keeps the contract
 * (docs/design.md §6) up to date: the retained status (throttled to 2 a second during
 * sync), the retained drive states, the events, and Home Assistant discovery.
 * A broker that is down or refuses the login never holds the run up (see
 * MqttLink): start() waits at most for one connection attempt, stop() a bounded time.
 */
import type { Drive } from '../config.js';
import { errorMessage } from '../error-message.js';
import type { RunEnded, RunEvents } from '../events.js';
import { publishDiscovery } from '../homeassistant/publish.js';
import type { DriveRecord, Ledger } from '../ledger.js';
import { childLogger, type Logger } from '../log.js';
import type { MqttLink } from '../mqtt/link.js';
import {
  driveRecordMessage,
  eventMessage,
  latestSuccess,
  recordAfterRun,
  statusMessage,
} from '../mqtt/messages.js';
import { type PublisherDeps, publisherParts, recordOf } from '../mqtt/publisher.js';
import { isOpen } from '../open-record.js';
import { isPresent } from '../presence.js';
import type { Status } from '../protocol.js';
import type { Bus } from '../run/bus.js';
import type { Reporter } from '../run/run-drive.js';
import { Throttle } from '../throttle.js';
import { RunStatus } from './run-status.js';

export interface MqttReporterDeps extends PublisherDeps {
  /** progress messages at most this often (default 500 ms: 2 a second) */
  progressIntervalMs?: number;
  /** how long start() waits for the first connection attempt (default 3 s) */
  connectWaitMs?: number;
  /** how long stop() waits for the final state to get out (default 5 s) */
  flushMs?: number;
}

export class MqttReporter implements Reporter {
  private readonly deps: MqttReporterDeps;
  /** every line says "mqtt: " first */
  private readonly log: Logger;
  private readonly link: MqttLink;
  private readonly ledger: Pick<Ledger, 'drive'>;
  private readonly now: () => Date;
  private readonly throttle: Throttle<() => Status>;
  /** drive states waiting for a presence check; stop() waits for these, never for the broker */
  private readonly preparing = new Set<Promise<unknown>>();
  private run: RunStatus | null = null;
  /** the drive of the run under way: its state says "present" whatever a slower check finds */
  private activeDrive: string | null = null;

  constructor(deps: MqttReporterDeps) {
    this.deps = deps;
    this.log = childLogger(deps.log, 'mqtt');
    ({ link: this.link, ledger: this.ledger, now: this.now } = publisherParts(deps, 'run'));
    // the status is built when it is sent, not for each of the thousands of reports held back
    this.throttle = new Throttle<() => Status>(
      deps.progressIntervalMs ?? 500,
      (build) => {
        // a held progress report is built in a timer, where a throw would end the process
        try {
          this.send(statusMessage(this.deps.config, build()));
        } catch (e) {
          this.log.warn(`status not published: ${errorMessage(e)}`);
        }
      },
      // a clock given to the reporter (tests) paces progress too; otherwise a monotonic one
      deps.clock ? () => this.now().getTime() : undefined,
    );
  }

  /** Connect in the background and republish what is retained: discovery and every drive's state. */
  async start(): Promise<void> {
    if (!this.link.enabled) return;
    this.link.start();
    // settles when the broker has it or the link stops; nothing waits for it
    void publishDiscovery(this.link, this.deps.config, this.deps.log);
    for (const drive of this.deps.config.drives)
      this.prepare(this.publishDrive(drive, this.record(drive.name)));
    // the run starts on a live connection when there is a broker; a dead one costs at most the connect timeout
    await this.link.firstAttempt(this.deps.connectWaitMs ?? 3000);
  }

  attach(bus: Bus<RunEvents>): void {
    const { config } = this.deps;
    bus.on('run:start', (e) => {
      this.run = new RunStatus(latestSuccess(config.drives.map((d) => this.record(d.name))));
      this.activeDrive = e.drive;
      const started = this.run.started(e, this.now());
      this.throttle.now(() => started);
      this.publishEvent({ event_type: 'started', drive: e.drive, message: `backup onto ${e.drive} started` });
      const drive = config.drives.find((d) => d.name === e.drive);
      if (drive) this.prepare(this.publishDrive(drive, this.record(drive.name), true));
    });
    bus.on('step:start', (e) => {
      if (!this.run) return;
      const status = this.run.step(e, this.now());
      this.throttle.now(() => status);
    });
    bus.on('progress', (e) => {
      const run = this.run;
      if (!run) return;
      run.progress(e, this.now());
      this.throttle.offer(() => run.snapshot(this.now()));
    });
    bus.on('warning', (e) => this.run?.warning(e));
    bus.on('run:end', (e) => this.ended(e));
  }

  /** A non-retained event (also for other parts of a run that have news). */
  publishEvent(event: Parameters<typeof eventMessage>[1]): void {
    this.send(eventMessage(this.deps.config, event));
  }

  /** Wait (bounded) for the final state to reach the broker, then disconnect. Never throws. */
  async stop(): Promise<void> {
    await Promise.allSettled([...this.preparing]);
    await this.link.stop(this.deps.flushMs ?? 5000);
  }

  private ended(e: RunEnded): void {
    const { config } = this.deps;
    const run = this.run ?? new RunStatus(latestSuccess(config.drives.map((d) => this.record(d.name))));
    const status = run.ended(e, this.now());
    this.run = null;
    this.activeDrive = null;
    const ok = e.result !== 'failed';
    const announce = () => {
      this.throttle.now(() => status);
      this.publishEvent({
        event_type: ok ? 'succeeded' : 'failed',
        drive: e.drive,
        step: e.step,
        message: e.message,
      });
    };
    // the drive's new state goes out before the final status, so that a subscriber (the LED)
    // never sees "success" next to the drive's old "overdue" and flashes the reminder
    const drive = config.drives.find((d) => d.name === e.drive);
    if (!drive) {
      announce();
      return;
    }
    this.prepare(this.publishDrive(drive, recordAfterRun(this.record(drive.name), e)).finally(announce));
  }

  private record(name: string): DriveRecord {
    return recordOf(this.ledger, name, this.log);
  }

  private async publishDrive(drive: Drive, record: DriveRecord, present?: boolean): Promise<void> {
    const here = present ?? (await (this.deps.present ?? isPresent)(drive));
    // a check that started before this drive's run began must not say it is away
    if (present === undefined && this.activeDrive === drive.name) return;
    const open = isOpen(this.deps.config.state_dir, drive);
    this.send(driveRecordMessage(this.deps.config, record, this.now(), { present: here, open }));
  }

  private send(msg: Parameters<MqttLink['publish']>[0]): void {
    void this.link.publish(msg);
  }

  private prepare(p: Promise<unknown>): void {
    const q = p.catch((e) => this.log.warn(`${errorMessage(e)}`));
    this.preparing.add(q);
    void q.finally(() => this.preparing.delete(q));
  }
}
