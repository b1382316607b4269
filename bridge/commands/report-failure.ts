import { type Config, findDrive, loadConfig } from '../config.js';
import { errorMessage } from '../error-message.js';
import type { RunEnded } from '../events.js';
import { run } from '../exec.js';
import { EXIT } from '../exit.js';
import { type DriveRecord, isReported, Ledger } from '../ledger.js';
import { childLogger, type Logger } from '../log.js';
import {
  driveRecordMessage,
  eventMessage,
  latestSuccess,
  recordAfterRun,
  statusMessage,
  topicsFor,
} from '../mqtt/messages.js';
import { type Outgoing, publishOnce, readRetained } from '../mqtt/oneshot.js';
import { isOpen } from '../open-record.js';
import { isPresent } from '../presence.js';
import { decode, isoNow, type Status, statusSchema } from '../protocol.js';
import { type Delivery, EmailReporter } from '../reporters/email.js';
import { notedAsReported } from '../run/reported-note.js';
import { newRunId } from '../run/runner.js';
import { failedAt } from '../words.js';
import { type Command, driveNamed, UsageError } from './command.js';

/** What systemd (≥ 251) tells an OnFailure= unit about the unit that failed. */
export interface MonitorInfo {
  serviceResult: string | null;
  exitCode: string | null;
  exitStatus: string | null;
  invocationId: string | null;
  unit: string | null;
}

export function monitorInfo(env: NodeJS.ProcessEnv): MonitorInfo {
  const v = (k: string) => env[k]?.trim() || null;
  return {
    serviceResult: v('MONITOR_SERVICE_RESULT'),
    exitCode: v('MONITOR_EXIT_CODE'),
    exitStatus: v('MONITOR_EXIT_STATUS'),
    invocationId: v('MONITOR_INVOCATION_ID'),
    unit: v('MONITOR_UNIT'),
  };
}

/** "was killed by signal KILL", from systemd's result words (see systemd.exec, $SERVICE_RESULT). */
function whatHappened(m: MonitorInfo): string {
  const sig = m.exitStatus ? `SIG${m.exitStatus.replace(/^SIG/, '')}` : 'a signal';
  switch (m.serviceResult) {
    case 'timeout':
      return 'timed out and was stopped by systemd';
    case 'signal':
      return `was killed by ${sig}`;
    case 'core-dump':
      return `crashed (${sig}, core dumped)`;
    case 'oom-kill':
      return 'was killed because the system ran out of memory';
    case 'watchdog':
      return 'stopped answering (watchdog timeout)';
    case 'start-limit-hit':
      return 'was started too often in a short time (start limit hit)';
    case 'resources':
      return 'could not be started (a file, directory or user it needs is missing)';
    case 'exit-code':
      return `exited with status ${m.exitStatus ?? '?'} without reporting why`;
    default:
      if (m.exitCode === 'killed') return `was killed by ${sig}`;
      if (m.exitCode === 'dumped') return `crashed (${sig}, core dumped)`;
      return 'failed without reporting why';
  }
}

/** The step a unit stands for: a failing cryptsetup unit is the unlock, a failing mount unit the mount. */
function stepOfUnit(unit: string | null): string | null {
  if (!unit) return null;
  if (unit.startsWith('systemd-cryptsetup@')) return 'unlock';
  if (unit.endsWith('.mount')) return 'mount';
  return null;
}

/** The reason, in one line, as it goes into the status, the ledger and the mail subject's body. */
export function failureReason(drive: string, m: MonitorInfo, step: string | null): string {
  const unit = m.unit ?? `offsite-backup@${drive}.service`;
  const during = step && !stepOfUnit(m.unit) ? ` during step ${step}` : '';
  const details = [
    m.serviceResult && `result=${m.serviceResult}`,
    m.exitCode && `code=${m.exitCode}`,
    m.exitStatus && `status=${m.exitStatus}`,
  ].filter(Boolean);
  return `${unit} ${whatHappened(m)}${during}${details.length ? ` (systemd: ${details.join(' ')})` : ''}`;
}

export interface ReportOutcome {
  what: /** nothing to do: this failure was reported already */
    | 'already-reported'
    /** nothing to do: the run exited 75, the drive was not plugged in (not a failure) */
    | 'not-a-failure'
    /** the run recorded the failure but its mail did not go out: mailed now */
    | 'mailed-recorded'
    /** the run could not report it (crash, kill, timeout, dependency): recorded, published, mailed */
    | 'recorded';
  /** what happened to the mail, when one was due */
  delivery: Delivery | null;
}

export interface ReportDeps {
  config: Config;
  ledger: Ledger;
  log: Logger;
  email: EmailReporter;
  env: NodeJS.ProcessEnv;
  now?: () => Date;
  /** the retained `<root>/status`, the run's last word (default: read from the broker) */
  lastStatus?: () => Promise<Status | null>;
  /** default: one MQTT connection, tolerant of a broker that is down */
  publish?: (messages: Outgoing[]) => Promise<boolean>;
  /** the failed invocation's own log lines (default: journalctl) */
  journal?: (invocationId: string) => Promise<string[]>;
  present?: (drive: Config['drives'][number]) => Promise<boolean>;
}

async function journalLines(invocationId: string): Promise<string[]> {
  const r = await run(
    'journalctl',
    [`_SYSTEMD_INVOCATION_ID=${invocationId}`, '-o', 'cat', '-n', '30', '--no-pager', '-q'],
    {
      timeoutMs: 5000,
    },
  ).catch(() => null);
  return r?.stdout ? r.stdout.split('\n') : [];
}

/** The recorded failure as the run saw it, for a mail that did not go out the first time. */
function recordedOutcome(ledger: Ledger, record: DriveRecord): RunEnded {
  const f = record.last_failure!;
  const h = ledger.history(200).find((e) => e.run_id === f.run_id);
  return {
    runId: f.run_id,
    drive: record.name,
    result: 'failed',
    step: f.step,
    message: f.message,
    startedAt: new Date(h?.started ?? f.time),
    endedAt: new Date(h?.ended ?? f.time),
    exitCode: 1,
    warnings: [],
    bytes: h?.bytes ?? null,
    freeBytes: null,
    sizeBytes: null,
    undoErrors: [],
  };
}

/**
 * The OnFailure= path (docs/design.md §4). Idempotent: a failure already reported (by
 * the run itself, or by an earlier call for the same systemd invocation) is
 * only logged; a failure the run recorded but could not mail is mailed with
 * the run's own words; anything else is recorded, published and mailed once.
 */
export async function reportFailure(driveName: string, deps: ReportDeps): Promise<ReportOutcome> {
  const { config, ledger, log, email, env } = deps;
  const said = childLogger(log, driveName);
  const now = deps.now ?? (() => new Date());
  const m = monitorInfo(env);
  const record = ledger.drive(driveName);
  const last = record.last_failure;
  const journal = deps.journal ?? journalLines;
  const logLines = m.invocationId ? await journal(m.invocationId) : [];

  if (m.exitCode === 'exited' && m.exitStatus === '75') {
    // SuccessExitStatus=75 keeps OnFailure= from running for it; units written before that did not
    said.info(`the run exited 75 (the drive was not plugged in): nothing to report`);
    return { what: 'not-a-failure', delivery: null };
  }
  // a run that could not write the ledger (a full disk) noted on a tmpfs that it reported its end
  if (isReported(record, m.invocationId) || notedAsReported(config.state_dir, m.invocationId)) {
    said.info(`the failure of invocation ${m.invocationId} was reported already; nothing more to do`);
    return { what: 'already-reported', delivery: null };
  }
  if (record.last_result === 'failed' && last && !isReported(record, last.run_id)) {
    said.info(`run ${last.run_id} ${failedAt(last.step)} and was not mailed yet; reporting it now`);
    const delivery = await email.failure(recordedOutcome(ledger, record), {
      invocationId: m.invocationId,
      logLines,
    });
    return { what: 'mailed-recorded', delivery };
  }
  if (!m.invocationId && record.last_result === 'failed' && last) {
    // without systemd's invocation id there is nothing to tell a new failure from the one already reported
    said.info(`the last failure (run ${last.run_id}) was reported already; nothing more to do`);
    return { what: 'already-reported', delivery: null };
  }

  const readStatus =
    deps.lastStatus ??
    (async () => {
      const raw = await readRetained(config.mqtt, topicsFor(config).status, {
        log,
        role: 'report-failure',
        env,
      });
      if (!raw) return null;
      const d = decode(statusSchema, raw);
      return d.ok ? d.value : null;
    });
  const status = await readStatus();
  // the run's last word, when it was cut off while running: which step, which run
  const interrupted = status && status.state === 'running' && status.drive === driveName ? status : null;
  const step = stepOfUnit(m.unit) ?? interrupted?.step ?? null;
  const message = failureReason(driveName, m, step);
  const ended = now();
  const outcome: RunEnded = {
    runId: interrupted?.run_id ?? newRunId(ended),
    drive: driveName,
    result: 'failed',
    step,
    message,
    startedAt: ended,
    endedAt: ended,
    exitCode: 1,
    warnings: [],
    bytes: interrupted?.bytes ?? null,
    freeBytes: null,
    sizeBytes: null,
    undoErrors: [],
  };
  said.error(`${failedAt(step)}: ${message}`);
  // said first, recorded last: a full state_dir must not keep the status or the mail from going out
  const updated = recordAfterRun(ledger.drive(driveName), outcome);

  const drive = findDrive(config, driveName)!;
  const messages: Outgoing[] = [
    driveRecordMessage(config, updated, ended, {
      present: await (deps.present ?? isPresent)(drive),
      open: isOpen(config.state_dir, drive),
    }),
    eventMessage(config, { event_type: 'failed', drive: driveName, step, message, time: isoNow(ended) }),
  ];
  // the one status topic is shared by all drives: never overwrite another drive's run in progress
  const otherRunning = status?.state === 'running' && status.drive !== driveName;
  if (!otherRunning)
    messages.unshift(
      statusMessage(config, {
        state: 'failed',
        drive: driveName,
        step,
        progress: null,
        bytes: outcome.bytes,
        eta: null,
        message,
        run_id: outcome.runId,
        last_success: latestSuccess(
          config.drives.map((d) => ledger.drive(d.name)),
          ended,
        ),
        updated: isoNow(ended),
      }),
    );
  const publish =
    deps.publish ??
    ((msgs: Outgoing[]) => publishOnce(config.mqtt, msgs, { log, role: 'report-failure', env }));
  await publish(messages);
  // before the mail, which writes to the ledger that it was sent
  const reset = await ledger.repairOrSay(log);
  const delivery = await email.failure(outcome, { invocationId: m.invocationId, logLines });
  if (reset) await email.ledgerReset(reset);
  try {
    await ledger.recordRun(outcome);
  } catch (e) {
    said.error(`could not record the failure in ${ledger.file}: ${errorMessage(e)}`);
  }
  return { what: 'recorded', delivery };
}

export const reportFailureCommand: Command = {
  name: 'report-failure',
  usage: '<drive>',
  summary: 'report a failure the run could not report itself (OnFailure= of the backup unit)',
  help: `
systemd runs this as offsite-failure@<drive>.service when the backup unit of a
drive fails: a crash, a kill, a timeout, or a unit it depends on failing (the
unlock). It reads what systemd passes to OnFailure= units ($MONITOR_UNIT,
$MONITOR_SERVICE_RESULT, $MONITOR_EXIT_CODE, $MONITOR_EXIT_STATUS,
$MONITOR_INVOCATION_ID) and the last status the run published, then:

  - if this failure was reported already (the run itself said "failed at
    mount: ..." and mailed it, or this command ran before for the same
    invocation): logs that, and does nothing else;
  - if the run recorded the failure but its mail did not go out: mails it,
    with the run's own reason;
  - otherwise: publishes status "failed", the drive state and a "failed"
    event over MQTT, sends one email, and then records a failed run in the
    ledger (last: a state_dir with no space left is logged and does not keep
    the status or the mail from going out).

A broker that is down is logged and does not fail this command.

Typed by hand, without systemd's $MONITOR_* variables, it refuses (exit 2):
it would record a failure in the ledger, turn the LED red and tell your phone
and your mailbox about a run that did not fail. To report a failure by hand
all the same (say a run was cut off and its unit's OnFailure= did not run),
add --manual.

Options:
  --manual   report a failure without systemd's $MONITOR_* variables

Exit codes: 0 reported (or nothing to report), 1 the mail could not be sent,
2 usage or configuration error (also: no $MONITOR_* and no --manual).

Example (what the unit runs):
  offsite report-failure alpha
`,
  options: { manual: { type: 'boolean' } },
  async run(ctx) {
    const [name, ...extra] = ctx.positionals;
    if (!name) throw new UsageError('which drive? e.g. offsite report-failure alpha');
    if (extra.length) throw new UsageError(`one drive at a time (got ${ctx.positionals.join(', ')})`);
    const config = loadConfig(ctx.configFile);
    driveNamed(config, name);
    const m = monitorInfo(ctx.env);
    if (!Object.values(m).some(Boolean) && !ctx.values.manual)
      throw new UsageError(
        `this is what systemd runs when offsite-backup@${name}.service fails (OnFailure=), and systemd's $MONITOR_* ` +
          'variables are not set: nothing was reported. To record and report a failure by hand, add --manual',
      );
    const ledger = new Ledger(config.state_dir, { log: ctx.log });
    const email = new EmailReporter({ config, ledger, log: ctx.log, env: ctx.env });
    const { delivery } = await reportFailure(name, { config, ledger, log: ctx.log, email, env: ctx.env });
    return delivery === 'failed' ? EXIT.failed : EXIT.ok;
  },
};
