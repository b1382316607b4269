import type { Logger } from '../log.js';

/**
 * Run `fn` with a signal that SIGINT or SIGTERM (Ctrl-C, systemd stopping a
 * unit) aborts: what is under way stops at its next step and undoes what it
 * did, instead of the process dying half-way.
 */
export async function whileSignalled<T>(log: Logger, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    log.warn(`${sig} received: stopping, and undoing what was done`);
    ac.abort(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await fn(ac.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
