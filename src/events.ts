// One way for a part of nightshift to tell others what happened: a typed emitter. A module names
// its events and their payloads in one map (e.g. SupervisorEvents); the daemon subscribes when it
// wires the parts together. A listener that throws is reported and never reaches the emitter, so a
// failing listener can neither lose the event for the others nor break the code that emitted it.
// Shared by all: imports nothing of ours.

/** Events by name, each with its payload. */
export type EventMap = Record<string, unknown>;

export class Emitter<M extends EventMap> {
  private readonly listeners = new Map<keyof M, Array<(payload: never) => void>>();

  /** `report` hears of a listener's failure (the daemon logs it). */
  constructor(private readonly report: (err: unknown, event: string) => void = () => {}) {}

  /** Subscribes; returns the way to unsubscribe. */
  on<K extends keyof M>(event: K, fn: (payload: M[K]) => void): () => void {
    const list = this.listeners.get(event) ?? [];
    list.push(fn);
    this.listeners.set(event, list);
    return () => {
      const i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
    };
  }

  /** Calls each listener in the order they subscribed; one that throws is reported and the rest still run. */
  emit<K extends keyof M>(event: K, payload: M[K]): void {
    const list = this.listeners.get(event);
    if (!list) return;
    for (const fn of [...list]) {
      try {
        (fn as (p: M[K]) => void)(payload);
      } catch (err) {
        try {
          this.report(err, String(event));
        } catch {
          // reporting must not turn one listener's failure into the emitter's
        }
      }
    }
  }
}
