// Readings a hub accepted and delivered live while its history store (Redis)
// could not take them, kept in seq order until the store is back. The hub
// acks only what the store holds, so everything here is still in the site
// agent's journal: dropping it (the buffer is full, the hub dies) loses
// nothing acked, it only means the agent resends it (docs/SCALING.md,
// "Failure behaviour"). Pure bookkeeping; DeviceStreams does the store I/O.

import type { Reading } from '../devices/reading.js';
import type { DeviceSession } from './history/deviceHistory.js';
import type { Gap } from './protocol.js';

/** One accepted batch, as the store's append will take it. */
export interface UnstoredBatch {
  session: DeviceSession;
  /** Readings above the previous entry's `through` (or the stored watermark), in seq order. */
  readings: Reading[];
  gaps: Gap[];
  /** The batch's end: the watermark once this entry is stored. */
  through: number;
  /** Estimated bytes (readingBytes). */
  bytes: number;
}

/** The hub-wide bound shared by every device's buffer, so many devices together cannot fill the hub. */
export class UnstoredBudget {
  #used = 0;

  constructor(
    /** Estimated bytes one device may keep (devices.unstoredBytesPerDevice). */
    readonly perDevice: number,
    /** Estimated bytes all devices together may keep (devices.unstoredBytes). */
    readonly total: number,
  ) {}

  get used(): number {
    return this.#used;
  }

  take(bytes: number): boolean {
    if (this.#used + bytes > this.total) return false;
    this.#used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }
}

/** One device's buffer: contiguous from the stored watermark up, bounded by its own and the hub's budget. */
export class UnstoredReadings {
  readonly #budget: UnstoredBudget;
  #entries: UnstoredBatch[] = [];
  #bytes = 0;
  #readings = 0;

  constructor(budget: UnstoredBudget) {
    this.#budget = budget;
  }

  get empty(): boolean {
    return this.#entries.length === 0;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get readings(): number {
    return this.#readings;
  }

  /** The highest seq kept: where the next batch must start for the buffer to stay contiguous. */
  through(stored: number): number {
    return this.#entries[this.#entries.length - 1]?.through ?? stored;
  }

  /**
   * Keeps a batch when it fits this device's and the hub's bound. A batch that
   * does not fit is not kept, and nothing after it can be (the buffer would have
   * a hole): the caller stops buffering until the store has caught up and the
   * agent resent the rest.
   */
  add(entry: UnstoredBatch): boolean {
    if (this.#bytes + entry.bytes > this.#budget.perDevice || !this.#budget.take(entry.bytes)) return false;
    this.#entries.push(entry);
    this.#bytes += entry.bytes;
    this.#readings += entry.readings.length;
    return true;
  }

  first(): UnstoredBatch | undefined {
    return this.#entries[0];
  }

  /** The first entry is stored now. */
  shift(): void {
    const entry = this.#entries.shift();
    if (!entry) return;
    this.#bytes -= entry.bytes;
    this.#readings -= entry.readings.length;
    this.#budget.give(entry.bytes);
  }

  clear(): void {
    this.#budget.give(this.#bytes);
    this.#entries = [];
    this.#bytes = 0;
    this.#readings = 0;
  }
}
