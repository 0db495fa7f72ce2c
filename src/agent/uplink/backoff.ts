/**
 * Reconnect delays: exponential from minMs, capped at maxMs, with full jitter
 * (a random delay in [0, cap]) so that many sites coming back after a hub
 * restart do not all knock at once.
 */
export class Backoff {
  #attempt = 0;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const cap = Math.min(this.maxMs, this.minMs * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    return Math.max(this.minMs / 2, Math.round(cap * this.random()));
  }

  reset(): void {
    this.#attempt = 0;
  }
}
