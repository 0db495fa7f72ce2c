/** Token bucket: a burst of `burst` tokens, refilled at `perSecond`; a request costs `cost` tokens. */
export class TokenBucket {
  #tokens: number;
  #last = performance.now();

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {
    this.#tokens = burst;
  }

  take(cost = 1): boolean {
    this.#refill();
    if (this.#tokens < cost) return false;
    this.#tokens -= cost;
    return true;
  }

  /** Full again: forgetting this bucket now gives its owner nothing a new one would not. */
  get full(): boolean {
    this.#refill();
    return this.#tokens >= this.burst;
  }

  #refill(): void {
    const now = performance.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.perSecond);
    this.#last = now;
  }
}

/**
 * One token bucket per key (a token subject, a client IP). A key's bucket is
 * dropped once it is full again, so the map holds only keys that sent
 * something within the last burst/perSecond seconds: an attacker cycling
 * through addresses makes it grow at most by what it sends in that window.
 */
export class KeyedBuckets {
  readonly #buckets = new Map<string, TokenBucket>();
  #takesSinceSweep = 0;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {}

  take(key: string, cost = 1): boolean {
    if (++this.#takesSinceSweep >= 1024) this.sweep();
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      bucket = new TokenBucket(this.perSecond, this.burst);
      this.#buckets.set(key, bucket);
    }
    return bucket.take(cost);
  }

  /** Forgets full buckets. */
  sweep(): void {
    this.#takesSinceSweep = 0;
    for (const [key, bucket] of this.#buckets) if (bucket.full) this.#buckets.delete(key);
  }

  get size(): number {
    return this.#buckets.size;
  }
}
