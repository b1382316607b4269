/**
 * The controller of one run: wires the reporters it is given (terminal, MQTT,
 * email: reporters/index.ts) to the bus, walks the steps it is given
 * (steps/index.ts), waits for the reporters to finish, and has the ledger's
 * reporter record the run last (so that a state_dir that can take no more
 * never keeps the status or the mail from going out) before it returns the
 * exit code. SIGTERM/SIGINT cancel the run, and the undo walk still
 * unmounts and closes.
 */
import { join } from 'node:path';
import type { Config, Drive } from '../config.js';
import { errorMessage } from '../error-message.js';
import type { RunEnded, RunEvents, SyncProgress } from '../events.js';
import { EXIT } from '../exit.js';
import { describeBusy, describeStopping, tryLock } from '../lockfile.js';
import { childLogger, type Logger } from '../log.js';
import { openRefusal, openState } from '../open-record.js';
import { isPresent } from '../presence.js';
import { stopLeftBehind } from '../processes.js';
import type { RunContext, Step } from '../steps/step.js';
import { Bus } from './bus.js';
import { LedgerReporter } from './ledger-reporter.js';
import { newRunId, runSteps } from './runner.js';

/** Something that listens to a run: started before the first step, stopped (flushed) after the last. */
export interface Reporter {
  attach(bus: Bus<RunEvents>): void;
  start?(): Promise<void>;
  stop?(): Promise<void>;
}

export interface RunDeps {
  /** the run's log (reportersFor's: its lines clear the terminal's live line first) */
  log: Logger;
  /** the drive's steps, in order (stepsFor(drive), or a list of a test's own) */
  steps: readonly Step[];
  /** everything that listens to the run, in the order it hears each event (reportersFor) */
  reporters: readonly Reporter[];
  signal?: AbortSignal;
  /** false: the run is not a backup and is not recorded as one in the ledger (`offsite scrub`) */
  recordRun?: boolean;
}

/**
 * One run per drive at a time: a second `offsite run alpha` (by hand, while
 * systemd's is going) must not clear the first one's mount as "stale", and
 * `offsite cleanup alpha` leaves a live run alone.
 */
export function driveLockFile(stateDir: string, drive: string): string {
  return join(stateDir, 'locks', `drive-${drive}.lock`);
}

/** Another run of the drive is in progress, or `offsite open` has it: nothing was started. EX_TEMPFAIL. */
export class DriveBusyError extends Error {
  override name = 'DriveBusyError';
  readonly exitCode = EXIT.tempfail;
}

/**
 * The drive is not plugged in: not a failure, nothing was started (no event,
 * no ledger entry, no mail, the LED as it was). EX_TEMPFAIL.
 */
export class DriveAbsentError extends Error {
  override name = 'DriveAbsentError';
  readonly exitCode = EXIT.tempfail;
}

export function absentMessage(drive: Drive): string {
  const where =
    drive.kind === 'directory'
      ? `its directory ${drive.directory} does not exist`
      : `no device with UUID ${drive.kind === 'luks' ? drive.luksUuid : drive.uuid}`;
  return `drive "${drive.name}" is not plugged in (${where}): nothing was started`;
}

export async function runDrive(config: Config, drive: Drive, deps: RunDeps): Promise<RunEnded> {
  if (!(await isPresent(drive))) throw new DriveAbsentError(absentMessage(drive));
  const file = driveLockFile(config.state_dir, drive.name);
  let taken: ReturnType<typeof tryLock>;
  try {
    taken = tryLock(file, `offsite run ${drive.name}`);
    const dead = taken.busy?.left.length ? taken.busy.holder : null;
    if (taken.busy && dead) {
      childLogger(deps.log, drive.name).warn(describeStopping(taken.busy));
      await stopLeftBehind(dead.pid, dead.start);
      taken = tryLock(file, `offsite run ${drive.name}`);
    }
  } catch (e) {
    // e.g. a full state_dir: nothing is started, and the run fails saying so, like any failed run
    return runWithReporters(config, drive, deps, e as Error);
  }
  if (!taken.lock)
    throw new DriveBusyError(
      `another run of drive "${drive.name}" is in progress (${describeBusy(taken.busy)})`,
    );
  try {
    // opened by `offsite open` (under this same lock): someone is reading it until `offsite close`
    const open = openState(config.state_dir, drive);
    if (open.is === 'open') throw new DriveBusyError(openRefusal(open.record));
    return await runWithReporters(config, drive, deps);
  } finally {
    taken.lock.release();
  }
}

async function runWithReporters(
  config: Config,
  drive: Drive,
  deps: RunDeps,
  refusal?: Error,
): Promise<RunEnded> {
  const { log } = deps;
  const bus = new Bus<RunEvents>((event, e) =>
    log.warn(`a reporter failed on ${String(event)}: ${errorMessage(e)}`),
  );
  const runId = newRunId();

  const { reporters } = deps;
  // the ledger is placed here, not in the list: it starts after the others and stops after them
  const ledger = new LedgerReporter({ config, log, recordRun: deps.recordRun !== false });
  for (const r of reporters) r.attach(bus);
  ledger.attach(bus);
  await Promise.all(
    reporters.map((r) => r.start?.().catch((e) => log.warn(`reporter start: ${errorMessage(e)}`))),
  );
  await ledger.start();

  let currentStep = '';
  bus.on('step:start', (e) => {
    currentStep = e.step;
  });

  const ac = new AbortController();
  const driveLog = childLogger(log, drive.name);
  const onSignal = (sig: NodeJS.Signals) => {
    driveLog.warn(`${sig} received: stopping the run and undoing what was done`);
    ac.abort(sig);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  deps.signal?.addEventListener('abort', () => ac.abort(deps.signal?.reason), { once: true });

  const ctx: RunContext = {
    config,
    drive,
    runId,
    log: driveLog,
    signal: ac.signal,
    facts: { warnings: [] },
    progress(p: SyncProgress) {
      bus.emit('progress', { ...p, runId, drive: drive.name, step: currentStep, time: new Date() });
    },
    warn(message: string, files: string[] = []) {
      ctx.facts.warnings.push(message);
      bus.emit('warning', { runId, drive: drive.name, step: currentStep, message, files });
    },
  };

  try {
    const outcome = await runSteps(deps.steps, ctx, bus, refusal);
    await bus.settle();
    return outcome;
  } finally {
    await Promise.all(
      reporters.map((r) => r.stop?.().catch((e) => log.warn(`reporter stop: ${errorMessage(e)}`))),
    );
    await bus.settle();
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    // last: the status is out and the mail is sent whatever state_dir can still take (a full disk)
    await ledger.stop();
  }
}
