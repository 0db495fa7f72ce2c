import type { DriverStatus } from '../driver.js';

export interface LinkHealthOptions {
  /** No decoded frame for longer than this while the port is open: degraded. */
  staleAfterMs: number;
  /** Rejected / (decoded + rejected) above this over the window: degraded. */
  maxFrameErrorRate: number;
  /** Window for the frame error rate. */
  errorWindowMs: number;
  /** Fewer frames than this in the window: too little to judge the error rate. */
  minFramesForRate: number;
}

interface FrameSnapshot {
  at: number;
  decoded: number;
  rejected: number;
}

/**
 * Decides online / degraded / offline for a serial link from the port state,
 * the time of the last decoded frame and the recent frame error rate.
 */
export class LinkHealth {
  #portOpen = false;
  #closedReason = 'not started';
  #lastFrameAt: number | undefined;
  #snapshots: FrameSnapshot[] = [];
  #openedAt = 0;

  constructor(private readonly options: LinkHealthOptions) {}

  portOpened(now: number): void {
    this.#portOpen = true;
    this.#lastFrameAt = undefined;
    this.#snapshots = [];
    this.#openedAt = now;
  }

  portClosed(reason: string): void {
    this.#portOpen = false;
    this.#closedReason = reason;
  }

  frameDecoded(now: number): void {
    this.#lastFrameAt = now;
  }

  /** Current verdict, given cumulative frame counters (sampled on every call). */
  evaluate(now: number, decoded: number, rejected: number): DriverStatus {
    if (!this.#portOpen) return { status: 'offline', reason: this.#closedReason };
    this.#snapshots.push({ at: now, decoded, rejected });
    while (this.#snapshots.length > 1 && now - this.#snapshots[0]!.at > this.options.errorWindowMs) this.#snapshots.shift();
    const since = this.#lastFrameAt ?? this.#openedAt;
    if (now - since > this.options.staleAfterMs) {
      const seconds = Math.round(this.options.staleAfterMs / 100) / 10;
      return { status: 'degraded', reason: this.#lastFrameAt === undefined ? `port open, no data for ${seconds} s` : `no data for ${seconds} s` };
    }
    if (this.#lastFrameAt === undefined) return { status: 'degraded', reason: 'port open, waiting for data' };
    const first = this.#snapshots[0]!;
    const frames = decoded - first.decoded + (rejected - first.rejected);
    if (frames >= this.options.minFramesForRate) {
      const rate = (rejected - first.rejected) / frames;
      if (rate > this.options.maxFrameErrorRate) return { status: 'degraded', reason: `frame error rate ${Math.round(rate * 100)}%` };
    }
    return { status: 'online' };
  }
}
