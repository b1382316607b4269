/**
 * What a person sees of a run on the command line: a progress bar on a TTY,
 * plain journal-friendly lines otherwise (at most one progress line every 10 s,
 * so the journal is not flooded).
 */
import type { RunEvents, SyncProgress } from '../events.js';
import type { Logger } from '../log.js';
import type { Bus } from '../run/bus.js';
import type { Reporter } from '../run/run-drive.js';
import { formatBytes } from '../words.js';

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

export function progressBar(percent: number, width = 30): string {
  const filled = Math.round((Math.min(100, Math.max(0, percent)) / 100) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

/** What the progress line says: "  42% 1.2 GiB of 3.0 GiB at 40.0 MiB/s, 48s left". */
export function progressText(p: SyncProgress): string {
  const amount = p.total ? `${formatBytes(p.bytes)} of ${formatBytes(p.total)}` : formatBytes(p.bytes);
  return `${p.percent.toFixed(0).padStart(3)}% ${amount} at ${formatBytes(p.rate)}/s${
    p.etaSeconds !== null ? `, ${formatDuration(p.etaSeconds)} left` : ''
  }`;
}

const SPINNER = ['|', '/', '-', '\\'];

/** The terminal as a reporter, and the log the run writes through it. */
export interface TerminalReporter extends Reporter {
  /** the logger to use while the run goes on: it clears the live line before each line it writes */
  log: Logger;
}

/**
 * The terminal. On a TTY one live line follows the step that is running: a
 * progress bar where the step reports progress (sync, verify), else a spinner
 * and the time so far (unlock, mount, close), redrawn every second. Off a TTY
 * (the journal) nothing of that: progress is a plain line at most every 10 s.
 */
export function terminalReporter(
  log: Logger,
  out: NodeJS.WriteStream,
  now = () => Date.now(),
): TerminalReporter {
  const tty = Boolean(out.isTTY);
  let lastLine = 0;
  let lineShown = false;
  let ticker: NodeJS.Timeout | null = null;
  const clearLine = () => {
    if (lineShown) out.write('\r\x1b[2K');
    lineShown = false;
  };
  const stopTicker = () => {
    if (ticker) clearInterval(ticker);
    ticker = null;
  };
  const show = (line: string) => {
    out.write(`\r\x1b[2K${line}`);
    lineShown = true;
  };
  const clearing =
    (write: (msg: string) => void) =>
    (msg: string): void => {
      clearLine();
      write(msg);
    };
  const attach = (bus: Bus<RunEvents>): void => {
    bus.on('progress', (p) => {
      if (tty) {
        stopTicker(); // the bar takes the line over from the timer
        show(`${p.drive}: ${p.step} ${progressBar(p.percent)} ${progressText(p)}`);
      } else if (now() - lastLine >= 10_000 || p.percent >= 100) {
        lastLine = now();
        log.info(`${p.drive}: ${p.step} ${progressText(p)}`);
      }
    });
    bus.on('step:start', (e) => {
      clearLine();
      stopTicker();
      if (!tty) return;
      // the first draw waits a second: the runner prints the step's heading right after this event
      const started = now();
      let turn = 0;
      ticker = setInterval(() => {
        turn += 1;
        show(
          `${e.drive}: ${e.step} ${SPINNER[turn % SPINNER.length]} ${formatDuration((now() - started) / 1000)}`,
        );
      }, 1000);
      ticker.unref();
    });
    bus.on('step:done', () => {
      stopTicker();
      clearLine();
    });
    bus.on('warning', (w) => {
      clearLine();
      log.warn(
        `${w.drive}: ${w.step}: ${w.message}${w.files.length ? `\n  ${w.files.slice(0, 20).join('\n  ')}` : ''}`,
      );
    });
    bus.on('run:end', (r) => {
      stopTicker();
      clearLine();
      const took = formatDuration((r.endedAt.getTime() - r.startedAt.getTime()) / 1000);
      if (r.result === 'failed') log.error(`${r.drive}: FAILED at ${r.step}: ${r.message} (after ${took})`);
      else
        log.info(
          `${r.drive}: ${r.result === 'warning' ? 'done with warnings' : 'done'} in ${took}: safe to remove`,
        );
    });
  };
  return {
    log: {
      error: clearing((m) => log.error(m)),
      warn: clearing((m) => log.warn(m)),
      info: clearing((m) => log.info(m)),
      debug: clearing((m) => log.debug(m)),
      tail: (n) => log.tail(n),
    },
    attach,
  };
}
