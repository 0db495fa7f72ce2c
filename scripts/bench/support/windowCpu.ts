// CPU of some processes window by window (each call: since the previous one),
// where common.ts's CpuMeter measures one window from its start.

import { cpuSecondsOf } from './common.js';

export class WindowCpu {
  #last: number;
  #at = performance.now();

  constructor(readonly pids: number[]) {
    this.#last = this.#seconds();
  }

  /** A process that has exited (a replaced worker) counts as 0 from then on. */
  #seconds(): number {
    let total = 0;
    for (const pid of this.pids) {
      try {
        total += cpuSecondsOf(pid);
      } catch {
        // gone
      }
    }
    return total;
  }

  /** Percent of one core (100 = one core fully busy) since the previous call. */
  next(): number {
    const now = performance.now();
    const seconds = this.#seconds();
    const percent = (100 * (seconds - this.#last)) / ((now - this.#at) / 1000);
    this.#last = seconds;
    this.#at = now;
    return percent;
  }
}
