/**
 * Counts live connections per key and refuses one past `max`. Each admitted
 * connection holds a lease; releasing it twice is harmless, so every way a
 * connection can end may release it.
 */
export class ConnectionCounter {
  readonly #counts = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** A release function, or undefined when `key` already holds `max` connections. */
  acquire(key: string): (() => void) | undefined {
    const count = this.#counts.get(key) ?? 0;
    if (count >= this.max) return undefined;
    this.#counts.set(key, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const now = (this.#counts.get(key) ?? 1) - 1;
      if (now <= 0) this.#counts.delete(key);
      else this.#counts.set(key, now);
    };
  }

  count(key: string): number {
    return this.#counts.get(key) ?? 0;
  }
}
