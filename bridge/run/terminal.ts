/**
 * What a person sees of a run on the command line: a progress bar on a TTY,
 * plain journal-friendly lines otherwise (at most one progress line every 10 s,
 * so the journal is not flooded).
 */
import type { Logger } from '../log.js';
import type { Bus } from './bus.js';
import type { RunEvents } from './events.js';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

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

export function attachTerminal(
  bus: Bus<RunEvents>,
  log: Logger,
  out: NodeJS.WriteStream,
  now = () => Date.now(),
): void {
  const tty = Boolean(out.isTTY);
  let lastLine = 0;
  let barShown = false;
  const clearBar = () => {
    if (barShown) out.write('\r\x1b[2K');
    barShown = false;
  };
  bus.on('progress', (p) => {
    const text = `${p.percent.toFixed(0).padStart(3)}% ${formatBytes(p.bytes)} at ${formatBytes(p.rate)}/s${
      p.etaSeconds !== null ? `, ${formatDuration(p.etaSeconds)} left` : ''
    }`;
    if (tty) {
      out.write(`\r\x1b[2K${p.drive}: ${p.step} ${progressBar(p.percent)} ${text}`);
      barShown = true;
    } else if (now() - lastLine >= 10_000 || p.percent >= 100) {
      lastLine = now();
      log.info(`${p.drive}: ${p.step} ${text}`);
    }
  });
  bus.on('step:start', () => clearBar());
  bus.on('warning', (w) => {
    clearBar();
    log.warn(
      `${w.drive}: ${w.step}: ${w.message}${w.files.length ? `\n  ${w.files.slice(0, 20).join('\n  ')}` : ''}`,
    );
  });
  bus.on('run:end', (r) => {
    clearBar();
    const took = formatDuration((r.endedAt.getTime() - r.startedAt.getTime()) / 1000);
    if (r.result === 'failed') log.error(`${r.drive}: FAILED at ${r.step}: ${r.message} (after ${took})`);
    else
      log.info(
        `${r.drive}: ${r.result === 'warning' ? 'done with warnings' : 'done'} in ${took}: safe to remove`,
      );
  });
}
