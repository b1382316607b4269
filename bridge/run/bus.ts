/**
 * A small typed event bus: the runner emits, reporters (MQTT, email, ledger,
 * terminal) listen. Listener errors are contained so that one broken reporter
 * never stops a backup.
 */
export type Listener<T> = (payload: T) => void | Promise<void>;

export class Bus<Events extends { [K in keyof Events]: unknown }> {
  private listeners = new Map<keyof Events, Set<Listener<never>>>();
  private pending = new Set<Promise<unknown>>();
  private onError: (event: keyof Events, error: unknown) => void;

  constructor(onError: (event: keyof Events, error: unknown) => void = () => {}) {
    this.onError = onError;
  }

  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const set = this.listeners.get(event) ?? new Set();
    this.listeners.set(event, set);
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        const r = (listener as Listener<Events[K]>)(payload);
        if (r && typeof r.then === 'function') {
          const p = r.then(undefined, (e) => this.onError(event, e));
          this.pending.add(p);
          void p.finally(() => this.pending.delete(p));
        }
      } catch (e) {
        this.onError(event, e);
      }
    }
  }

  /** wait for asynchronous listeners still running (e.g. an email being sent) */
  async settle(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }
}
