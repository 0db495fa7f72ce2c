import { z } from 'zod';

/** Settings every serial driver shares, merged into each protocol's schema. */
export const serialLinkConfigShape = {
  /** Device path; prefer /dev/serial/by-id/... so it survives replugging into another port. */
  path: z.string().min(1),
  reconnect: z
    .object({
      minMs: z.number().int().min(10).default(250),
      maxMs: z.number().int().min(10).default(5000),
    })
    .strict()
    .default({}),
  /** How often an open port's path is checked for an unplug. */
  pathCheckMs: z.number().int().min(10).default(1000),
  /** No decoded frame for this long while the port is open: status degraded. */
  staleAfterMs: z.number().int().min(100).default(2000),
  /** Share of rejected frames (over errorWindowMs) above which status is degraded. */
  maxFrameErrorRate: z.number().min(0).max(1).default(0.2),
  errorWindowMs: z.number().int().min(100).default(5000),
  /** Readings kept for retry while the sink refuses; oldest are dropped beyond it (counted, logged). */
  maxBufferedReadings: z.number().int().min(100).default(50_000),
  /**
   * A partial waveform chunk is emitted once no bytes have arrived for this
   * long, so a stream that pauses shows its last samples within this bound
   * instead of when the port closes. Sample times stay on the sample clock.
   */
  flushAfterMs: z.number().int().min(5).max(10_000).default(100),
};

export interface SerialLinkConfig {
  path: string;
  reconnect: { minMs: number; maxMs: number };
  pathCheckMs: number;
  staleAfterMs: number;
  maxFrameErrorRate: number;
  errorWindowMs: number;
  maxBufferedReadings: number;
  flushAfterMs: number;
}
