/**
 * The text of every mail offsite sends: failure, success, warning, overdue,
 * and a ledger that had to be started again.
 * Pure builders (no I/O) so the wording can be read and tested on its own;
 * the shared phrases come from bridge/words.ts.
 */
import type { Config } from '../config.js';
import type { LedgerReset, RunEnded } from '../events.js';
import { ageDays, type DriveRecord, successUnknown } from '../ledger.js';
import {
  formatAge,
  formatBytes,
  lastResultText,
  lastSuccessText,
  localTime,
  overdueText,
  previousCopyText,
  SAFE_TO_REMOVE,
} from '../words.js';
import type { MailMessage } from './mailer.js';

/** more than this many file names in a mail helps nobody; the journal has them all */
export const MAX_FILES_LISTED = 50;
export const MAX_LOG_LINES = 30;

type MailConfig = Pick<Config, 'node_id' | 'overdue_after_days' | 'led'>;

const unit = (drive: string) => `offsite-backup@${drive}`;

const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

function section(title: string, lines: string[]): string[] {
  return lines.length ? ['', title, ...lines] : [];
}

function runLine(config: MailConfig, outcome: RunEnded): string {
  const iso = (d: Date) => localTime(d.toISOString());
  return `Run ${outcome.runId} on ${config.node_id}, started ${iso(outcome.startedAt)}, ended ${iso(outcome.endedAt)}.`;
}

function logSection(logLines: readonly string[]): string[] {
  return section(
    'Last log lines',
    logLines.slice(-MAX_LOG_LINES).map((l) => `  ${l}`),
  );
}

export interface FailureInput {
  config: MailConfig;
  outcome: RunEnded;
  /** the drive's ledger record; its last_success is the previous copy */
  record: DriveRecord;
  logLines: readonly string[];
  now: Date;
}

export function failureMail({ config, outcome, record, logLines, now }: FailureInput): MailMessage {
  const drive = outcome.drive;
  const subject = `offsite: backup of drive "${drive}" FAILED${outcome.step ? ` at step ${outcome.step}` : ''}`;
  const meaning = [
    config.led.driver !== 'none' ? '- The status light shows red.' : null,
    '- Your data on the NAS is untouched: offsite only reads it.',
    `- ${previousCopyText(record.last_success, ageDays(record, now), successUnknown(record, now))}`,
    outcome.undoErrors.length
      ? `- Cleaning up did not fully work, so the drive may still be mounted or unlocked:\n${outcome.undoErrors.map((e) => `    ${e}`).join('\n')}`
      : '- The steps already taken were undone.',
  ].filter((l): l is string => l !== null);
  const text = [
    `The backup of drive "${drive}" failed${outcome.step ? ` at step ${outcome.step}` : ''}.`,
    '',
    `Reason: ${outcome.message}`,
    ...section('What this means', meaning),
    ...section('What to do', [
      `- Read the whole log:  journalctl -u ${unit(drive)}`,
      '- Check the setup:     offsite doctor',
      '- Then unplug the drive and plug it in again to retry.',
    ]),
    '',
    runLine(config, outcome),
    ...logSection(logLines),
    '',
  ].join('\n');
  return { subject, text };
}

export interface SuccessInput {
  config: MailConfig;
  outcome: RunEnded;
  /** files rsync could not copy (exit 23/24), as reported with the warning */
  files: readonly string[];
}

function copiedLine(outcome: RunEnded): string {
  const seconds = Math.round((outcome.endedAt.getTime() - outcome.startedAt.getTime()) / 1000);
  const bytes = outcome.bytes === null ? '' : `, ${formatBytes(outcome.bytes, 'bytes')} transferred`;
  return `The copy took ${seconds} s${bytes}.`;
}

export function successMail({ config, outcome }: SuccessInput): MailMessage {
  const drive = outcome.drive;
  return {
    subject: `offsite: backup of drive "${drive}" succeeded, ${SAFE_TO_REMOVE}`,
    text: [
      `The backup of drive "${drive}" succeeded. The drive is unmounted and closed: ${SAFE_TO_REMOVE}.`,
      '',
      copiedLine(outcome),
      '',
      runLine(config, outcome),
      '',
    ].join('\n'),
  };
}

export function warningMail({ config, outcome, files }: SuccessInput): MailMessage {
  const drive = outcome.drive;
  const count = files.length;
  const listed = files.slice(0, MAX_FILES_LISTED).map((f) => `  ${f}`);
  if (count > MAX_FILES_LISTED)
    listed.push(`  ... and ${count - MAX_FILES_LISTED} more (journalctl -u ${unit(drive)} has them all)`);
  const what = count === 1 ? '1 file not copied' : `${count} files not copied`;
  return {
    subject: `offsite: backup of drive "${drive}" finished with warnings${count ? ` (${what})` : ''}`,
    text: [
      `The backup of drive "${drive}" finished, but not everything was copied.`,
      `The drive is unmounted and closed: ${SAFE_TO_REMOVE}.`,
      '',
      ...outcome.warnings.map((w) => `Warning: ${w}`),
      ...section(
        'Files that vanished or could not be read while copying (they are missing from this copy)',
        listed,
      ),
      '',
      'If these files matter, check their permissions on the NAS and run the backup again.',
      '',
      copiedLine(outcome),
      runLine(config, outcome),
      '',
    ].join('\n'),
  };
}

export interface OverdueInput {
  config: MailConfig;
  record: DriveRecord;
  now: Date;
}

export function overdueMail({ config, record, now }: OverdueInput): MailMessage {
  const age = ageDays(record, now);
  const drive = record.name;
  return {
    subject: `offsite: drive "${drive}" is overdue for a backup${age === null ? '' : ` (${formatAge(age)})`}`,
    text: [
      `${capitalize(overdueText(drive, age, config.overdue_after_days, successUnknown(record, now)))}.`,
      '',
      `Last success: ${lastSuccessText(record.last_success, successUnknown(record, now))}`,
      `Last result:  ${lastResultText(record)}`,
      '',
      'Bring the drive to the NAS and plug it in: the backup starts by itself,',
      `and the light turns green when it is ${SAFE_TO_REMOVE}.`,
      '',
      `(Sent once by "offsite check" on ${config.node_id}; you will hear again only after`,
      'the drive has been backed up and becomes overdue again.)',
      '',
    ].join('\n'),
  };
}

export function ledgerResetMail(config: Pick<Config, 'node_id'>, reset: LedgerReset): MailMessage {
  return {
    subject: `offsite: the ledger on ${config.node_id} could not be read and was started again`,
    text: [
      `offsite could not use its ledger, ${reset.file}: ${reset.reason}.`,
      '',
      reset.movedTo
        ? `It moved the file to ${reset.movedTo} and started a new ledger.`
        : 'It could not move the file aside; it reads it as empty until it can write a new one.',
      'Until each drive has been backed up again, offsite does not know when that',
      'last happened: every drive counts as never backed up (overdue), and',
      '"offsite status" says so.',
      ...section('What to do', [
        '- Nothing, for the backups themselves: plug each drive in as usual.',
        ...(reset.movedTo
          ? [
              `- To keep the old history, repair ${reset.movedTo} by hand and put it back as ${reset.file} while no backup runs.`,
            ]
          : []),
        `- Check why it broke: is the disk under ${reset.file} full or failing? (df, dmesg)`,
      ]),
      '',
    ].join('\n'),
  };
}
