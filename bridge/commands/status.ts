import { type Config, loadConfig } from '../config.js';
import { type DriveRecord, driveState, type HistoryEntry, Ledger, successUnknown } from '../ledger.js';
import { openState } from '../open-record.js';
import { isPresent } from '../presence.js';
import { type DriveState, isoNow } from '../protocol.js';
import { formatAge, lastResultText, localTime, scrubText, UNKNOWN, yesNo } from '../words.js';
import type { Command } from './command.js';

export interface DriveStatus extends DriveState {
  /** the step and reason of the last failure, when there was one */
  last_failure: DriveRecord['last_failure'];
  /** opened by `offsite open`: where, and since when; null when it is not open */
  opened: { at: string; since: string } | null;
  /**
   * the ledger's last success when it cannot be trusted (not a time, or in
   * the future): last_success is then null and the drive counts as never
   * backed up; null otherwise
   */
  untrusted_last_success: string | null;
}

/** What `offsite status --json` prints. */
export interface StatusReport {
  node_id: string;
  time: string;
  overdue_after_days: number;
  drives: DriveStatus[];
  /** the most recent runs, oldest first */
  history: HistoryEntry[];
}

export async function statusReport(
  config: Config,
  ledger: Ledger,
  now: Date,
  present: (drive: Config['drives'][number]) => Promise<boolean> = isPresent,
): Promise<StatusReport> {
  const drives = await Promise.all(
    config.drives.map(async (d) => {
      const record = ledger.drive(d.name);
      const state = openState(config.state_dir, d);
      const open = state.is === 'open' ? { at: state.record.at, since: state.record.opened } : null;
      return {
        ...driveState(record, config, now, { present: await present(d), open: open !== null }),
        opened: open,
        last_failure: record.last_failure,
        untrusted_last_success: successUnknown(record, now) ? record.last_success : null,
      };
    }),
  );
  return {
    node_id: config.node_id,
    time: isoNow(now),
    overdue_after_days: config.overdue_after_days,
    drives,
    history: ledger.history(20),
  };
}

/** The table people read; columns padded to their widest cell. */
export function statusTable(report: StatusReport): string {
  const header = ['DRIVE', 'LAST SUCCESS', 'AGE', 'OVERDUE', 'PRESENT', 'SCRUB', 'LAST RESULT'];
  const rows = report.drives.map((d) => [
    d.name,
    d.untrusted_last_success ? UNKNOWN : localTime(d.last_success),
    d.untrusted_last_success ? UNKNOWN : d.last_success ? formatAge(d.age_days) : '-',
    yesNo(d.overdue),
    d.open ? 'open' : yesNo(d.present),
    scrubText(d.scrub_progress, d.scrub_last_full_pass),
    lastResultText(d),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const overdue = report.drives.filter((d) => d.overdue).map((d) => d.name);
  const open = report.drives.flatMap((d) =>
    d.opened
      ? [
          `${d.name} is open (offsite open) on ${d.opened.at} since ${localTime(d.opened.since)}: not safe to remove until offsite close ${d.name}.`,
        ]
      : [],
  );
  return [
    line(header),
    ...rows.map(line),
    '',
    `A drive is overdue ${report.overdue_after_days} days after its last success.` +
      (overdue.length ? ` Overdue now: ${overdue.join(', ')}.` : ' None is overdue.'),
    ...open,
    '',
  ].join('\n');
}

export const statusCommand: Command = {
  name: 'status',
  usage: '',
  summary: 'show each drive: last success, age, overdue, last result',
  options: { json: { type: 'boolean' } },
  help: `
Reads the ledger in state_dir and prints one line per configured drive:

  DRIVE         the drive's name in the configuration
  LAST SUCCESS  when its last complete copy was made (local time)
  AGE           how old that copy is, in whole days
  OVERDUE       yes when the copy is older than overdue_after_days, or the
                drive has never been backed up (or when, is unknown: the
                ledger's time is not a time, or lies in the future)
  PRESENT       yes when the drive is plugged in now; open when offsite open
                has it mounted (not safe to remove until offsite close)
  SCRUB         how far the rolling scrub (each run reads back a slice of
                the copy it did not write) is through its pass over the
                whole copy, and when the last whole pass ended
  LAST RESULT   how its last run ended; for a failure, the step and the reason

Options:
  --json   print the same as JSON: { node_id, time, overdue_after_days,
           drives: [...], history: [...] }; each drive has the fields of its
           retained MQTT drive state, plus last_failure,
           untrusted_last_success (the ledger's time, when it is unknown)
           and opened ({ at, since } while offsite open has it, else null)

A ledger that cannot be read (not JSON, not a ledger) is read as empty, with
a warning; the next run or check moves it aside and mails about it.

Exit codes: 0 (also when drives are overdue: this is a report), 2 on a
configuration error.

Examples:
  offsite status
  offsite status --json | jq '.drives[] | select(.overdue) | .name'
`,
  async run(ctx) {
    const config = loadConfig(ctx.configFile);
    const report = await statusReport(config, new Ledger(config.state_dir, { log: ctx.log }), new Date());
    ctx.stdout.write(ctx.values.json ? `${JSON.stringify(report, null, 2)}\n` : statusTable(report));
    return 0;
  },
};
