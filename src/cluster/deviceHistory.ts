// Where the hub keeps each device stream: the highest contiguous seq stored
// (the watermark the uplink acks and deduplicates against), which site owns
// the device, and a bounded history for late joiners and resuming viewers.
// One interface, two implementations chosen at start: in memory for a single
// node, Redis Streams when REDIS_URL is set (survives a hub restart).

import type { Reading } from '../devices/reading.js';

export interface HistoryLimits {
  /** Readings kept per device (oldest go first). */
  maxReadings: number;
}

export const DEFAULT_HISTORY_LIMITS: HistoryLimits = { maxReadings: 50_000 };

export interface DeviceHistoryStore {
  readonly kind: 'memory' | 'redis';
  /** The site that owns deviceId, recording siteId if none does yet. */
  claim(deviceId: string, siteId: string): Promise<string>;
  /** Highest contiguous seq stored for the device; 0 when nothing is. */
  watermark(deviceId: string): Promise<number>;
  /**
   * Stores readings (ascending seqs, all above the watermark) and moves the
   * watermark to `through` (>= the last reading's seq: gaps may follow it) as
   * one step: after a crash either both happened or neither.
   */
  append(deviceId: string, readings: readonly Reading[], through: number): Promise<void>;
  /** The agent's journal was wiped and its seqs restart: forget the watermark (history stays). */
  resetWatermark(deviceId: string, seq: number): Promise<void>;
  /** Readings with after < seq <= upTo, oldest first, at most limit. */
  range(deviceId: string, after: number, upTo: number, limit: number): Promise<Reading[]>;
  /**
   * A late joiner's snapshot, seq order, all seq <= upTo: waveforms whose device
   * time is within windowMs of the newest reading, plus the latest numeric and
   * status reading of each code and the latest reading of each alarm (latestKey).
   */
  recent(deviceId: string, windowMs: number, upTo: number): Promise<Reading[]>;
  close(): Promise<void>;
}

/** The snapshot rule shared by both stores: recent waveforms plus the latest reading of every other code. */
export function snapshotOf(newestFirst: Iterable<Reading>, latestByCode: Iterable<Reading>, windowMs: number, upTo: number): Reading[] {
  const out = new Map<number, Reading>();
  let newestT: number | undefined;
  for (const r of newestFirst) {
    if (r.seq > upTo) continue;
    newestT ??= r.t;
    if (r.t < newestT - windowMs) break;
    if (r.kind === 'waveform') out.set(r.seq, r);
  }
  for (const r of latestByCode) if (r.seq <= upTo) out.set(r.seq, r);
  return [...out.values()].sort((a, b) => a.seq - b.seq);
}

/** Numerics and status per code; alarms per alarm identity, so two concurrent alarms of one event code both stay. */
export function latestKey(r: Reading): string {
  return r.kind === 'alarm' ? `alarm:${r.alarmId ?? r.code}` : `${r.kind}:${r.code}`;
}
