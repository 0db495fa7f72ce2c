// NTP-style offset of the hub's clock from the agent's: four timestamps per
// exchange (t0 agent send, t1 hub receive, t2 hub send, t3 agent receive);
// of several exchanges the one with the smallest round trip is kept, since
// its offset has the smallest error bound (rtt / 2).

export interface ClockSample {
  t0: number;
  t1: number;
  t2: number;
  t3: number;
}

export interface ClockEstimate {
  /** hub clock - agent clock, ms. */
  offsetMs: number;
  rttMs: number;
}

export function estimateFrom(sample: ClockSample): ClockEstimate {
  const { t0, t1, t2, t3 } = sample;
  return { offsetMs: (t1 - t0 + (t2 - t3)) / 2, rttMs: Math.max(0, t3 - t0 - (t2 - t1)) };
}

export function bestEstimate(samples: readonly ClockSample[]): ClockEstimate | undefined {
  let best: ClockEstimate | undefined;
  for (const s of samples) {
    const e = estimateFrom(s);
    if (!best || e.rttMs < best.rttMs) best = e;
  }
  return best;
}
