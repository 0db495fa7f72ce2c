/**
 * Stamps a continuous sample stream with times derived from its nominal rate.
 * Sample `index` (counted from the start of a session) is taken at
 * `anchor + index * period`. The anchor comes from receipt times: a batch of
 * samples received together at `rt` was taken no later than `rt`, its last
 * sample at about `rt`. Corrections keep that true without breaking continuity
 * more than needed:
 * - backwards at once when a sample would otherwise be stamped after it arrived;
 * - forwards slowly when every sample of a window arrived late (device clock slower);
 * - a fresh session when samples arrive far later than predicted (stall, or loss
 *   the device's counter cannot show).
 */
export interface SampleClockOptions {
  sampleRate: number;
  /** Later than predicted by more than this: start a new session. */
  stallMs?: number;
  /** Window over which the smallest lateness is measured for forward correction. */
  driftWindowMs?: number;
  /** Smallest lateness (over a whole window) tolerated before correcting forwards. */
  latencyFloorMs?: number;
}

export type ClockVerdict = 'anchored' | 'continued' | 'stalled';

export class SampleClock {
  readonly periodMs: number;
  readonly #stallMs: number;
  readonly #driftWindowMs: number;
  readonly #latencyFloorMs: number;
  #anchor: number | undefined;
  #windowStart = 0;
  #windowMinLag = Infinity;

  constructor(options: SampleClockOptions) {
    this.periodMs = 1000 / options.sampleRate;
    this.#stallMs = options.stallMs ?? 1000;
    this.#driftWindowMs = options.driftWindowMs ?? 10_000;
    this.#latencyFloorMs = options.latencyFloorMs ?? 20;
  }

  get anchored(): boolean {
    return this.#anchor !== undefined;
  }

  /** Forget the anchor: the next batch starts a new session at index 0. */
  reset(): void {
    this.#anchor = undefined;
    this.#windowMinLag = Infinity;
  }

  /**
   * Called before a batch of `count` samples (starting at session index
   * `firstIndex`) that arrived at `rt`. 'stalled' means the caller should close
   * the session (flush, reset indexes) and call again.
   */
  observe(firstIndex: number, count: number, rt: number): ClockVerdict {
    const takenAtLatest = rt - (count - 1) * this.periodMs;
    if (this.#anchor === undefined) {
      this.#anchor = takenAtLatest - firstIndex * this.periodMs;
      this.#windowStart = rt;
      this.#windowMinLag = Infinity;
      return 'anchored';
    }
    const lag = takenAtLatest - this.timeOf(firstIndex);
    if (lag > this.#stallMs) return 'stalled';
    if (lag < 0) this.#anchor += lag;
    this.#windowMinLag = Math.min(this.#windowMinLag, Math.max(lag, 0));
    if (rt - this.#windowStart >= this.#driftWindowMs) {
      if (this.#windowMinLag > this.#latencyFloorMs) this.#anchor += this.#windowMinLag / 2;
      this.#windowStart = rt;
      this.#windowMinLag = Infinity;
    }
    return 'continued';
  }

  timeOf(index: number): number {
    if (this.#anchor === undefined) throw new Error('SampleClock.timeOf before observe');
    return this.#anchor + index * this.periodMs;
  }
}
