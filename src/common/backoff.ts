/** Random numbers in [0, 1); injectable so tests get the same delays every run. */
export type Random = () => number;

export interface BackoffOptions {
  /** The first delay (ms), and what reset() returns to. */
  minMs: number;
  /** No step is longer than this (ms). */
  maxMs: number;
  /**
   * How the delay is spread around the exponential step `cap`:
   * - 'none': exactly cap (a single local device: nobody to collide with);
   * - 'full': anywhere in [minMs / 2, cap] (many sites reconnecting to one hub);
   * - a fraction f: within cap * (1 ± f) (a few agents knocking on one monitor).
   */
  jitter?: 'none' | 'full' | number;
  random?: Random;
}

/**
 * The one reconnect and retry backoff: exponential from minMs, capped at maxMs,
 * with optional jitter, back to minMs after a success (reset()).
 */
export class Backoff {
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #jitter: 'none' | 'full' | number;
  readonly #random: Random;
  #attempt = 0;

  constructor(options: BackoffOptions) {
    // maxMs below minMs is allowed (configs validate each alone): the cap wins.
    if (!(options.minMs >= 0) || !(options.maxMs >= 0)) {
      throw new Error(`backoff delays must be numbers >= 0, got minMs ${options.minMs} and maxMs ${options.maxMs}`);
    }
    const jitter = options.jitter ?? 'none';
    if (typeof jitter === 'number' && !(jitter >= 0 && jitter < 1)) throw new Error(`backoff jitter must be in [0, 1), got ${jitter}`);
    this.#minMs = options.minMs;
    this.#maxMs = options.maxMs;
    this.#jitter = jitter;
    this.#random = options.random ?? Math.random;
  }

  /** Failures since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  /** The delay before the next try; each call counts one more failure. */
  next(): number {
    // The exponent stops growing long before 2 ** n overflows; the cap has long taken over.
    const cap = Math.min(this.#maxMs, this.#minMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    if (this.#jitter === 'none') return cap;
    if (this.#jitter === 'full') return Math.max(this.#minMs / 2, Math.round(cap * this.#random()));
    return Math.round(cap * (1 - this.#jitter + 2 * this.#jitter * this.#random()));
  }

  reset(): void {
    this.#attempt = 0;
  }
}
