// Group commit: appends wait here after their write; one fsync releases every
// append that finished writing before that fsync began. Under 'interval' fsyncs
// start at most once per interval: an append after a quiet spell is synced at
// once (low latency for 1 Hz vitals), a busy stream waits for the next slot.

export type FsyncPolicy = 'always' | 'interval' | 'never';

export class GroupCommit {
  readonly #policy: FsyncPolicy;
  readonly #intervalMs: number;
  readonly #sync: () => Promise<void>;
  #waiting: { resolve: () => void; reject: (err: Error) => void }[] = [];
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #syncs = 0;
  #lastSyncAt = -Infinity;

  constructor(policy: FsyncPolicy, intervalMs: number, sync: () => Promise<void>) {
    this.#policy = policy;
    this.#intervalMs = intervalMs;
    this.#sync = sync;
  }

  /** fsyncs performed so far. */
  get syncs(): number {
    return this.#syncs;
  }

  /** Resolves once everything written before this call is durable under the policy. */
  durable(): Promise<void> {
    if (this.#policy === 'never') return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      if (this.#policy === 'always') void this.#run();
      else this.#arm();
    });
  }

  /** fsync now, whatever the policy (close, checkpoints). */
  async flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await new Promise<void>((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      void this.#run();
    });
  }

  #arm(): void {
    if (this.#timer || this.#running) return;
    const delay = Math.max(0, this.#lastSyncAt + this.#intervalMs - performance.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#run();
    }, delay);
  }

  async #run(): Promise<void> {
    if (this.#running) return; // the running sync re-runs for late arrivals
    this.#running = true;
    while (this.#waiting.length > 0) {
      const batch = this.#waiting;
      this.#waiting = [];
      this.#lastSyncAt = performance.now();
      try {
        await this.#sync();
        this.#syncs++;
        for (const w of batch) w.resolve();
      } catch (err) {
        for (const w of batch) w.reject(err as Error);
      }
      // In interval mode, arrivals during the sync wait for the next tick.
      if (this.#policy === 'interval') break;
    }
    this.#running = false;
    if (this.#waiting.length > 0) this.#arm();
  }
}
