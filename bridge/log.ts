/**
 * Logging for a program run by systemd: plain lines the journal can index,
 * with `<N>` syslog priority prefixes when stdout goes to the journal
 * (systemd sets $JOURNAL_STREAM), and no colours. The last lines are kept so
 * that a failure email can quote them.
 */
export type Level = 'error' | 'warn' | 'info' | 'debug';
const PRIORITY: Record<Level, number> = { error: 3, warn: 4, info: 6, debug: 7 };

export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  /** the most recent lines, oldest first */
  tail(n?: number): string[];
}

export interface LoggerOptions {
  /** where lines go; default: stderr for warnings/errors, stdout otherwise */
  write?: (level: Level, line: string) => void;
  journal?: boolean;
  verbose?: boolean;
  keep?: number;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const journal = opts.journal ?? Boolean(process.env.JOURNAL_STREAM);
  const verbose = opts.verbose ?? Boolean(process.env.OFFSITE_DEBUG);
  const keep = opts.keep ?? 200;
  const recent: string[] = [];
  const write =
    opts.write ??
    ((level: Level, line: string) => {
      (level === 'error' || level === 'warn' ? process.stderr : process.stdout).write(`${line}\n`);
    });
  const log = (level: Level) => (msg: string) => {
    for (const part of msg.split('\n')) {
      recent.push(`${level === 'info' ? '' : `${level}: `}${part}`);
      if (recent.length > keep) recent.shift();
      if (level === 'debug' && !verbose) continue;
      write(
        level,
        journal
          ? `<${PRIORITY[level]}>${part}`
          : level === 'info' || level === 'debug'
            ? part
            : `${level}: ${part}`,
      );
    }
  };
  return {
    error: log('error'),
    warn: log('warn'),
    info: log('info'),
    debug: log('debug'),
    tail: (n = 30) => recent.slice(-n),
  };
}

/** The lines of one part of the program, named: childLogger(log, 'mqtt').warn('x') says "mqtt: x". */
export function childLogger(log: Logger, name: string): Logger {
  const named = (write: (msg: string) => void) => (msg: string) => write(`${name}: ${msg}`);
  return {
    error: named((m) => log.error(m)),
    warn: named((m) => log.warn(m)),
    info: named((m) => log.info(m)),
    debug: named((m) => log.debug(m)),
    tail: (n) => log.tail(n),
  };
}

/** A logger that records and prints nothing (tests, library use). */
export function silentLogger(): Logger {
  return createLogger({ write: () => {} });
}
