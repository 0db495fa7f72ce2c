/** A minimal typed event emitter for the browser (Node's is not bundled). */
export class Emitter<Events extends Record<string, unknown[]>> {
  // No prototype: an event named like an Object method must not find one.
  readonly #listeners: { [E in keyof Events]?: Set<(...args: Events[E]) => void> } = Object.create(null);

  on<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): () => void {
    const set = (this.#listeners[event] ??= new Set());
    set.add(listener);
    return () => set.delete(listener);
  }

  protected emit<E extends keyof Events>(event: E, ...args: Events[E]): void {
    for (const listener of this.#listeners[event] ?? []) {
      try {
        listener(...args);
      } catch (err) {
        console.warn(`listener for ${String(event)} failed`, err);
      }
    }
  }
}
