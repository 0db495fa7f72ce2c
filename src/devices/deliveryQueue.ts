import type { DeviceReadingBody } from './driver.js';
import { Backoff } from '../common/backoff.js';
import type { Logger } from '../common/logger.js';

export interface DeliveryQueueOptions {
  /** Most readings kept while the sink refuses; beyond this the oldest are dropped (and counted). */
  maxBuffered: number;
  /** Most readings handed to the sink in one accept(). */
  maxBatch: number;
  retryMinMs: number;
  retryMaxMs: number;
}

export interface DeliveryCounters {
  /** Readings waiting for the sink. */
  buffered: number;
  /** accept() calls that rejected and will be retried. */
  retries: number;
  /** Readings dropped because the retry buffer was full. */
  overflowDropped: number;
}

/**
 * Hands readings to the sink in order, one accept() at a time. A rejected batch
 * stays at the head and is retried with backoff, so a refusing sink loses
 * nothing until the buffer bound is reached.
 */
export class DeliveryQueue {
  readonly counters: DeliveryCounters = { buffered: 0, retries: 0, overflowDropped: 0 };
  #queue: DeviceReadingBody[] = [];
  #head = 0;
  #pumping = false;
  /** End (exclusive) of the batch the sink is working on; 0 when none. */
  #inFlightEnd = 0;
  readonly #backoff: Backoff;
  #retryTimer: NodeJS.Timeout | undefined;
  #idleWaiters: (() => void)[] = [];
  #overflowLogged = false;

  constructor(
    private readonly send: (batch: DeviceReadingBody[]) => Promise<unknown>,
    private readonly options: DeliveryQueueOptions,
    private readonly log: Logger,
  ) {
    this.#backoff = new Backoff({ minMs: options.retryMinMs, maxMs: options.retryMaxMs });
  }

  get size(): number {
    return this.#queue.length - this.#head;
  }

  enqueue(readings: DeviceReadingBody[]): void {
    if (readings.length === 0) return;
    for (const r of readings) this.#queue.push(r);
    this.#enforceBound();
    this.counters.buffered = this.size;
    if (!this.#pumping && this.#retryTimer === undefined) void this.#pump();
  }

  /** Resolves once everything queued so far was accepted, or after timeoutMs (false). */
  async drain(timeoutMs = Infinity): Promise<boolean> {
    if (this.size === 0 && !this.#pumping) return true;
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        resolve(true);
      };
      this.#idleWaiters.push(done);
      if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          this.#idleWaiters = this.#idleWaiters.filter((w) => w !== done);
          resolve(false);
        }, timeoutMs);
        timer.unref();
      }
    });
  }

  /** Stops retrying; what is still queued stays counted in `buffered`. */
  close(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  #enforceBound(): void {
    const excess = this.size - this.options.maxBuffered;
    if (excess <= 0) return;
    // A batch in flight may still be accepted, so drop the oldest readings after it.
    const dropStart = Math.max(this.#head, this.#inFlightEnd);
    const dropped = Math.min(excess, this.#queue.length - dropStart);
    if (dropStart === this.#head) this.#head += dropped;
    else this.#queue.splice(dropStart, dropped);
    this.counters.overflowDropped += dropped;
    if (!this.#overflowLogged) {
      this.#overflowLogged = true;
      this.log.error({ dropped, maxBuffered: this.options.maxBuffered }, 'reading retry buffer full: dropping oldest readings');
    }
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.size > 0) {
        const end = Math.min(this.#queue.length, this.#head + this.options.maxBatch);
        const batch = this.#queue.slice(this.#head, end);
        this.#inFlightEnd = end;
        try {
          await this.send(batch);
        } catch (err) {
          this.#inFlightEnd = 0;
          this.counters.retries++;
          const retryInMs = this.#backoff.next();
          this.log.warn({ err: (err as Error).message, buffered: this.size, retryInMs }, 'sink rejected readings; will retry');
          this.#scheduleRetry(retryInMs);
          return;
        }
        this.#head = this.#inFlightEnd;
        this.#inFlightEnd = 0;
        this.#backoff.reset();
        if (this.#overflowLogged) {
          this.log.warn({ overflowDropped: this.counters.overflowDropped }, 'sink accepting again after overflow');
          this.#overflowLogged = false;
        }
        this.#compact();
      }
    } finally {
      this.#pumping = false;
      this.counters.buffered = this.size;
    }
    if (this.size === 0) for (const waiter of this.#idleWaiters.splice(0)) waiter();
  }

  #scheduleRetry(delayMs: number): void {
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#pump();
    }, delayMs);
  }

  #compact(): void {
    if (this.#head > 4096 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }
}
